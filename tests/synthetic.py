"""A synthetic dataset in the exact on-disk schema of :mod:`opensim_surrogate.dataset.store`.

It stands in for the real schreiber2019 reference dataset in tests (and while that is being
built). Everything is generated from closed-form functions, so a surrogate *can* learn it:

* kinematics: all 39 coordinates of the Rajagopal family (radians / metres, 100 Hz), smooth
  periodic functions of the gait phase (a few harmonics) with a subject-specific amplitude and
  cadence, a condition-specific speed (``C4`` comfortable, ``C5`` fast); the left leg is the
  right leg half a cycle later, and pelvis_list / pelvis_rotation / pelvis_tz / lumbar bending and
  rotation are odd in that half-cycle shift, so the data are left/right mirror symmetric;
* moments (``<coord>_moment`` N·m, ``pelvis_t*_force`` N): body mass × height factor × a fixed
  nonlinear function of the same-side angles, velocities and accelerations;
* forces (80 muscles ``..._r/_l``, N): body mass × softplus of a fixed mixture of the same-side
  moments and angles (always >= 0);
* masks: ``id_valid`` True on one contiguous ~60 % block of each trial (labels NaN elsewhere, as
  in the real data where only part of a trial has measured ground contacts); ``so_valid`` is
  ``id_valid`` minus a few "failed" frames;
* events / cycles: heel strikes at phase 0 (right) and 0.5 (left), complete heel-strike to
  heel-strike cycles listed in ``cycles``.

:func:`simple_mirror` is a minimal left/right mirror for these synthetic records (tests use it
to exercise the augmentation plumbing independently of ``opensim_surrogate.dataset.mirror``).
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from opensim_surrogate.dataset.store import TrialRecord, write_info, write_trial

SAMPLE_RATE = 100.0

COORDINATES = [
    "pelvis_tilt", "pelvis_list", "pelvis_rotation", "pelvis_tx", "pelvis_ty", "pelvis_tz",
    "hip_flexion_r", "hip_adduction_r", "hip_rotation_r", "knee_angle_r", "knee_angle_r_beta",
    "ankle_angle_r", "subtalar_angle_r", "mtp_angle_r",
    "hip_flexion_l", "hip_adduction_l", "hip_rotation_l", "knee_angle_l", "knee_angle_l_beta",
    "ankle_angle_l", "subtalar_angle_l", "mtp_angle_l",
    "lumbar_extension", "lumbar_bending", "lumbar_rotation",
    "arm_flex_r", "arm_add_r", "arm_rot_r", "elbow_flex_r", "pro_sup_r", "wrist_flex_r",
    "wrist_dev_r",
    "arm_flex_l", "arm_add_l", "arm_rot_l", "elbow_flex_l", "pro_sup_l", "wrist_flex_l",
    "wrist_dev_l",
]
TRANSLATIONS = ("pelvis_tx", "pelvis_ty", "pelvis_tz")
MUSCLES_ONE_SIDE = [
    "addbrev", "addlong", "addmagDist", "addmagIsch", "addmagMid", "addmagProx", "bflh", "bfsh",
    "edl", "ehl", "fdl", "fhl", "gaslat", "gasmed", "glmax1", "glmax2", "glmax3", "glmed1",
    "glmed2", "glmed3", "glmin1", "glmin2", "glmin3", "grac", "iliacus", "perbrev", "perlong",
    "piri", "psoas", "recfem", "sart", "semimem", "semiten", "soleus", "tfl", "tibant",
    "tibpost", "vasint", "vaslat", "vasmed",
]
MUSCLES = [f"{m}_r" for m in MUSCLES_ONE_SIDE] + [f"{m}_l" for m in MUSCLES_ONE_SIDE]
#: coordinates whose sign flips under left/right mirroring
FLIP = ("pelvis_list", "pelvis_rotation", "pelvis_tz", "lumbar_bending", "lumbar_rotation")
LEG_JOINTS = ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle")

# (mean, [(amplitude, harmonic, phase)]) in degrees, for the right leg at phase 0 = heel strike
_LEG_SHAPES = {
    "hip_flexion": (10.0, [(22.0, 1, 1.6), (4.0, 2, 0.3)]),
    "hip_adduction": (0.0, [(5.0, 1, 0.2), (3.0, 2, 1.0)]),
    "hip_rotation": (2.0, [(4.0, 1, 2.0), (1.5, 2, 0.5)]),
    "knee_angle": (25.0, [(22.0, 1, -2.4), (10.0, 2, -0.6), (3.0, 3, 0.4)]),
    "ankle_angle": (0.0, [(8.0, 1, 0.9), (6.0, 2, 2.2), (2.0, 3, -1.0)]),
}


def _harmonics(phase: np.ndarray, mean: float, terms: list[tuple[float, int, float]],
               amp: float) -> np.ndarray:
    out = np.full_like(phase, mean, dtype=float)
    for a, k, p in terms:
        out += amp * a * np.sin(k * phase + p)
    return out


def _derivs(x: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    v = np.gradient(x, dt)
    return v, np.gradient(v, dt)


class _Physics:
    """Fixed (dataset-wide) nonlinear maps from kinematics to moments and forces."""

    def __init__(self, seed: int = 1234) -> None:
        rng = np.random.default_rng(seed)
        n_in = 3 * len(LEG_JOINTS) + 2  # q, qd, qdd per joint + pelvis tilt + pelvis list (side)
        self.w_moment = {j: rng.normal(size=(n_in,)) / np.sqrt(n_in) for j in LEG_JOINTS}
        self.w_moment_nl = {j: rng.normal(size=(n_in,)) / np.sqrt(n_in) for j in LEG_JOINTS}
        self.gain = {"hip_flexion": 0.9, "hip_adduction": 0.7, "hip_rotation": 0.15,
                     "knee_angle": 0.6, "ankle_angle": 1.2}
        n_m = len(LEG_JOINTS) + 3
        self.w_force = rng.normal(size=(len(MUSCLES_ONE_SIDE), n_m)) * 1.2
        self.b_force = rng.normal(size=(len(MUSCLES_ONE_SIDE),)) - 0.5
        self.s_force = np.exp(rng.uniform(np.log(0.3), np.log(12.0), size=len(MUSCLES_ONE_SIDE)))

    def side_inputs(self, kin: dict[str, np.ndarray], side: str, dt: float) -> np.ndarray:
        cols = []
        for j in LEG_JOINTS:
            q = kin[f"{j}_{side}"]
            v, a = _derivs(q, dt)
            cols += [q * 2.0, v * 0.2, a * 0.01]
        sgn = 1.0 if side == "r" else -1.0
        cols += [kin["pelvis_tilt"] * 5.0, sgn * kin["pelvis_list"] * 8.0]
        return np.stack(cols, axis=1)

    def moments_per_kg(self, x: np.ndarray, height_m: float) -> dict[str, np.ndarray]:
        out = {}
        for j in LEG_JOINTS:
            lin = x @ self.w_moment[j]
            nl = np.tanh(x @ self.w_moment_nl[j])
            out[j] = self.gain[j] * (height_m / 1.75) * (lin + 1.5 * nl + 0.5 * lin * nl)
        return out

    def forces_per_kg(self, moments: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        feats = np.stack([moments[j] for j in LEG_JOINTS] + [x[:, 0], x[:, 9], x[:, 12]], axis=1)
        z = feats @ self.w_force.T + self.b_force
        return self.s_force * np.logaddexp(0.0, z)  # softplus, >= 0


def _trial(physics: _Physics, subject: str, trial: str, condition: str, mass: float,
           height: float, cadence_spm: float, amp: float, speed: float, n_frames: int,
           rng: np.random.Generator) -> TrialRecord:
    dt = 1.0 / SAMPLE_RATE
    t = np.arange(n_frames) * dt
    f = cadence_spm / 120.0  # strides per second
    phi0 = rng.uniform(0.0, 2.0 * np.pi)
    phase_r = 2.0 * np.pi * f * t + phi0
    phase_l = phase_r + np.pi
    kin: dict[str, np.ndarray] = {c: np.zeros(n_frames) for c in COORDINATES}
    for side, ph in (("r", phase_r), ("l", phase_l)):
        for j, (mean, terms) in _LEG_SHAPES.items():
            kin[f"{j}_{side}"] = np.deg2rad(_harmonics(ph, mean, terms, amp))
        kin[f"knee_angle_{side}_beta"] = kin[f"knee_angle_{side}"].copy()
    kin["pelvis_tilt"] = np.deg2rad(_harmonics(phase_r, 3.0, [(2.0 * amp, 2, 0.4)], 1.0))
    kin["pelvis_list"] = np.deg2rad(4.0 * amp * np.sin(phase_r + 0.3))
    kin["pelvis_rotation"] = np.deg2rad(5.0 * amp * np.sin(phase_r - 0.8))
    kin["pelvis_tx"] = speed * t + 0.01 * np.sin(2 * phase_r) + rng.uniform(-1, 1)
    kin["pelvis_ty"] = 0.53 * height + 0.015 * amp * np.sin(2 * phase_r + 1.0)
    kin["pelvis_tz"] = 0.02 * np.sin(phase_r + 0.5)
    kin["lumbar_extension"] = np.deg2rad(-3.0 + 1.5 * np.sin(2 * phase_r))
    kin["lumbar_bending"] = np.deg2rad(2.0 * np.sin(phase_r + 1.1))
    kin["lumbar_rotation"] = np.deg2rad(3.0 * np.sin(phase_r - 0.2))
    kin["arm_flex_r"] = np.deg2rad(15.0 * np.sin(phase_r + np.pi))
    kin["arm_flex_l"] = np.deg2rad(15.0 * np.sin(phase_l + np.pi))
    kin["elbow_flex_r"] = kin["elbow_flex_l"] = np.full(n_frames, np.deg2rad(20.0))
    index = pd.Index(np.round(t, 6), name="time")
    kin_df = pd.DataFrame(kin, index=index)

    moments: dict[str, np.ndarray] = {}
    forces: dict[str, np.ndarray] = {}
    for side in ("r", "l"):
        x = physics.side_inputs(kin, side, dt)
        m = physics.moments_per_kg(x, height)
        for j in LEG_JOINTS:
            moments[f"{j}_{side}_moment"] = m[j] * mass
        fk = physics.forces_per_kg(m, x) * mass
        for i, name in enumerate(MUSCLES_ONE_SIDE):
            forces[f"{name}_{side}"] = fk[:, i]
    cols = []
    for c in COORDINATES:
        if c.endswith("_beta"):
            continue
        cols.append(f"{c}_force" if c in TRANSLATIONS else f"{c}_moment")
    mom_df = pd.DataFrame({c: moments.get(c, np.zeros(n_frames)) for c in cols}, index=index)
    # residual-like pelvis/lumbar loads: small, irrelevant to the surrogate
    mom_df["pelvis_ty_force"] = mass * 9.81 * 0.02 * np.sin(2 * phase_r)
    mom_df["lumbar_extension_moment"] = 0.3 * mass * kin["lumbar_extension"]
    frc_df = pd.DataFrame({m: forces[m] for m in MUSCLES}, index=index)

    # validity: one contiguous ~60 % block (two force plates see both feet only part of the trial)
    n_valid = int(round(n_frames * rng.uniform(0.55, 0.65)))
    start = int(rng.integers(0, n_frames - n_valid + 1))
    id_valid = np.zeros(n_frames, dtype=bool)
    id_valid[start:start + n_valid] = True
    so_valid = id_valid.copy()
    failed = rng.choice(np.flatnonzero(id_valid), size=max(1, n_valid // 50), replace=False)
    so_valid[failed] = False
    mom_df.loc[~id_valid, :] = np.nan
    frc_df.loc[~so_valid, :] = np.nan
    act_df = (frc_df / (frc_df.max().max() + 1.0)).clip(0.0, 1.0)
    mask = pd.DataFrame({"id_valid": id_valid, "so_valid": so_valid}, index=index)

    events: dict[str, list[float]] = {}
    cycles: list[dict[str, Any]] = []
    period = 1.0 / f
    for side, offset in (("r", 0.0), ("l", np.pi)):
        # times where phase_r + offset == 2*pi*k  (heel strike), toe off at 60 % of the cycle
        k0 = np.ceil((phi0 + offset) / (2 * np.pi) - 1e-9)
        hs, to = [], []
        k = k0 - 1
        while True:
            th = ((2 * np.pi * k - phi0 - offset) / (2 * np.pi * f))
            if th > t[-1]:
                break
            if th >= 0:
                hs.append(round(float(th), 4))
            tt = th + 0.6 * period
            if 0 <= tt <= t[-1]:
                to.append(round(float(tt), 4))
            k += 1
        events[f"heel_strike_{side}"] = hs
        events[f"toe_off_{side}"] = sorted(to)
        for a, b in zip(hs[:-1], hs[1:]):
            sel = (t >= a) & (t <= b)
            cycles.append({"leg": side, "start": a, "end": b,
                           "labelled_fraction": float(id_valid[sel].mean())})
    return TrialRecord(
        trial_id=f"{subject}_{trial}", subject=subject, trial=trial, condition=condition,
        mass_kg=float(mass), model_family="rajagopal", kinematics=kin_df, moments=mom_df,
        forces=frc_df, activations=act_df, mask=mask, actuators=pd.DataFrame(index=index),
        speed_m_s=float(speed), height_m=float(height), events=events, cycles=cycles,
        extras={"synthetic": True, "cadence_spm": cadence_spm})


def make_synthetic_records(n_subjects: int = 8, trials_per_condition: int = 1,
                           conditions: tuple[str, ...] = ("C4", "C5"), duration_s: float = 1.5,
                           seed: int = 0) -> list[TrialRecord]:
    """Generate synthetic :class:`TrialRecord` objects (in memory).

    Parameters
    ----------
    n_subjects
        Number of subjects (ids ``S01``, ``S02``, ...).
    trials_per_condition
        Trials per subject and condition.
    conditions
        Condition labels; ``C5`` walks faster (higher cadence and amplitude) than ``C4``.
    duration_s
        Trial duration (s); frames at 100 Hz.
    seed
        Seed of the subject/trial randomness (the physics maps are fixed).
    """
    rng = np.random.default_rng(seed)
    physics = _Physics()
    records = []
    for s in range(n_subjects):
        subject = f"S{s + 1:02d}"
        mass = float(rng.uniform(52.0, 95.0))
        height = float(rng.uniform(1.55, 1.92))
        base_cad = float(rng.uniform(98.0, 118.0))
        base_amp = float(rng.uniform(0.85, 1.1))
        for ci, cond in enumerate(conditions):
            for k in range(trials_per_condition):
                fast = 1.0 + 0.12 * ci
                cadence = base_cad * fast * float(rng.uniform(0.97, 1.03))
                amp = base_amp * (1.0 + 0.08 * ci) * float(rng.uniform(0.97, 1.03))
                speed = 0.75 * height * cadence / 120.0 * amp
                n_frames = int(round(duration_s * SAMPLE_RATE * float(rng.uniform(0.95, 1.05))))
                records.append(_trial(physics, subject, f"{cond}_{k + 1:02d}", cond, mass, height,
                                      cadence, amp, speed, n_frames, rng))
    return records


def make_synthetic_dataset(root: str | Path, n_subjects: int = 8, trials_per_condition: int = 1,
                           conditions: tuple[str, ...] = ("C4", "C5"), duration_s: float = 1.5,
                           seed: int = 0) -> Path:
    """Write a synthetic dataset directory (``dataset.json`` + ``trials/``) under ``root``.

    See :func:`make_synthetic_records` for the parameters. Returns ``root``.
    """
    root = Path(root)
    records = make_synthetic_records(n_subjects, trials_per_condition, conditions, duration_s,
                                     seed)
    for rec in records:
        write_trial(root, rec)
    write_info(root, {"corpus": "synthetic", "model_family": "rajagopal",
                      "trials": [r.trial_id for r in records],
                      "summary": {"n_trials": len(records), "n_subjects": n_subjects,
                                  "finished": True}})
    return root


def _swap_name(name: str) -> str:
    if name.endswith("_r"):
        return name[:-2] + "_l"
    if name.endswith("_l"):
        return name[:-2] + "_r"
    for a, b in (("_r_", "_l_"), ("_l_", "_r_")):
        if a in name:
            return name.replace(a, b)
    return name


def simple_mirror(record: TrialRecord) -> TrialRecord:
    """Left/right mirror of a synthetic record (swap sides, flip the lateral coordinates).

    A minimal stand-in for ``opensim_surrogate.dataset.mirror.mirror_record`` in tests.
    """
    out = copy.copy(record)

    kin = record.kinematics.rename(columns=_swap_name)
    for c in FLIP:
        if c in kin.columns:
            kin[c] = -kin[c]
    out.kinematics = kin
    mom = record.moments.rename(columns=_swap_name)
    for c in FLIP:
        for cand in (f"{c}_moment", f"{c}_force"):
            if cand in mom.columns:
                mom[cand] = -mom[cand]
    out.moments = mom
    out.forces = record.forces.rename(columns=_swap_name)
    out.activations = record.activations.rename(columns=_swap_name)
    out.events = {_swap_name(k): list(v) for k, v in record.events.items()}
    out.cycles = [{**c, "leg": "l" if c["leg"] == "r" else "r"} for c in record.cycles]
    out.trial_id = record.trial_id + "_mirrored"
    out.extras = {**record.extras, "mirrored": True}
    return out
