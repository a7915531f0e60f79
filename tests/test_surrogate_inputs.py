"""surrogate.inputs: reading, checking, units, filtering and resampling of user kinematics.

Checked on real shared IK files; the low-pass filter is compared with OpenSim's own.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import opensim
import pandas as pd
import pytest

from opensim_surrogate.errors import InputError, MissingFileError, TableValueError, TimeColumnError
from opensim_surrogate.io.tables import read_table
from opensim_surrogate.osim.model import read_model
from opensim_surrogate.paths import data_root
from opensim_surrogate.surrogate.inputs import (
    LOW_RATE_HZ,
    lowpass,
    prepare_trial,
    read_kinematics,
    resample,
    select_coordinates,
    to_times,
    uniform_grid,
)

opensim.Logger.setLevelString("error")

DATA = data_root()
WALK = DATA / "schreiber2019" / "2014001" / "ik" / "C4_05" / "C4_05_ik.mot"  # degrees, 100 Hz
RUN = DATA / "hamner2013" / "subject01" / "ik" / "Run_2.mot"  # SIMM header, no inDegrees
RAJ = DATA / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim"
REQUIRED = ["pelvis_tilt", "pelvis_list", "pelvis_rotation", "pelvis_tx", "pelvis_ty",
            "pelvis_tz", "hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r",
            "ankle_angle_r", "hip_flexion_l", "hip_adduction_l", "hip_rotation_l",
            "knee_angle_l", "ankle_angle_l"]
OPTIONAL = ["lumbar_extension", "lumbar_bending", "lumbar_rotation"]


@pytest.fixture(scope="module")
def raj_model():
    return read_model(RAJ)


@pytest.fixture(scope="module")
def walk_radians() -> pd.DataFrame:
    df = read_table(WALK)
    rot = [c for c in df.columns if c not in ("pelvis_tx", "pelvis_ty", "pelvis_tz")]
    out = df.copy()
    out[rot] = np.deg2rad(out[rot].to_numpy())
    out.attrs = {}
    return out


def _prep(trial, **kw):
    kw.setdefault("required", REQUIRED)
    kw.setdefault("optional", OPTIONAL)
    return prepare_trial(trial, **kw)


# ------------------------------------------------------------------ filter = OpenSim's
def test_lowpass_matches_opensim_tab_op_lowpass_filter():
    rng = np.random.default_rng(1)
    n, fs = 137, 100.0
    t = np.arange(n) / fs
    x = np.sin(2 * np.pi * 1.3 * t) + 0.4 * np.sin(2 * np.pi * 11 * t) + 0.05 * rng.standard_normal(n) + t
    tab = opensim.TimeSeriesTable()
    tab.setColumnLabels(["a"])
    for i in range(n):
        tab.appendRow(float(t[i]), opensim.RowVector([float(x[i])]))
    opensim.TableUtilities.filterLowpass(tab, 6.0, True)
    tt = np.asarray(tab.getIndependentColumn())
    y = tab.getDependentColumn("a").to_numpy()
    k = int(np.argmin(np.abs(tt)))
    ref = y[k:k + n]
    ours = lowpass(x, fs, 6.0)
    assert np.max(np.abs(ours - ref)) < 1e-5
    # and it does filter: the 11 Hz component is gone
    assert np.std(ours - (np.sin(2 * np.pi * 1.3 * t) + t)) < 0.05


def test_resample_is_exact_on_coinciding_times_and_cubic_between():
    t = np.linspace(0, 1, 21)
    v = np.stack([t ** 3, np.sin(t)], axis=1)
    assert np.array_equal(resample(t, v, t), v)
    tn = np.linspace(0, 1, 101)
    out = resample(t, v, tn)
    assert np.allclose(out[:, 0], tn ** 3, atol=1e-12)  # cubic reproduced exactly
    assert np.allclose(out[:, 1], np.sin(tn), atol=1e-5)
    g = uniform_grid(0.14, 0.66, 100.0)
    assert g[0] == 0.14 and g[-1] >= 0.66 - 1e-9 and np.allclose(np.diff(g), 0.01)
    df = pd.DataFrame({"a": np.arange(g.size, dtype=float)}, index=g)
    back = to_times(df, g[::3])
    assert np.allclose(back["a"].to_numpy(), np.arange(g.size)[::3])


# ------------------------------------------------------------------ reading
def test_file_in_degrees_is_converted_with_the_models_rotational_coordinates(raj_model):
    ti = read_kinematics(WALK)
    assert ti.in_degrees is True and ti.name == "C4_05_ik" and ti.source == WALK
    df, unit, warnings, missing = select_coordinates(ti, REQUIRED, OPTIONAL, model=raj_model)
    raw = read_table(WALK)
    assert unit is True and not warnings and not missing
    assert np.allclose(df["knee_angle_r"], np.deg2rad(raw["knee_angle_r"]))
    assert np.allclose(df["pelvis_ty"], raw["pelvis_ty"])  # translations untouched
    assert list(df.columns) == REQUIRED + OPTIONAL


def test_simm_file_without_in_degrees_is_read_as_degrees_like_opensim():
    p = _prep(RUN, lowpass_hz=None)
    assert p.in_degrees is True
    assert not any("units" in w for w in p.warnings)  # OpenSim assumes degrees too
    assert 0.5 < p.kinematics["knee_angle_r"].abs().max() < 3.0  # radians now


def test_dataframe_units_inferred_with_a_warning_or_stated(walk_radians):
    deg = walk_radians.copy()
    rot = [c for c in deg.columns if c not in ("pelvis_tx", "pelvis_ty", "pelvis_tz")]
    deg[rot] = np.rad2deg(deg[rot].to_numpy())
    p_inf = _prep(deg)
    assert p_inf.in_degrees is True
    assert any("inferred degrees" in w for w in p_inf.warnings)
    p_rad = _prep(walk_radians, in_degrees=False)
    assert p_rad.in_degrees is False and not any("unit" in w for w in p_rad.warnings)
    assert np.allclose(p_inf.kinematics.to_numpy(), p_rad.kinematics.to_numpy(), atol=1e-10)
    p_rad2 = _prep(walk_radians)  # inferred radians, with a warning
    assert p_rad2.in_degrees is False and any("inferred radians" in w for w in p_rad2.warnings)
    # a stated unit that contradicts the magnitudes is used but flagged
    p_bad = _prep(deg, in_degrees=False)
    assert any("look like degrees" in w for w in p_bad.warnings)


def test_time_column_and_path_labels_of_a_dataframe(walk_radians):
    df = walk_radians.reset_index()  # 'time' column
    df = df.rename(columns={"hip_flexion_r": "/jointset/hip_r/hip_flexion_r/value"})
    p = _prep(df, in_degrees=False)
    assert np.allclose(p.times, walk_radians.index.to_numpy())
    assert "hip_flexion_r" in p.kinematics.columns


def test_extra_and_missing_optional_columns(walk_radians):
    df = walk_radians.drop(columns=["lumbar_bending"]).assign(marker_x=1.0, extra_angle=0.3)
    p = _prep(df, in_degrees=False)
    assert p.missing_optional == ["lumbar_bending"]
    assert "marker_x" not in p.kinematics.columns and "extra_angle" not in p.kinematics.columns


# ------------------------------------------------------------------ bad input
def test_missing_required_coordinates_are_all_named(walk_radians):
    df = walk_radians.drop(columns=["knee_angle_l", "ankle_angle_r"])
    with pytest.raises(InputError) as ei:
        _prep(df, in_degrees=False)
    msg = str(ei.value)
    assert "knee_angle_l" in msg and "ankle_angle_r" in msg and "missing required" in msg


def test_nan_is_named_with_column_and_time(walk_radians):
    df = walk_radians.copy()
    df.iloc[7, df.columns.get_loc("hip_flexion_l")] = np.nan
    with pytest.raises(TableValueError) as ei:
        _prep(df, in_degrees=False)
    assert ei.value.column == "hip_flexion_l"
    assert f"{df.index[7]:.6g}" in str(ei.value) and "nan" in str(ei.value).lower()


def test_nan_in_an_unused_column_is_ignored(walk_radians):
    df = walk_radians.assign(junk=np.nan)
    assert _prep(df, in_degrees=False).kinematics.notna().all().all()


@pytest.mark.parametrize("mutate,what", [
    (lambda t: np.r_[t[:10], t[9], t[11:]], "does not strictly increase"),
    (lambda t: t[::-1], "does not strictly increase"),
    (lambda t: np.r_[t[:5], np.nan, t[6:]], "time at row 6"),
])
def test_bad_time_column(walk_radians, mutate, what):
    df = walk_radians.copy()
    df.index = mutate(df.index.to_numpy())
    with pytest.raises(TimeColumnError) as ei:
        _prep(df, in_degrees=False)
    assert what in str(ei.value) and ei.value.column == "time"


def test_bad_time_in_a_file_names_the_line(tmp_path):
    lines = WALK.read_text().splitlines()
    end = lines.index("endheader")
    a, b = lines[end + 3], lines[end + 4]
    lines[end + 3], lines[end + 4] = b, a  # swap two rows
    bad = tmp_path / "swapped.mot"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(TimeColumnError) as ei:
        _prep(bad)
    assert ei.value.path == bad and ei.value.line is not None


def test_missing_file_and_no_time():
    with pytest.raises(MissingFileError):
        _prep(Path("/nonexistent/trial.mot"))
    with pytest.raises(InputError, match="no time"):
        _prep(pd.DataFrame({c: [0.0] * 40 for c in REQUIRED}))


def test_shortest_trial_is_0_3_s(walk_radians):
    ok = walk_radians.iloc[:31]  # 0.30 s
    p = _prep(ok, in_degrees=False)
    assert p.kinematics.shape[0] == 31
    assert any("very short trial" in w for w in p.warnings)
    with pytest.raises(InputError, match="at least 0.3 s"):
        _prep(walk_radians.iloc[:30], in_degrees=False)  # 0.29 s


# ------------------------------------------------------------------ rates
def _at_rate(df: pd.DataFrame, rate: float) -> pd.DataFrame:
    t = df.index.to_numpy()
    tn = np.arange(t[0], t[-1] + 1e-9, 1.0 / rate)
    return pd.DataFrame(resample(t, df.to_numpy(), tn), index=tn, columns=df.columns)


@pytest.mark.parametrize("rate", [1000.0, 250.0, 60.0, 30.0])
def test_any_rate_is_resampled_to_100_hz_and_returned_at_input_times(walk_radians, rate):
    ref = _prep(walk_radians, in_degrees=False)
    df = _at_rate(walk_radians, rate)
    p = _prep(df, in_degrees=False)
    assert np.allclose(p.times, df.index.to_numpy())
    assert p.input_rate_hz == pytest.approx(rate, rel=1e-6)
    assert np.allclose(np.diff(p.kinematics.index), 0.01)
    assert p.kinematics.index[0] == pytest.approx(df.index[0])
    n = min(len(ref.kinematics), len(p.kinematics))
    err = np.abs(p.kinematics.iloc[:n].to_numpy() - ref.kinematics.iloc[:n].to_numpy())
    # knee/hip angles within a degree of the 100 Hz route (low rates lose some detail)
    tol = math.radians(1.0) if rate >= 60 else math.radians(3.0)
    assert np.max(err[:, :-3][:, 6:]) < tol
    low = any("extrapolated rate" in w for w in p.warnings)
    assert low == (rate < LOW_RATE_HZ)


def test_non_uniform_time_stamps(walk_radians):
    rng = np.random.default_rng(3)
    t = walk_radians.index.to_numpy()
    tj = t + np.r_[0, rng.uniform(-0.002, 0.002, t.size - 2), 0]
    df = pd.DataFrame(resample(t, walk_radians.to_numpy(), tj), index=tj,
                      columns=walk_radians.columns)
    p = _prep(df, in_degrees=False)
    assert np.allclose(p.times, tj) and np.allclose(np.diff(p.kinematics.index), 0.01)


def test_time_range_selects_output_frames(walk_radians):
    t = walk_radians.index.to_numpy()
    p = _prep(walk_radians, in_degrees=False, time_range=(t[5], t[20]))
    assert np.allclose(p.times, t[5:21])
    assert len(p.kinematics) >= len(t)  # the whole trial is still used
    with pytest.raises(InputError, match="contains no frame"):
        _prep(walk_radians, in_degrees=False, time_range=(10.0, 11.0))


def test_lowpass_is_applied_once_and_can_be_switched_off(walk_radians):
    filt = _prep(walk_radians, in_degrees=False)
    raw = _prep(walk_radians, in_degrees=False, lowpass_hz=None)
    assert filt.lowpass_hz == 6.0 and raw.lowpass_hz is None
    assert np.allclose(raw.kinematics.to_numpy(), walk_radians[REQUIRED + OPTIONAL].to_numpy())
    d = np.abs(filt.kinematics.to_numpy() - raw.kinematics.to_numpy()).max()
    assert 0 < d < math.radians(5)
