"""Bundles: round trip, runtime API, OOD, uncertainty, and refusal of bad checkpoints."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import opensim_surrogate.paths as paths
from opensim_surrogate.bundle import (FORMAT_VERSION, Bundle, Prediction, find_bundle,
                                      metadata_digest, save_bundle)
from opensim_surrogate.errors import BundleNotFoundError, CheckpointError, InputError
from opensim_surrogate.models import build_model
from opensim_surrogate.train.protocol import bundle_from_fit, fit, make_config, prepare_data
from synthetic import make_synthetic_records, simple_mirror


@pytest.fixture(scope="module")
def records():
    return make_synthetic_records(n_subjects=4, seed=7)


@pytest.fixture(scope="module")
def trained(records):
    prep = prepare_data(records, mirror=simple_mirror)
    cfg = make_config("quick", arch="transformer", scheme="window", max_epochs=3)
    res = fit(cfg, prep, prep.subjects[:3], None, epochs=3)
    return bundle_from_fit(res, prep, name="tiny")


@pytest.fixture()
def saved(trained, tmp_path):
    return trained.save(tmp_path / "tiny")


def _same(a: Prediction, b: Prediction) -> None:
    pd.testing.assert_frame_equal(a.moments, b.moments, check_exact=True)
    pd.testing.assert_frame_equal(a.forces, b.forces, check_exact=True)


def test_round_trip_identical_predictions(trained, saved, records):
    assert {p.name for p in saved.iterdir()} == {"weights.safetensors", "metadata.json",
                                                 "README.md"}
    loaded = Bundle.load(saved)
    rec = records[-1]
    a = trained.predict(rec.kinematics, rec.mass_kg, rec.height_m)
    b = loaded.predict(rec.kinematics, rec.mass_kg, rec.height_m)
    _same(a, b)
    assert list(b.moments.columns) == loaded.moment_names
    assert list(b.forces.columns) == loaded.muscle_names
    assert b.moments.index.equals(rec.kinematics.index)
    assert (b.forces.to_numpy() >= 0).all()
    # outputs scale with mass (per-kg network)
    c = loaded.predict(rec.kinematics, 2 * rec.mass_kg, rec.height_m)
    assert np.allclose(c.moments.to_numpy(), 2 * b.moments.to_numpy())
    # runtime description
    assert loaded.model_family == "rajagopal" and loaded.sample_rate == 100.0
    assert "hip_flexion_r" in loaded.input_coordinates and "pelvis_tx" in \
        loaded.input_coordinates
    assert set(loaded.optional_coordinates) == {"lumbar_extension", "lumbar_bending",
                                                "lumbar_rotation"}
    assert all(n.endswith("_moment") for n in loaded.moment_names)
    meta = loaded.metadata
    for key in ("format_version", "arch", "scheme", "inputs", "outputs", "model_family",
                "muscle_names", "training", "metrics", "versions", "integrity", "ood"):
        assert key in meta, key
    assert meta["outputs"]["moments"]["units"] == "N*m/kg"
    assert meta["outputs"]["forces"]["units"] == "N/kg"
    assert meta["training"]["fingerprint"]


def test_predict_many_equals_single_and_handles_short_inputs(saved, records):
    b = Bundle.load(saved)
    kins = [r.kinematics for r in records[:3]] + [records[3].kinematics.iloc[:35]]
    masses = [r.mass_kg for r in records[:4]]
    many = b.predict_many(kins, masses, [r.height_m for r in records[:4]])
    for k, m, r, p in zip(kins, masses, records, many):
        single = b.predict(k, m, r.height_m)
        np.testing.assert_allclose(p.moments.to_numpy(), single.moments.to_numpy(), rtol=1e-5,
                                   atol=1e-5)
    assert len(many[-1].moments) == 35          # shorter than the 64-frame window: padded
    with pytest.raises(InputError, match="at least 30"):
        b.predict(records[0].kinematics.iloc[:20], 70.0)
    with pytest.raises(InputError, match="hip_flexion_r"):
        b.predict(records[0].kinematics.drop(columns="hip_flexion_r"), 70.0)
    with pytest.raises(InputError, match="100 Hz"):
        b.predict(records[0].kinematics.iloc[::2], 70.0)
    with pytest.raises(InputError, match="mass"):
        b.predict(records[0].kinematics, -3.0)
    # optional coordinates may be absent
    out = b.predict(records[0].kinematics.drop(columns=["lumbar_bending"]), 70.0)
    assert np.isfinite(out.moments.to_numpy()).all()


def test_uncertainty_and_ood(saved, records):
    b = Bundle.load(saved)
    rec = records[0]
    p = b.predict(rec.kinematics, rec.mass_kg, rec.height_m, uncertainty=True)
    q = b.predict(rec.kinematics, rec.mass_kg, rec.height_m, uncertainty=True)
    det = b.predict(rec.kinematics, rec.mass_kg, rec.height_m)
    _same(p, det)                                   # the point prediction stays deterministic
    assert p.moments_std.shape == p.moments.shape and (p.forces_std.to_numpy() > 0).all()
    pd.testing.assert_frame_equal(p.forces_std, q.forces_std)   # fixed MC seed
    ok = b.ood(rec.kinematics, rec.height_m)
    assert ok.fraction_over < 0.05 and not ok.is_ood
    assert ok.distance.index.equals(rec.kinematics.index)
    weird = rec.kinematics.copy()
    for c in ("hip_flexion_r", "knee_angle_r", "ankle_angle_l"):
        weird[c] = weird[c] * 4.0
    bad = b.ood(weird, rec.height_m)
    assert bad.is_ood and bad.fraction_over > 0.5


def _rehash(d: Path, meta: dict) -> None:
    meta["integrity"]["weights_sha256"] = hashlib.sha256(
        (d / "weights.safetensors").read_bytes()).hexdigest()
    meta["integrity"]["metadata_sha256"] = metadata_digest(meta)
    (d / "metadata.json").write_text(json.dumps(meta))


def test_tampered_weights_refused(saved):
    w = saved / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-3] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256") as e:
        Bundle.load(saved)
    assert "weights_sha256" in str(e.value)


def test_edited_metadata_refused(saved):
    meta = json.loads((saved / "metadata.json").read_text())
    meta["outputs"]["forces"]["normalisation"]["mean"][0] += 1.0
    (saved / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="edited"):
        Bundle.load(saved)
    (saved / "metadata.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="JSON"):
        Bundle.load(saved)


def test_unknown_format_version_refused(saved):
    meta = json.loads((saved / "metadata.json").read_text())
    meta["format_version"] = FORMAT_VERSION + 98
    _rehash(saved, meta)
    with pytest.raises(CheckpointError, match="format version 99") as e:
        Bundle.load(saved)
    assert "format_version" in str(e.value)


def test_wrong_architecture_shapes_refused(saved, trained):
    meta = json.loads((saved / "metadata.json").read_text())
    # weights of a wider network, consistently re-hashed: only the shape check can catch it
    hp = dict(meta["arch"]["hyperparameters"], d_model=24)
    other = build_model("transformer", meta["arch"]["n_inputs"], meta["arch"]["head_sizes"],
                        **hp)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in other.state_dict().items()},
              str(saved / "weights.safetensors"))
    _rehash(saved, meta)
    with pytest.raises(CheckpointError, match="shape") as e:
        Bundle.load(saved)
    assert "arch.hyperparameters" in str(e.value) or "inputs.names" in str(e.value)


def test_inconsistent_outputs_and_unknown_arch_refused(saved):
    meta = json.loads((saved / "metadata.json").read_text())
    m2 = json.loads(json.dumps(meta))
    m2["outputs"]["forces"]["names"] = m2["outputs"]["forces"]["names"][:-1]
    _rehash(saved, m2)
    with pytest.raises(CheckpointError, match="forces") as e:
        Bundle.load(saved)
    assert "outputs.forces.names" in str(e.value)
    m3 = json.loads(json.dumps(meta))
    m3["arch"]["name"] = "gru"
    _rehash(saved, m3)
    with pytest.raises(CheckpointError, match="unknown architecture"):
        Bundle.load(saved)
    m4 = json.loads(json.dumps(meta))
    m4["arch"]["name"] = "lstm"      # known, but the tensors are a Transformer's
    m4["arch"]["hyperparameters"] = {"hidden_size": 16, "num_layers": 1,
                                     "bidirectional": True, "dropout": 0.1}
    _rehash(saved, m4)
    with pytest.raises(CheckpointError, match="tensor"):
        Bundle.load(saved)
    (saved / "weights.safetensors").unlink()
    with pytest.raises(CheckpointError, match="weights.safetensors"):
        Bundle.load(saved)


def test_never_unpickles(saved, monkeypatch, records):
    import pickle

    import torch

    def boom(*a, **k):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(torch, "load", boom)
    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(pickle, "Unpickler", boom)
    b = Bundle.load(saved)
    assert np.isfinite(b.predict(records[0].kinematics, 70.0).forces.to_numpy()).all()


def test_name_resolution_and_compatibility(saved, monkeypatch, tmp_path):
    root = tmp_path / "bundles"
    root.mkdir()
    shutil.copytree(saved, root / "rajagopal_tiny")
    monkeypatch.setattr(paths, "BUNDLES_DIR", root)
    b = Bundle.load("rajagopal_tiny")
    assert b.path == root / "rajagopal_tiny"
    assert find_bundle("rajagopal").path == b.path
    assert find_bundle("rajagopal", b.muscle_names).path == b.path
    with pytest.raises(BundleNotFoundError, match="gait2392"):
        find_bundle("gait2392")
    with pytest.raises(BundleNotFoundError):
        Bundle.load("no_such_bundle")
    with pytest.raises(BundleNotFoundError, match="model family"):
        Bundle.load("rajagopal_tiny", model_family="gait2392")
    with pytest.raises(CheckpointError, match="model family"):
        b.check_compatible("gait2392")
    with pytest.raises(CheckpointError, match="muscle set"):
        b.check_compatible("rajagopal", b.muscle_names[:-1])
    b.check_compatible("rajagopal", b.muscle_names)


def test_save_bundle_fills_arch_and_integrity(trained, tmp_path):
    d = save_bundle(tmp_path / "b", trained.model, {k: v for k, v in trained.metadata.items()
                                                   if k != "arch"})
    meta = json.loads((d / "metadata.json").read_text())
    assert meta["arch"]["name"] == "transformer"
    assert meta["integrity"]["metadata_sha256"] == metadata_digest(meta)
    head = (d / "weights.safetensors").read_bytes()[:8]
    n = int.from_bytes(head, "little")
    header = json.loads((d / "weights.safetensors").read_bytes()[8:8 + n])
    assert "heads.forces.weight" in header      # plain safetensors, readable without torch


def test_prediction_carries_the_same_ood_as_bundle_ood(saved, records):
    """predict() attaches the OOD check of the very features it used; equal to ood()."""
    import numpy as np

    b = Bundle.load(saved)
    rec = records[0]
    pred = b.predict(rec.kinematics, rec.mass_kg, rec.height_m)
    direct = b.ood(rec.kinematics, height_m=rec.height_m, mass_kg=rec.mass_kg)
    assert pred.ood is not None
    assert np.allclose(pred.ood.distance.to_numpy(), direct.distance.to_numpy())
    assert pred.ood.threshold == direct.threshold
