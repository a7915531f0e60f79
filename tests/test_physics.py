"""Physics check against the real OpenSim 4.6 tools (no dataset needed: shared data only).

A schreiber2019 subject model is scaled, the converter's IK is processed, OpenSim ID and a
4-frame SO are run with the reference pipeline's wrappers; the moment balance
Σ F·r + reserve = τ_ID must then hold to the solver tolerance, and must break when the forces
are wrong.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from opensim_surrogate.dataset.store import TrialRecord
from opensim_surrogate.errors import InputError, MissingFileError

pytestmark = pytest.mark.opensim

TRIAL = "2014001_C4_05"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Any]:
    from opensim_surrogate.reference import corpora, tools
    from opensim_surrogate.reference.config import ReferenceConfig

    work = tmp_path_factory.mktemp("physics")
    spec = next(s for s in corpora.schreiber2019(data_dir) if s.trial_id == TRIAL)
    cfg = ReferenceConfig()
    model = tools.scale_model(spec.generic_model, spec.scale_set, spec.mass_kg,
                              work / "subject.osim", spec.marker_model).model_path
    coords = tools.process_coordinates(spec.extra["converter_ik_mot"], model, cfg)
    idr = tools.inverse_dynamics(model, coords, spec.external_loads_xml, spec.grf_mot, cfg,
                                 out_dir=work / "id")
    t0 = float(coords.index[10])
    so = tools.static_optimization(model, idr.coordinates_path, idr.external_loads_path, cfg,
                                   (t0, t0 + 0.03), out_dir=work / "so")
    idx = so.forces.index
    kin = idr.coordinates.loc[idx]
    mom = idr.moments.loc[idx]
    mask = pd.DataFrame({"id_valid": True, "so_valid": ~so.frames["failed"].to_numpy(bool)},
                        index=idx)
    rec = TrialRecord(trial_id=TRIAL, subject=spec.subject, trial=spec.trial,
                      condition=spec.condition, mass_kg=spec.mass_kg, model_family="rajagopal",
                      kinematics=kin, moments=mom, forces=so.forces,
                      activations=so.activations, mask=mask, actuators=so.actuators)
    return {"record": rec, "model": model, "so": so}


def test_reference_forces_balance_id_moments(reference: dict[str, Any]) -> None:
    from opensim_surrogate.validate.physics import physics_check, summarize_physics

    rec = reference["record"]
    assert not reference["so"].failed_frames
    # a "surrogate" that is the reference itself, and one whose forces are 20 % too large
    res = physics_check(rec, reference["model"], predicted_forces=rec.forces,
                        predicted_moments=rec.moments, every=1)
    t = res.table
    assert {"hip_flexion_r", "knee_angle_r", "ankle_angle_l"} <= set(t.index)
    assert (t["n_frames"] == 4).all()
    # joint moments are tens of N·m; SO balances them to its tolerance
    assert t.loc["hip_flexion_r", "id_rms"] > 5.0
    assert (t["ref"] < 0.01).all(), t["ref"]
    assert np.allclose(t["sur_vs_id"], t["ref"]) and np.allclose(t["sur_vs_pred"], t["ref"])
    # the knee's coupled patella coordinate is projected onto the knee
    assert any("knee_angle_r_beta" in n for n in res.notes)
    wrong = physics_check(rec, reference["model"], predicted_forces=rec.forces * 1.2,
                          predicted_moments=rec.moments, every=2)
    big = wrong.table.loc["hip_flexion_r"]
    assert big["sur_vs_id"] > 50 * max(big["ref"], 1e-3)
    s = summarize_physics([res, wrong])
    assert "hip_flexion" in s.index and "ankle_angle" in s.index
    assert s.loc["hip_flexion", "ref_per_kg"] < 1e-3
    assert s.loc["hip_flexion", "n_frames"] == 4 * 2 + 2 * 2


def test_moment_arms_match_length_derivative(reference: dict[str, Any]) -> None:
    """OpenSim moment arms equal -dL/dq of the muscle-tendon length (independent check)."""
    import opensim

    from opensim_surrogate.validate.physics import moment_arms

    rec = reference["record"]
    kin = rec.kinematics.iloc[:1]
    coords = ["hip_flexion_r", "ankle_angle_r"]
    arms, names = moment_arms(reference["model"], kin, coords, ["glmax2_r", "soleus_r",
                                                                "tibant_l"])
    assert arms.shape == (1, 3, 2)
    model = opensim.Model(str(reference["model"]))
    state = model.initSystem()
    cs = model.getCoordinateSet()
    for c in kin.columns:
        if cs.contains(c):
            cs.get(c).setValue(state, float(kin[c].iloc[0]), False)
    model.realizePosition(state)
    for i, m in enumerate(names):
        mus = model.getMuscles().get(m)
        for j, c in enumerate(coords):
            co = cs.get(c)
            q = co.getValue(state)
            h = 1e-6
            co.setValue(state, q + h, False)
            model.realizePosition(state)
            l1 = mus.getLength(state)
            co.setValue(state, q - h, False)
            model.realizePosition(state)
            l0 = mus.getLength(state)
            co.setValue(state, q, False)
            model.realizePosition(state)
            assert arms[0, i, j] == pytest.approx(-(l1 - l0) / (2 * h), abs=2e-5)
    # glmax crosses the hip, not the ankle; a left muscle crosses no right coordinate
    assert abs(arms[0, 0, 0]) > 0.01 and arms[0, 0, 1] == 0.0
    assert abs(arms[0, 1, 1]) > 0.01 and np.all(arms[0, 2] == 0.0)


def test_physics_errors(reference: dict[str, Any], tmp_path: Path) -> None:
    from opensim_surrogate.validate.physics import physics_check, resolve_subject_model

    rec = reference["record"]
    with pytest.raises(InputError):
        physics_check(rec, reference["model"], every=0)
    with pytest.raises(MissingFileError):
        physics_check(rec, tmp_path / "nope.osim")
    empty = TrialRecord(**{**rec.__dict__, "mask": rec.mask.assign(id_valid=False)})
    with pytest.raises(InputError, match="no frame valid"):
        physics_check(empty, reference["model"])
    # a record naming its scaled model is resolved without the corpus
    named = TrialRecord(**{**rec.__dict__, "extras": {"scaled_model": str(reference["model"])}})
    assert resolve_subject_model(named, tmp_path) == Path(reference["model"])
