"""osim.conventions on the real shared models, checked against OpenSim's own kinematics."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lxml import etree

from opensim_surrogate.errors import ConventionError
from opensim_surrogate.osim import (
    LOWER_LIMB_COORDINATES,
    SUPPORTED_FAMILIES,
    ModelConventions,
    conventions_for,
    read_model,
    supported_families_markdown,
)
from opensim_surrogate.osim.conventions import REFERENCE, coordinate_of_column
from opensim_surrogate.paths import data_root

ROOT = data_root()
UHLRICH = ROOT / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim"
HAMNER_MODELS = sorted(ROOT.glob("hamner2013/*/model/*_adjusted_scaled.osim"))
SCHREIBER_MODELS = sorted(ROOT.glob("schreiber2019/*/scaling/*_scaledModelAdjusted.osim"))
RAJAGOPAL_MODELS = [UHLRICH, *SCHREIBER_MODELS]
HAMNER = HAMNER_MODELS[0]


def _id(p: Path) -> str:
    return p.relative_to(ROOT).parts[1] if p != UHLRICH else "uhlrich2022"


@lru_cache(maxsize=None)
def conv_of(path: str) -> ModelConventions:
    return conventions_for(path)


def test_shared_model_sets_present():
    assert len(HAMNER_MODELS) >= 9 and len(SCHREIBER_MODELS) >= 18


# ----------------------------------------------------------------- families on real models
@pytest.mark.parametrize("path", RAJAGOPAL_MODELS, ids=_id)
def test_rajagopal_family_is_canonical(path: Path):
    conv = conv_of(str(path))
    assert conv.family == "rajagopal"
    assert conv.missing == ()
    assert set(conv.conventions) == set(LOWER_LIMB_COORDINATES)
    assert conv.is_canonical() and set(conv.signs().values()) == {1}
    for name, c in conv.conventions.items():
        assert (c.sign, c.source) == (SUPPORTED_FAMILIES["rajagopal"][name].sign,
                                      SUPPORTED_FAMILIES["rajagopal"][name].how), name


@pytest.mark.parametrize("path", HAMNER_MODELS, ids=_id)
def test_gait2392_family_signs(path: Path):
    conv = conv_of(str(path))
    assert conv.family == "gait2392"
    assert conv.sign("knee_angle_r") == conv.sign("knee_angle_l") == -1
    assert conv.conventions["knee_angle_r"].source == "range+axis"  # both kinds of evidence agree
    assert conv.sign("hip_flexion_r") == conv.sign("ankle_angle_l") == 1
    for name, c in conv.conventions.items():
        assert (c.sign, c.source) == (SUPPORTED_FAMILIES["gait2392"][name].sign,
                                      SUPPORTED_FAMILIES["gait2392"][name].how), name
    # the flipped set, exactly: knee (range + axis) and mtp (axis)
    assert {k for k, s in conv.signs().items() if s < 0} == {
        "knee_angle_r", "knee_angle_l", "mtp_angle_r", "mtp_angle_l"}


def test_reference_table_matches_the_reference_model():
    info = read_model(UHLRICH)
    for name, ref in REFERENCE.items():
        j = info.joint_of(name)
        c = info.coordinate(name)
        assert j.parent_body == ref.parent_body and c.motion_type == ref.motion_type, name
        ax = [a for a in j.axes if name in a.coordinates and a.unit_linear][0]
        v = j.axis_in_parent_body(ax) * ax.slope_sign
        np.testing.assert_allclose(v, ref.axis, atol=1e-3, err_msg=name)
        np.testing.assert_allclose(c.range, ref.range, atol=1e-3, err_msg=name)


def test_supported_families_table_and_markdown():
    assert set(SUPPORTED_FAMILIES) == {"rajagopal", "gait2392"}
    for fam in SUPPORTED_FAMILIES.values():
        assert set(fam) == set(LOWER_LIMB_COORDINATES)
        assert all(e.sign in (1, -1) and e.how in ("axis", "range", "range+axis")
                   for e in fam.values())
    md = supported_families_markdown()
    lines = md.splitlines()
    assert lines[0].startswith("| coordinate |") and lines[1].startswith("|---")
    rows = {ln.split("|")[1].strip(" `"): ln for ln in lines[2:] if ln.startswith("| `")}
    assert set(rows) == set(LOWER_LIMB_COORDINATES)
    assert "knee flexion" in rows["knee_angle_r"]
    assert rows["knee_angle_r"].rstrip(" |").endswith("**-1** (range+axis)")
    assert rows["hip_flexion_r"].rstrip(" |").endswith("+1 (axis)")


# ----------------------------------------------------------------- undeterminable / contradictory
def _hamner_copy(tmp_path: Path, name: str, edit) -> Path:
    tree = etree.parse(str(HAMNER), etree.XMLParser(remove_comments=True, resolve_entities=False))
    edit(tree)
    p = tmp_path / name
    tree.write(str(p))
    return p


def _knee_rot1(tree):
    return tree.xpath('//CustomJoint[@name="knee_r"]/SpatialTransform/TransformAxis[@name="rotation1"]')[0]


def _symmetric_range(tree):
    tree.xpath('//Coordinate[@name="knee_angle_r"]/range')[0].text = "-1.5 1.5"


def _axis_perpendicular(tree):
    _symmetric_range(tree)
    _knee_rot1(tree).find("axis").text = "1 0 0"


def _axis_removed(tree):
    # knee_angle_r then only drives the (spline) translations: a coupled coordinate with no
    # rotation axis at all
    _symmetric_range(tree)
    ax = _knee_rot1(tree)
    ax.find("coordinates").text = ""
    fn = ax.find("LinearFunction")
    ax.replace(fn, etree.fromstring('<Constant name="function"><value>0</value></Constant>'))


@pytest.mark.parametrize("edit", [_axis_perpendicular, _axis_removed], ids=["altered", "removed"])
def test_ambiguous_coordinate_is_an_error_naming_it(tmp_path, edit):
    p = _hamner_copy(tmp_path, "ambiguous.osim", edit)
    with pytest.raises(ConventionError) as exc:
        conventions_for(p)
    msg = str(exc.value)
    assert "knee_angle_r" in msg and "ambiguous.osim" in msg
    assert "knee_angle_l" not in msg  # only the ambiguous coordinate is blamed
    assert "overrides" in msg  # the hint says how to state the sign
    # stating it explicitly works, and is recorded as such
    conv = conventions_for(p, overrides={"knee_angle_r": -1})
    assert conv.conventions["knee_angle_r"].source == "override"
    assert conv.sign("knee_angle_r") == -1 and conv.sign("knee_angle_l") == -1


def test_contradictory_evidence_is_an_error(tmp_path):
    # knee range still negative (-160°..10°) but the rotation axis reversed: range says -1,
    # axis says +1
    p = _hamner_copy(tmp_path, "contra.osim",
                     lambda t: setattr(_knee_rot1(t).find("axis"), "text", "0 0 -1"))
    with pytest.raises(ConventionError, match="knee_angle_r.*contradictory"):
        conventions_for(p)


def test_flipped_axis_with_symmetric_range_follows_the_axis(tmp_path):
    def edit(tree):
        _symmetric_range(tree)
        _knee_rot1(tree).find("axis").text = "0 0 -1"
    conv = conventions_for(_hamner_copy(tmp_path, "flip.osim", edit))
    assert conv.conventions["knee_angle_r"].sign == 1
    assert conv.conventions["knee_angle_r"].source == "axis"


def test_bad_overrides_are_refused():
    with pytest.raises(ConventionError):
        conventions_for(HAMNER, overrides={"knee_angle_r": 0})
    with pytest.raises(ConventionError):
        conventions_for(HAMNER, overrides={"elbow_flex_r": -1})


# ----------------------------------------------------------------- mapping data
def _kinematics(cols: list[str], n: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(n, len(cols))) * 30.0, columns=cols)
    df.insert(0, "time", np.arange(n) / 100.0)
    return df


def test_to_canonical_flips_only_lower_limb_columns_and_round_trips():
    conv = conv_of(str(HAMNER))
    cols = list(LOWER_LIMB_COORDINATES) + ["arm_flex_r", "elbow_flex_l",
                                           "/jointset/knee_l/knee_angle_l/speed"]
    cols.remove("knee_angle_l")
    df = _kinematics(cols)
    can = conv.to_canonical(df)
    assert list(can.columns) == list(df.columns)
    for c in df.columns:
        coord = coordinate_of_column(c)
        factor = conv.sign(coord) if coord else 1
        np.testing.assert_array_equal(can[c].to_numpy(), factor * df[c].to_numpy(), err_msg=c)
    assert (can["knee_angle_r"] == -df["knee_angle_r"]).all()
    assert (can["/jointset/knee_l/knee_angle_l/speed"] == -df["/jointset/knee_l/knee_angle_l/speed"]).all()
    assert (can["time"] == df["time"]).all() and (can["arm_flex_r"] == df["arm_flex_r"]).all()
    pd.testing.assert_frame_equal(conv.from_canonical(can), df)
    # the input is not modified
    assert (df["knee_angle_r"] != can["knee_angle_r"]).all()


def test_moments_flip_with_their_coordinate_and_round_trip():
    conv = conv_of(str(HAMNER))
    cols = ["knee_angle_r_moment", "hip_flexion_r_moment", "pelvis_tx_force",
            "mtp_angle_l_moment", "elbow_flex_r_moment"]
    df = _kinematics(cols)
    can = conv.moments_to_canonical(df)
    assert (can["knee_angle_r_moment"] == -df["knee_angle_r_moment"]).all()
    assert (can["mtp_angle_l_moment"] == -df["mtp_angle_l_moment"]).all()
    for c in ("hip_flexion_r_moment", "pelvis_tx_force", "elbow_flex_r_moment", "time"):
        assert (can[c] == df[c]).all(), c
    pd.testing.assert_frame_equal(conv.moments_from_canonical(can), df)
    # kinematics mapping ignores moment columns and vice versa
    assert (conv.to_canonical(df)["knee_angle_r_moment"] == df["knee_angle_r_moment"]).all()


def test_power_is_invariant_under_the_mapping():
    """Generalized force is work-conjugate: moment x angular velocity keeps its value."""
    conv = conv_of(str(HAMNER))
    q = _kinematics(["knee_angle_r"], n=50)
    tau = pd.DataFrame({"knee_angle_r_moment": np.sin(np.arange(50) / 5.0)})
    qd_user = np.gradient(q["knee_angle_r"].to_numpy())
    qd_can = np.gradient(conv.to_canonical(q)["knee_angle_r"].to_numpy())
    p_user = tau["knee_angle_r_moment"].to_numpy() * qd_user
    p_can = conv.moments_to_canonical(tau)["knee_angle_r_moment"].to_numpy() * qd_can
    np.testing.assert_allclose(p_can, p_user)


def test_user_to_bundle_and_back():
    ham, raj = conv_of(str(HAMNER)), conv_of(str(UHLRICH))
    df = _kinematics(["knee_angle_r", "hip_flexion_r", "mtp_angle_r"])
    pd.testing.assert_frame_equal(ham.to_bundle(df, raj), ham.to_canonical(df))
    pd.testing.assert_series_equal(raj.to_bundle(df, ham)["knee_angle_r"], -df["knee_angle_r"])
    pd.testing.assert_frame_equal(ham.to_bundle(df, ham), df)
    m = _kinematics(["knee_angle_r_moment", "hip_flexion_r_moment"])
    pd.testing.assert_frame_equal(ham.moments_from_bundle(m, raj), ham.moments_from_canonical(m))


def test_column_of_a_coordinate_the_model_lacks_is_an_error():
    conv = conv_of(str(HAMNER))
    partial = ModelConventions(family="gait2392", conventions={
        k: v for k, v in conv.conventions.items() if not k.startswith("subtalar")})
    with pytest.raises(ConventionError, match="subtalar_angle_r"):
        partial.to_canonical(_kinematics(["knee_angle_r", "subtalar_angle_r"]))
    with pytest.raises(ConventionError, match="subtalar_angle_l_moment"):
        partial.moments_from_canonical(_kinematics(["subtalar_angle_l_moment"]))


def test_conventions_serialise_to_json():
    conv = conv_of(str(HAMNER))
    back = ModelConventions.from_dict(json.loads(json.dumps(conv.to_dict())))
    assert back.signs() == conv.signs() and back.family == "gait2392"
    with pytest.raises(ConventionError):
        ModelConventions.from_dict({"coordinates": {"knee_angle_r": {"sign": 2}}})


def _read_mot(path: Path) -> pd.DataFrame:
    lines = path.read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip().lower() == "endheader") + 1
    return pd.read_csv(path, sep=r"\s+", skiprows=start)


def test_real_running_kinematics_become_canonical():
    """Hamner IK knee angles are negative in flexion; mapped, they look like Rajagopal ones."""
    ham = _read_mot(ROOT / "hamner2013" / "subject01" / "ik" / "Run_3.mot")
    walk = _read_mot(next(ROOT.glob("schreiber2019/2014001/ik/*/*_ik.mot")))
    assert ham["knee_angle_r"].max() < 15 and ham["knee_angle_r"].min() < -60  # degrees
    can = conv_of(str(HAMNER)).to_canonical(ham)
    assert can["knee_angle_r"].min() > -15 and can["knee_angle_r"].max() > 60
    assert walk["knee_angle_r"].min() > -15 and walk["knee_angle_r"].max() > 40  # already canonical
    pd.testing.assert_series_equal(can["hip_flexion_r"], ham["hip_flexion_r"])


# ----------------------------------------------------------------- physics, with OpenSim
@lru_cache(maxsize=None)
def _osim(path: str):
    import opensim

    opensim.Logger.setLevelString("error")
    m = opensim.Model(path)
    s = m.initSystem()
    for c in m.getCoordinateSet():
        c.setLocked(s, False)
    return m, s


def _child_pose(path: str, coord: str, value: float, parent: str, child: str):
    """(rotation of child relative to parent, child origin in ground) at coord=value."""
    m, s0 = _osim(path)
    import opensim

    s = opensim.State(s0)
    m.getCoordinateSet().get(coord).setValue(s, value, False)
    m.realizePosition(s)

    def frame(name):
        return m.getGround() if name == "ground" else m.getBodySet().get(name)

    def rot(name):
        r = frame(name).getTransformInGround(s).R()
        return np.array([[r.get(i, j) for j in range(3)] for i in range(3)])

    p = frame(child).getPositionInGround(s)
    return rot(parent).T @ rot(child), np.array([p.get(i) for i in range(3)])


def _rotvec(r: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(r).as_rotvec()


def _motion(path: str, coord: str, value: float) -> np.ndarray:
    """Rotation vector (parent frame) or displacement (ground) that coord=value produces."""
    info = read_model(path)
    joint = info.joint_of(coord)
    r0, p0 = _child_pose(path, coord, 0.0, joint.parent_body, joint.child_body)
    r1, p1 = _child_pose(path, coord, value, joint.parent_body, joint.child_body)
    if info.coordinate(coord).motion_type == "translational":
        return p1 - p0
    return _rotvec(r1 @ r0.T)


@pytest.mark.opensim
def test_signs_give_the_same_pose_in_opensim():
    """For every lower-limb coordinate, canonical value 0.3 put into the Hamner model as
    user value sign*0.3 moves the child body like 0.3 does in the Rajagopal model
    (e.g. knee -0.3 rad in gait2392 = +0.3 rad in Rajagopal: both flex the knee)."""
    ham = conv_of(str(HAMNER))
    for coord in LOWER_LIMB_COORDINATES:
        a = _motion(str(UHLRICH), coord, 0.3)
        b = _motion(str(HAMNER), coord, ham.sign(coord) * 0.3)
        cos = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
        assert cos > 0.95, (coord, a, b)
        if ham.sign(coord) == -1:  # the raw same value would move it the other way
            assert float(a @ _motion(str(HAMNER), coord, 0.3)) < 0, coord


@pytest.mark.opensim
def test_knee_flexion_pose_in_both_families():
    """The physics claim of the issue: gait2392 knee -0.5 rad and Rajagopal knee +0.5 rad
    both flex the knee (tibia's proximal axis tilts forward relative to the femur)."""
    for path, value in ((UHLRICH, 0.5), (HAMNER, -0.5)):
        r, _ = _child_pose(str(path), "knee_angle_r", value, "femur_r", "tibia_r")
        r0, _ = _child_pose(str(path), "knee_angle_r", 0.0, "femur_r", "tibia_r")
        up0, up = r0 @ [0, 1, 0], r @ [0, 1, 0]  # tibia long axis (distal -> proximal)
        assert up[0] - up0[0] > 0.4, path  # leans anteriorly: shank swings back = flexion


@pytest.mark.opensim
def test_canonical_meanings_hold_in_the_reference_model():
    """The '+ means' column of the table, checked geometrically in the Rajagopal model."""
    e = np.eye(3)

    def axis_after(coord, parent, child, vec):
        r0, _ = _child_pose(str(UHLRICH), coord, 0.0, parent, child)
        r1, _ = _child_pose(str(UHLRICH), coord, 0.3, parent, child)
        return r1 @ vec - r0 @ vec  # change of a child axis, in parent coordinates

    x, y, z = e
    assert axis_after("hip_flexion_r", "pelvis", "femur_r", -y)[0] > 0.2      # knee forward
    assert axis_after("hip_adduction_r", "pelvis", "femur_r", -y)[2] < -0.2   # toward midline
    assert axis_after("hip_adduction_l", "pelvis", "femur_l", -y)[2] > 0.2
    assert axis_after("hip_rotation_r", "pelvis", "femur_r", x)[2] < -0.2     # internal
    assert axis_after("hip_rotation_l", "pelvis", "femur_l", x)[2] > 0.2
    assert axis_after("ankle_angle_r", "tibia_r", "talus_r", x)[1] > 0.2      # dorsiflexion
    assert axis_after("subtalar_angle_r", "talus_r", "calcn_r", -y)[2] < -0.1  # sole medial
    assert axis_after("mtp_angle_r", "calcn_r", "toes_r", x)[1] < -0.1        # toe tip down
    assert axis_after("pelvis_tilt", "ground", "pelvis", x)[1] > 0.2          # front up
    assert axis_after("pelvis_list", "ground", "pelvis", z)[1] < -0.2         # right side down
    assert axis_after("pelvis_rotation", "ground", "pelvis", x)[2] < -0.2     # turns left
    assert axis_after("lumbar_extension", "pelvis", "torso", y)[0] < -0.2     # leans back
    assert axis_after("lumbar_bending", "pelvis", "torso", y)[2] > 0.2        # bends right
    assert axis_after("lumbar_rotation", "pelvis", "torso", x)[2] < -0.2      # turns left
