"""surrogate.run on real shared trials: shapes, names, units, conventions, trust, files.

Uses the committed default bundle (``osim_models/rajagopal_walking``) when it exists, else a
small bundle trained here on the synthetic dataset (see :func:`get_test_bundle`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import opensim
import pandas as pd
import pytest

import opensim_surrogate as surrogate
from opensim_surrogate.errors import (
    BundleNotFoundError,
    InputError,
    MissingFileError,
    TableValueError,
    TimeColumnError,
)
from opensim_surrogate.io.tables import read_table, write_table
from opensim_surrogate.osim.model import read_model
from opensim_surrogate.paths import BUNDLES_DIR, data_root
from opensim_surrogate.surrogate.select import DEFAULT_BUNDLE

opensim.Logger.setLevelString("error")

DATA = data_root()
RAJ = DATA / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim"
HAMNER_MODEL = DATA / "hamner2013" / "subject01" / "model" / "subject01_adjusted_scaled.osim"
RUN = DATA / "hamner2013" / "subject01" / "ik" / "Run_2.mot"
LEG_MOMENTS = [f"{j}_{s}_moment" for s in "rl"
               for j in ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle")]


def default_bundle_installed() -> bool:
    return (BUNDLES_DIR / DEFAULT_BUNDLE / "metadata.json").is_file()


_BUNDLE_CACHE: dict[str, str] = {}


def get_test_bundle(tmp_path_factory) -> str:
    """The default bundle's name if it is committed; else the folder of a small bundle trained
    once per session on the synthetic dataset (tests/synthetic.py, ~10 s)."""
    if default_bundle_installed():
        return DEFAULT_BUNDLE
    if "synthetic" not in _BUNDLE_CACHE:
        from synthetic import make_synthetic_records, simple_mirror

        from opensim_surrogate.train.protocol import (bundle_from_fit, fit, make_config,
                                                      prepare_data, split_subjects)

        prep = prepare_data(make_synthetic_records(n_subjects=6, duration_s=1.5, seed=0),
                            mirror=simple_mirror)
        cfg = make_config("quick", arch="lstm", threads=1,
                          hyperparameters={"hidden_size": 16, "num_layers": 1})
        pool, test = split_subjects(prep.subjects, 0.2, 0)
        fr = fit(cfg, prep, pool, None, epochs=1)
        b = bundle_from_fit(fr, prep, "synthetic_test", extra_training={
            "split": {"train_subjects": pool, "test_subjects": test}})
        out = tmp_path_factory.mktemp("bundles") / "synthetic_test"
        b.save(out)
        _BUNDLE_CACHE["synthetic"] = str(out)
    return _BUNDLE_CACHE["synthetic"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return get_test_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def run_short(tmp_path_factory) -> Path:
    """hamner2013 Run_2 (gait2392 convention, degrees) cut to 1.0-2.6 s: two strides."""
    df = read_table(RUN).loc[1.0:2.6]
    return write_table(df, tmp_path_factory.mktemp("run") / "Run_2_short.mot", in_degrees=True)


@pytest.fixture(scope="module")
def held_out_walk(bundle) -> Path:
    """An IK file of a schreiber2019 subject held out of the bundle's training (>= 0.5 s)."""
    from opensim_surrogate.cli.demo import held_out_subjects
    from opensim_surrogate.surrogate.select import load_bundle

    b = load_bundle(bundle)
    subjects = sorted(p.name for p in (DATA / "schreiber2019").iterdir() if p.is_dir())
    held, _ = held_out_subjects(getattr(b, "metadata", {}) or {}, subjects)
    for s in held + subjects:
        for mot in sorted((DATA / "schreiber2019" / s / "ik").glob("*/*_ik.mot")):
            t = read_table(mot).index
            if t[-1] - t[0] >= 0.5:
                return mot
    raise AssertionError("no walking trial found")


@pytest.fixture(scope="module")
def walk_res(bundle, held_out_walk):
    return surrogate.run(held_out_walk, model=RAJ, bundle=bundle)


# ------------------------------------------------------------------ shapes, names, units
def test_run_returns_moments_and_forces_at_the_trials_own_times(walk_res, held_out_walk):
    res = walk_res
    kin = read_table(held_out_walk)
    assert isinstance(res, surrogate.SurrogateResult)
    assert np.array_equal(res.moments.index.to_numpy(), kin.index.to_numpy())
    assert np.array_equal(res.forces.index.to_numpy(), kin.index.to_numpy())
    assert set(LEG_MOMENTS) <= set(res.moments.columns)
    assert all(c.endswith("_moment") for c in res.moments.columns)
    muscles = read_model(RAJ).muscle_names()
    assert list(res.forces.columns) == muscles and len(muscles) == 80
    assert res.moments.notna().all().all() and res.forces.notna().all().all()
    assert (res.forces.to_numpy() >= 0).all()
    assert res.name == held_out_walk.stem and res.source == held_out_walk
    assert res.mass_kg == pytest.approx(read_model(RAJ).total_mass)
    assert res.in_degrees is True and res.input_rate_hz == pytest.approx(100.0)


def test_units_are_newton_metres_and_newtons(walk_res):
    m = walk_res.moments
    peak_hip = m[["hip_flexion_r_moment", "hip_flexion_l_moment"]].abs().max().max()
    assert 5.0 < peak_hip < 400.0  # N·m for a ~75 kg walker (N·m/kg would be < 3)
    assert 10.0 < walk_res.forces.max().max() < 10000.0  # N


def test_uncertainty_is_per_frame_and_optional(walk_res, bundle, held_out_walk):
    s = walk_res.moments_std
    assert s is not None and s.shape == walk_res.moments.shape
    assert list(s.columns) == list(walk_res.moments.columns)
    assert (s.to_numpy() >= 0).all() and np.isfinite(s.to_numpy()).all()
    assert s.to_numpy().max() > 0
    assert walk_res.forces_std is not None and walk_res.forces_std.shape == walk_res.forces.shape
    res = surrogate.run(held_out_walk, model=RAJ, bundle=bundle, uncertainty=False)
    assert res.moments_std is None and res.forces_std is None


def test_held_out_walking_gives_no_warning(walk_res, bundle):
    if default_bundle_installed():
        res = walk_res  # a real schreiber2019 trial of a held-out subject
    else:  # the synthetic test bundle only knows synthetic walking: use an unseen subject's
        from synthetic import make_synthetic_records

        rec = make_synthetic_records(n_subjects=1, conditions=("C4",), duration_s=1.5, seed=99)[0]
        res = surrogate.run(rec.kinematics, model=RAJ, mass_kg=rec.mass_kg, bundle=bundle,
                            in_degrees=False, name=rec.trial_id)
    assert res.warnings == []
    assert res.ood_fraction <= 0.05
    assert list(res.ood.columns) == ["distance", "over"]
    assert len(res.ood) == len(res.moments)


def test_running_triggers_the_out_of_distribution_warning(bundle):
    res = surrogate.run(RUN, model=HAMNER_MODEL, bundle=bundle, uncertainty=False)
    ood = [w for w in res.warnings if "out of distribution" in w]
    assert ood, res.warnings
    assert res.ood_fraction > 0.5


def test_mass_scales_the_outputs(bundle, held_out_walk):
    a = surrogate.run(held_out_walk, mass_kg=60.0, bundle=bundle)
    b = surrogate.run(held_out_walk, mass_kg=90.0, bundle=bundle)
    assert a.mass_kg == 60.0 and b.mass_kg == 90.0
    # outputs are predicted per kg and multiplied by the mass (the network may also see the
    # mass as an input, so the ratio is not exactly 1.5)
    rms = lambda r: float(np.sqrt(np.mean(r.moments.to_numpy() ** 2)))  # noqa: E731
    assert 1.2 < rms(b) / rms(a) < 1.9
    c = surrogate.run(held_out_walk, model=RAJ, mass_kg=90.0, bundle=bundle)
    assert any("differs from the model's total mass" in w for w in c.warnings)
    assert np.allclose(c.moments[b.moments.columns].to_numpy(), b.moments.to_numpy(), atol=1e-6)


def test_dataframe_list_and_file_inputs_agree(bundle, held_out_walk, walk_res):
    df = read_table(held_out_walk)
    res_df = surrogate.run(df, model=RAJ, bundle=bundle)  # header says degrees
    assert np.allclose(res_df.moments.to_numpy(), walk_res.moments.to_numpy(), atol=1e-9)
    rad = df.copy()
    rot = read_model(RAJ).rotational_coordinates()
    cols = [c for c in rad.columns if c in rot]
    rad[cols] = np.deg2rad(rad[cols].to_numpy())
    rad.attrs = {}
    res_rad = surrogate.run(rad, model=RAJ, bundle=bundle, in_degrees=False)
    assert np.allclose(res_rad.moments.to_numpy(), walk_res.moments.to_numpy(), atol=1e-6)
    both = surrogate.run([held_out_walk, rad], model=RAJ, bundle=bundle, in_degrees=None)
    assert isinstance(both, list) and len(both) == 2
    assert np.allclose(both[0].moments.to_numpy(), walk_res.moments.to_numpy(), atol=1e-5)
    assert np.allclose(both[1].moments.to_numpy(), walk_res.moments.to_numpy(), atol=1e-5)
    assert both[0].name == held_out_walk.stem and both[1].name == "trial2"


def test_any_sampling_rate_returns_the_inputs_times(bundle, held_out_walk, walk_res):
    from opensim_surrogate.surrogate.inputs import resample

    df = read_table(held_out_walk)
    t = df.index.to_numpy()
    t_fast = np.arange(t[0], t[-1] + 1e-9, 0.001)
    fast = pd.DataFrame(resample(t, df.to_numpy(), t_fast), index=t_fast, columns=df.columns)
    res = surrogate.run(fast, model=RAJ, bundle=bundle, in_degrees=True)
    assert len(res.moments) == len(t_fast) and np.allclose(res.moments.index, t_fast)
    back = res.moments.iloc[::10]
    ref = walk_res.moments.iloc[: len(back)]
    scale = walk_res.moments.abs().max().max()
    assert np.max(np.abs(back.to_numpy() - ref.to_numpy())) < 0.05 * scale
    assert not any("extrapolated rate" in w for w in res.warnings)
    slow = pd.DataFrame(resample(t, df.to_numpy(), t[::3]), index=t[::3], columns=df.columns)
    res_slow = surrogate.run(slow, model=RAJ, bundle=bundle, in_degrees=True)
    assert any("extrapolated rate" in w for w in res_slow.warnings)
    assert np.allclose(res_slow.moments.index, t[::3])


# ------------------------------------------------------------------ conventions
def test_gait2392_model_gets_moments_in_its_convention_and_no_forces(bundle, run_short):
    res = surrogate.run(run_short, model=HAMNER_MODEL,
                        bundle=None if bundle == DEFAULT_BUNDLE else bundle)
    assert set(LEG_MOMENTS) <= set(res.moments.columns)
    assert res.forces.shape == (len(res.moments), 0)
    assert any("no muscle forces" in w for w in res.warnings)
    assert res.mass_kg == pytest.approx(read_model(HAMNER_MODEL).total_mass)
    assert res.info["sign_flipped"] and "knee_angle_r" in res.info["sign_flipped"]


def test_same_trial_in_either_convention_gives_the_same_moments(bundle, tmp_path, run_short):
    """Run_2 in gait2392 convention with its model == Run_2 converted to the canonical
    (Rajagopal) convention with a Rajagopal model, except for the flipped coordinates' sign."""
    mass = read_model(HAMNER_MODEL).total_mass
    g = surrogate.run(run_short, model=HAMNER_MODEL, bundle=bundle, uncertainty=False)
    df = read_table(run_short)
    conv = df.copy()
    flipped = [c for c in df.columns if c.startswith(("knee_angle", "mtp_angle"))]
    conv[flipped] = -conv[flipped]
    raj = read_model(RAJ)
    conv = conv.drop(columns=[c for c in conv.columns if not raj.has_coordinate(c)])
    path = write_table(conv, tmp_path / "Run_2_canonical.mot", in_degrees=True)
    r = surrogate.run(path, model=RAJ, mass_kg=mass, bundle=bundle, uncertainty=False)
    for c in LEG_MOMENTS:
        sign = -1.0 if c.startswith("knee_angle") else 1.0
        assert np.allclose(g.moments[c].to_numpy(), sign * r.moments[c].to_numpy(),
                           atol=1e-6 * max(1.0, r.moments[c].abs().max())), c


# ------------------------------------------------------------------ files
def test_write_round_trips_through_opensim_readers(walk_res, tmp_path):
    files = walk_res.write(tmp_path / "out")
    name = walk_res.name
    assert files.id == tmp_path / "out" / f"{name}_id.sto"
    assert files.so_force == tmp_path / "out" / f"{name}_StaticOptimization_force.sto"
    for path, df in ((files.id, walk_res.moments), (files.so_force, walk_res.forces)):
        tab = opensim.TimeSeriesTable(str(path))
        assert list(tab.getColumnLabels()) == list(df.columns)
        assert np.allclose(np.asarray(tab.getIndependentColumn()), df.index.to_numpy())
        assert np.allclose(tab.getMatrix().to_numpy(), df.to_numpy(), atol=1e-7)
        sto = opensim.Storage(str(path))
        assert sto.getSize() == len(df) and not sto.isInDegrees()
        col = df.columns[3]
        arr = opensim.ArrayDouble()
        sto.getDataColumn(col, arr)
        assert np.allclose([arr.get(i) for i in range(arr.getSize())], df[col].to_numpy(),
                           atol=1e-7)
    head = files.id.read_text().splitlines()
    assert head[:2] == ["Inverse Dynamics Generalized Forces", "version=1"]
    assert files.so_force.read_text().startswith("ModelForces\nversion=1\n")


def test_write_without_forces_writes_only_the_id_file(bundle, tmp_path, run_short):
    res = surrogate.run(run_short, model=HAMNER_MODEL, bundle=bundle, time_range=(1.2, 2.0),
                        uncertainty=False)
    files = res.write(tmp_path)
    assert files.so_force is None and files.id.is_file()
    assert not list(tmp_path.glob("*StaticOptimization*"))
    assert res.moments.index[0] == pytest.approx(1.2) and res.moments.index[-1] == pytest.approx(2.0)


# ------------------------------------------------------------------ bad input
def test_missing_required_coordinate_is_named(bundle, held_out_walk, tmp_path):
    df = read_table(held_out_walk).drop(columns=["knee_angle_l"])
    p = write_table(df, tmp_path / "no_knee.mot")
    with pytest.raises(InputError) as ei:
        surrogate.run(p, model=RAJ, bundle=bundle)
    assert "knee_angle_l" in str(ei.value) and str(p) in str(ei.value)


def test_nan_and_bad_time_are_named(bundle, held_out_walk):
    df = read_table(held_out_walk)
    nan = df.copy()
    nan.iloc[4, nan.columns.get_loc("ankle_angle_r")] = np.nan
    with pytest.raises(TableValueError) as ei:
        surrogate.run(nan, model=RAJ, bundle=bundle)
    assert "ankle_angle_r" in str(ei.value)
    back = df.copy()
    t = back.index.to_numpy().copy()
    t[10] = t[8]
    back.index = t
    with pytest.raises(TimeColumnError, match="does not strictly increase"):
        surrogate.run(back, model=RAJ, bundle=bundle)


def test_too_short_missing_file_no_mass_bad_mass(bundle, held_out_walk):
    df = read_table(held_out_walk).iloc[:20]
    with pytest.raises(InputError, match="at least 0.3 s"):
        surrogate.run(df, model=RAJ, bundle=bundle)
    with pytest.raises(MissingFileError):
        surrogate.run(held_out_walk.with_name("missing.mot"), model=RAJ, bundle=bundle)
    with pytest.raises(InputError, match="no body mass"):
        surrogate.run(held_out_walk, bundle=bundle)
    with pytest.raises(InputError, match="plausible"):
        surrogate.run(held_out_walk, mass_kg=-3, bundle=bundle)
    with pytest.raises(BundleNotFoundError, match="no surrogate bundle 'nope'"):
        surrogate.run(held_out_walk, mass_kg=70, bundle="nope")


def test_model_without_a_matching_bundle_is_an_error_naming_it(tmp_path, bundle):
    m = opensim.Model()
    m.setName("arm")
    body = opensim.Body("forearm", 2.0, opensim.Vec3(0), opensim.Inertia(0.1))
    joint = opensim.PinJoint("elbow", m.getGround(), body)
    joint.updCoordinate().setName("elbow_flex")
    m.addBody(body)
    m.addJoint(joint)
    m.finalizeConnections()
    path = tmp_path / "arm.osim"
    m.printToXML(str(path))
    with pytest.raises(BundleNotFoundError) as ei:
        surrogate.run(RUN, model=path, mass_kg=70, bundle=bundle)
    assert str(path) in str(ei.value) and "hip_flexion_r" in str(ei.value)


def test_bundle_is_chosen_from_the_model(tmp_path, bundle, monkeypatch, held_out_walk, run_short):
    """Automatic choice among the bundles installed in $OPENSIM_SURROGATE_BUNDLES."""
    import shutil

    from opensim_surrogate.surrogate.select import load_bundle

    installed = tmp_path / "bundles"
    src = Path(load_bundle(bundle).path)
    shutil.copytree(src, installed / DEFAULT_BUNDLE)
    monkeypatch.setenv("OPENSIM_SURROGATE_BUNDLES", str(installed))
    walk = surrogate.run(held_out_walk, model=RAJ)  # Rajagopal family: moments + forces
    assert walk.info["forces_predicted"] and walk.forces.shape[1] == 80
    assert "rajagopal" in walk.info["bundle_choice"]
    run = surrogate.run(run_short, model=HAMNER_MODEL)  # gait2392: moments only, a warning
    assert not run.info["forces_predicted"] and run.forces.shape[1] == 0
    assert any("no muscle forces" in w and "gait2392" in w for w in run.warnings)
    nothing = tmp_path / "empty"
    nothing.mkdir()
    monkeypatch.setenv("OPENSIM_SURROGATE_BUNDLES", str(nothing))
    with pytest.raises(BundleNotFoundError) as ei:
        surrogate.run(held_out_walk, model=RAJ)
    assert "no surrogate bundle is installed" in str(ei.value) and str(RAJ) in str(ei.value)
