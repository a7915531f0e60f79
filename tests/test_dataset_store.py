"""Dataset schema: atomic trial writes, completeness, failures, round trip."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from opensim_surrogate.dataset.store import (Dataset, TrialRecord, is_complete, read_trial,
                                             record_failure, write_info, write_trial)
from opensim_surrogate.errors import DatasetError


def _record(tid="s1_T1", n=20):
    t = pd.Index(np.arange(n) / 100.0, name="time")
    rng = np.random.default_rng(0)
    df = lambda cols: pd.DataFrame(rng.normal(size=(n, len(cols))), index=t, columns=cols)
    mask = pd.DataFrame({"id_valid": np.arange(n) > 2, "so_valid": np.arange(n) > 4}, index=t)
    return TrialRecord(trial_id=tid, subject="s1", trial="T1", condition="C4", mass_kg=70.0,
                       model_family="rajagopal", kinematics=df(["hip_flexion_r", "knee_angle_r"]),
                       moments=df(["hip_flexion_r_moment"]), forces=df(["glmax1_r"]),
                       activations=df(["glmax1_r"]), mask=mask,
                       events={"heel_strike_r": [0.01]}, cycles=[{"leg": "r", "start": 0.0,
                                                                   "end": 0.19}],
                       extras={"seconds": {"so": 1.5}})


def test_round_trip(tmp_path):
    rec = _record()
    write_info(tmp_path, {"corpus": "test"})
    write_trial(tmp_path, rec)
    ds = Dataset(tmp_path)
    assert ds.trial_ids == ["s1_T1"]
    back = ds.load("s1_T1")
    pd.testing.assert_frame_equal(back.kinematics, rec.kinematics, check_freq=False)
    assert back.mask["so_valid"].dtype == bool
    assert back.events == rec.events and back.extras == rec.extras
    assert len(ds.fingerprint()) == 64


def test_incomplete_trial_is_not_listed(tmp_path):
    write_info(tmp_path, {"corpus": "test"})
    (tmp_path / "trials" / "half").mkdir(parents=True)
    assert Dataset(tmp_path).trial_ids == []
    assert not is_complete(tmp_path, "half")
    with pytest.raises(DatasetError, match="half"):
        read_trial(tmp_path, "half")


def test_failure_recorded_then_cleared(tmp_path):
    write_info(tmp_path, {"corpus": "test"})
    record_failure(tmp_path, "s1_T1", "boom")
    assert Dataset(tmp_path).failures()[0]["error"] == "boom"
    write_trial(tmp_path, _record())
    assert Dataset(tmp_path).failures() == []


def test_wrong_schema_version_refused(tmp_path):
    (tmp_path / "dataset.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(DatasetError, match="schema version"):
        Dataset(tmp_path)


def test_tables_with_opensim_headers_in_attrs_are_written(tmp_path):
    """read_table puts a TableHeader in DataFrame.attrs; pandas would try to JSON it into the
    parquet metadata. The store writes such tables (regression: a smoke build failed)."""
    from opensim_surrogate.io.tables import TableHeader

    rec = _record()
    rec.kinematics.attrs["opensim_header"] = TableHeader(name="ik", version=1, in_degrees=False,
                                                         kind="mot")
    write_info(tmp_path, {"corpus": "test"})
    write_trial(tmp_path, rec)
    back = read_trial(tmp_path, rec.trial_id)
    assert back.kinematics.attrs == {}
    pd.testing.assert_frame_equal(back.kinematics, rec.kinematics, check_freq=False)
