"""Training protocol on the synthetic dataset: features, split, training, CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from opensim_surrogate.cli import main
from opensim_surrogate.errors import InputError
from opensim_surrogate.train import features as F
from opensim_surrogate.train.protocol import (TrainConfig, cycle_samples, fit, group_kfold,
                                              make_config, predict_trials, prepare_data,
                                              run_protocol, split_subjects, bundle_from_fit)
from synthetic import make_synthetic_dataset, simple_mirror


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("syn") / "ds", n_subjects=6, seed=3)


@pytest.fixture(scope="module")
def prepared(dataset_dir):
    return prepare_data(dataset_dir, mirror=simple_mirror)


def test_split_and_folds_are_deterministic_and_disjoint():
    subs = [f"S{i:02d}" for i in range(18)]
    pool, test = split_subjects(subs, 0.2, seed=0)
    assert len(test) == 4 and not set(pool) & set(test) and sorted(pool + test) == subs
    assert split_subjects(list(reversed(subs)), 0.2, seed=0) == (pool, test)
    assert split_subjects(subs, 0.2, seed=1)[1] != test
    folds = group_kfold(pool, 5, seed=0)
    assert len(folds) == 5
    vals = [v for _, v in folds]
    assert sorted(sum(vals, [])) == sorted(pool)           # every pool subject validated once
    for tr, va in folds:
        assert not set(tr) & set(va) and sorted(tr + va) == sorted(pool)
    assert group_kfold(pool, 5, seed=0) == folds


def test_window_features_match_analytic_derivatives():
    t = np.arange(200) / 100.0
    cols = {c: 0.3 * np.sin(2 * np.pi * t + k) for k, c in enumerate(F.PAPER_ANGLES)}
    cols.update(pelvis_tx=1.2 * t, pelvis_ty=0.9 + 0.01 * np.sin(4 * np.pi * t))
    kin = pd.DataFrame(cols, index=pd.Index(t, name="time"))
    spec = F.WindowFeatureSpec(coordinates=list(F.PAPER_ANGLES),
                               translations=["pelvis_tx", "pelvis_ty"],
                               optional_coordinates=["lumbar_extension"],
                               fill_values={"lumbar_extension": -0.05}, height_fill=1.7)
    x = F.window_features(kin, spec, height_m=None)
    names = spec.feature_names()
    assert x.shape == (200, len(names)) and len(spec.feature_units()) == len(names)
    col = {n: x[:, i] for i, n in enumerate(names)}
    inner = slice(10, -10)
    w = 2 * np.pi
    assert np.allclose(col["hip_flexion_r:vel"][inner], 0.3 * w * np.cos(w * t)[inner], rtol=0,
                       atol=0.01 * 0.3 * w)
    assert np.allclose(col["hip_flexion_r:acc"][inner], -0.3 * w ** 2 * np.sin(w * t)[inner],
                       atol=0.03 * 0.3 * w ** 2)
    assert np.allclose(col["pelvis_tx:vel"], 1.2, atol=1e-6)       # speed, not position
    assert abs(np.median(col["pelvis_ty:rel"])) < 1e-3              # relative height
    assert np.all(col["lumbar_extension"] == -0.05)
    assert np.allclose(col["lumbar_extension:vel"], 0, atol=1e-9)
    assert np.all(col["height_m"] == 1.7)
    with pytest.raises(InputError, match="pelvis_tx"):
        F.window_features(kin.drop(columns="pelvis_tx"), spec)
    with pytest.raises(InputError, match="at least 30"):
        F.window_features(kin.iloc[:20], spec)
    with pytest.raises(InputError, match="100 Hz"):
        F.window_features(kin.iloc[::2], spec)


@pytest.mark.parametrize("n", [31, 64, 157])
def test_sliding_windows_blend_back_exactly(n):
    seq = np.random.default_rng(n).normal(size=(n, 3))
    calls = []

    def forward(batch):
        calls.append(batch.shape)
        return {"a": batch.astype(np.float64) * 2.0}

    out = F.predict_sequences(forward, [seq, seq[:45]], length=64, stride=16)
    assert len(calls) == 1                                   # all windows in one pass
    assert np.allclose(out[0]["a"], 2 * seq, atol=1e-5)
    assert np.allclose(out[1]["a"], 2 * seq[:45], atol=1e-5)


def test_cycle_samples_swap_left_cycles(prepared):
    trials = prepared.trials
    samples = cycle_samples(trials, prepared.names)
    n_cycles = sum(1 for t in trials for c in t.cycles if c["end"] - c["start"] >= 0.3)
    assert len(samples) == n_cycles > 0
    left = next(s for s in samples if s.leg == "l")
    t = next(t for t in trials if t.trial_id == left.trial_id)
    c = next(c for c in t.cycles if c["leg"] == "l")
    raw = F.cycle_inputs(t.kinematics, c["start"], c["end"])
    i_r, i_l = F.PAPER_ANGLES.index("hip_flexion_r"), F.PAPER_ANGLES.index("hip_flexion_l")
    assert np.allclose(left.x[:, i_r], raw[:, i_l])          # the left leg became "right"
    assert left.x.shape == (F.CYCLE_SAMPLES, 10)
    names = prepared.names["moments"]
    j = names.index("hip_flexion_r_moment")
    lab = left.labels["moments"][:, j]
    ok = left.masks["moments"][:, j]
    src, _ = F.resample_table(t.time, t.labels["moments"][:, names.index("hip_flexion_l_moment")
                                                             ][:, None],
                              F.cycle_times(c["start"], c["end"]))
    assert np.allclose(lab[ok], src[ok, 0])


def _mse(pred, trials, head):
    se = n = 0.0
    for p, t in zip(pred, trials):
        m = t.masks[head]
        se += float(np.sum((p[head] - np.nan_to_num(t.labels[head]))[m] ** 2))
        n += m.sum()
    return se / n


def test_tiny_training_reduces_loss_and_beats_the_mean(prepared):
    pool, test = split_subjects(prepared.subjects, 0.2, seed=0)
    cfg = make_config("quick", arch="transformer", scheme="window", max_epochs=25,
                      crops_per_trial=4, lr=3e-3, threads=2)
    res = fit(cfg, prepared, pool, None, epochs=25)
    losses = [h["train_loss"] for h in res.history]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])
    bundle = bundle_from_fit(res, prepared)
    trials = prepared.originals(test)
    pred = predict_trials(bundle, trials)
    train = prepared.originals(pool)
    for head in ("moments", "forces"):
        mean = np.nanmean(np.concatenate([t.labels[head] for t in train]), axis=0)
        trivial = [{head: np.broadcast_to(mean, t.labels[head].shape)} for t in trials]
        assert _mse(pred, trials, head) < 0.5 * _mse(trivial, trials, head), head


def test_training_is_reproducible(prepared):
    cfg = make_config("quick", arch="mamba", scheme="window")
    a = fit(cfg, prepared, prepared.subjects[:3], prepared.subjects[3:4], run_seed=1)
    b = fit(cfg, prepared, prepared.subjects[:3], prepared.subjects[3:4], run_seed=1)
    assert a.history == b.history and a.best_epoch == b.best_epoch
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(v, w), k


def test_cycle_scheme_protocol(prepared):
    cfg = make_config("quick", arch="lstm", scheme="cycle")
    res = run_protocol(cfg, prepared)
    assert len(res.folds) == 2 and res.final_epochs >= 1
    assert set(res.evaluation) == {"moments", "forces", "hip_moments", "hip_groups"}
    test = prepared.originals(res.test)
    for t, p in zip(test, res.test_predictions):
        inside = np.zeros(t.n_frames, bool)
        for c in t.cycles:
            inside |= (t.time >= c["start"]) & (t.time <= c["end"])
        assert np.isfinite(p["moments"][inside]).all()
        assert np.isnan(p["moments"][~inside]).all()
    meta = res.bundle.metadata
    assert meta["scheme"] == "cycle" and meta["inputs"]["names"] == F.PAPER_ANGLES
    assert meta["training"]["split"]["test_subjects"] == res.test


def test_config_validation():
    with pytest.raises(InputError, match="architecture"):
        TrainConfig(arch="gru")
    with pytest.raises(InputError, match="preset"):
        make_config("huge")
    assert make_config("paper").lr == 1e-4 and make_config("paper").max_epochs == 300


def test_cli_train_and_compare_quick(dataset_dir, tmp_path, capsys):
    out = tmp_path / "osim_models" / "tiny"
    rc = main(["train", "--dataset", str(dataset_dir), "--arch", "transformer", "--scheme",
               "window", "--out", str(out), "--quick"])
    assert rc == 0
    assert {p.name for p in out.iterdir()} == {"weights.safetensors", "metadata.json",
                                              "README.md"}
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["metrics"]["moments"]["overall"]["n_subjects"] == 1
    assert "R² ch" in (out / "README.md").read_text()
    cmp_dir = tmp_path / "compare"
    rc = main(["compare", "--dataset", str(dataset_dir), "--out", str(cmp_dir), "--quick"])
    assert rc == 0
    overall = pd.read_csv(cmp_dir / "overall.csv")
    methods = set(overall["method"])
    assert methods == {f"{a}/{s}" for a in ("lstm", "transformer", "mamba")
                       for s in ("cycle", "window")} | {"template", "ridge"}
    cyc = overall[(overall["frames"] == "cycle_frames") & (overall["group"] == "moments")]
    assert len(cyc) == 8 and cyc["r2_channel"].notna().all()
    nets = overall[overall["kind"] == "network"]
    assert nets["beats_baselines"].notna().all()
    md = (cmp_dir / "comparison.md").read_text()
    assert "Gait2Hip-60" in md and "0.862" in md and "R² paper" in md
    for f in ("per_condition.csv", "per_channel.csv", "per_subject.csv", "cv.csv",
              "results.json"):
        assert (cmp_dir / f).is_file()
    # a rerun (no cache) reproduces the numbers exactly
    rc = main(["compare", "--dataset", str(dataset_dir), "--out", str(tmp_path / "again"),
               "--quick", "--archs", "transformer", "--schemes", "window", "--no-resume"])
    assert rc == 0
    again = pd.read_csv(tmp_path / "again" / "overall.csv")
    cols = ["rmse", "mae", "r2_paper", "r2_channel"]
    a = overall[overall["method"] == "transformer/window"].sort_values(["frames", "group"])
    b = again[again["method"] == "transformer/window"].sort_values(["frames", "group"])
    assert np.array_equal(a[cols].to_numpy(), b[cols].to_numpy())
    # a user mistake is one line and exit status 2
    assert main(["train", "--dataset", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "dataset" in capsys.readouterr().err
