"""Corpus adapters on the real shared data, and the "folder" adapter on small files."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opensim_surrogate.dataset.store import read_trial, write_trial
from opensim_surrogate.errors import DatasetError, MissingFileError, TableFormatError
from opensim_surrogate.io.tables import read_table
from opensim_surrogate.reference.corpora import (
    FolderTrial, check_spec, folder_records, folder_trials, get_corpus, hamner2013,
    manifest_frame, read_folder_trial, schreiber2019)


# ----------------------------------------------------------------------------- schreiber2019
@pytest.fixture(scope="module")
def schreiber(data_dir):
    return schreiber2019(data_dir)


@pytest.fixture(scope="module")
def hamner(data_dir):
    return hamner2013(data_dir)


def test_schreiber2019_manifest(schreiber, data_dir):
    assert len(schreiber) == 36
    df = manifest_frame(schreiber)
    assert df.index.is_unique and list(df.index) == sorted(df.index)
    assert df["subject"].nunique() == 18
    assert df.groupby("condition").size().to_dict() == {"comfortable": 18, "fast": 18}
    assert all(df.groupby("subject").size() == 2)
    assert set(df["model_family"]) == {"rajagopal"} and df["speed"].isna().all()
    assert all(len(m) == 0 for m in df["missing"]) and all(len(f) == 8 for f in df["files"])
    s = next(x for x in schreiber if x.trial_id == "2014001_C4_05")
    root = data_dir / "schreiber2019" / "2014001"
    assert (s.subject, s.trial, s.condition) == ("2014001", "C4_05", "comfortable")
    assert (s.mass_kg, s.height_m) == (67.0, 1.66)
    assert s.trc == root / "dynamic" / "2014001_C4_05.trc"
    assert s.grf_mot == root / "dynamic" / "2014001_C4_05_grf.mot"
    assert s.external_loads_xml == root / "dynamic" / "2014001_C4_05_grf.xml"
    assert s.ik_setup == root / "ik" / "C4_05" / "C4_05_ikSetup.xml"
    assert s.scale_set == root / "scaling" / "2014001_scaleSet.xml"
    assert s.scale_setup == root / "scaling" / "2014001_scaleSetup.xml"
    assert s.marker_model == root / "scaling" / "2014001_scaledModelAdjusted.osim"
    assert s.generic_model == data_dir / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim"
    assert s.ik_mot is None and s.model_osim is None
    assert s.extra["condition_code"] == "C4" and s.extra["quality_code"] == 21
    assert s.extra["converter_window"] == pytest.approx([0.14, 0.66], abs=1e-6)
    fast = next(x for x in schreiber if x.trial_id == "2014001_C5_01")
    assert fast.condition == "fast" and fast.extra["condition_code"] == "C5"
    for spec in schreiber:
        check_spec(spec)  # every input exists, masses are positive
    # masses agree with the scale setups' <mass>
    setup = (root / "scaling" / "2014001_scaleSetup.xml").read_text()
    assert "<mass>67</mass>" in setup
    # the data root may also be the corpus folder itself
    assert len(schreiber2019(data_dir / "schreiber2019")) == 36


def _fake_schreiber(tmp_path: Path, anthro: str) -> Path:
    root = tmp_path / "data"
    (root / "models").mkdir(parents=True)
    (root / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim").write_text("<x/>")
    corpus = root / "schreiber2019"
    (corpus / "S1" / "dynamic").mkdir(parents=True)
    (corpus / "S1" / "dynamic" / "S1_C4_01.trc").write_text("")
    (corpus / "anthropometrics.csv").write_text(anthro)
    return root


def test_schreiber2019_errors(tmp_path):
    with pytest.raises(MissingFileError, match="data directory not found"):
        schreiber2019(tmp_path / "nowhere")
    root = _fake_schreiber(tmp_path, "subjectID,height,mass\nS1,1.7,-3\n")
    with pytest.raises(DatasetError) as ei:
        schreiber2019(root)
    assert "anthropometrics.csv:2 (column mass)" in str(ei.value)
    (root / "schreiber2019" / "anthropometrics.csv").write_text("subjectID,height,mass\n")
    with pytest.raises(DatasetError, match="subject S1 has no row"):
        schreiber2019(root)
    (root / "schreiber2019" / "anthropometrics.csv").write_text(
        "subjectID,height,mass\nS1,1.7,70\n")
    specs = schreiber2019(root)  # incomplete trial: kept and marked
    assert len(specs) == 1 and any("S1_C4_01_grf.mot" in m for m in specs[0].extra["missing"])
    with pytest.raises(MissingFileError, match="S1_C4_01_grf.mot|scaleSet|ikSetup"):
        check_spec(specs[0])
    with pytest.raises(MissingFileError):
        schreiber2019(root, strict=True)
    (root / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim").unlink()
    with pytest.raises(MissingFileError, match="generic model"):
        schreiber2019(root)


# ----------------------------------------------------------------------------- hamner2013
def test_hamner2013_manifest(hamner, data_dir):
    assert len(hamner) == 40
    df = manifest_frame(hamner)
    assert df["subject"].nunique() == 10
    assert sorted(set(df["speed"])) == [2.0, 3.0, 4.0, 5.0]
    assert set(df["condition"]) == {"run2", "run3", "run4", "run5"}
    assert set(df["model_family"]) == {"gait2392"} and df["height"].isna().all()
    # subject20 comes without a scaled model: its trials are kept, marked as incomplete
    incomplete = df[df["missing"].map(len) > 0]
    assert list(incomplete.index) == [f"subject20_Run_{s}" for s in (2, 3, 4, 5)]
    assert incomplete["mass"].isna().all()
    with pytest.raises(MissingFileError, match="subject20_adjusted_scaled.osim"):
        check_spec(next(s for s in hamner if s.subject == "subject20"))
    with pytest.raises(MissingFileError, match="subject20"):
        hamner2013(data_dir, strict=True)
    s = next(x for x in hamner if x.trial_id == "subject01_Run_3")
    root = data_dir / "hamner2013" / "subject01"
    assert s.ik_mot == root / "ik" / "Run_3.mot" and s.trc is None
    assert s.model_osim == root / "model" / "subject01_adjusted_scaled.osim"
    assert s.grf_mot == root / "expData" / "Run_3_grf.mot"
    assert s.external_loads_xml == root / "expData" / "Run_3_grf.xml"
    assert s.generic_model is None and s.scale_set is None
    assert s.mass_kg == pytest.approx(72.84, abs=1e-9)  # opensim Model.getTotalMass
    assert s.speed_m_s == 3.0
    cyc = s.extra["cycles"]
    assert [(c["start"], c["end"]) for c in cyc] == [(0.514, 1.231), (1.231, 1.954),
                                                      (1.954, 2.674)]
    assert s.extra["time_range"] == [0.514, 2.674]
    for spec in hamner:
        if spec.subject != "subject20":
            check_spec(spec)
        c = spec.extra["cycles"]
        assert len(c) == 3 and all(x["leg"] == "r" and x["end"] > x["start"] for x in c)
        lo, hi = spec.extra["time_range"]
        assert lo == min(x["start"] for x in c) and hi == max(x["end"] for x in c)


@pytest.mark.parametrize("trial_id", ["subject01_Run_3", "subject08_Run_5", "subject19_Run_2"])
def test_hamner2013_cycles_start_at_right_heel_strikes(hamner, trial_id):
    """The gaitTimes.json cycles begin when the right foot's vertical force rises."""
    spec = next(x for x in hamner if x.trial_id == trial_id)
    grf = read_table(spec.grf_mot)
    t = grf.index.to_numpy()
    right = grf["R_ground_force_vy"].to_numpy() > 30
    left = grf["L_ground_force_vy"].to_numpy() > 30
    on_r = t[1:][right[1:] & ~right[:-1]]
    on_l = t[1:][left[1:] & ~left[:-1]]
    for c in spec.extra["cycles"]:
        assert np.min(np.abs(on_r - c["start"])) < 0.025
        assert np.min(np.abs(on_r - c["start"])) < np.min(np.abs(on_l - c["start"]))


def test_get_corpus(data_dir, tmp_path):
    name, items = get_corpus("hamner2013", data_dir)
    assert name == "hamner2013" and len(items) == 40
    with pytest.raises(DatasetError, match="unknown corpus 'x'"):
        get_corpus("x", data_dir)


# ----------------------------------------------------------------------------- folder
def _mot(path: Path, cols: list[str], t: np.ndarray, values: np.ndarray, header: str) -> None:
    rows = "\n".join("\t".join([f"{a:.4f}"] + [repr(float(v)) for v in row])
                     for a, row in zip(t, values))
    path.write_text(header + "endheader\n" + "\t".join(["time"] + cols) + "\n" + rows + "\n")


T = np.round(np.arange(12) / 100, 2)
IK_COLS = ["pelvis_tilt", "pelvis_list", "pelvis_tx", "pelvis_ty", "hip_flexion_r",
           "knee_angle_r", "knee_angle_r_beta", "hip_flexion_l"]


def _ik_values() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.uniform(-30, 30, size=(len(T), len(IK_COLS)))


def _write_lab(root: Path, *, flat: bool = False) -> None:
    """A small lab folder (no .osim): subject subfolders, or flat + trials.csv."""
    root.mkdir(parents=True)
    (root / "subjects.csv").write_text("subject,mass_kg,height_m\nP01,71.5,1.8\nP02,60,\n")
    ik = _ik_values()
    for subject, trial in (("P01", "walk1"), ("P01", "walk2"), ("P02", "walk1")):
        d = root if flat else root / subject
        d.mkdir(exist_ok=True)
        stem = f"{subject}_{trial}" if flat else trial
        _mot(d / f"{stem}_ik.mot", IK_COLS, T, ik,
             "Coordinates\nversion=1\nnRows=12\nnColumns=9\ninDegrees=yes\n")
        if trial == "walk1":
            mom = ["pelvis_list_force", "hip_flexion_r_moment", "hip_flexion_l_moment"]
            _mot(d / f"{stem}_id.sto", mom, T[2:9], np.ones((7, 3)),
                 "Inverse Dynamics Generalized Forces\nversion=1\ninDegrees=no\n")
            so = ["glmax1_r", "recfem_l", "FX", "hip_flexion_r_reserve", "pelvis_list"]
            _mot(d / f"{stem}_StaticOptimization_force.sto", so, T[3:8], 2 * np.ones((5, 5)),
                 "Static Optimization\nversion=1\ninDegrees=no\n")
            _mot(d / f"{stem}_StaticOptimization_activation.sto", so, T[3:8],
                 0.5 * np.ones((5, 5)), "Static Optimization\nversion=1\ninDegrees=no\n")
            (d / f"{stem}_events.json").write_text(json.dumps(
                {"heel_strike_r": [0.01, 0.1], "toe_off_r": [0.06], "heel_strike_l": [0.05]}))
    if flat:
        (root / "trials.csv").write_text("trial,subject,condition,speed_m_s\n"
                                         "P01_walk1,P01,fast,1.5\n")


def test_folder_subfolder_layout(tmp_path):
    root = tmp_path / "lab"
    _write_lab(root)
    trials = folder_trials(root)
    assert [t.trial_id for t in trials] == ["P01_walk1", "P01_walk2", "P02_walk1"]
    ft = trials[0]
    assert isinstance(ft, FolderTrial) and (ft.subject, ft.trial) == ("P01", "walk1")
    assert (ft.mass_kg, ft.height_m, ft.model_family) == (71.5, 1.8, "unknown")
    assert math.isnan(trials[2].height_m) and ft.condition == "unknown"
    assert set(ft.files) == {"kinematics", "moments", "forces", "activations", "events"}
    assert set(trials[1].files) == {"kinematics"}

    rec = read_folder_trial(ft)
    ik = _ik_values()
    kin = rec.kinematics
    assert list(kin.columns) == IK_COLS and kin.index.name == "time"
    # rotational: degrees -> radians; translations and the coupled knee_angle_r_beta kept
    for j, c in enumerate(IK_COLS):
        expect = ik[:, j] if c in ("pelvis_tx", "pelvis_ty", "knee_angle_r_beta") \
            else np.deg2rad(ik[:, j])
        np.testing.assert_allclose(kin[c].to_numpy(), expect, rtol=1e-12, err_msg=c)
    assert rec.extras["in_degrees"] is True
    assert "pelvis_tx" not in rec.extras["converted_to_radians"]
    # labels sit on their IK rows, NaN elsewhere; masks say where labels exist
    assert rec.moments.shape == (12, 3) and rec.moments.iloc[2:9].eq(1).all().all()
    assert rec.moments.iloc[:2].isna().all().all() and rec.moments.iloc[9:].isna().all().all()
    assert rec.mask["id_valid"].tolist() == [2 <= i <= 8 for i in range(12)]
    assert rec.mask["so_valid"].tolist() == [3 <= i <= 7 for i in range(12)]
    # SO columns: muscles vs actuators (reserves, residuals, coordinate actuators)
    assert list(rec.forces.columns) == ["glmax1_r", "recfem_l"]
    assert list(rec.actuators.columns) == ["FX", "hip_flexion_r_reserve", "pelvis_list"]
    assert list(rec.activations.columns) == ["glmax1_r", "recfem_l"]
    assert rec.activations.iloc[5].tolist() == [0.5, 0.5]
    assert rec.events["heel_strike_r"] == [0.01, 0.1]
    assert rec.cycles == [{"leg": "r", "start": 0.01, "end": 0.1,
                           "labelled_fraction": pytest.approx(7 / 10)}]
    assert (rec.mass_kg, rec.model_family, rec.subject) == (71.5, "unknown", "P01")

    # a trial with kinematics only: empty label tables, masks all False
    rec2 = read_folder_trial(trials[1])
    assert rec2.moments.shape == (12, 0) and not rec2.mask.any().any()
    # round trip through the dataset store
    write_trial(tmp_path / "ds", rec)
    back = read_trial(tmp_path / "ds", "P01_walk1")
    pd.testing.assert_frame_equal(back.actuators, rec.actuators, check_freq=False)
    assert [r.trial_id for r in folder_records(root)] == ["P01_walk1", "P01_walk2",
                                                          "P02_walk1"]


def test_folder_flat_layout_with_model(tmp_path, rajagopal_model):
    root = tmp_path / "lab"
    _write_lab(root, flat=True)
    (root / "folder.json").write_text(json.dumps({"model": str(rajagopal_model),
                                                  "condition": "comfortable"}))
    # a marker column that is not a model coordinate, in an old SIMM header (degrees)
    ik = _ik_values()
    _mot(root / "P02_walk1_ik.mot", IK_COLS + ["LASI_tx"], T,
         np.column_stack([ik, np.full(len(T), 0.25)]),
         "P02\ndatacolumns 10\ndatarows 12\nrange 0 0.11\n")
    trials = {t.trial_id: t for t in folder_trials(root)}
    assert sorted(trials) == ["P01_walk1", "P01_walk2", "P02_walk1"]
    w1 = trials["P01_walk1"]
    assert (w1.condition, w1.speed_m_s, w1.model_family) == ("fast", 1.5, "rajagopal")
    assert trials["P01_walk2"].condition == "comfortable"  # folder.json default
    rec = read_folder_trial(trials["P02_walk1"])
    assert "LASI_tx" not in rec.kinematics and rec.extras["dropped_columns"] == ["LASI_tx"]
    assert rec.extras["in_degrees"] is True
    np.testing.assert_allclose(rec.kinematics["hip_flexion_r"], np.deg2rad(ik[:, 4]))
    np.testing.assert_allclose(rec.kinematics["knee_angle_r_beta"], ik[:, 6])
    rec1 = read_folder_trial(w1)
    # muscles come from the model: FX, the reserve and the pelvis actuator are actuators
    assert list(rec1.forces.columns) == ["glmax1_r", "recfem_l"]
    assert rec1.model_family == "rajagopal"


def test_folder_in_degrees_override_and_radians_files(tmp_path):
    root = tmp_path / "lab"
    _write_lab(root)
    p = root / "P01" / "walk2_ik.mot"
    ik = _ik_values()
    _mot(p, IK_COLS, T, ik, "Coordinates\nversion=1\n")  # new header, no inDegrees: radians
    ft = next(t for t in folder_trials(root) if t.trial_id == "P01_walk2")
    np.testing.assert_allclose(read_folder_trial(ft).kinematics["hip_flexion_r"], ik[:, 4])
    (root / "folder.json").write_text(json.dumps({"in_degrees": True}))
    ft = next(t for t in folder_trials(root) if t.trial_id == "P01_walk2")
    np.testing.assert_allclose(read_folder_trial(ft).kinematics["hip_flexion_r"],
                               np.deg2rad(ik[:, 4]))


def test_folder_errors_name_the_file(tmp_path):
    with pytest.raises(MissingFileError, match="folder not found"):
        folder_trials(tmp_path / "none")
    root = tmp_path / "lab"
    _write_lab(root)
    (root / "subjects.csv").unlink()
    with pytest.raises(MissingFileError, match="subjects.csv"):
        folder_trials(root)
    (root / "subjects.csv").write_text("subject,mass_kg\nP01,seventy\nP02,60\n")
    with pytest.raises(DatasetError) as ei:
        folder_trials(root)
    assert "subjects.csv:2 (column mass_kg)" in str(ei.value)
    (root / "subjects.csv").write_text("subject,mass_kg\nP01,70\n")
    with pytest.raises(DatasetError, match="'P02' is not a subject") as ei:
        folder_trials(root)
    assert "walk1_ik.mot" in str(ei.value)
    (root / "subjects.csv").write_text("subject,mass_kg\nP01,70\nP02,60\n")
    (root / "folder.json").write_text('{"modle": "x.osim"}')
    with pytest.raises(DatasetError, match="unknown key"):
        folder_trials(root)
    (root / "folder.json").unlink()
    # a label file off the IK time grid: refused, not resampled
    _mot(root / "P01" / "walk1_id.sto", ["hip_flexion_r_moment"], T[:3] + 0.005,
         np.ones((3, 1)), "ID\nversion=1\ninDegrees=no\n")
    ft = folder_trials(root)[0]
    with pytest.raises(DatasetError, match="not a time of the IK file") as ei:
        read_folder_trial(ft)
    assert "walk1_id.sto" in str(ei.value)
    # malformed table: the table reader's error names the file
    (root / "P01" / "walk1_id.sto").write_text("no header here\n")
    with pytest.raises(TableFormatError, match="walk1_id.sto"):
        read_folder_trial(ft)
    # flat file that cannot be matched to a subject
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "subjects.csv").write_text("subject,mass_kg\nP01,70\n")
    shutil.copy(root / "P01" / "walk2_ik.mot", flat / "trialA_ik.mot")
    with pytest.raises(DatasetError, match="which subject") as ei:
        folder_trials(flat)
    assert "trialA_ik.mot" in str(ei.value)
    (flat / "trials.csv").write_text("trial,subject\ntrialA,P01\n")
    assert [t.trial_id for t in folder_trials(flat)] == ["P01_trialA"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "subjects.csv").write_text("subject,mass_kg\nP01,70\n")
    with pytest.raises(DatasetError, match="no \\*_ik.mot"):
        folder_trials(empty)
