"""The dataset builder: resumability, failure handling, parallel and Dask execution, CLI.

These tests inject FAKE, cheap process functions into ``build_dataset``: they test the
builder (caching, atomic writes, crash/kill handling, scheduling, bookkeeping), not OpenSim.
The real pipeline (``reference.pipeline.process_trial``) is tested on real data elsewhere.
Every fake call leaves a file in ``calls/`` so that tests can count how often a trial was
computed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opensim_surrogate.cli import main
from opensim_surrogate.dataset.store import Dataset, TrialRecord, is_complete, read_trial
from opensim_surrogate.errors import DatasetError, SimulationError
from opensim_surrogate.reference.build import BuildSummary, build_dataset
from opensim_surrogate.reference.pipeline import TrialSpec

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- fakes
def fake_record(spec: TrialSpec, n: int = 12) -> TrialRecord:
    """A tiny deterministic record (values depend on the trial id only)."""
    seed = sum(map(ord, spec.trial_id))
    rng = np.random.default_rng(seed)
    t = pd.Index(np.arange(n) / 100.0, name="time")
    frame = lambda cols: pd.DataFrame(rng.normal(size=(n, len(cols))), index=t,  # noqa
                                      columns=cols)
    mask = pd.DataFrame({"id_valid": np.arange(n) >= 2, "so_valid": np.arange(n) >= 4},
                        index=t)
    kinematics = frame(["hip_flexion_r", "knee_angle_r"])
    kinematics.attrs["opensim_header"] = object()  # like io.tables' TableHeader: not JSON
    return TrialRecord(
        trial_id=spec.trial_id, subject=spec.subject, trial=spec.trial,
        condition=spec.condition, mass_kg=spec.mass_kg, model_family=spec.model_family,
        kinematics=kinematics,
        moments=frame(["hip_flexion_r_moment"]), forces=frame(["glmax1_r"]),
        activations=frame(["glmax1_r"]), mask=mask,
        extras={"seconds": {"ik": 0.5, "id": 0.25, "so": 2.0}})


def fake_process(spec: TrialSpec, config, workdir: Path) -> TrialRecord:
    """FAKE process_trial (no OpenSim): logs the call, sleeps, fails or crashes on request."""
    calls = Path(spec.extra["calls_dir"])
    calls.mkdir(parents=True, exist_ok=True)
    (calls / f"{spec.trial_id}.{os.getpid()}.{uuid.uuid4().hex[:8]}").write_text(
        json.dumps({"config": config, "workdir": str(workdir)}))
    (Path(workdir) / "fake_opensim_output.txt").write_text("kept for inspection\n")
    time.sleep(float(spec.extra.get("sleep", 0.0)))
    if spec.extra.get("fail"):
        exc = SimulationError(f"static optimization failed for {spec.trial_id}")
        exc.step = "so"
        raise exc
    if spec.extra.get("crash"):
        os._exit(3)  # a segfault-like death of the worker process
    return fake_record(spec)


def fake_specs(n: int, calls: Path, **flags) -> list[TrialSpec]:
    """``n`` fake trials; ``flags`` maps an extra key to the trial indices that get it."""
    specs = []
    for i in range(n):
        extra = {"calls_dir": str(calls)}
        for key, value in flags.items():
            idx, val = value if isinstance(value, tuple) else (value, True)
            if i in (idx if isinstance(idx, (list, set)) else {idx}):
                extra[key] = val
        specs.append(TrialSpec(trial_id=f"s{i // 2}_T{i}", subject=f"s{i // 2}",
                               trial=f"T{i}", condition="C4", mass_kg=70.0 + i, extra=extra))
    return specs


def ncalls(calls: Path, tid: str) -> int:
    return len(list(calls.glob(f"{tid}.*"))) if calls.is_dir() else 0


# ----------------------------------------------------------------------------- tests
def test_inline_build_failure_recorded_then_resumed(tmp_path):
    out, calls = tmp_path / "ds", tmp_path / "calls"
    specs = fake_specs(4, calls, fail=2)
    s = build_dataset(specs, out, jobs=0, config={"fake": 1}, process_fn=fake_process,
                      progress=False)
    assert isinstance(s, BuildSummary)
    assert (s.trials, s.done, s.skipped, s.failed) == (4, 3, 0, 1)
    assert s.frames == 36 and s.frames_id_valid == 30 and s.frames_so_valid == 24
    assert s.frames_labelled == 24
    assert s.seconds["so"] == {"sum": 6.0, "mean": 2.0, "trials": 3}
    assert list(s.seconds)[:3] == ["ik", "id", "so"]
    ds = Dataset(out)
    assert ds.trial_ids == ["s0_T0", "s0_T1", "s1_T3"]
    fail = json.loads((out / "failures" / "s1_T2.json").read_text())
    assert fail["step"] == "so" and "static optimization failed" in fail["error"]
    assert "Traceback" in fail["traceback"] and "fake_process" in fail["traceback"]
    info = ds.info
    assert info["corpus"] == "custom" and info["status"] == "incomplete"
    assert info["config"] == {"fake": 1} and info["trials"] == [x.trial_id for x in specs]
    assert info["failures"][0]["trial_id"] == "s1_T2" and info["summary"]["done"] == 3
    assert info["created"].endswith("+00:00") and "opensim" in info["versions"]
    assert (out / "work" / "s0_T0" / "fake_opensim_output.txt").is_file()
    assert (out / "work" / "s0_T0" / "trial.log").is_file()
    assert "s1_T2: FAILED at step so" in (out / "build.log").read_text()
    assert "| s1_T2 | so |" in s.to_markdown()

    # rerun: finished trials are skipped, the failed one is retried (and fails again)
    s2 = build_dataset(specs, out, jobs=0, config={"fake": 1}, process_fn=fake_process,
                       progress=False)
    assert (s2.done, s2.skipped, s2.failed) == (0, 3, 1)
    assert [ncalls(calls, x.trial_id) for x in specs] == [1, 1, 2, 1]
    # the cause is fixed: the retry succeeds and clears the failure record
    specs[2].extra.pop("fail")
    s3 = build_dataset(specs, out, jobs=0, config={"fake": 1}, process_fn=fake_process,
                       progress=False)
    assert (s3.done, s3.skipped, s3.failed) == (1, 3, 0)
    assert Dataset(out).failures() == [] and Dataset(out).info["status"] == "complete"
    assert Dataset(out).info["created"] == info["created"]


def test_other_config_or_corpus_refused_on_resume(tmp_path):
    out, calls = tmp_path / "ds", tmp_path / "calls"
    specs = fake_specs(1, calls)
    build_dataset(specs, out, jobs=0, config={"lowpass_hz": 6}, process_fn=fake_process,
                  progress=False)
    with pytest.raises(DatasetError, match="lowpass_hz") as ei:
        build_dataset(specs, out, jobs=0, config={"lowpass_hz": 8}, process_fn=fake_process,
                      progress=False)
    assert "dataset.json" in str(ei.value)
    info = json.loads((out / "dataset.json").read_text())
    info["corpus"] = "hamner2013"
    (out / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="corpus 'hamner2013'"):
        build_dataset(specs, out, jobs=0, config={"lowpass_hz": 6}, process_fn=fake_process,
                      progress=False)


def test_bad_arguments(tmp_path):
    specs = fake_specs(2, tmp_path / "calls")
    with pytest.raises(DatasetError, match="unknown corpus 'nope'"):
        build_dataset("nope", tmp_path / "a", process_fn=fake_process, progress=False)
    with pytest.raises(DatasetError, match="cannot be sent"):
        build_dataset(specs, tmp_path / "b", jobs=1, process_fn=lambda s, c, w: None,
                      progress=False)
    with pytest.raises(DatasetError, match="appears twice"):
        build_dataset(specs + specs[:1], tmp_path / "c", jobs=0, process_fn=fake_process,
                      progress=False)
    with pytest.raises(DatasetError, match="jobs"):
        build_dataset(specs, tmp_path / "d", jobs=-1, process_fn=fake_process, progress=False)
    # a process function that returns the wrong thing is a recorded failure, not a crash
    s = build_dataset(specs[:1], tmp_path / "e", jobs=0, config={},
                      process_fn=lambda spec, c, w: None, progress=False)
    assert s.failed == 1 and "not a TrialRecord" in s.failures[0]["error"]
    assert s.failures[0]["step"] == "write"


def test_limit_and_progress_bar(tmp_path, capsys):
    out, calls = tmp_path / "ds", tmp_path / "calls"
    s = build_dataset(fake_specs(5, calls), out, jobs=0, config={}, limit=2,
                      process_fn=fake_process, progress=True)
    assert s.trials == 2 and s.done == 2 and Dataset(out).trial_ids == ["s0_T0", "s0_T1"]
    err = capsys.readouterr().err
    assert "build custom" in err and "2/2" in err


def test_missing_inputs_fail_without_running(tmp_path, data_dir):
    """Real hamner2013 specs: subject20 has no model -> recorded as an 'inputs' failure."""
    from opensim_surrogate.reference.corpora import hamner2013

    calls = tmp_path / "calls"
    specs = [s for s in hamner2013(data_dir) if s.trial_id in
             ("subject19_Run_2", "subject20_Run_2")]
    for s in specs:
        s.extra["calls_dir"] = str(calls)
    out = tmp_path / "ds"
    summ = build_dataset(specs, out, jobs=0, config={}, process_fn=fake_process,
                         progress=False)
    assert (summ.done, summ.failed) == (1, 1)
    assert ncalls(calls, "subject20_Run_2") == 0 and ncalls(calls, "subject19_Run_2") == 1
    fail = json.loads((out / "failures" / "subject20_Run_2.json").read_text())
    assert fail["step"] == "inputs" and "subject20_adjusted_scaled.osim" in fail["error"]
    assert Dataset(out).info["corpus"] == "custom"
    assert Dataset(out).info["manifest"][1]["model_osim"].endswith(".osim")


def test_local_processes_isolate_a_crashing_trial(tmp_path):
    """jobs=2: each trial in a spawned process; a worker that dies fails only its trial."""
    out, calls = tmp_path / "ds", tmp_path / "calls"
    specs = fake_specs(4, calls, crash=1, fail=3)
    s = build_dataset(specs, out, jobs=2, config={"fake": 2}, process_fn=fake_process,
                      progress=False)
    assert (s.done, s.failed) == (2, 2)
    assert Dataset(out).trial_ids == ["s0_T0", "s1_T2"]
    crash = json.loads((out / "failures" / "s0_T1.json").read_text())
    assert crash["step"] == "worker" and "died abruptly" in crash["error"]
    assert json.loads((out / "failures" / "s1_T3.json").read_text())["step"] == "so"
    # each trial ran in its own process
    pids = {p.name.split(".")[1] for p in calls.iterdir()}
    assert len(pids) == 4 and str(os.getpid()) not in pids
    rec = read_trial(out, "s1_T2")
    pd.testing.assert_frame_equal(rec.forces, fake_record(specs[2]).forces, check_freq=False)


_KILL_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
from pathlib import Path
from test_build import fake_process, fake_specs
from opensim_surrogate.reference.build import build_dataset
specs = fake_specs(8, Path({calls!r}), sleep=(set(range(8)), 0.5))
build_dataset(specs, {out!r}, jobs=2, config={{"k": 1}}, process_fn=fake_process,
              progress=False)
"""


def test_kill_midway_then_resume_loses_nothing(tmp_path):
    """SIGKILL a build (and its workers) mid-way; the rerun computes only what is missing."""
    out, calls = tmp_path / "ds", tmp_path / "calls"
    script = _KILL_SCRIPT.format(here=str(HERE), calls=str(calls), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    specs = fake_specs(8, calls, sleep=(set(range(8)), 0.5))
    ids = [s.trial_id for s in specs]
    deadline = time.monotonic() + 60
    try:
        while sum(is_complete(out, t) for t in ids) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "build too slow"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the build and its worker processes
        proc.wait()
    time.sleep(0.2)
    done_at_kill = {t for t in ids if is_complete(out, t)}
    assert 3 <= len(done_at_kill) < len(ids)
    # whatever is visible is whole: complete trials read back, nothing half-written is listed
    for t in done_at_kill:
        assert not read_trial(out, t).kinematics.empty
    assert Dataset(out).info["status"] == "building"

    for s in specs:
        s.extra["sleep"] = 0.0
    summ = build_dataset(specs, out, jobs=0, config={"k": 1}, process_fn=fake_process,
                         progress=False)
    assert summ.skipped == len(done_at_kill) and summ.done == len(ids) - len(done_at_kill)
    assert summ.failed == 0
    for t in done_at_kill:
        assert ncalls(calls, t) == 1, t  # completed trials are never recomputed
    ds = Dataset(out)
    assert ds.trial_ids == ids and ds.info["status"] == "complete"
    assert not [p for p in (out / "trials").iterdir() if p.name.startswith(".")]
    for spec in specs:
        rec = ds.load(spec.trial_id)
        pd.testing.assert_frame_equal(rec.kinematics, fake_record(spec).kinematics,
                                      check_freq=False)


def test_dask_local_cluster(tmp_path):
    """The same build on a Dask LocalCluster (one worker process); one trial fails."""
    import cloudpickle
    import distributed

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    out, calls = tmp_path / "ds", tmp_path / "calls"
    specs = fake_specs(3, calls, fail=1)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        s = build_dataset(specs, out, config={"fake": 3}, scheduler=cluster,
                          process_fn=fake_process, progress=False)
        assert (s.done, s.failed) == (2, 1)
        s2 = build_dataset(specs, out, config={"fake": 3}, scheduler=cluster,
                           process_fn=fake_process, progress=False)
    assert (s2.skipped, s2.failed) == (2, 1)
    assert Dataset(out).trial_ids == ["s0_T0", "s1_T2"]
    assert json.loads((out / "failures" / "s0_T1.json").read_text())["step"] == "so"
    assert {p.name.split(".")[1] for p in calls.iterdir()} != {str(os.getpid())}
    assert [ncalls(calls, t.trial_id) for t in specs] == [1, 2, 1]


def _write_folder(root: Path) -> None:
    """A two-trial "folder" corpus (own OpenSim results) in the flat layout."""
    root.mkdir()
    (root / "subjects.csv").write_text("subject,mass_kg\nP1,70\n")
    t = np.arange(10) / 100
    for trial in ("P1_walk1", "P1_walk2"):
        ik = "\n".join(f"{x:.2f}\t{10 * x:.4f}\t0.9" for x in t)
        (root / f"{trial}_ik.mot").write_text(
            "ik\nversion=1\ninDegrees=yes\nendheader\ntime\thip_flexion_r\tpelvis_ty\n"
            + ik + "\n")
        idd = "\n".join(f"{x:.2f}\t{x:.4f}" for x in t[2:8])
        (root / f"{trial}_id.sto").write_text(
            "id\nversion=1\ninDegrees=no\nendheader\ntime\thip_flexion_r_moment\n" + idd + "\n")


def test_folder_corpus_build(tmp_path):
    root = tmp_path / "lab"
    _write_folder(root)
    s = build_dataset(root, tmp_path / "ds", jobs=2, progress=False)
    assert (s.corpus, s.done, s.failed, s.frames, s.frames_id_valid) == ("folder", 2, 0, 20, 12)
    ds = Dataset(tmp_path / "ds")
    assert ds.info["source"] == str(root.resolve()) and ds.trial_ids == ["P1_walk1", "P1_walk2"]
    rec = ds.load("P1_walk1")
    assert rec.kinematics["hip_flexion_r"].iloc[5] == pytest.approx(np.deg2rad(0.5))


# ----------------------------------------------------------------------------- CLI
def test_cli_help_and_bad_corpus(tmp_path, capsys):
    with pytest.raises(SystemExit) as ei:
        main(["build-dataset", "--help"])
    assert ei.value.code == 0
    help_text = capsys.readouterr().out
    for word in ("CORPUS", "--out", "--jobs", "--scheduler", "--limit", "--data",
                 "schreiber2019", "hamner2013"):
        assert word in help_text
    assert main(["build-dataset", "walking2020", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown corpus 'walking2020'" in err[0]
    assert not (tmp_path / "x").exists()
    (tmp_path / "file.txt").write_text("not a folder")
    assert main(["build-dataset", str(tmp_path / "file.txt"), "--out",
                 str(tmp_path / "y")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_cli_builds_a_folder_corpus(tmp_path, capsys):
    root = tmp_path / "lab"
    _write_folder(root)
    rc = main(["build-dataset", str(root), "--out", str(tmp_path / "ds"), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "## Dataset build: folder" in out and "2 computed" in out
    rc = main(["build-dataset", str(root), "--out", str(tmp_path / "ds"), "--no-progress"])
    assert rc == 0 and "2 already done" in capsys.readouterr().out
