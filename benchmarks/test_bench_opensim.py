"""OpenSim inverse dynamics and static optimisation on the benchmark trial (see conftest).

Each benchmark calls the reference pipeline's own wrappers
(:func:`opensim_surrogate.reference.tools.inverse_dynamics` / ``static_optimization``), i.e.
the full tool run a user would do: write the inputs and setup, load a fresh model, run, read
the results back.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

_counter = itertools.count()


def _cfg() -> Any:
    from opensim_surrogate.reference.config import ReferenceConfig

    return ReferenceConfig()


def run_id(case: Any) -> Any:
    """One OpenSim ID run over the benchmark cycle's frames."""
    from opensim_surrogate.reference import tools

    out = case.work / f"id_{next(_counter)}"
    return tools.inverse_dynamics(case.model_osim, case.coordinates, case.external_loads_xml,
                                  case.grf_mot, _cfg(), case.cycle, out_dir=out, name="id")


@pytest.fixture(scope="module")
def so_inputs(bench_case: Any) -> tuple[Path, Path, float]:
    """Processed coordinates + ExternalLoads (one ID run, set-up) and the SO window start."""
    res = run_id(bench_case)
    t0, t1 = bench_case.cycle
    # a stance frame: 10 % into the cycle (heel strike at 0 %), clipped to the data
    start = min(t0 + 0.1 * (t1 - t0), float(res.coordinates.index[-1]) - 0.01 * bench_case.so_frames)
    start = max(start, float(res.coordinates.index[0]))
    return res.coordinates_path, res.external_loads_path, round(start, 2)


def run_so(case: Any, inputs: tuple[Path, Path, float], frames: int) -> Any:
    """One OpenSim SO run over ``frames`` frames."""
    from opensim_surrogate.reference import tools

    coords, loads, start = inputs
    out = case.work / f"so_{next(_counter)}"
    end = round(start + (frames - 1) / 100.0, 6)
    res = tools.static_optimization(case.model_osim, coords, loads, _cfg(), (start, end),
                                    out_dir=out, name="so")
    if len(res.forces) != frames:
        raise AssertionError(f"SO solved {len(res.forces)} frames, expected {frames}")
    return res


def test_opensim_id(benchmark: Any, bench_case: Any, bench_record: Any) -> None:
    res = benchmark.pedantic(run_id, args=(bench_case,), rounds=bench_case.rounds,
                             iterations=1, warmup_rounds=0)
    assert len(res.moments) == bench_case.frames_run
    bench_record(benchmark, kind="opensim_id", frames=bench_case.frames_run)


@pytest.mark.parametrize("window", ["short", "long"])
def test_opensim_so(benchmark: Any, bench_case: Any, so_inputs: tuple[Path, Path, float],
                    window: str, bench_record: Any) -> None:
    frames = 2 if window == "short" else bench_case.so_frames
    res = benchmark.pedantic(run_so, args=(bench_case, so_inputs, frames),
                             rounds=bench_case.rounds, iterations=1, warmup_rounds=0)
    bench_record(benchmark, kind=f"opensim_so_{window}", frames=frames,
           failed_frames=len(res.failed_frames))
