"""Cold start of the surrogate in a fresh process: import -> first result.

Run as a script (the benchmarks start it with ``subprocess``)::

    python benchmarks/cold_start.py --bundle rajagopal_walking --kinematics trial.parquet \
        --mass 67 [--height 1.66] [--batch 100] [--threads 1]

It imports ``opensim_surrogate``, loads the bundle, predicts the trial once (or ``--batch``
copies of it in one ``predict_many`` call) and prints one JSON line on stdout::

    {"import_s": ..., "load_s": ..., "predict_s": ..., "total_s": ..., "maxrss_mb": ...,
     "frames": ..., "n_trials": ..., "modules": {...}}

``total_s`` counts from the first line of this script (after the interpreter started);
the caller measures the whole process wall time, interpreter start included. ``maxrss_mb``
is the process's peak resident memory (``VmHWM``, see :func:`peak_rss_mb`).
"""
from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MB).

    ``VmHWM`` of ``/proc/self/status`` (Linux): the high-water mark of THIS program's address
    space. ``ru_maxrss`` is not used where ``/proc`` exists because Linux carries it across
    ``fork``/``exec``, so a child started from a big parent (pytest with OpenSim loaded)
    would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", required=True)
    p.add_argument("--kinematics", required=True, help="parquet of the trial (radians, 100 Hz)")
    p.add_argument("--mass", type=float, required=True)
    p.add_argument("--height", type=float, default=None)
    p.add_argument("--batch", type=int, default=0, help="predict this many copies at once")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    p.add_argument("--onnx", default=None,
                   help="prototype torch-free path: run this ONNX export of the bundle's "
                        "network with ONNX Runtime (features from opensim_surrogate.train."
                        "features, the bundle's metadata.json)")
    args = p.parse_args(argv)
    if args.onnx:
        return _onnx_main(args)

    import pandas as pd

    kin = pd.read_parquet(args.kinematics)
    t_read = time.perf_counter()
    from opensim_surrogate.bundle import Bundle

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    t_import = time.perf_counter()
    bundle = Bundle.load(args.bundle)
    t_load = time.perf_counter()
    if args.batch:
        preds = bundle.predict_many([kin] * args.batch, [args.mass] * args.batch,
                                    heights=[args.height] * args.batch, uncertainty=False)
        n = len(list(preds))
    else:
        pred = bundle.predict(kin, args.mass, height_m=args.height, uncertainty=False)
        n = 1
        if pred.moments is None or len(pred.moments) != len(kin):
            raise SystemExit("prediction has the wrong number of frames")
    t_pred = time.perf_counter()
    rss_mb = peak_rss_mb()
    heavy = {m: (m in sys.modules) for m in ("opensim", "torch", "scipy", "matplotlib")}
    print(json.dumps({"import_s": t_import - t_read, "read_s": t_read - T0,
                      "load_s": t_load - t_import, "predict_s": t_pred - t_load,
                      "total_s": t_pred - T0, "maxrss_mb": rss_mb, "frames": len(kin),
                      "n_trials": n, "threads": torch.get_num_threads(), "modules": heavy}))
    return 0


def _onnx_main(args: argparse.Namespace) -> int:
    """Import -> first result without torch: ONNX Runtime + the package's feature code.

    A measurement of what an ONNX Runtime loading path would give; the package's ``Bundle``
    always imports torch. Window scheme only.
    """
    import pandas as pd

    kin = pd.read_parquet(args.kinematics)
    t_read = time.perf_counter()
    import numpy as np
    import onnxruntime as ort

    from opensim_surrogate.bundle import resolve_bundle_dir
    from opensim_surrogate.train.features import (Normalizer, WindowFeatureSpec,
                                                  predict_sequences, window_features)

    t_import = time.perf_counter()
    meta = json.loads((resolve_bundle_dir(args.bundle) / "metadata.json").read_text())
    spec = WindowFeatureSpec.from_dict(meta["inputs"]["feature_spec"])
    in_norm = Normalizer.from_dict(meta["inputs"]["normalisation"])
    heads = list(meta["arch"]["head_sizes"])
    out_norm = {h: Normalizer.from_dict(meta["outputs"][h]["normalisation"]) for h in heads}
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(args.threads, 1)
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.onnx, so, providers=["CPUExecutionProvider"])
    t_load = time.perf_counter()

    def forward(batch: np.ndarray) -> dict[str, np.ndarray]:
        outs = sess.run(None, {"x": np.ascontiguousarray(batch, dtype=np.float32)})
        return {h: o.astype(np.float64) for h, o in zip(heads, outs)}

    n = max(args.batch, 1)
    feats = [in_norm.transform(window_features(kin, spec, args.height))] * n
    raw = predict_sequences(forward, feats, int(meta["inputs"]["window"]),
                            int(meta["inputs"]["stride"]))
    res = [{h: np.maximum(out_norm[h].inverse(r[h]), 0.0) if h == "forces"
            else out_norm[h].inverse(r[h]) for h in heads} for r in raw]
    if res[0]["moments"].shape[0] != len(kin):
        raise SystemExit("prediction has the wrong number of frames")
    t_pred = time.perf_counter()
    heavy = {m: (m in sys.modules) for m in ("opensim", "torch", "scipy", "matplotlib")}
    print(json.dumps({"import_s": t_import - t_read, "read_s": t_read - T0,
                      "load_s": t_load - t_import, "predict_s": t_pred - t_load,
                      "total_s": t_pred - T0, "maxrss_mb": peak_rss_mb(), "frames": len(kin),
                      "n_trials": n, "threads": so.intra_op_num_threads, "modules": heavy,
                      "runtime": "onnxruntime"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
