"""Drop-in InverseDynamicsTool / AnalyzeTool on REAL setup files written by OpenSim itself.

The setups are built with ``opensim.InverseDynamicsTool`` / ``opensim.AnalyzeTool`` and written
with ``printToXML``; real OpenSim runs them on a few frames (from the setup's folder, as
``opensim-cmd run-tool`` does) and our tools run them too. Same output path, same header, same
time stamps, labels a subset in the same order; our files read back with OpenSim's readers.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import opensim
import pytest

import opensim_surrogate as surrogate
from opensim_surrogate.errors import BundleNotFoundError, InputError, MissingFileError, ModelFileError
from opensim_surrogate.osim.model import read_model
from opensim_surrogate.paths import data_root
from opensim_surrogate.surrogate.tools import tool_for_setup
from opensim_surrogate.surrogate.writers import multibody_tree_order

from test_surrogate_api import get_test_bundle  # noqa: E402  (shared fixture helper)

opensim.Logger.setLevelString("error")

DATA = data_root()
RAJ = DATA / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim"
WALK = DATA / "schreiber2019" / "2014001" / "ik" / "C4_05" / "C4_05_ik.mot"
GRF = DATA / "schreiber2019" / "2014001" / "dynamic" / "2014001_C4_05_grf.xml"
HAMNER = DATA / "hamner2013" / "subject01"
ID_RANGE = (0.30, 0.35)
SO_RANGE = (0.30, 0.32)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return get_test_bundle(tmp_path_factory)


def _id_setup(path: Path, *, model=RAJ, coords=WALK, results="results", name="walk",
              out="walk_id.sto", t=ID_RANGE) -> Path:
    idt = opensim.InverseDynamicsTool()
    idt.setName(name)
    idt.setModelFileName(str(model))
    idt.setCoordinatesFileName(str(coords))
    idt.setExternalLoadsFileName(str(GRF))
    idt.setStartTime(t[0])
    idt.setEndTime(t[1])
    idt.setResultsDir(results)
    idt.setOutputGenForceFileName(out)
    ex = opensim.ArrayStr()
    ex.append("Muscles")
    idt.setExcludedForces(ex)
    idt.setLowpassCutoffFrequency(6.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    idt.printToXML(str(path))
    return path


def _so_setup(path: Path, *, model=RAJ, coords=WALK, results="results", name="walk",
              t=SO_RANGE, analysis: str = "so") -> Path:
    at = opensim.AnalyzeTool()
    at.setName(name)
    at.setModelFilename(str(model))
    at.setCoordinatesFileName(str(coords))
    at.setExternalLoadsFileName(str(GRF))
    at.setLowpassCutoffFrequency(6.0)
    at.setInitialTime(t[0])
    at.setFinalTime(t[1])
    at.setResultsDir(results)
    if analysis == "so":
        a = opensim.StaticOptimization()
        a.setStartTime(t[0])
        a.setEndTime(t[1])
    else:
        a = opensim.MuscleAnalysis()
    at.getAnalysisSet().cloneAndAppend(a)
    path.parent.mkdir(parents=True, exist_ok=True)
    at.printToXML(str(path))
    return path


@pytest.fixture(scope="module")
def real_outputs(tmp_path_factory):
    """Real OpenSim ID (6 frames) and SO (3 frames), run from their setup folder."""
    d = tmp_path_factory.mktemp("opensim_run")
    id_xml = _id_setup(d / "setup_ID.xml")
    so_xml = _so_setup(d / "setup_SO.xml")
    cwd = os.getcwd()
    os.chdir(d)
    try:
        assert opensim.InverseDynamicsTool(str(id_xml)).run()
        assert opensim.AnalyzeTool(str(so_xml)).run()
    finally:
        os.chdir(cwd)
    return {"id": d / "results" / "walk_id.sto",
            "so": d / "results" / "walk_StaticOptimization_force.sto"}


def _split(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    text = path.read_text()
    head, _, body = text.partition("endheader\n")
    lines = body.splitlines()
    labels = lines[0].split("\t")
    data = np.array([[float(x) for x in ln.split("\t")] for ln in lines[1:] if ln.strip()])
    return head.splitlines(), labels, data


def _opensim_read(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    tab = opensim.TimeSeriesTable(str(path))
    labels = list(tab.getColumnLabels())
    sto = opensim.Storage(str(path))
    arr = sto.getColumnLabels()
    sto_labels = [arr.get(i) for i in range(arr.getSize())]
    assert sto_labels == ["time", *labels]
    return labels, np.asarray(tab.getIndependentColumn()), tab.getMatrix().to_numpy()


def _is_subsequence(sub: list[str], full: list[str]) -> bool:
    it = iter(full)
    return all(x in it for x in sub)


# ------------------------------------------------------------------ ID
def test_id_tool_matches_opensim_output_path_header_and_layout(tmp_path, real_outputs, bundle):
    xml = _id_setup(tmp_path / "setup_ID.xml")
    tool = surrogate.InverseDynamicsTool(xml, bundle=bundle)
    assert tool.model_file == RAJ and tool.time_range == ID_RANGE
    assert tool.run() is True
    ours = tmp_path / "results" / "walk_id.sto"  # relative results_directory: setup folder
    assert tool.output_files == [ours] and ours.is_file()
    h_ours, lab_ours, d_ours = _split(ours)
    h_real, lab_real, d_real = _split(real_outputs["id"])
    assert h_ours[0] == h_real[0] == "Inverse Dynamics Generalized Forces"
    assert [x for x in h_ours if not x.startswith("nColumns")] == \
        [x for x in h_real if not x.startswith("nColumns")]  # nRows too: same frames
    assert lab_ours[0] == lab_real[0] == "time"
    assert _is_subsequence(lab_ours[1:], lab_real[1:])
    assert {"hip_flexion_r_moment", "knee_angle_l_moment", "ankle_angle_r_moment"} <= set(lab_ours)
    assert np.allclose(d_ours[:, 0], d_real[:, 0])  # same time stamps
    # same number formatting (%16.8f, tab separated)
    first_ours = ours.read_text().split("endheader\n")[1].splitlines()[1].split("\t")[0]
    first_real = real_outputs["id"].read_text().split("endheader\n")[1].splitlines()[1].split("\t")[0]
    assert len(first_ours) == len(first_real) == 16
    # read back by OpenSim
    labels, t, values = _opensim_read(ours)
    res = tool.result
    assert labels == list(res.moments.columns)
    assert np.allclose(t, res.moments.index) and np.allclose(values, res.moments.to_numpy(), atol=1e-7)


def test_multibody_tree_order_equals_opensim_id_columns(real_outputs):
    _, lab_real, _ = _split(real_outputs["id"])
    info = read_model(RAJ)
    order = multibody_tree_order(info)
    kinds = {c.name: c.motion_type for c in info.coordinates}
    expect = [f"{c}_moment" if kinds[c] == "rotational" else f"{c}_force" for c in order]
    assert lab_real[1:] == expect


# ------------------------------------------------------------------ SO
def test_analyze_tool_matches_opensim_so_force_file(tmp_path, real_outputs, bundle):
    xml = _so_setup(tmp_path / "setup_SO.xml")
    tool = surrogate.AnalyzeTool(xml, bundle=bundle)
    assert tool.analysis_name == "StaticOptimization" and tool.name == "walk"
    assert tool.run() is True
    ours = tmp_path / "results" / "walk_StaticOptimization_force.sto"
    assert tool.output_files == [ours]
    h_ours, lab_ours, d_ours = _split(ours)
    h_real, lab_real, d_real = _split(real_outputs["so"])
    assert h_ours[0] == h_real[0] == "ModelForces"
    assert [x for x in h_ours if not x.startswith("nColumns")] == \
        [x for x in h_real if not x.startswith("nColumns")]
    assert np.allclose(d_ours[:, 0], d_real[:, 0])
    muscles = read_model(RAJ).muscle_names()
    assert lab_ours[1:] == [m for m in muscles if m in lab_ours]  # ForceSet order
    assert _is_subsequence(lab_ours[1:], lab_real[1:])
    assert len(lab_ours) - 1 == len(muscles) == 80
    labels, t, values = _opensim_read(ours)
    assert labels == list(tool.result.forces.columns)
    assert np.allclose(values, tool.result.forces.to_numpy(), atol=1e-7)
    assert (values >= 0).all()
    assert not (tmp_path / "results" / "walk_id.sto").exists()  # only the SO file


def test_run_tool_dispatches_on_the_root_element(tmp_path, bundle):
    idt = tool_for_setup(_id_setup(tmp_path / "a" / "id.xml"), bundle=bundle)
    at = tool_for_setup(_so_setup(tmp_path / "b" / "so.xml"), bundle=bundle)
    assert isinstance(idt, surrogate.InverseDynamicsTool) and isinstance(at, surrogate.AnalyzeTool)
    ik = opensim.InverseKinematicsTool()
    ik.setName("ik")
    ik.printToXML(str(tmp_path / "ik.xml"))
    with pytest.raises(ModelFileError) as ei:
        tool_for_setup(tmp_path / "ik.xml")
    assert "InverseKinematicsTool" in str(ei.value) and str(tmp_path / "ik.xml") in str(ei.value)


def test_relative_paths_resolve_against_the_setup_folder(tmp_path, bundle, monkeypatch):
    setup_dir = tmp_path / "deep" / "setups"
    setup_dir.mkdir(parents=True)
    rel_model = os.path.relpath(RAJ, setup_dir)
    rel_coords = os.path.relpath(WALK, setup_dir)
    xml = _id_setup(setup_dir / "id.xml", model=rel_model, coords=rel_coords, results="../out")
    monkeypatch.chdir(tmp_path)  # somewhere else
    tool = surrogate.InverseDynamicsTool(xml, bundle=bundle)
    assert tool.model_file.resolve() == RAJ.resolve()
    tool.run()
    assert (tmp_path / "deep" / "out" / "walk_id.sto").is_file()


def test_gait2392_setup_gives_moments_but_no_static_optimization(tmp_path, bundle):
    model = HAMNER / "model" / "subject01_adjusted_scaled.osim"
    coords = HAMNER / "ik" / "Run_2.mot"
    xml = _id_setup(tmp_path / "id.xml", model=model, coords=coords, t=(1.0, 1.5))
    tool = surrogate.InverseDynamicsTool(xml, bundle=bundle)
    tool.run()
    labels, t, _ = _opensim_read(tmp_path / "results" / "walk_id.sto")
    assert "knee_angle_r_moment" in labels and t[0] == pytest.approx(1.0) and t[-1] == pytest.approx(1.5)
    so = _so_setup(tmp_path / "so.xml", model=model, coords=coords, t=(1.0, 1.1))
    with pytest.raises(BundleNotFoundError, match="static optimization needs a bundle"):
        surrogate.AnalyzeTool(so, bundle=bundle).run()


# ------------------------------------------------------------------ bad setups
def _edit(src: Path, dst: Path, old: str, new: str) -> Path:
    text = src.read_text()
    assert old in text
    dst.write_text(text.replace(old, new))
    return dst


def test_missing_elements_are_named(tmp_path):
    xml = _id_setup(tmp_path / "id.xml")
    import re

    text = xml.read_text()
    no_model = tmp_path / "no_model.xml"
    no_model.write_text(re.sub(r"<model_file>[^<]*</model_file>", "", text))
    with pytest.raises(ModelFileError) as ei:
        surrogate.InverseDynamicsTool(no_model)
    assert "<model_file>" in str(ei.value) and ei.value.path == no_model
    empty_coords = tmp_path / "empty_coords.xml"
    empty_coords.write_text(re.sub(r"<coordinates_file>[^<]*</coordinates_file>",
                                   "<coordinates_file />", text))
    with pytest.raises(ModelFileError, match="coordinates_file"):
        surrogate.InverseDynamicsTool(empty_coords)
    bad_range = tmp_path / "bad_range.xml"
    bad_range.write_text(re.sub(r"<time_range>[^<]*</time_range>", "<time_range>a b</time_range>",
                                text))
    with pytest.raises(ModelFileError, match="time_range"):
        surrogate.InverseDynamicsTool(bad_range)
    wrong = tmp_path / "wrong.xml"
    _so_setup(wrong)
    with pytest.raises(ModelFileError, match="expected an <InverseDynamicsTool>"):
        surrogate.InverseDynamicsTool(wrong)


def test_analyze_tool_without_static_optimization_is_refused(tmp_path):
    xml = _so_setup(tmp_path / "ma.xml", analysis="muscle")
    with pytest.raises(ModelFileError) as ei:
        surrogate.AnalyzeTool(xml)
    assert "StaticOptimization" in str(ei.value) and ei.value.path == xml


def test_missing_input_files_are_named(tmp_path, bundle):
    xml = _id_setup(tmp_path / "id.xml", coords=tmp_path / "nope.mot")
    with pytest.raises(MissingFileError) as ei:
        surrogate.InverseDynamicsTool(xml, bundle=bundle).run()
    assert "nope.mot" in str(ei.value)
    xml2 = _so_setup(tmp_path / "so.xml", t=(5.0, 6.0))  # outside the trial
    with pytest.raises(InputError, match="contains no frame"):
        surrogate.AnalyzeTool(xml2, bundle=bundle).run()


def test_unsafe_setup_xml_is_refused(tmp_path):
    evil = tmp_path / "evil.xml"
    evil.write_text('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
                    "<OpenSimDocument><InverseDynamicsTool><model_file>&e;</model_file>"
                    "</InverseDynamicsTool></OpenSimDocument>\n")
    with pytest.raises(ModelFileError, match="entity"):
        surrogate.InverseDynamicsTool(evil)
