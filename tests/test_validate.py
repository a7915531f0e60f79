"""Reduced validation end to end: synthetic dataset + a tiny bundle, through the CLI.

The bundle is trained here with the trainer's own API (``train.protocol``) on a synthetic
dataset in the real schema; ``opensim-surrogate validate`` then writes the reports, whose
numbers must equal those the trainer's metrics module computes on the same predictions.
"""
from __future__ import annotations

import base64
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opensim_surrogate.validate import compare as C

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import make_synthetic_dataset  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from opensim_surrogate.train.protocol import make_config, prepare_data, run_protocol

    root = tmp_path_factory.mktemp("validate")
    data = make_synthetic_dataset(root / "synthetic", n_subjects=6, duration_s=2.0, seed=3)
    prep = prepare_data(data, mirror=False)
    cfg = make_config("quick", arch="lstm", hyperparameters={"hidden_size": 16, "num_layers": 1},
                      window=48, stride=16, threads=1)
    res = run_protocol(cfg, prep, "tiny", final_epochs=2)
    bundle_dir = res.bundle.save(root / "tiny_bundle")
    out = root / "report"
    proc = subprocess.run([sys.executable, "-m", "opensim_surrogate", "validate", "--dataset",
                           str(data), "--bundle", str(bundle_dir), "--out", str(out),
                           "--physics", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"data": data, "bundle": bundle_dir, "out": out, "stdout": Path(proc.stdout),
            "test": res.test}


def _md_table(md: str, heading: str) -> list[list[str]]:
    """Rows (cells) of the first Markdown table after ``heading``."""
    i = md.index(heading)
    rows = []
    for line in md[i:].splitlines()[1:]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            if not set(line.replace("|", "").strip()) <= {"-"}:
                rows.append(cells)
        elif rows:
            break
    return rows


def _close(text: str, value: float) -> bool:
    if not math.isfinite(value):
        return text == "–"
    return float(text) == pytest.approx(value, rel=6e-4, abs=1e-12)


def test_report_files_and_html(trained: dict[str, Path]) -> None:
    out = trained["out"]
    for name in ("report.md", "report.html", "metrics.json", "per_output_moments.csv",
                 "per_subject_forces.csv", "per_condition_groups.csv", "paper.csv"):
        assert (out / name).is_file(), name
    for fig in ("cycles_moments", "cycles_hip_muscles", "r2_muscles", "bland_altman_hip"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 5000
    html = (out / "report.html").read_text()
    imgs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(imgs) == 4
    for b64 in imgs:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    # self-contained: no external resource, no script
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "<table" in html and "Gait2Hip-60 Transformer" in html and "Bland" in html
    md = (out / "report.md").read_text()
    assert "held-out (test) subjects" in md and "synthetic trial, no OpenSim model" in md


def test_report_numbers_equal_metrics_module(trained: dict[str, Path]) -> None:
    """Recompute from scratch (dataset + bundle + metrics module) and compare with report.md."""
    from opensim_surrogate.bundle import Bundle
    from opensim_surrogate.dataset.store import Dataset
    from opensim_surrogate.train import metrics as M

    ds = Dataset(trained["data"])
    bundle = Bundle.load(trained["bundle"])
    test = set(trained["test"])
    trials_m, trials_g = [], []
    groups = [f"{g}_r" for g in C.HIP_GROUPS]
    for tid in ds.trial_ids:
        rec = ds.load(tid)
        if rec.subject not in test:
            continue
        pred = bundle.predict(rec.kinematics, rec.mass_kg, rec.height_m)
        mcols = list(pred.moments.columns)
        y = rec.moments[mcols].to_numpy(float) / rec.mass_kg
        p = pred.moments.to_numpy(float) / rec.mass_kg
        m = rec.mask["id_valid"].to_numpy(bool)[:, None] & np.isfinite(y)
        trials_m.append(M.EvalTrial(rec.subject, rec.condition, np.nan_to_num(y), p, m))
        fy = pd.DataFrame({g: sum(rec.forces[f"{part}_r"] for part in C.HIP_GROUPS[g[:-2]])
                           for g in groups}).to_numpy(float) / rec.mass_kg
        fp = pd.DataFrame({g: sum(pred.forces[f"{part}_r"] for part in C.HIP_GROUPS[g[:-2]])
                           for g in groups}).to_numpy(float) / rec.mass_kg
        fm = rec.mask["so_valid"].to_numpy(bool)[:, None] & np.isfinite(fy)
        trials_g.append(M.EvalTrial(rec.subject, rec.condition, np.nan_to_num(fy), fp, fm))
    assert trials_m
    md = (trained["out"] / "report.md").read_text()
    # Gait2Hip-60 table: our row of the 3 right-hip moments and of the 14 right-hip groups
    paper = _md_table(md, "## Beside Gait2Hip-60")
    ours = [r for r in paper if r[1] == "this surrogate"]
    hip = [mcols.index(c) for c in C.PAPER_OUTPUTS["moments"]]
    sub = [M.EvalTrial(t.subject, t.condition, t.y[:, hip], t.p[:, hip], t.mask[:, hip])
           for t in trials_m]
    for row, trials in ((ours[0], sub), (ours[1], trials_g)):
        ref = M.subject_mean(trials)
        for cell, key in zip(row[2:6], ("rmse", "mae", "r2_paper", "r2_channel")):
            assert _close(cell, ref[key]), (row, key, ref[key])
    # overall moments row: every moment channel
    overall = _md_table(md, "## Overall")
    ref = M.subject_mean(trials_m)
    row = next(r for r in overall if r[0].startswith("moments"))
    for cell, key in zip(row[1:5], ("rmse", "mae", "r2_paper", "r2_channel")):
        assert _close(cell, ref[key]), (key, cell, ref[key])
    # per-output table of the moments: RMSE / MAE / R² per channel
    per = {r[0]: r for r in _md_table(md, "## Joint moments")}
    pc = M.per_channel(trials_m, mcols).set_index("channel")
    for ch in mcols:
        assert _close(per[ch][1], pc.loc[ch, "rmse"])
        assert _close(per[ch][3], pc.loc[ch, "mae"])
        assert _close(per[ch][4], pc.loc[ch, "r2"])
    # the paper's R² (grand mean) flatters: on 14 groups of very different sizes it exceeds
    # the per-channel one
    assert float(ours[1][4]) > float(ours[1][5])


def test_cycle_normalisation_and_peaks() -> None:
    """0–100 % resampling with NaN where invalid; peaks and Bland–Altman by hand."""
    t = np.arange(0, 2.0001, 0.01)
    y = np.sin(2 * np.pi * t)
    y_ref = y.copy()
    y_ref[(t > 0.5) & (t < 0.6)] = np.nan            # an invalid stretch
    idx = pd.Index(t, name="time")
    ref = {"moments": pd.DataFrame({"hip_flexion_r_moment": y_ref}, index=idx)}
    pred = {"moments": pd.DataFrame({"hip_flexion_r_moment": 1.1 * y}, index=idx)}
    for h in ("forces", "groups"):
        ref[h] = pred[h] = pd.DataFrame(index=idx)
    comp = C.TrialComparison("T", "S", "C", "rajagopal", 70.0, ref, pred,
                             cycles=[{"leg": "r", "start": 0.0, "end": 1.0},
                                     {"leg": "l", "start": 0.2, "end": 1.2},
                                     {"leg": "r", "start": 1.0, "end": 2.0}])
    R, P, used = C.cycle_curves(comp, "moments", "hip_flexion_r_moment")
    assert R.shape == (2, 101) and len(used) == 2          # right cycles only
    assert np.isnan(R[0, 51:60]).all() and np.isfinite(R[0, :50]).all()
    assert np.isnan(P[0, 55])                               # prediction masked like the ref
    assert R[0, 25] == pytest.approx(1.0) and P[1, 25] == pytest.approx(1.1)
    pk = C.cycle_peaks([comp], "moments", ["hip_flexion_r_moment"], kind="max")
    assert list(pk["ref_time_pct"]) == [25.0, 25.0]
    assert np.allclose(pk["pred_peak"] - pk["ref_peak"], 0.1)
    ext = C.cycle_peaks([comp], "moments", ["hip_flexion_r_moment"], kind="min")
    assert np.allclose(ext["ref_peak"], -1.0) and np.allclose(ext["ref_time_pct"], 75.0)
    ba = C.bland_altman(np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 3.5]))
    assert ba["bias"] == pytest.approx(1 / 3)
    sd = np.std([0.5, 0.0, 0.5], ddof=1)
    assert ba["loa_high"] == pytest.approx(1 / 3 + 1.96 * sd)
    assert C.joint_of("hip_flexion_l_moment") == "hip_flexion_moment"
    assert C.side_of("glmax1_l") == "l" and C.side_of("pelvis_tilt_moment") is None


def test_validate_cli_errors(tmp_path: Path, trained: dict[str, Path]) -> None:
    from opensim_surrogate.cli import main

    assert main(["validate", "--dataset", str(tmp_path / "none"), "--out",
                 str(tmp_path / "o")]) == 2
    assert main(["validate", "--dataset", str(trained["data"]), "--bundle",
                 str(trained["bundle"]), "--out", str(tmp_path / "o"), "--subjects",
                 "NOBODY"]) == 2
    assert main(["validate", "--dataset", str(trained["data"]), "--bundle",
                 str(tmp_path / "no_bundle"), "--out", str(tmp_path / "o")]) == 2
