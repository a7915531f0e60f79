"""Benchmark smoke run: every benchmark of ``benchmarks/`` once (1 round, tiny windows).

Runs ``pytest benchmarks --benchmark-only --bench-smoke`` in a subprocess with a tiny bundle
trained here, then ``python -m opensim_surrogate.bench_report`` on its JSON. No timing is
asserted (CI machines differ); the run must complete and the report must carry every row.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from opensim_surrogate.bench_report import (MARK_END, MARK_START, main as report_main,
                                            replace_between_markers, summarize)

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
from synthetic import make_synthetic_dataset  # noqa: E402

pytestmark = pytest.mark.opensim


@pytest.fixture(scope="module")
def smoke_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from opensim_surrogate.train.protocol import make_config, prepare_data, run_protocol

    root = tmp_path_factory.mktemp("bench")
    data = make_synthetic_dataset(root / "synthetic", n_subjects=5, duration_s=2.0, seed=5)
    prep = prepare_data(data, mirror=False)
    cfg = make_config("quick", arch="lstm", hyperparameters={"hidden_size": 16, "num_layers": 1},
                      window=48, stride=16, threads=1)
    bundle = run_protocol(cfg, prep, "tiny", final_epochs=1).bundle.save(root / "tiny")
    out = root / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-only", "-q",
         "-p", "no:cacheprovider", "--bench-smoke", "--bench-bundle", str(bundle),
         f"--benchmark-json={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return out


def test_every_benchmark_ran(smoke_json: Path) -> None:
    data = json.loads(smoke_json.read_text())
    kinds = {b["extra_info"]["kind"] for b in data["benchmarks"]}
    assert kinds >= {"opensim_id", "opensim_so_short", "opensim_so_long", "surrogate_warm",
                     "surrogate_batch", "surrogate_cold_start", "surrogate_batch_process"}
    variants = {b["extra_info"].get("variant") for b in data["benchmarks"]
                if b["extra_info"]["kind"] == "surrogate_warm"}
    assert {"eager-1thread", "eager-2threads", "torchscript-1thread"} <= variants
    for b in data["benchmarks"]:
        assert b["stats"]["rounds"] >= 1 and b["extra_info"]["smoke"] is True
    cold = next(b for b in data["benchmarks"] if b["extra_info"]["kind"] == "surrogate_cold_start")
    assert cold["extra_info"]["maxrss_mb"] > 10


def test_bench_report(smoke_json: Path, tmp_path: Path) -> None:
    s = summarize(json.loads(smoke_json.read_text()))
    assert s.id_cycle > 0 and s.so_cycle > 0 and s.batch_cycles > 0
    assert s.best_single[0].endswith("1thread")
    out = tmp_path / "RESULTS.md"
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{MARK_START}\nPLACEHOLDER\n{MARK_END}\nrest\n")
    assert report_main([str(out), "--json", str(smoke_json), "--readme", str(readme)]) == 0
    text = out.read_text()
    for needle in ("OpenSim inverse dynamics", "OpenSim static optimization",
                   "**OpenSim ID + SO**", "surrogate warm, eager-1thread",
                   "surrogate batch of 4 trials", "surrogate cold start",
                   "≥ 5,000× faster", "≥ 1,000 gait cycles/s", "cold start ≤ 2 s",
                   "peak memory ≤ 500 MB, one trial", "smoke run"):
        assert needle in text, needle
    r = readme.read_text()
    assert r.startswith("intro\n") and r.endswith("rest\n") and "PLACEHOLDER" not in r
    assert "surrogate cold start" in r
    assert replace_between_markers("no markers", "x") is None
    assert report_main([str(out), "--json", str(tmp_path / "missing.json")]) == 2
