"""Physics check: do the muscle forces reproduce the joint moments?

For each checked frame the subject model is posed with the trial's kinematics, OpenSim computes
every muscle's moment arm about every lower-limb coordinate
(``Muscle.computeMomentArm(state, coordinate)``), and the muscle-generated generalized force

    tau_muscles(q) = sum_m  F_m * r_m(q)

is compared with the inverse-dynamics moment. Residual per joint and frame::

    residual = tau_muscles + tau_reserve - tau_ID

What exactly must balance (OpenSim 4.6 ``StaticOptimization``, muscle physiology on)
------------------------------------------------------------------------------------
SO overrides every actuator's output: a muscle's tension becomes ``a * F_active(q)`` where
``F_active`` is the *active* fibre force along the tendon at full activation with an
inextensible tendon (force-length, force-velocity and pennation). The muscles' *passive* fibre
force is therefore NOT applied in SO — it is not in the reported forces and it does not act in
the acceleration constraints. Everything else the model applies (gravity, the ground reactions,
any non-muscle passive element such as a ``CoordinateLimitForce``) acts identically in ID
(which only excludes the ``Muscles`` group) and in SO. SO enforces the model's accelerations
(the same coordinates and splined speeds/accelerations as ID), hence per independent
coordinate

    sum_m F_m^SO * r_m  +  reserve  =  tau_ID             (exact up to the solver tolerance)

with ``reserve`` the SO ``reserve_<coord>`` CoordinateActuator output (N·m; the model's own
CoordinateActuators act only on the upper body). A non-zero reference residual therefore
measures the solver tolerance (frames whose constraint violation was accepted) and bookkeeping
errors (wrong model, kinematics or forces), not modelling error. ``r_m`` is OpenSim's effective
moment arm, which accounts for coupler constraints (the Rajagopal patella,
``knee_angle_*_beta``); when the ID table reports a generalized force for such a dependent
coordinate (``knee_angle_r_beta_force``) it is projected onto its independent coordinate
(``tau += dbeta/dq * tau_beta``). The surrogate predicts no such force, so the same reference
term is added to its knee moment.

For the surrogate the same sum is formed with the *predicted* forces and compared both with
the surrogate's own predicted moments (internal consistency: are its forces the muscle
distribution of its moments?) and with the ID moments; the reference reserves are added (the
surrogate does not predict reserves, and they are small by design: 1 N·m optimal force).

Moment arms depend on the generalized coordinates only, so speeds are not set. The check is
costly (≈ 1 ms per moment-arm evaluation), so only every ``every``-th valid frame is used, and
only muscle/coordinate pairs with a non-zero moment arm at probe frames are evaluated.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError, MissingFileError

log = logging.getLogger(__name__)

__all__ = ["PhysicsResult", "JOINT_COORDINATES", "moment_arms", "physics_check",
           "summarize_physics", "resolve_subject_model"]

#: Lower-limb coordinates checked (when present, unlocked and in the ID table).
JOINT_COORDINATES = [f"{c}_{s}" for s in ("r", "l") for c in
                     ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle",
                      "ankle_angle", "subtalar_angle", "mtp_angle")]

_ARM_TOL = 1e-5  # m: a muscle/coordinate pair with |r| below this at every probe is skipped


@dataclass
class PhysicsResult:
    """Moment balance of one trial.

    Attributes
    ----------
    trial_id : str
    mass_kg : float
    coordinates : list of str
        Coordinates checked.
    times : ndarray
        Frames checked (s).
    series : dict of DataFrame
        Per frame (index time) and coordinate (columns), N·m: ``id`` (ID moment), ``muscles_ref``
        (sum F_ref * r), ``reserve`` (SO reserve), ``pred`` (surrogate moment) and
        ``muscles_pred`` (sum F_pred * r) when the surrogate was given.
    table : DataFrame
        One row per coordinate: RMS residuals (N·m) ``ref`` = muscles_ref + reserve - id,
        ``ref_no_reserve`` = muscles_ref - id, ``sur_vs_pred`` = muscles_pred + reserve - pred,
        ``sur_vs_id`` = muscles_pred + reserve - id, the RMS of ``id`` for scale, and
        ``n_frames``.
    model : str
        Model file used.
    """

    trial_id: str
    mass_kg: float
    coordinates: list[str]
    times: np.ndarray
    series: dict[str, pd.DataFrame]
    table: pd.DataFrame
    model: str = ""
    notes: list[str] = field(default_factory=list)


def _osim() -> Any:
    from ..reference.tools import import_opensim

    return import_opensim()


def _load(model_osim: str | Path) -> Any:
    from ..reference.tools import load_model

    return load_model(model_osim)


class _Poser:
    """Sets a model's coordinates from a kinematics row (radians / metres)."""

    def __init__(self, model: Any, state: Any, columns: Sequence[str]) -> None:
        from ..reference.tools import coupled_dependents

        self.model, self.state = model, state
        cs = model.getCoordinateSet()
        self.coords = {cs.get(i).getName(): cs.get(i) for i in range(cs.getSize())}
        self.cols = [c for c in columns if c in self.coords]
        dependent = coupled_dependents(model)
        self.dependent = dependent
        self.need_assemble = bool(dependent - set(self.cols))

    def pose(self, row: Sequence[float]) -> None:
        for c, v in zip(self.cols, row):
            self.coords[c].setValue(self.state, float(v), False)
        if self.need_assemble:
            self.model.assemble(self.state)
        self.model.realizePosition(self.state)


def moment_arms(model_osim: str | Path, kinematics: pd.DataFrame,
                coordinates: Sequence[str], muscles: Sequence[str] | None = None
                ) -> tuple[np.ndarray, list[str]]:
    """OpenSim moment arms of ``muscles`` about ``coordinates`` at every row of ``kinematics``.

    Parameters
    ----------
    model_osim
        Subject model (.osim).
    kinematics
        Coordinates (radians / metres; the model's own sign convention), one row per frame.
    coordinates
        Coordinates to take moment arms about.
    muscles
        Muscles (default: all of the model's).

    Returns
    -------
    arms, muscles
        ``(frames, muscles, coordinates)`` moment arms in metres (zero for pairs that do not
        cross), and the muscle names in that order.
    """
    model = _load(model_osim)
    state = model.initSystem()
    ms = model.getMuscles()
    all_muscles = [ms.get(i).getName() for i in range(ms.getSize())]
    names = list(muscles) if muscles is not None else all_muscles
    unknown = [m for m in names if m not in all_muscles]
    if unknown:
        raise InputError(f"muscles not in the model: {', '.join(unknown[:5])}",
                         path=model_osim, column=unknown[0])
    poser = _Poser(model, state, list(kinematics.columns))
    cs = model.getCoordinateSet()
    missing = [c for c in coordinates if c not in poser.coords]
    if missing:
        raise InputError(f"coordinates not in the model: {', '.join(missing)}",
                         path=model_osim, column=missing[0])
    coord_objs = [cs.get(c) for c in coordinates]
    mus_objs = [ms.get(m) for m in names]
    values = kinematics[poser.cols].to_numpy(dtype=float)
    n = len(values)
    arms = np.zeros((n, len(names), len(coordinates)))
    # probe: which pairs cross at all (first / middle / last frame)
    probe = sorted({0, n // 2, n - 1}) if n else []
    active = np.zeros((len(names), len(coordinates)), dtype=bool)
    for k in probe:
        poser.pose(values[k])
        for i, mu in enumerate(mus_objs):
            for j, co in enumerate(coord_objs):
                r = mu.computeMomentArm(state, co)
                arms[k, i, j] = r
                active[i, j] |= abs(r) > _ARM_TOL
    pairs = np.argwhere(active)
    for k in range(n):
        if k in probe:
            continue
        poser.pose(values[k])
        for i, j in pairs:
            arms[k, i, j] = mus_objs[i].computeMomentArm(state, coord_objs[j])
    arms[:, ~active] = 0.0
    return arms, names


def _coupling_slopes(model_osim: str | Path, kinematics: pd.DataFrame,
                     coordinates: Sequence[str]) -> dict[str, tuple[str, float]]:
    """``{independent coordinate: (dependent coordinate, d dependent / d independent)}``."""
    osim = _osim()
    model = _load(model_osim)
    model.initSystem()
    out: dict[str, tuple[str, float]] = {}
    cons = model.getConstraintSet()
    for i in range(cons.getSize()):
        cc = osim.CoordinateCouplerConstraint.safeDownCast(cons.get(i))
        if cc is None or not cc.get_isEnforced():
            continue
        dep = cc.getDependentCoordinateName()
        names = cc.getIndependentCoordinateNames()
        indep = [names.get(k) for k in range(names.getSize())]
        if len(indep) != 1 or indep[0] not in coordinates:
            continue
        q = float(np.nanmedian(kinematics[indep[0]])) if indep[0] in kinematics else 0.0
        h = 1e-4
        fn = cc.getFunction()
        y1 = fn.calcValue(osim.Vector(1, q + h))
        y0 = fn.calcValue(osim.Vector(1, q - h))
        out[indep[0]] = (dep, (y1 - y0) / (2 * h))
    return out


def _rms(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.sqrt(np.mean(x ** 2))) if len(x) else float("nan")


def physics_check(record: Any, model_osim: str | Path, *,
                  predicted_forces: pd.DataFrame | None = None,
                  predicted_moments: pd.DataFrame | None = None,
                  every: int = 5, max_frames: int | None = None,
                  coordinates: Sequence[str] | None = None) -> PhysicsResult:
    """Moment balance of one trial, for the reference forces and (optionally) the surrogate's.

    Parameters
    ----------
    record
        A :class:`~opensim_surrogate.dataset.store.TrialRecord` (kinematics, ID moments,
        SO forces and actuators, masks), in the model's own coordinate convention.
    model_osim
        The subject model the reference was computed with.
    predicted_forces, predicted_moments
        Surrogate outputs on the same frames, in N and N·m, in the model's convention (a
        canonical-convention prediction must be mapped back first: moments flip with their
        coordinate). Optional.
    every
        Use every ``every``-th frame that is valid for both ID and SO.
    max_frames
        Cap on the number of frames checked.
    coordinates
        Coordinates to check (default: :data:`JOINT_COORDINATES` present in the model, the
        kinematics and the ID table).

    Returns
    -------
    PhysicsResult
    """
    if every < 1:
        raise InputError(f"every must be >= 1, not {every}", column="every")
    kin = record.kinematics
    mom = record.moments
    forces = record.forces
    mask = record.mask
    valid = (mask["id_valid"].to_numpy(bool) & mask["so_valid"].to_numpy(bool))
    valid &= np.isfinite(forces.to_numpy(dtype=float)).all(axis=1)
    idx = np.flatnonzero(valid)[::every]
    if max_frames is not None:
        idx = idx[:max_frames]
    notes: list[str] = []
    if not len(idx):
        raise InputError(f"trial {record.trial_id} has no frame valid for both ID and SO",
                         column="mask")
    if coordinates is None:
        coordinates = [c for c in JOINT_COORDINATES
                       if c in kin.columns and f"{c}_moment" in mom.columns
                       and np.ptp(kin[c].to_numpy(dtype=float)) > 1e-6]
    coordinates = list(coordinates)
    sub_kin = kin.iloc[idx]
    muscles = list(forces.columns)
    arms, muscles = moment_arms(model_osim, sub_kin, coordinates, muscles)
    slopes = _coupling_slopes(model_osim, kin, coordinates)
    times = sub_kin.index.to_numpy(dtype=float)

    def frame(values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=pd.Index(times, name="time"), columns=coordinates)

    tau_id = mom.iloc[idx].reindex(columns=[f"{c}_moment" for c in coordinates]).to_numpy(
        float, copy=True)
    dep_term = np.zeros_like(tau_id)
    for j, c in enumerate(coordinates):
        if c in slopes:
            dep, slope = slopes[c]
            for col in (f"{dep}_moment", f"{dep}_force"):
                if col in mom.columns:
                    dep_term[:, j] += slope * mom[col].to_numpy(float)[idx]
                    notes.append(f"{col} projected onto {c} (slope {slope:.3f})")
    tau_id = tau_id + dep_term
    f_ref = forces.iloc[idx][muscles].to_numpy(float)
    tau_mus = np.einsum("tm,tmc->tc", f_ref, arms)
    res_cols = {c: f"reserve_{c}" for c in coordinates}
    act = record.actuators
    reserve = np.zeros_like(tau_id)
    have_reserve = False
    for j, c in enumerate(coordinates):
        if len(act.columns) and res_cols[c] in act.columns:
            reserve[:, j] = act[res_cols[c]].reindex(sub_kin.index).to_numpy(float)
            have_reserve = True
    if not have_reserve:
        notes.append("no reserve actuators in the dataset: residual includes the reserves")
    series = {"id": frame(tau_id), "muscles_ref": frame(tau_mus), "reserve": frame(reserve)}
    rows = []
    tau_pred = tau_mus_pred = None
    if predicted_forces is not None:
        miss = [m for m in muscles if m not in predicted_forces.columns]
        if miss:
            notes.append(f"surrogate lacks {len(miss)} muscles (e.g. {miss[0]}): counted as 0 N")
        fp = predicted_forces.reindex(columns=muscles).iloc[idx].to_numpy(float)
        tau_mus_pred = np.einsum("tm,tmc->tc", np.nan_to_num(fp), arms)
        series["muscles_pred"] = frame(tau_mus_pred)
    if predicted_moments is not None:
        tau_pred = predicted_moments.reindex(
            columns=[f"{c}_moment" for c in coordinates]).iloc[idx].to_numpy(float)
        tau_pred = tau_pred + dep_term  # the surrogate predicts no dependent-coordinate force
        series["pred"] = frame(tau_pred)
    for j, c in enumerate(coordinates):
        row = {"coordinate": c,
               "ref": _rms(tau_mus[:, j] + reserve[:, j] - tau_id[:, j]),
               "ref_no_reserve": _rms(tau_mus[:, j] - tau_id[:, j]),
               "reserve_rms": _rms(reserve[:, j]),
               "id_rms": _rms(tau_id[:, j]),
               "sur_vs_pred": float("nan"), "sur_vs_id": float("nan"),
               "n_frames": int(np.isfinite(tau_id[:, j]).sum())}
        if tau_mus_pred is not None:
            row["sur_vs_id"] = _rms(tau_mus_pred[:, j] + reserve[:, j] - tau_id[:, j])
            if tau_pred is not None:
                row["sur_vs_pred"] = _rms(tau_mus_pred[:, j] + reserve[:, j] - tau_pred[:, j])
        rows.append(row)
    table = pd.DataFrame(rows).set_index("coordinate")
    return PhysicsResult(record.trial_id, float(record.mass_kg), coordinates, times, series,
                         table, str(model_osim), notes)


def summarize_physics(results: Sequence[PhysicsResult]) -> pd.DataFrame:
    """Per joint (side pooled: ``hip_flexion`` = ``hip_flexion_r`` and ``_l``), over trials.

    Returns RMS residuals in N·m and N·m/kg (pooled over every checked frame of every trial)
    and the RMS ID moment for scale. Columns: ``ref``, ``ref_no_reserve``, ``sur_vs_pred``,
    ``sur_vs_id``, ``id_rms``, the same ``*_per_kg``, and ``n_frames``.
    """
    acc: dict[str, dict[str, list[np.ndarray]]] = {}
    for r in results:
        s = r.series
        for c in r.coordinates:
            joint = c[:-2] if c[-2:] in ("_r", "_l") else c
            d = acc.setdefault(joint, {k: [] for k in ("ref", "ref_no_reserve", "sur_vs_pred",
                                                       "sur_vs_id", "id_rms", "ref_kg",
                                                       "ref_no_reserve_kg", "sur_vs_pred_kg",
                                                       "sur_vs_id_kg", "id_rms_kg")})
            tid = s["id"][c].to_numpy()
            mus = s["muscles_ref"][c].to_numpy()
            res = s["reserve"][c].to_numpy()
            parts = {"ref": mus + res - tid, "ref_no_reserve": mus - tid, "id_rms": tid}
            if "muscles_pred" in s:
                mp = s["muscles_pred"][c].to_numpy()
                parts["sur_vs_id"] = mp + res - tid
                if "pred" in s:
                    parts["sur_vs_pred"] = mp + res - s["pred"][c].to_numpy()
            for k, v in parts.items():
                d[k].append(v)
                d[k + "_kg"].append(v / r.mass_kg)
    rows = []
    for joint, d in acc.items():
        row: dict[str, Any] = {"joint": joint}
        for k, v in d.items():
            name = k.replace("_kg", "_per_kg") if k.endswith("_kg") else k
            row[name] = _rms(np.concatenate(v)) if v else float("nan")
        row["n_frames"] = int(sum(np.isfinite(x).sum() for x in d["id_rms"]))
        rows.append(row)
    return pd.DataFrame(rows).set_index("joint") if rows else pd.DataFrame()


def resolve_subject_model(record: Any, work_dir: str | Path,
                          data_root: str | Path | None = None) -> Path:
    """Find (or rebuild) the subject model a trial's reference was computed with.

    Looks, in order, for a model path in the record's extras (``model_osim``, ``scaled_model``,
    ``model``, also under ``extras["spec_extra"]`` / ``extras["files"]``), then in the corpus
    manifest (:mod:`opensim_surrogate.reference.corpora`): a given scaled model (hamner2013), or
    the generic model scaled with the subject's scale set (schreiber2019; cached in
    ``work_dir``).

    Raises
    ------
    MissingFileError
        If no model can be found for the trial.
    """
    extras = dict(getattr(record, "extras", {}) or {})
    cands: list[Any] = []
    for d in (extras, extras.get("spec_extra") or {}, extras.get("files") or {},
              extras.get("source_files") or {}):
        if isinstance(d, dict):
            for key in ("model_osim", "scaled_model", "model", "subject_model"):
                if d.get(key):
                    cands.append(d[key])
    for c in cands:
        p = Path(str(c))
        if p.is_file():
            return p
    spec = _find_spec(record, data_root)
    if spec is not None:
        if spec.model_osim is not None and Path(spec.model_osim).is_file():
            return Path(spec.model_osim)
        if spec.generic_model is not None and spec.scale_set is not None:
            from ..reference.tools import scale_model

            out = Path(work_dir) / "models" / f"{spec.subject}.osim"
            if not out.is_file():
                scale_model(spec.generic_model, spec.scale_set, float(spec.mass_kg), out,
                            spec.marker_model, name=spec.subject)
            return out
    raise MissingFileError(f"no subject model found for trial {record.trial_id}",
                           hint="the physics check needs the scaled .osim of the subject "
                                "(record.extras['model_osim'] or the corpus in the shared data)")


def _find_spec(record: Any, data_root: str | Path | None) -> Any:
    from ..reference import corpora

    corpus_names = []
    src = str((getattr(record, "extras", {}) or {}).get("corpus", ""))
    if src:
        corpus_names.append(src)
    family = getattr(record, "model_family", "")
    corpus_names += ["hamner2013"] if family == "gait2392" else ["schreiber2019"]
    for name in corpus_names:
        fn = getattr(corpora, name, None)
        if fn is None:
            continue
        try:
            specs = fn(data_root)
        except Exception as exc:  # noqa: BLE001 - a missing corpus only means "not found"
            log.debug("corpus %s unavailable: %s", name, exc)
            continue
        for s in specs:
            if s.trial_id == record.trial_id:
                return s
        # mirrored / renamed trials: same subject is enough for the model
        for s in specs:
            if s.subject == record.subject:
                return s
    return None

