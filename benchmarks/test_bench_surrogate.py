"""The surrogate on the benchmark trial (see conftest): warm single trial, batch, cold start.

* ``test_surrogate_warm``: ``Bundle.predict`` on one gait cycle, bundle already loaded and
  warmed up, for each runtime variant (:data:`VARIANTS`): PyTorch eager with 1 thread
  ("single-thread", the target's setting) and 2, TorchScript, and ONNX Runtime (when the
  ``onnxruntime`` package is installed; it is not a dependency of the package).
* ``test_surrogate_batch``: ``Bundle.predict_many`` on ``--bench-batch`` (100) trials at once,
  2 threads (the machine's cores), for each runtime.
* ``test_surrogate_cold_start``: ``benchmarks/cold_start.py`` in a fresh process (interpreter
  start, imports, bundle load, first prediction); its peak RSS is the memory figure.
* ``test_surrogate_batch_memory``: the same fresh process predicting the batch: peak RSS
  of a batched run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
COLD = HERE / "cold_start.py"

#: runtime variants of the warm benchmark: (name, torch/ORT threads, runtime)
VARIANTS = [("eager-1thread", 1, "eager"), ("eager-2threads", 2, "eager"),
            ("torchscript-1thread", 1, "torchscript"), ("onnxruntime-1thread", 1, "onnxruntime"),
            ("onnxruntime-2threads", 2, "onnxruntime")]
#: runtimes of the batch benchmark (2 threads)
BATCH_RUNTIMES = ["eager", "torchscript", "onnxruntime"]


class _OrtModel:
    """An ONNX Runtime session behind the ``bundle.model`` call interface (dict of tensors)."""

    def __init__(self, session: Any, heads: list[str], path: Path) -> None:
        self.session, self.heads, self.path = session, heads, path

    def eval(self) -> "_OrtModel":
        return self

    def __call__(self, x: Any) -> dict[str, Any]:
        import torch

        outs = self.session.run(None, {"x": x.numpy()})
        return {h: torch.from_numpy(o) for h, o in zip(self.heads, outs)}


@pytest.fixture(scope="module")
def bundle(bench_case: Any) -> Any:
    from opensim_surrogate.bundle import Bundle

    return Bundle.load(bench_case.bundle)


def _example_inputs(bundle: Any) -> tuple[Any, Any]:
    import torch

    meta = bundle.metadata
    window = int(meta["inputs"].get("window", meta["inputs"].get("cycle_samples", 64)))
    n_in = int(meta["arch"]["n_inputs"])
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, window, n_in, generator=gen), torch.randn(5, window, n_in, generator=gen)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import torch

    return all(torch.allclose(a[k], b[k], atol=1e-4, rtol=1e-4) for k in a)


def _set_runtime(bundle: Any, runtime: str, threads: int = 1) -> bool:
    """Switch the bundle's network to ``runtime`` (``eager``, ``torchscript``, ``onnxruntime``).

    Uses the bundle's own ``set_runtime`` when it has one; otherwise the network is converted
    here and swapped in as ``bundle.model``: TorchScript = ``torch.jit.trace`` on one input
    window, frozen and optimised for inference; ONNX Runtime = ``torch.onnx.export`` (batch
    dimension dynamic) run by an ``InferenceSession`` with ``threads`` intra-op threads.
    Either must reproduce the eager outputs on a batch of another size. Returns False when
    the runtime cannot be used (not installed, not traceable).
    """
    import torch

    if hasattr(bundle, "set_runtime"):
        try:
            bundle.set_runtime(runtime)
            return True
        except Exception:  # noqa: BLE001 - unsupported runtime: variant reported as absent
            return False
    eager = getattr(bundle, "_bench_eager_model", None) or bundle.model
    bundle._bench_eager_model = eager
    if runtime == "eager":
        bundle.model = eager
        return True
    example, check = _example_inputs(bundle)
    eager.eval()
    try:
        with torch.no_grad():
            ref = eager(check)
            if runtime == "torchscript":
                traced = torch.jit.trace(eager, example, strict=False, check_trace=False)
                model: Any = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
            elif runtime == "onnxruntime":
                model = _onnx_model(bundle, eager, example, threads)
            else:
                return False
            ok = _same(ref, model(check))
    except Exception:  # noqa: BLE001 - not installed / cannot be converted
        return False
    if ok:
        bundle.model = model
    return ok


def _onnx_model(bundle: Any, eager: Any, example: Any, threads: int) -> _OrtModel:
    import tempfile
    import warnings

    import onnxruntime as ort
    import torch

    heads = list(bundle.metadata["arch"]["head_sizes"])

    class _Tuple(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, x: Any) -> tuple[Any, ...]:
            out = self.m(x)
            return tuple(out[h] for h in heads)

    path = Path(tempfile.mkdtemp(prefix="bench_onnx_")) / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Tuple(eager).eval(), (example,), str(path), input_names=["x"],
                          output_names=heads, dynamic_axes={"x": {0: "batch"}},
                          opset_version=17, dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return _OrtModel(sess, heads, path)


@pytest.mark.parametrize("variant", [v[0] for v in VARIANTS])
def test_surrogate_warm(benchmark: Any, bench_case: Any, bundle: Any, variant: str,
                        bench_record: Any) -> None:
    import torch

    _, threads, runtime = next(v for v in VARIANTS if v[0] == variant)
    if not _set_runtime(bundle, runtime, threads):
        pytest.skip(f"runtime {runtime} unavailable (not installed or not convertible)")
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        kin, mass, h = bench_case.kin_cycle, bench_case.mass_kg, bench_case.height_m
        for _ in range(3):  # warm-up (allocations, TorchScript profiling runs)
            bundle.predict(kin, mass, height_m=h, uncertainty=False)
        if bench_case.smoke:
            pred = benchmark.pedantic(bundle.predict, args=(kin, mass),
                                      kwargs={"height_m": h, "uncertainty": False},
                                      rounds=1, iterations=1)
        else:
            pred = benchmark(bundle.predict, kin, mass, height_m=h, uncertainty=False)
    finally:
        torch.set_num_threads(old)
        _set_runtime(bundle, "eager")
    assert len(pred.moments) == len(kin)
    bench_record(benchmark, kind="surrogate_warm", variant=variant, threads=threads,
                 runtime=runtime, frames=len(kin))


@pytest.mark.parametrize("runtime", BATCH_RUNTIMES)
def test_surrogate_batch(benchmark: Any, bench_case: Any, bundle: Any, bench_record: Any,
                         runtime: str) -> None:
    import torch

    kins = [k for k, _, _ in bench_case.batch_inputs]
    masses = [m for _, m, _ in bench_case.batch_inputs]
    heights = [h for _, _, h in bench_case.batch_inputs]
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        if not _set_runtime(bundle, runtime, 2):
            pytest.skip(f"runtime {runtime} unavailable (not installed or not convertible)")
        bundle.predict_many(kins[:2], masses[:2], heights=heights[:2], uncertainty=False)

        def run() -> list[Any]:
            return list(bundle.predict_many(kins, masses, heights=heights, uncertainty=False))

        preds = benchmark.pedantic(run, rounds=1 if bench_case.smoke else 5, iterations=1,
                                   warmup_rounds=0)
    finally:
        torch.set_num_threads(old)
        _set_runtime(bundle, "eager")
    assert len(preds) == len(kins)
    frames = int(sum(len(k) for k in kins))
    bench_record(benchmark, kind="surrogate_batch", threads=2, n_trials=len(kins),
                 frames=frames, runtime=runtime, variant=f"{runtime}-2threads")


def _cold(bench_case: Any, batch: int, threads: int, onnx: Path | None = None
          ) -> dict[str, Any]:
    """Run cold_start.py once; returns its JSON plus the process wall time."""
    path = bench_case.work / f"cold_kinematics_{os.getpid()}.parquet"
    if not path.is_file():  # written once per benchmark session (this process)
        bench_case.kin_cycle.to_parquet(path)
    cmd = [sys.executable, str(COLD), "--bundle", str(bench_case.bundle), "--kinematics",
           str(path), "--mass", str(bench_case.mass_kg), "--threads", str(threads)]
    if bench_case.height_m is not None:
        cmd += ["--height", str(bench_case.height_m)]
    if batch:
        cmd += ["--batch", str(batch)]
    if onnx is not None:
        cmd += ["--onnx", str(onnx)]
    env = dict(os.environ)
    env.setdefault("PYTHONWARNINGS", "ignore")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"cold_start.py failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    return out


def test_surrogate_cold_start(benchmark: Any, bench_case: Any, bench_record: Any) -> None:
    runs: list[dict[str, Any]] = []

    def run() -> dict[str, Any]:
        r = _cold(bench_case, 0, 1)
        runs.append(r)
        return r

    benchmark.pedantic(run, rounds=bench_case.rounds, iterations=1, warmup_rounds=0)
    best = min(runs, key=lambda r: r["wall_s"])
    bench_record(benchmark, kind="surrogate_cold_start", frames=best["frames"],
                 maxrss_mb=max(r["maxrss_mb"] for r in runs),
                 in_process_s=[r["total_s"] for r in runs],
                 import_s=best["import_s"], load_s=best["load_s"], predict_s=best["predict_s"],
                 modules=best["modules"])


def test_surrogate_batch_memory(benchmark: Any, bench_case: Any, bench_record: Any) -> None:
    runs: list[dict[str, Any]] = []

    def run() -> dict[str, Any]:
        r = _cold(bench_case, bench_case.batch, 2)
        runs.append(r)
        return r

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    bench_record(benchmark, kind="surrogate_batch_process", n_trials=bench_case.batch,
                 frames=runs[0]["frames"] * bench_case.batch,
                 maxrss_mb=max(r["maxrss_mb"] for r in runs),
                 predict_s=runs[0]["predict_s"])


def test_surrogate_cold_start_onnx(benchmark: Any, bench_case: Any, bundle: Any,
                                   bench_record: Any) -> None:
    """Prototype torch-free loading path (ONNX Runtime); needs ``onnxruntime`` installed."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    if not _set_runtime(bundle, "onnxruntime", 1):
        pytest.skip("the network cannot be exported to ONNX")
    onnx = Path(bundle.model.path)
    _set_runtime(bundle, "eager")
    runs: list[dict[str, Any]] = []

    def run() -> dict[str, Any]:
        r = _cold(bench_case, 0, 1, onnx)
        runs.append(r)
        return r

    benchmark.pedantic(run, rounds=bench_case.rounds, iterations=1, warmup_rounds=0)
    best = min(runs, key=lambda r: r["wall_s"])
    bench_record(benchmark, kind="surrogate_cold_start_onnx", frames=best["frames"],
                 maxrss_mb=max(r["maxrss_mb"] for r in runs),
                 in_process_s=[r["total_s"] for r in runs], import_s=best["import_s"],
                 load_s=best["load_s"], predict_s=best["predict_s"], modules=best["modules"])
