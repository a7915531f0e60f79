"""``opensim-surrogate run`` / ``run-tool`` / ``demo`` (the demo's report on a synthetic record)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import opensim
import pytest

from opensim_surrogate.cli import main
from opensim_surrogate.cli.demo import group_metrics, held_out_subjects, report
from opensim_surrogate.io.tables import read_table
from opensim_surrogate.paths import data_root

from test_surrogate_api import get_test_bundle  # noqa: E402  (shared fixture helper)

opensim.Logger.setLevelString("error")

DATA = data_root()
RAJ = DATA / "models" / "Uhlrich2022_SchreiberMoissenet2019.osim"
SUBJ = DATA / "schreiber2019" / "2014001"
WALKS = sorted((SUBJ / "ik").glob("*/*_ik.mot"))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> str:
    b = get_test_bundle(tmp_path_factory)
    assert isinstance(b, (str, Path))
    return str(b)


def test_run_many_files_with_a_glob(tmp_path, bundle, capsys):
    pattern = str(SUBJ / "ik" / "*" / "*_ik.mot")
    rc = main(["run", pattern, "--model", str(RAJ), "--bundle", bundle,
               "--out", str(tmp_path / "out"), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    assert len(WALKS) == 2
    for mot in WALKS:
        idf = tmp_path / "out" / f"{mot.stem}_id.sto"
        sof = tmp_path / "out" / f"{mot.stem}_StaticOptimization_force.sto"
        assert idf.is_file() and sof.is_file()
        line = next(ln for ln in out.splitlines() if ln.startswith(str(mot)))
        n = len(read_table(mot))
        assert f"{n} frames" in line and "warning" in line and str(idf) in line and str(sof) in line
        tab = opensim.TimeSeriesTable(str(idf))
        assert tab.getNumRows() == n
    assert "2 trials" in out


def test_same_file_names_in_different_folders_do_not_overwrite(tmp_path, bundle, capsys):
    pattern = str(DATA / "hamner2013" / "subject0[12]" / "ik" / "Run_2.mot")
    rc = main(["run", pattern, "--mass-kg", "70", "--bundle", bundle, "--out", str(tmp_path),
               "--no-progress"])
    assert rc == 0
    names = sorted(p.name for p in tmp_path.glob("*_id.sto"))
    assert names == ["subject01_ik_Run_2_id.sto", "subject02_ik_Run_2_id.sto"]
    out = capsys.readouterr().out
    assert out.count("warning") >= 2  # running is out of the walking distribution


def test_run_with_mass_only(tmp_path, bundle, capsys):
    rc = main(["run", str(WALKS[0]), "--mass-kg", "70", "--bundle", bundle,
               "--out", str(tmp_path)])
    assert rc == 0
    assert (tmp_path / f"{WALKS[0].stem}_id.sto").is_file()


def test_bad_input_exits_2_with_one_line_per_bad_file(tmp_path, bundle, capsys):
    bad = tmp_path / "bad.mot"
    df = read_table(WALKS[0]).drop(columns=["hip_flexion_r"])
    from opensim_surrogate.io.tables import write_table

    write_table(df, bad)
    rc = main(["run", str(WALKS[0]), str(bad), str(tmp_path / "missing.mot"),
               "--mass-kg", "70", "--bundle", bundle, "--out", str(tmp_path / "o"),
               "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 2
    err = [ln for ln in cap.err.splitlines() if ln.strip()]
    assert len(err) == 2 and all(ln.startswith("opensim-surrogate run: error:") for ln in err)
    assert any("hip_flexion_r" in ln for ln in err) and any("missing.mot" in ln for ln in err)
    assert "Traceback" not in cap.err
    assert (tmp_path / "o" / f"{WALKS[0].stem}_id.sto").is_file()  # the good one still ran
    assert "2 failed" in cap.out


def test_usage_errors_exit_2(tmp_path, bundle, capsys):
    assert main(["run", str(WALKS[0]), "--bundle", bundle]) == 2  # no mass
    assert "--mass-kg" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "*.mot"), "--mass-kg", "70"]) == 2  # glob matches nothing
    assert "no file matches" in capsys.readouterr().err
    assert main(["run", str(WALKS[0]), "--mass-kg", "70", "--bundle", "no_such_bundle"]) == 2
    err = capsys.readouterr().err
    assert "no_such_bundle" in err and err.count("\n") == 1


def test_run_tool_like_opensim_cmd(tmp_path, bundle, capsys):
    idt = opensim.InverseDynamicsTool()
    idt.setName("w")
    idt.setModelFileName(str(RAJ))
    idt.setCoordinatesFileName(str(WALKS[0]))
    idt.setResultsDir("res")
    idt.setOutputGenForceFileName("w_id.sto")
    idt.setLowpassCutoffFrequency(6)
    setup = tmp_path / "setup_ID.xml"
    idt.printToXML(str(setup))
    assert main(["run-tool", str(setup), "--bundle", bundle]) == 0
    out = tmp_path / "res" / "w_id.sto"
    assert out.is_file() and str(out) in capsys.readouterr().out
    ik = opensim.InverseKinematicsTool()
    ik.printToXML(str(tmp_path / "ik.xml"))
    assert main(["run-tool", str(tmp_path / "ik.xml")]) == 2
    err = capsys.readouterr().err
    assert "InverseKinematicsTool" in err and err.count("\n") == 1


# ------------------------------------------------------------------ demo pieces
def test_held_out_subjects_from_metadata():
    subs = ["a", "b", "c", "d"]
    assert held_out_subjects({"split": {"test_subjects": ["c"]}}, subs) == (["c"], "split.test_subjects")
    assert held_out_subjects({"train_subjects": ["a", "b"], "val_subjects": ["d"]}, subs)[0] == ["c"]
    assert held_out_subjects({}, subs) == ([], "")


def test_group_metrics():
    import pandas as pd

    t = np.linspace(0, 1, 50)
    ref = pd.DataFrame({"a": np.sin(6 * t), "b": np.cos(6 * t)})
    valid = np.ones(50, bool)
    r2, rmse, n = group_metrics(ref, ref, ["a", "b"], valid)
    assert r2 == pytest.approx(1.0) and rmse == 0.0 and n == 50
    r2, rmse, _ = group_metrics(ref, ref + 0.1, ["a", "b"], valid)
    assert rmse == pytest.approx(0.1) and r2 < 1.0


def test_demo_report_writes_table_markdown_and_png(tmp_path, bundle, capsys):
    """The demo's comparison on a synthetic stand-in for the reference record (the real demo
    runs OpenSim for ~2 minutes; `make demo`)."""
    from synthetic import make_synthetic_records

    rec = make_synthetic_records(n_subjects=1, conditions=("C4",), duration_s=1.6, seed=5)[0]
    rec.extras["scaled_model"] = str(RAJ)
    rec.extras["seconds"] = {"scale": 1.0, "ik": 10.0, "id": 1.5, "so": 30.0}
    rec.extras["workdir"] = str(tmp_path / "ref")

    class Spec:
        trial_id, subject, condition, mass_kg = rec.trial_id, rec.subject, "comfortable", rec.mass_kg

    lines: list[str] = []
    summary = report(rec, Spec, "synthetic record", bundle, tmp_path, say=lambda s="": lines.append(s))
    png = tmp_path / "comparison.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20000
    md = (tmp_path / "comparison.md").read_text()
    assert "| hip moments |" in md and "comparison.png" in md
    groups = {g["group"]: g for g in summary["groups"]}
    assert {"hip moments", "knee moments", "ankle moments", "main hip muscles"} <= set(groups)
    assert groups["hip moments"]["opensim_s"] == 1.5 and groups["main hip muscles"]["opensim_s"] == 30.0
    assert all(np.isfinite(g["rmse"]) for g in summary["groups"])
    table = "\n".join(lines)
    assert "R²" in table and "speed-up" in table
    assert (tmp_path / "surrogate" / f"{rec.trial_id}_id.sto").is_file()
