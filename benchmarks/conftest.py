"""Shared setup of the speed benchmarks (pytest-benchmark).

Everything is timed in ONE pytest run on the SAME trial:

* the benchmark trial is a schreiber2019 walking trial (default ``2014001_C4_05``; a test
  subject of the bundle when its split is known) with its subject model scaled by the
  reference pipeline's ``scale_model``; its processed coordinates come from the dataset
  (``--bench-dataset``, default ``datasets/schreiber2019``) when present, otherwise IK is run
  over the whole ``.trc`` once (set-up, not timed; cached in ``.benchmarks/cache``);
* OpenSim ID and SO (:mod:`opensim_surrogate.reference.tools`, the very wrappers that built
  the labels) and the surrogate (``Bundle.predict``) all process that trial.

Per gait cycle
--------------
One gait cycle is ``frames_per_cycle`` frames at 100 Hz: the first complete heel-strike to
heel-strike cycle of the trial when there is one (≈ 110 frames = 1.1 s of walking), else
110. ID and the single-trial surrogate run on exactly those frames. SO is too slow to repeat
on a whole cycle (≈ 0.2 s per frame), so it runs on a short window of 2 frames and on a
window of ``--bench-so-frames`` frames; its per-cycle cost is extrapolated linearly:
``T_2 + (T_W - T_2) / (W - 2) * (frames_per_cycle - 2)`` (fixed cost + per-frame cost).

Options (``pytest benchmarks --benchmark-only [options]``): ``--bench-bundle`` (default
``rajagopal_walking``), ``--bench-dataset``, ``--bench-trial``, ``--bench-rounds`` (OpenSim
rounds, default 3), ``--bench-so-frames`` (default 12), ``--bench-batch`` (default 100),
``--bench-smoke`` (1 round, tiny windows: the CI smoke run). The JSON of the run goes to
``.benchmarks/latest.json`` unless ``--benchmark-json`` is given; ``python -m
opensim_surrogate.bench_report benchmarks/RESULTS.md`` turns it into the results table.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_JSON = REPO / ".benchmarks" / "latest.json"
CACHE = REPO / ".benchmarks" / "cache"
DEFAULT_TRIAL = "2014001_C4_05"
DEFAULT_FRAMES_PER_CYCLE = 110
log = logging.getLogger("benchmarks")


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("opensim-surrogate benchmarks")
    g.addoption("--bench-bundle", default=os.environ.get("OSS_BENCH_BUNDLE", "rajagopal_walking"),
                help="bundle name or directory (default rajagopal_walking)")
    g.addoption("--bench-dataset", default=str(REPO / "datasets" / "schreiber2019"),
                help="dataset with the benchmark trial's processed coordinates")
    g.addoption("--bench-trial", default=None, help="trial id (default: a test-subject trial)")
    g.addoption("--bench-rounds", type=int, default=3, help="rounds of the OpenSim benchmarks")
    g.addoption("--bench-so-frames", type=int, default=12, help="SO window (frames)")
    g.addoption("--bench-batch", type=int, default=100, help="trials in the batch benchmark")
    g.addoption("--bench-smoke", action="store_true",
                help="CI smoke run: 1 round, 3-frame SO window, batch of 4, converter IK")


def pytest_configure(config: pytest.Config) -> None:
    # runs before pytest-benchmark's (trylast) configure: default JSON output path
    if getattr(config.option, "benchmark_json", None) is None and \
            hasattr(config.option, "benchmark_json"):
        DEFAULT_JSON.parent.mkdir(parents=True, exist_ok=True)
        config.option.benchmark_json = DEFAULT_JSON


@dataclass
class BenchCase:
    """The benchmark trial and settings shared by every benchmark of the run."""

    trial_id: str
    subject: str
    mass_kg: float
    height_m: float | None
    model_osim: Path
    coordinates: pd.DataFrame        # processed (radians, 100 Hz), model convention
    grf_mot: Path
    external_loads_xml: Path
    cycle: tuple[float, float]       # frames ID / the surrogate process (one gait cycle)
    frames_per_cycle: int            # normalisation: frames of one gait cycle
    frames_run: int                  # frames ID / the single-trial surrogate process
    cycle_source: str
    kin_cycle: pd.DataFrame          # surrogate input: canonical kinematics of the cycle
    kin_trial: pd.DataFrame          # surrogate input: the whole trial
    bundle: str
    rounds: int
    so_frames: int
    batch: int
    smoke: bool
    work: Path
    coordinates_source: str = ""
    batch_inputs: list[tuple[pd.DataFrame, float, float | None]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        """Context stored with every benchmark (``extra_info``)."""
        return {"trial_id": self.trial_id, "frames_per_cycle": self.frames_per_cycle,
                "frames_run": self.frames_run,
                "cycle_source": self.cycle_source, "cycle": list(self.cycle),
                "trial_frames": len(self.kin_trial), "bundle": self.bundle,
                "coordinates_source": self.coordinates_source, "smoke": self.smoke,
                "cpu_count": os.cpu_count()}


def _bundle_test_subjects(bundle: str) -> list[str]:
    try:
        from opensim_surrogate.validate.report import load_bundle, test_subjects

        return test_subjects(load_bundle(bundle)) or []
    except Exception as exc:  # noqa: BLE001 - only a preference for the trial choice
        log.info("bundle test split unavailable: %s", exc)
        return []


def _choose_spec(trial: str | None, bundle: str) -> Any:
    from opensim_surrogate.reference import corpora

    specs = [s for s in corpora.schreiber2019() if not s.extra.get("missing")]
    if trial:
        for s in specs:
            if s.trial_id == trial:
                return s
        raise pytest.UsageError(f"--bench-trial {trial}: not a schreiber2019 trial")
    tests = set(_bundle_test_subjects(bundle))
    for s in specs:
        if s.subject in tests:
            return s
    for s in specs:
        if s.trial_id == DEFAULT_TRIAL:
            return s
    return specs[0]


def _scaled_model(spec: Any) -> Path:
    from opensim_surrogate.reference import tools

    out = CACHE / "models" / f"{spec.subject}.osim"
    if not out.is_file():
        tools.scale_model(spec.generic_model, spec.scale_set, float(spec.mass_kg), out,
                          spec.marker_model, name=spec.subject)
    return out


def _coordinates(spec: Any, model: Path, dataset: Path, smoke: bool
                 ) -> tuple[pd.DataFrame, list[dict[str, Any]], str]:
    """Processed coordinates of the trial, its cycles, and where they came from."""
    from opensim_surrogate.reference import tools
    from opensim_surrogate.reference.config import ReferenceConfig

    if not smoke and (dataset / "trials" / spec.trial_id / "meta.json").is_file():
        from opensim_surrogate.dataset.store import read_trial

        rec = read_trial(dataset, spec.trial_id)
        return rec.kinematics, list(rec.cycles), f"dataset {dataset.name}"
    cfg = ReferenceConfig()
    if smoke:
        coords = tools.process_coordinates(spec.extra["converter_ik_mot"], model, cfg)
        return coords, [], "converter IK window (smoke)"
    mot = CACHE / "ik" / f"{spec.trial_id}_ik.mot"
    if not mot.is_file():
        tools.inverse_kinematics(model, spec.trc, mot, spec.ik_setup, config=cfg)
    coords = tools.process_coordinates(mot, model, cfg)
    return coords, [], "IK over the whole .trc (set-up, not timed)"


def _first_cycle(cycles: list[dict[str, Any]], index: pd.Index) -> tuple[float, float] | None:
    t0, t1 = float(index[0]), float(index[-1])
    for c in sorted(cycles, key=lambda c: c["start"]):
        if c["start"] >= t0 - 1e-9 and c["end"] <= t1 + 1e-9:
            return float(c["start"]), float(c["end"])
    return None


def _canonical(kin: pd.DataFrame) -> pd.DataFrame:
    """The Rajagopal family is the canonical convention: nothing to map."""
    return kin


def make_case(config: pytest.Config | None = None, **overrides: Any) -> BenchCase:
    """Build the benchmark case (set-up: not timed). ``overrides`` replace option values."""
    def opt(name: str) -> Any:
        if name in overrides:
            return overrides[name]
        return config.getoption(f"--bench-{name.replace('_', '-')}") if config else None

    smoke = bool(opt("smoke"))
    bundle = str(opt("bundle") or "rajagopal_walking")
    spec = _choose_spec(opt("trial"), bundle)
    model = _scaled_model(spec)
    coords, cycles, source = _coordinates(spec, model, Path(opt("dataset") or ""), smoke)
    idx = coords.index
    cyc = _first_cycle(cycles, idx)
    if cyc is not None:
        sel = (idx >= cyc[0] - 1e-9) & (idx <= cyc[1] + 1e-9)
        frames = frames_run = int(sel.sum())
        cycle_source = "first complete gait cycle of the trial"
    else:
        frames_run = min(DEFAULT_FRAMES_PER_CYCLE, len(idx))
        cyc = (float(idx[0]), float(idx[frames_run - 1]))
        sel = (idx >= cyc[0] - 1e-9) & (idx <= cyc[1] + 1e-9)
        frames = DEFAULT_FRAMES_PER_CYCLE
        cycle_source = (f"no complete cycle in the trial: {frames_run} frames processed, "
                        f"times scaled to a {DEFAULT_FRAMES_PER_CYCLE}-frame walking cycle")
    kin_trial = _canonical(coords)
    kin_cycle = kin_trial.loc[sel]
    height = float(spec.height_m) if np.isfinite(spec.height_m) else None
    rounds = 1 if smoke else int(opt("rounds") or 3)
    so_frames = 3 if smoke else int(opt("so_frames") or 12)
    batch = 4 if smoke else int(opt("batch") or 100)
    work = CACHE / "work"
    work.mkdir(parents=True, exist_ok=True)
    case = BenchCase(spec.trial_id, spec.subject, float(spec.mass_kg), height, model, coords,
                     Path(spec.grf_mot), Path(spec.external_loads_xml), cyc, frames,
                     frames_run, cycle_source, kin_cycle, kin_trial, bundle, rounds, so_frames,
                     batch, smoke, work, source)
    case.batch_inputs = _batch_inputs(case, Path(opt("dataset") or ""))
    return case


def _batch_inputs(case: BenchCase, dataset: Path) -> list[tuple[pd.DataFrame, float, float | None]]:
    """``batch`` trials: the dataset's trials in turn (repeated if needed), else the case's."""
    trials: list[tuple[pd.DataFrame, float, float | None]] = []
    if not case.smoke and (dataset / "dataset.json").is_file():
        from opensim_surrogate.dataset.store import Dataset

        ds = Dataset(dataset)
        for tid in ds.trial_ids[: case.batch]:
            rec = ds.load(tid)
            h = rec.height_m if np.isfinite(rec.height_m) else None
            trials.append((rec.kinematics, float(rec.mass_kg), h))
    if not trials:
        trials = [(case.kin_trial, case.mass_kg, case.height_m)]
    out = [trials[i % len(trials)] for i in range(case.batch)]
    return out


@pytest.fixture(scope="session")
def bench_case(request: pytest.FixtureRequest) -> BenchCase:
    return make_case(request.config)


def record(benchmark: Any, case: BenchCase, **extra: Any) -> None:
    """Attach the case context and ``extra`` to the benchmark's JSON record."""
    benchmark.extra_info.update(case.info())
    benchmark.extra_info.update(json.loads(json.dumps(extra, default=str)))


@pytest.fixture
def bench_record(bench_case: BenchCase) -> Any:
    """``bench_record(benchmark, **extra)``: :func:`record` bound to the session's case."""
    def _record(benchmark: Any, **extra: Any) -> None:
        record(benchmark, bench_case, **extra)

    return _record
