"""The real-OpenSim reference pipeline on a shared schreiber2019 trial (no mocks).

One short end-to-end run (scale, IK over the whole .trc, ID over the trial, SO on 6 frames)
is shared by most tests; the mirror test runs real ID twice, the failure test runs real SO on
a deliberately crippled model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opensim_surrogate.dataset.store import read_trial, write_trial
from opensim_surrogate.errors import InputError
from opensim_surrogate.reference import events as E
from opensim_surrogate.reference import mirror_inputs as M
from opensim_surrogate.reference import tools
from opensim_surrogate.reference.config import ReferenceConfig
from opensim_surrogate.reference.pipeline import TrialSpec, _model_path, process_trial

pytestmark = pytest.mark.opensim

SUBJECT, TRIAL, MASS = "2014001", "C4_05", 67.0
N_SO = 6


def _spec(data_dir: Path) -> TrialSpec:
    s = data_dir / "schreiber2019" / SUBJECT
    return TrialSpec(
        trial_id=f"{SUBJECT}_{TRIAL}", subject=SUBJECT, trial=TRIAL, condition="C4",
        mass_kg=MASS, height_m=1.66, model_family="rajagopal",
        generic_model=data_dir / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim",
        scale_set=s / "scaling" / f"{SUBJECT}_scaleSet.xml",
        scale_setup=s / "scaling" / f"{SUBJECT}_scaleSetup.xml",
        marker_model=s / "scaling" / f"{SUBJECT}_scaledModelAdjusted.osim",
        trc=s / "dynamic" / f"{SUBJECT}_{TRIAL}.trc",
        ik_setup=s / "ik" / TRIAL / f"{TRIAL}_ikSetup.xml",
        grf_mot=s / "dynamic" / f"{SUBJECT}_{TRIAL}_grf.mot",
        external_loads_xml=s / "dynamic" / f"{SUBJECT}_{TRIAL}_grf.xml")


@pytest.fixture(scope="module")
def run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("reference")
    spec = _spec(data_dir)
    config = ReferenceConfig(so_max_frames=N_SO)
    record = process_trial(spec, config, root / "work" / spec.trial_id)
    return spec, config, record, root


def test_scaled_model_keeps_muscles_and_subject_mass(run) -> None:
    spec, _, record, root = run
    model = root / "work" / "models" / f"{SUBJECT}.osim"
    assert Path(record.extras["scaled_model"]) == model and model.is_file()
    info = tools.model_coordinates(model)
    assert len(info.muscles) == 80
    assert info.total_mass == pytest.approx(MASS, abs=1e-6)
    assert record.extras["detected_model_family"] == "rajagopal"
    # IK with the shared marker weights fits the markers
    assert record.extras["ik_marker_rms_m"] < 0.03
    # a second trial of the subject reuses the cached model (no rescale)
    timings: dict[str, float] = {}
    again = _model_path(spec, ReferenceConfig(), root / "work" / "other_trial", timings)
    assert again == model and timings["scale"] == 0.0


def test_tables_share_one_100hz_index_in_radians(run) -> None:
    _, _, record, _ = run
    t = record.kinematics.index.to_numpy()
    assert np.allclose(np.diff(t), 0.01)
    for name in ("moments", "forces", "activations", "actuators", "mask"):
        assert getattr(record, name).index.equals(record.kinematics.index), name
    hip = record.kinematics["hip_flexion_r"]
    assert hip.abs().max() < 1.0 and hip.max() - hip.min() > 0.6  # radians, ~45 deg range
    assert {"pelvis_tx", "knee_angle_r_beta", "lumbar_extension"} <= set(record.kinematics)
    assert "hip_flexion_r_moment" in record.moments and "pelvis_ty_force" in record.moments


def test_id_moments_are_physiological(run) -> None:
    _, _, record, _ = run
    valid = record.mask["id_valid"].to_numpy()
    assert 0.4 < valid.mean() < 0.7
    m = record.moments[valid] / MASS
    hip = m["hip_flexion_r_moment"].abs().max()
    assert 0.3 <= hip <= 2.0, hip
    for leg in "rl":  # ankle plantarflexion (negative ankle_angle moment) at push-off
        pf = -m[f"ankle_angle_{leg}_moment"].min()
        assert 0.8 <= pf <= 2.0, (leg, pf)
        assert m[f"ankle_angle_{leg}_moment"].max() < 0.4
    # inside the labelled window the pelvis residual force is small against body weight
    assert m["pelvis_ty_force"].abs().max() < 0.25 * 9.81


def test_so_outputs_on_the_labelled_window(run) -> None:
    _, _, record, _ = run
    so = record.mask["so_valid"].to_numpy()
    assert so.sum() == N_SO and not record.extras["so_failed_frames"]
    assert (so <= record.mask["id_valid"].to_numpy()).all()
    f = record.forces.to_numpy()
    a = record.activations.to_numpy()
    assert np.isfinite(f[so]).all() and np.isnan(f[~so]).all() and np.isnan(a[~so]).all()
    assert f.shape[1] == 80 and (f[so] >= -1e-6).all() and f[so].max() > 100.0
    assert (a[so] >= 0).all() and (a[so] <= 1).all()
    assert record.extras["so_max_constraint_violation"] < 1e-6
    reserves = record.extras["reserves"]
    assert len(reserves) == 10  # hips (3), knee, ankle per side
    assert max(r["max_abs"] for r in reserves.values()) < 5.0
    residuals = record.extras["residuals"]
    assert sorted(residuals) == sorted(f"residual_pelvis_{c}" for c in
                                       ("tilt", "list", "rotation", "tx", "ty", "tz"))
    # the residuals equal the ID pelvis forces (muscles do not act on the pelvis coordinates)
    ty = record.actuators["residual_pelvis_ty"][so].to_numpy()
    assert np.allclose(ty, record.moments["pelvis_ty_force"][so].to_numpy(), atol=1.0)


def test_events_cycles_and_record_round_trip(run) -> None:
    _, _, record, root = run
    ev = record.events
    assert ev["heel_strike_r"][0] == pytest.approx(0.049, abs=0.002)  # plate event
    assert ev["heel_strike_l"][0] == pytest.approx(0.539, abs=0.002)
    # OpenSim-FK (Zeni) events agree with the plates
    kin = record.extras["kinematic_events"]
    assert min(abs(x - 0.539) for x in kin["heel_strike_l"]) < 0.04
    assert min(abs(x - 0.641) for x in kin["toe_off_r"]) < 0.04
    right = [c for c in record.cycles if c["leg"] == "r"]
    assert right and 0.9 < right[0]["end"] - right[0]["start"] < 1.2
    assert 0.6 < right[0]["labelled_fraction"] < 1.0
    write_trial(root / "ds", record)
    back = read_trial(root / "ds", record.trial_id)
    pd.testing.assert_frame_equal(back.forces, record.forces, check_freq=False)
    assert back.extras["seconds"]["so"] > 0


def test_mirrored_trial_gives_the_other_legs_moments(run, data_dir: Path,
                                                      tmp_path: Path) -> None:
    spec, config, record, _ = run
    generic = data_dir / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim"  # symmetric
    coords = record.kinematics
    grf = tools.read_sto(spec.grf_mot)
    orig = tools.inverse_dynamics(generic, coords, spec.external_loads_xml, grf, config,
                                  out_dir=tmp_path, name="orig")
    mgrf = M.mirror_grf(grf, spec.external_loads_xml)
    mfile = tools.write_sto(mgrf, tmp_path / "mirrored_grf.mot", "mirrored_grf")
    mloads = M.mirror_external_loads(spec.external_loads_xml, mfile, tmp_path / "mloads.xml")
    mirr = tools.inverse_dynamics(generic, M.mirror_coordinates(coords), mloads, mgrf, config,
                                  out_dir=tmp_path, name="mirrored")
    for joint in ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle"):
        a = orig.moments[f"{joint}_l_moment"].to_numpy()
        b = mirr.moments[f"{joint}_r_moment"].to_numpy()
        assert np.abs(a - b).max() < 1e-3 * max(1.0, np.abs(a).max()), joint
    back = M.mirror_generalized_forces(mirr.moments)
    assert np.allclose(back.to_numpy(), orig.moments.to_numpy(), atol=1e-3)
    # the non-trivial signs really matter
    assert np.abs(orig.moments["pelvis_list_moment"]).max() > 5.0


def test_mirror_sign_conventions() -> None:
    df = pd.DataFrame({"pelvis_list": [0.1], "pelvis_tilt": [0.2], "pelvis_tz": [0.3],
                       "hip_flexion_r": [0.4], "hip_flexion_l": [-0.5],
                       "knee_angle_r_beta": [0.6], "knee_angle_l_beta": [0.7],
                       "lumbar_rotation": [0.8], "lumbar_extension": [0.9]})
    m = M.mirror_coordinates(df)
    assert list(m.columns) == list(df.columns)
    assert m.iloc[0].to_dict() == pytest.approx({
        "pelvis_list": -0.1, "pelvis_tilt": 0.2, "pelvis_tz": -0.3, "hip_flexion_r": -0.5,
        "hip_flexion_l": 0.4, "knee_angle_r_beta": 0.7, "knee_angle_l_beta": 0.6,
        "lumbar_rotation": -0.8, "lumbar_extension": 0.9})
    assert M.swap_side_name("pelvis_list") == "pelvis_list"
    assert M.swap_side_name("calcn_l") == "calcn_r"
    with pytest.raises(InputError):
        M.mirror_coordinates(pd.DataFrame({"hip_flexion_r": [0.0]}))


def test_so_failure_is_detected_on_a_too_weak_model(run, tmp_path: Path) -> None:
    import opensim

    spec, _, record, root = run
    model = opensim.Model(str(root / "work" / "models" / f"{SUBJECT}.osim"))
    muscles = model.updMuscles()
    for i in range(muscles.getSize()):
        mu = muscles.get(i)
        mu.setMaxIsometricForce(mu.getMaxIsometricForce() / 1000.0)
    weak = tmp_path / "weak.osim"
    model.printToXML(str(weak))
    work = Path(record.extras["workdir"])
    config = ReferenceConfig(add_reserves=False)
    t0 = float(record.moments.index[record.mask["so_valid"].to_numpy()][0])
    res = tools.static_optimization(weak, work / "id_coordinates.sto",
                                    work / "id_grf_loads.xml", config, (t0, t0 + 0.01),
                                    out_dir=tmp_path, name="weak")
    assert len(res.frames) == 2
    assert res.failed_frames == pytest.approx([t0, t0 + 0.01])
    assert set(res.frames["reason"]) == {"optimizer failed"}
    assert not any(k.startswith("reserve_") for k in res.actuators.columns)


def test_parse_so_log() -> None:
    text = "\n".join([
        "[info] time = 0.5 Performance = 3.2 Constraint violation = 1e-12",
        "[warning] OPTIMIZATION FAILED...",
        "[warning] StaticOptimization.record: The optimizer could not find a solution at "
        "time = 0.51.",
        "[info] time = 0.51 Performance = 3e8 Constraint violation = 4643520.38",
        "[info] time = 0.52 Performance = nan Constraint violation = nan"])
    per, failed, n = tools.parse_so_log(text)
    assert failed == {0.51} and n == 1
    assert per[0.5] == (3.2, 1e-12) and per[0.51][1] == pytest.approx(4643520.38)
    assert np.isnan(per[0.52][1])


def test_process_coordinates_filters_once_and_converts(data_dir: Path, tmp_path: Path) -> None:
    h = data_dir / "hamner2013" / "subject01"
    model = h / "model" / "subject01_adjusted_scaled.osim"
    raw = tools.read_sto(h / "ik" / "Run_3.mot")  # SIMM header, degrees, marker columns
    c = tools.process_coordinates(h / "ik" / "Run_3.mot", model, ReferenceConfig(),
                                  tmp_path / "c.sto", time_range=(1.0, 2.0))
    assert len(c) == 101 and c.index[0] == pytest.approx(1.0)
    assert "LASI_tx" not in c.columns and c.shape[1] == 37
    mid = c.index[50]
    assert np.rad2deg(c.loc[mid, "knee_angle_r"]) == pytest.approx(
        raw.loc[np.isclose(raw.index, mid), "knee_angle_r"].iloc[0], abs=3.0)
    assert c.loc[mid, "pelvis_ty"] == pytest.approx(
        raw.loc[np.isclose(raw.index, mid), "pelvis_ty"].iloc[0], abs=0.01)
    back = tools.read_sto(tmp_path / "c.sto")
    assert back.attrs["in_degrees"] is False and np.allclose(back.to_numpy(), c.to_numpy())
    # the running trial is fully measured (one belt per foot): valid but at the edges
    foot = tools.foot_positions(model, tools.process_coordinates(
        h / "ik" / "Run_3.mot", model, ReferenceConfig()))
    kin = E.events_from_kinematics(foot)
    plates = E.events_from_grf(h / "expData" / "Run_3_grf.mot", h / "expData" / "Run_3_grf.xml")
    valid = E.label_validity(foot.index.to_numpy(), plates, kin)
    assert len(E._runs(valid)) == 1 and valid.mean() > 0.95
    for x in plates.heel_strike["r"]:
        assert min(abs(np.array(kin.heel_strike["r"]) - x)) < 0.05
    # all stances are on the belts: the events are the plate events only (Zeni toe-offs,
    # ~90 ms late in running, must not be added as extra events)
    combined = E.combined_events(plates, kin)
    assert combined == plates.to_dict()
    # arms of the gait2392 model have no muscles: torque actuators, not reserves
    _, kinds = tools.actuator_force_set(model, tmp_path / "acts.xml", ReferenceConfig())
    assert kinds["torque_elbow_flex_r"] == "torque" and kinds["reserve_ankle_angle_r"] == "reserve"
    assert kinds["residual_pelvis_ty"] == "residual" and "reserve_mtp_angle_r" not in kinds


def test_config_round_trip_and_validation() -> None:
    c = ReferenceConfig(grf_lowpass_hz=None, so_max_frames=3)
    assert ReferenceConfig.from_dict(c.to_dict()) == c
    with pytest.raises(InputError):
        ReferenceConfig.from_dict({"sample_rate": 100})
    with pytest.raises(InputError):
        ReferenceConfig(so_window="some")
    with pytest.raises(InputError):
        ReferenceConfig(lowpass_hz=60.0)


def test_so_windows() -> None:
    from opensim_surrogate.reference.pipeline import so_windows

    t = np.round(np.arange(0, 1.5001, 0.01), 6)
    valid = (t > 0.2) & (t < 0.9)
    assert so_windows(t, valid, ReferenceConfig()) == [(0.19, 0.91)]
    assert so_windows(t, valid, ReferenceConfig(so_window="all")) == [(0.0, 1.5)]
    assert so_windows(t, valid, ReferenceConfig(so_window="none")) == []
    lo, hi = so_windows(t, valid, ReferenceConfig(so_max_frames=5))[0]
    assert round((hi - lo) / 0.01) + 1 == 5 and 0.5 < lo < 0.6
    two = valid | ((t > 1.3) & (t < 1.45))
    assert len(so_windows(t, two, ReferenceConfig())) == 1  # gap < 0.5 s: merged
    assert len(so_windows(t, two, ReferenceConfig(), merge_gap_s=0.2)) == 2


def test_id_keeps_every_frame_when_times_do_not_print_exactly(run, data_dir: Path,
                                                              tmp_path: Path) -> None:
    """Regression: times like 5.698333 (120 Hz sources resampled) printed as 5.69833 in the
    setup XML made ID drop the last frame (hamner2013 subject02 Run_2)."""
    spec, _, record, _ = run
    generic = data_dir / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim"
    coords = record.kinematics.iloc[60:70].copy()
    coords.index = pd.Index(coords.index.to_numpy() + 1.0 / 300.0, name="time")
    grf = tools.read_sto(spec.grf_mot)
    res = tools.inverse_dynamics(generic, coords, spec.external_loads_xml, grf, ReferenceConfig(),
                                 out_dir=tmp_path, name="offset")
    assert len(res.moments) == len(coords)
    assert np.allclose(res.moments.index.to_numpy(), coords.index.to_numpy(), atol=1e-6)
