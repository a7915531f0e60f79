"""Left/right mirroring of trial records: names swapped, listed signs flipped, involution."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opensim_surrogate.dataset.mirror import (MIRROR_SIGN_FLIPS, mirror_frame, mirror_name,
                                              mirror_record, sign_flipped)
from opensim_surrogate.dataset.store import TrialRecord

COORDS = ["pelvis_tilt", "pelvis_list", "pelvis_rotation", "pelvis_tx", "pelvis_ty",
          "pelvis_tz", "hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r",
          "knee_angle_r_beta", "ankle_angle_r", "hip_flexion_l", "hip_adduction_l",
          "hip_rotation_l", "knee_angle_l", "knee_angle_l_beta", "ankle_angle_l",
          "lumbar_extension", "lumbar_bending", "lumbar_rotation", "arm_add_r", "arm_add_l"]
MOMENTS = [f"{c}_force" if c.startswith("pelvis_t") else f"{c}_moment" for c in COORDS]
MUSCLES = ["glmax1_r", "glmax1_l", "addmagDist_r", "addmagDist_l", "recfem_r", "recfem_l"]
ACTUATORS = ["pelvis_list_residual", "pelvis_tx_residual", "reserve_hip_flexion_r",
             "reserve_hip_flexion_l", "lumbar_rotation_reserve", "lumbar_bend", "lumbar_ext",
             "my_act"]


def make_record(n: int = 15, seed: int = 0) -> TrialRecord:
    rng = np.random.default_rng(seed)
    t = pd.Index(np.arange(n) / 100.0, name="time")
    frame = lambda cols: pd.DataFrame(rng.normal(size=(n, len(cols))), index=t,  # noqa
                                      columns=cols)
    mask = pd.DataFrame({"id_valid": rng.random(n) > 0.3, "so_valid": rng.random(n) > 0.5},
                        index=t)
    return TrialRecord(
        trial_id="S1_T1", subject="S1", trial="T1", condition="comfortable", mass_kg=70.0,
        model_family="rajagopal", kinematics=frame(COORDS), moments=frame(MOMENTS),
        forces=frame(MUSCLES).abs(), activations=frame(MUSCLES).abs().clip(0, 1),
        actuators=frame(ACTUATORS), mask=mask,
        events={"heel_strike_l": [0.01, 0.12], "toe_off_l": [0.08], "heel_strike_r": [0.06]},
        cycles=[{"leg": "l", "start": 0.01, "end": 0.12, "labelled_fraction": 0.8}],
        extras={"seconds": {"so": 1.0}})


def assert_records_equal(a: TrialRecord, b: TrialRecord) -> None:
    for k in ("kinematics", "moments", "forces", "activations", "actuators", "mask"):
        pd.testing.assert_frame_equal(getattr(a, k), getattr(b, k), check_exact=True)
    assert a.meta() == b.meta()


def test_mirror_is_an_involution():
    rec = make_record()
    once = mirror_record(rec)
    assert once.extras["mirrored"] is True and "mirrored" not in rec.extras
    twice = mirror_record(once)
    assert_records_equal(twice, rec)


def test_names_swapped_and_listed_signs_flipped_exactly():
    rec = make_record()
    m = mirror_record(rec)
    assert list(m.kinematics.columns) == COORDS  # same layout, values from the other side
    flipped_k = []
    for c in COORDS:
        src = rec.kinematics[mirror_name(c)]
        if c in MIRROR_SIGN_FLIPS:
            flipped_k.append(c)
            np.testing.assert_array_equal(m.kinematics[c], -src)
        else:
            np.testing.assert_array_equal(m.kinematics[c], src)
    assert sorted(flipped_k) == sorted(MIRROR_SIGN_FLIPS)
    np.testing.assert_array_equal(m.kinematics["hip_adduction_r"],
                                  rec.kinematics["hip_adduction_l"])  # legs keep their sign
    np.testing.assert_array_equal(m.kinematics["knee_angle_l_beta"],
                                  rec.kinematics["knee_angle_r_beta"])
    flipped_m = [c for c in MOMENTS if not np.array_equal(m.moments[c],
                                                          rec.moments[mirror_name(c)])]
    assert sorted(flipped_m) == sorted(["pelvis_list_moment", "pelvis_rotation_moment",
                                        "pelvis_tz_force", "lumbar_bending_moment",
                                        "lumbar_rotation_moment"])
    for c in flipped_m:
        np.testing.assert_array_equal(m.moments[c], -rec.moments[c])
    np.testing.assert_array_equal(m.forces["glmax1_r"], rec.forces["glmax1_l"])
    np.testing.assert_array_equal(m.activations["recfem_l"], rec.activations["recfem_r"])
    assert (m.forces.to_numpy() >= 0).all()
    np.testing.assert_array_equal(m.actuators["pelvis_list_residual"],
                                  -rec.actuators["pelvis_list_residual"])
    np.testing.assert_array_equal(m.actuators["lumbar_rotation_reserve"],
                                  -rec.actuators["lumbar_rotation_reserve"])
    np.testing.assert_array_equal(m.actuators["pelvis_tx_residual"],
                                  rec.actuators["pelvis_tx_residual"])
    # the Rajagopal model's own torso actuators are named lumbar_bend / lumbar_ext
    np.testing.assert_array_equal(m.actuators["lumbar_bend"], -rec.actuators["lumbar_bend"])
    np.testing.assert_array_equal(m.actuators["lumbar_ext"], rec.actuators["lumbar_ext"])
    np.testing.assert_array_equal(m.actuators["my_act"], rec.actuators["my_act"])
    # ... and a record can say which coordinate its other actuators drive
    rec.extras["actuator_coordinates"] = {"my_act": "pelvis_rotation"}
    m2 = mirror_record(rec)
    np.testing.assert_array_equal(m2.actuators["my_act"], -rec.actuators["my_act"])
    assert_records_equal(mirror_record(m2), rec)
    rec.extras.pop("actuator_coordinates")
    np.testing.assert_array_equal(m.actuators["reserve_hip_flexion_r"],
                                  rec.actuators["reserve_hip_flexion_l"])
    pd.testing.assert_frame_equal(m.mask, rec.mask)  # validity does not change
    assert m.events == {"heel_strike_r": [0.01, 0.12], "toe_off_r": [0.08],
                        "heel_strike_l": [0.06]}
    assert m.cycles == [{"leg": "r", "start": 0.01, "end": 0.12, "labelled_fraction": 0.8}]
    assert (m.trial_id, m.mass_kg, m.extras["seconds"]) == ("S1_T1", 70.0, {"so": 1.0})
    # the input is untouched
    assert rec.cycles[0]["leg"] == "l" and "heel_strike_l" in rec.events


def test_mirror_name_and_sign_rules():
    assert mirror_name("hip_flexion_r_moment") == "hip_flexion_l_moment"
    assert mirror_name("knee_angle_l_beta_moment") == "knee_angle_r_beta_moment"
    assert mirror_name("glut_max1_r") == "glut_max1_l"
    assert mirror_name("pelvis_tilt") == "pelvis_tilt" and mirror_name("id_valid") == "id_valid"
    assert mirror_name("heel_strike_r") == "heel_strike_l"
    assert sign_flipped("pelvis_list", "kinematics") and sign_flipped("pelvis_list_u",
                                                                       "kinematics")
    assert sign_flipped("pelvis_tz_force", "moments")
    assert not sign_flipped("pelvis_tilt_moment", "moments")
    assert not sign_flipped("pelvis_list", "forces")
    assert not sign_flipped("hip_adduction_r", "kinematics")
    with pytest.raises(ValueError, match="unknown table kind"):
        mirror_frame(pd.DataFrame(), "grf")


def test_mirror_frame_one_sided_columns():
    df = pd.DataFrame({"hip_flexion_r": [1.0, 2.0], "pelvis_list": [0.5, -0.5]})
    m = mirror_frame(df, "kinematics")
    assert list(m.columns) == ["hip_flexion_l", "pelvis_list"]
    assert m["pelvis_list"].tolist() == [-0.5, 0.5]
    pd.testing.assert_frame_equal(mirror_frame(m, "kinematics"), df)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(COORDS), min_size=1, max_size=10, unique=True),
       st.integers(min_value=1, max_value=6))
def test_mirror_frame_involution_property(cols, n):
    rng = np.random.default_rng(n)
    df = pd.DataFrame(rng.normal(size=(n, len(cols))), columns=cols)
    for kind in ("kinematics", "actuators", "forces"):
        pd.testing.assert_frame_equal(mirror_frame(mirror_frame(df, kind), kind), df,
                                      check_exact=True)
    m = mirror_frame(df, "kinematics")
    for c in m.columns:
        sign = -1.0 if c in MIRROR_SIGN_FLIPS else 1.0
        np.testing.assert_array_equal(m[c].to_numpy(), sign * df[mirror_name(c)].to_numpy())
