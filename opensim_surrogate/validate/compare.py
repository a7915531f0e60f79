"""Surrogate vs real OpenSim outputs on dataset trials: predictions, metrics, cycles, peaks.

Pipeline (used by :mod:`opensim_surrogate.validate.report` and the ``validate`` command):

1. :func:`predict_trial` runs a bundle on a trial's stored kinematics (100 Hz, filtered,
   radians). Kinematics of a non-canonical model family (gait2392: knee and mtp flexion
   negative) are mapped to the canonical (Rajagopal) convention first, and the *reference*
   moments are mapped the same way, so both sides are compared in one convention.
2. :class:`TrialComparison` holds reference and prediction **per kg of body mass** (moments
   N·m/kg, forces N/kg, the unit of Gait2Hip-60's numbers) on the trial's frames. Reference
   values are NaN where the dataset mask says they are not valid (``id_valid`` for moments,
   ``so_valid`` for forces): only masked-valid frames count.
3. Heads compared: ``moments`` (joint moments both legs), ``forces`` (every muscle the bundle
   and the dataset share; none on a different model family) and ``groups`` (Gait2Hip-60's 14
   hip muscle groups per side, sums of their parts, see
   :data:`opensim_surrogate.train.features.HIP_GROUPS`).
4. Metrics (:func:`channel_table`, :func:`group_table`, :func:`overall_table`,
   :func:`paper_table`) come from :mod:`opensim_surrogate.train.metrics` — RMSE, MAE, R² per
   channel and Gait2Hip-60's pooled R², computed per subject then averaged over subjects
   ("subject-mean", as Gait2Hip-60 and the trainer report them). This module adds the
   normalised RMSE (% of the reference range) and Pearson r (same subject-mean), and the
   gait-cycle analysis (:func:`cycle_curves`, :func:`cycle_peaks`, :func:`bland_altman`).

Gait cycles are heel strike to next heel strike of one leg (``record.cycles``), resampled to
0–100 % in 101 points; samples between two frames are linear interpolations, and NaN when
either neighbour is not valid. A channel of one side is analysed on the cycles of that side's
leg; side-pooled curves (``hip_flexion``) use ``_r`` channels on right cycles and ``_l``
channels on left cycles.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..train.features import HIP_GROUPS

log = logging.getLogger(__name__)

__all__ = [
    "CYCLE_POINTS", "HEADS", "HEAD_UNITS", "TrialComparison", "predict_trial", "compare_trial",
    "stack", "channel_table", "group_table", "overall_table", "paper_table", "cycle_curves",
    "pooled_cycle_curves", "cycle_peaks", "bland_altman", "channel_scores", "extra_scores",
    "eval_trials", "subject_mean_scores", "GAIT2HIP60",
    "side_of", "joint_of",
]

CYCLE_POINTS = 101
HEADS = ("moments", "forces", "groups")
HEAD_UNITS = {"moments": "N·m/kg", "forces": "N/kg", "groups": "N/kg"}
HEAD_MASK = {"moments": "id_valid", "forces": "so_valid", "groups": "so_valid"}

#: Gait2Hip-60's published test results (subject-mean; see docs/opensim-notes.md).
GAIT2HIP60 = {
    "moments": {"Transformer": (0.110, 0.074, 0.862), "LSTM": (0.117, 0.077, 0.849),
                "Mamba": (0.130, 0.085, 0.815)},
    "groups": {"Transformer": (1.33, 0.57, 0.819), "Mamba": (1.39, 0.60, 0.804),
               "LSTM": (1.51, 0.66, 0.775)},
}
#: Gait2Hip-60's output sets: 3 right-hip moments, 14 right-hip muscle groups.
PAPER_OUTPUTS = {
    "moments": ["hip_flexion_r_moment", "hip_adduction_r_moment", "hip_rotation_r_moment"],
    "groups": [f"{g}_r" for g in HIP_GROUPS],
}


# --------------------------------------------------------------------------------------------
# metrics: the trainer's module (RMSE, MAE, both R², subject-mean); nRMSE and Pearson r added
# --------------------------------------------------------------------------------------------
def _metrics() -> Any:
    from ..train import metrics

    return metrics


def _score_mask(Y: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Entries scored: a valid (finite) reference and a finite prediction."""
    return np.isfinite(Y) & np.isfinite(P)


def extra_scores(Y: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel normalised RMSE (% of the reference range) and Pearson r of one pooled set.

    NaN for a channel with fewer than 3 scored samples or no variation.
    """
    Y = np.asarray(Y, dtype=float)
    P = np.asarray(P, dtype=float)
    M = _score_mask(Y, P)
    n_ch = Y.shape[1] if Y.ndim == 2 else 0
    nrmse = np.full(n_ch, np.nan)
    r = np.full(n_ch, np.nan)
    for j in range(n_ch):
        y, p = Y[M[:, j], j], P[M[:, j], j]
        if y.size < 3:
            continue
        span = float(np.ptp(y))
        if span > 0:
            nrmse[j] = 100.0 * float(np.sqrt(np.mean((y - p) ** 2))) / span
        if np.std(y) > 0 and np.std(p) > 0:
            r[j] = float(np.corrcoef(y, p)[0, 1])
    return nrmse, r


def channel_scores(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    """Scores of one channel over its scored samples: ``rmse``, ``nrmse_pct``, ``mae``,
    ``r2`` (around the channel's own mean), ``pearson_r``, ``n``."""
    Y = np.asarray(y, dtype=float).reshape(-1, 1)
    P = np.asarray(yhat, dtype=float).reshape(-1, 1)
    m = _metrics()
    M = _score_mask(Y, P)
    nr, r = extra_scores(Y, P)
    return {"rmse": m.rmse(Y, P, M), "nrmse_pct": float(nr[0]), "mae": m.mae(Y, P, M),
            "r2": float(m.r2_per_channel(Y, P, M)[0]), "pearson_r": float(r[0]),
            "n": int(M.sum())}


def eval_trials(comps: Sequence["TrialComparison"], head: str, channels: Sequence[str]
                ) -> list[Any]:
    """The comparisons as :class:`opensim_surrogate.train.metrics.EvalTrial` (per kg units;
    mask = valid reference and finite prediction)."""
    m = _metrics()
    out = []
    for c in comps:
        Y = c.ref[head].reindex(columns=list(channels)).to_numpy(float)
        P = c.pred[head].reindex(columns=list(channels)).to_numpy(float)
        M = _score_mask(Y, P)
        n_bad = int((np.isfinite(Y) & ~np.isfinite(P)).sum())
        if n_bad:
            log.warning("%s: %d valid %s entries have no finite prediction (not scored)",
                        c.trial_id, n_bad, head)
        out.append(m.EvalTrial(subject=c.subject, condition=c.condition,
                               y=np.where(M, Y, 0.0), p=np.where(M, P, 0.0), mask=M,
                               trial_id=c.trial_id))
    return out


def _pooled(trials: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    Y = np.concatenate([np.where(t.mask, t.y, np.nan) for t in trials])
    P = np.concatenate([np.where(t.mask, t.p, np.nan) for t in trials])
    return Y, P


def _subject_extras(trials: Sequence[Any]) -> tuple[float, float]:
    """Subject-mean of the channel-mean nRMSE and Pearson r."""
    nr, rr = [], []
    for subj in sorted({t.subject for t in trials}):
        Y, P = _pooled([t for t in trials if t.subject == subj])
        a, b = extra_scores(Y, P)
        nr.append(_nanmean(a))
        rr.append(_nanmean(b))
    return _nanmean(nr), _nanmean(rr)


def subject_mean_scores(trials: Sequence[Any]) -> dict[str, float]:
    """Gait2Hip-60-style subject-mean scores (:func:`metrics.subject_mean`) + nRMSE, r."""
    m = _metrics()
    s = m.subject_mean(trials)
    nr, r = _subject_extras(trials)
    return {"rmse": s["rmse"], "mae": s["mae"], "r2_paper": s["r2_paper"],
            "r2_channel": s["r2_channel"], "pearson_r": r, "nrmse_pct": nr,
            "subjects": int(s["n_subjects"]), "n": int(s["n_entries"])}


def _nanmean(values: Iterable[float]) -> float:
    a = np.asarray(list(values), dtype=float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else float("nan")


# --------------------------------------------------------------------------------------------
# one trial
# --------------------------------------------------------------------------------------------
@dataclass
class TrialComparison:
    """Reference and surrogate outputs of one trial, per kg of body mass.

    Attributes
    ----------
    trial_id, subject, condition, model_family : str
    mass_kg : float
    ref, pred : dict of DataFrame
        ``{head: (frames x channels)}`` for :data:`HEADS`; reference NaN where not valid.
    cycles : list of dict
        ``{"leg", "start", "end"}`` (seconds).
    warnings : list of str
        Warnings the surrogate raised on this trial (out-of-distribution input, ...).
    ood : dict
        The bundle's out-of-distribution report for the trial (empty if not available).
    seconds : float
        Wall time of the prediction.
    """

    trial_id: str
    subject: str
    condition: str
    model_family: str
    mass_kg: float
    ref: dict[str, pd.DataFrame]
    pred: dict[str, pd.DataFrame]
    cycles: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ood: dict[str, Any] = field(default_factory=dict)
    seconds: float = float("nan")

    def channels(self, head: str) -> list[str]:
        return list(self.ref[head].columns) if head in self.ref else []


def _family_conventions(family: str) -> Any:
    """Sign conventions of a supported model family (no model file needed)."""
    from ..osim.conventions import SUPPORTED_FAMILIES, CoordinateConvention, ModelConventions

    table = SUPPORTED_FAMILIES.get(family)
    if table is None:
        raise InputError(f"unknown model family {family!r}",
                         hint=f"supported: {', '.join(SUPPORTED_FAMILIES)}")
    convs = {c: CoordinateConvention(c, fc.sign, "family") for c, fc in table.items()}
    return ModelConventions(family=family, conventions=convs)


def _lower_limb_only(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    from ..osim.conventions import coordinate_of_column

    return df[[c for c in df.columns if coordinate_of_column(c, kind) is not None]]


def _group_sums(forces: pd.DataFrame) -> pd.DataFrame:
    """Gait2Hip-60's hip groups (both sides) from muscle forces; NaN if a part is NaN."""
    out = {}
    for side in ("r", "l"):
        for g, parts in HIP_GROUPS.items():
            cols = [f"{p}_{side}" for p in parts]
            if all(c in forces.columns for c in cols):
                out[f"{g}_{side}"] = forces[cols].sum(axis=1, min_count=len(cols))
    return pd.DataFrame(out, index=forces.index)


def _prediction_frames(prediction: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    moments = getattr(prediction, "moments", None)
    forces = getattr(prediction, "forces", None)
    if moments is None and isinstance(prediction, dict):
        moments, forces = prediction.get("moments"), prediction.get("forces")
    moments = moments if moments is not None else pd.DataFrame()
    forces = forces if forces is not None else pd.DataFrame()
    return moments, forces


def canonical_kinematics(record: Any) -> tuple[pd.DataFrame, Any]:
    """The record's kinematics in the canonical convention, and the conventions used (or None)."""
    family = getattr(record, "model_family", "rajagopal") or "rajagopal"
    if family == "rajagopal":
        return record.kinematics, None
    conv = _family_conventions(family)
    from ..osim.conventions import coordinate_of_column

    kin = record.kinematics
    ll = [c for c in kin.columns if coordinate_of_column(c, "kinematics") is not None]
    out = kin.copy()
    out[ll] = conv.to_canonical(kin[ll])
    return out, conv


def predict_trial(bundle: Any, record: Any) -> tuple[pd.DataFrame, pd.DataFrame, list[str],
                                                       dict[str, Any], float]:
    """Run ``bundle`` on a trial's stored kinematics.

    Returns
    -------
    moments, forces, warnings, ood, seconds
        Predicted moments (N·m) and forces (N) in the canonical convention, on the trial's
        frames; the out-of-distribution warning a user of ``surrogate.run`` would get (same
        rule: more than ``surrogate.api.OOD_WARN_FRACTION`` of the frames beyond the bundle's
        OOD threshold); the OOD report (``fraction_over``, ``is_ood`` = the bundle's own
        stricter flag, ``threshold``, ``max_distance``); prediction wall time.
    """
    kin, _ = canonical_kinematics(record)
    height = getattr(record, "height_m", float("nan"))
    height = None if height is None or not math.isfinite(float(height)) else float(height)
    t0 = time.perf_counter()
    pred = bundle.predict(kin, float(record.mass_kg), height_m=height, uncertainty=False)
    seconds = time.perf_counter() - t0
    moments, forces = _prediction_frames(pred)
    warnings = [str(w) for w in (getattr(pred, "warnings", None) or [])]
    ood: dict[str, Any] = {}
    if hasattr(bundle, "ood"):
        try:
            ood = _ood_dict(bundle.ood(kin, height_m=height, mass_kg=float(record.mass_kg)))
        except Exception as exc:  # noqa: BLE001 - the OOD report is informative only
            log.warning("OOD check failed on %s: %s", record.trial_id, exc)
    frac = ood.get("fraction_over")
    if frac is not None and math.isfinite(frac) and frac > _warn_fraction():
        warnings.append(f"out of distribution: {frac:.0%} of the frames are farther from the "
                        f"training data than the threshold (distance up to "
                        f"{ood.get('max_distance', float('nan')):.3g} vs "
                        f"{ood.get('threshold', float('nan')):.3g})")
    return moments, forces, warnings, ood, seconds


def _warn_fraction() -> float:
    """The fraction of OOD frames above which ``surrogate.run`` warns."""
    try:
        from ..surrogate.api import OOD_WARN_FRACTION

        return float(OOD_WARN_FRACTION)
    except ImportError:  # pragma: no cover - the runtime API is part of the package
        return 0.2


def _ood_dict(rep: Any) -> dict[str, Any]:
    if rep is None:
        return {}
    if isinstance(rep, dict):
        return rep
    out: dict[str, Any] = {}
    for key in ("fraction_over", "threshold"):
        if hasattr(rep, key):
            out[key] = float(getattr(rep, key))
    if hasattr(rep, "is_ood"):
        out["is_ood"] = bool(rep.is_ood)
    dist = getattr(rep, "distance", None)
    if dist is not None and len(dist):
        out["max_distance"] = float(np.nanmax(np.asarray(dist, dtype=float)))
        out["median_distance"] = float(np.nanmedian(np.asarray(dist, dtype=float)))
    return out


def compare_trial(record: Any, pred_moments: pd.DataFrame, pred_forces: pd.DataFrame, *,
                  warnings: Sequence[str] = (), ood: dict[str, Any] | None = None,
                  seconds: float = float("nan")) -> TrialComparison:
    """Align a prediction (canonical convention, N·m / N) with a trial's reference.

    Channels compared are those present in both; reference values where the dataset mask is
    False (or the label is NaN) are NaN.
    """
    mass = float(record.mass_kg)
    idx = record.kinematics.index
    _, conv = canonical_kinematics(record)
    ref_m = _lower_limb_only(record.moments, "moments")
    ref_m = ref_m[[c for c in ref_m.columns if not c.startswith(("pelvis_", "lumbar_"))]]
    if conv is not None:
        ref_m = conv.moments_to_canonical(ref_m)
    pm = pred_moments.reindex(index=idx) if len(pred_moments) else pd.DataFrame(index=idx)
    pf = pred_forces.reindex(index=idx) if len(pred_forces) else pd.DataFrame(index=idx)
    if len(pred_moments) and not np.allclose(np.asarray(pred_moments.index, float),
                                             np.asarray(idx, float)[:len(pred_moments)],
                                             atol=1e-6):
        log.warning("%s: prediction index differs from the kinematics index", record.trial_id)
    mcols = [c for c in ref_m.columns if c in pm.columns]
    fcols = [c for c in record.forces.columns if c in pf.columns]
    ref = {"moments": ref_m[mcols].reindex(idx) / mass,
           "forces": record.forces[fcols].reindex(idx) / mass}
    pred = {"moments": pm[mcols] / mass, "forces": pf[fcols] / mass}
    ref["groups"] = _group_sums(ref["forces"])
    pred["groups"] = _group_sums(pred["forces"])
    for head in HEADS:
        valid = record.mask[HEAD_MASK[head]].reindex(idx).fillna(False).to_numpy(bool)
        r = ref[head].to_numpy(dtype=float, copy=True)
        r[~valid, :] = np.nan
        ref[head] = pd.DataFrame(r, index=idx, columns=ref[head].columns)
        pred[head] = pred[head].astype(float)
    return TrialComparison(record.trial_id, record.subject, record.condition,
                           getattr(record, "model_family", ""), mass, ref, pred,
                           list(record.cycles or []), list(warnings), dict(ood or {}), seconds)


# --------------------------------------------------------------------------------------------
# pooled tables
# --------------------------------------------------------------------------------------------
def stack(comps: Sequence[TrialComparison], head: str, channels: Sequence[str] | None = None
          ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Pooled (frames x channels) reference and prediction of ``head`` over ``comps``."""
    if channels is None:
        channels = common_channels(comps, head)
    ys, ps = [], []
    for c in comps:
        ys.append(c.ref[head].reindex(columns=list(channels)).to_numpy(float))
        ps.append(c.pred[head].reindex(columns=list(channels)).to_numpy(float))
    if not ys:
        return np.zeros((0, len(channels))), np.zeros((0, len(channels))), list(channels)
    return np.concatenate(ys), np.concatenate(ps), list(channels)


def common_channels(comps: Sequence[TrialComparison], head: str) -> list[str]:
    if not comps:
        return []
    first = comps[0].channels(head)
    common = set(first)
    for c in comps[1:]:
        common &= set(c.channels(head))
    return [ch for ch in first if ch in common]


def channel_table(comps: Sequence[TrialComparison], head: str) -> pd.DataFrame:
    """Per output channel, subject-mean (per subject, then averaged over subjects).

    Columns ``rmse``, ``mae``, ``r2`` (:func:`metrics.per_channel`), ``nrmse_pct`` (RMSE in %
    of the subject's reference range), ``pearson_r``, ``n`` (scored frames, all subjects), and
    the per-cycle peak columns (``peak_err``: mean |prediction - reference| of the cycle
    peak, ``peak_timing_err_pct``: mean |timing difference| in % of the cycle, ``n_cycles``).
    """
    chans = common_channels(comps, head)
    if not chans:
        return pd.DataFrame()
    m = _metrics()
    trials = eval_trials(comps, head, chans)
    pc = m.per_channel(trials, chans).set_index("channel")
    subjects = sorted({t.subject for t in trials})
    nr = np.full((len(subjects), len(chans)), np.nan)
    rr = np.full_like(nr, np.nan)
    for i, subj in enumerate(subjects):
        Y, P = _pooled([t for t in trials if t.subject == subj])
        nr[i], rr[i] = extra_scores(Y, P)
    n = np.sum([t.mask.sum(axis=0) for t in trials], axis=0)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            nr_m, rr_m = np.nanmean(nr, axis=0), np.nanmean(rr, axis=0)
    table = pd.DataFrame({"rmse": pc["rmse"].to_numpy(), "nrmse_pct": nr_m,
                          "mae": pc["mae"].to_numpy(), "r2": pc["r2"].to_numpy(),
                          "pearson_r": rr_m, "n": n.astype(int)},
                         index=pd.Index(chans, name="output"))
    return table.join(peak_summary(comps, head, chans))


def group_table(comps: Sequence[TrialComparison], head: str, by: str,
                channels: Sequence[str] | None = None) -> pd.DataFrame:
    """Scores per subject (its trials pooled) or per condition (subject-mean within it).

    The last row, ``mean``, averages the rows: over subjects it is Gait2Hip-60's
    "subject-mean" (:func:`metrics.subject_mean`).
    """
    if by not in ("subject", "condition"):
        raise InputError(f"group by 'subject' or 'condition', not {by!r}", column="by")
    channels = list(channels) if channels is not None else common_channels(comps, head)
    if not channels:
        return pd.DataFrame()
    m = _metrics()
    trials = eval_trials(comps, head, channels)
    rows = []
    for key in sorted({getattr(t, by) for t in trials}):
        sel = [t for t in trials if getattr(t, by) == key]
        n_trials = len(sel)
        if by == "subject":
            Y, P = _pooled(sel)
            M = _score_mask(Y, P)
            sc = m.scores(np.where(M, Y, 0.0), np.where(M, P, 0.0), M)
            nr, r = extra_scores(Y, P)
            row = {"rmse": sc["rmse"], "mae": sc["mae"], "r2_paper": sc["r2_paper"],
                   "r2_channel": sc["r2_channel"], "pearson_r": _nanmean(r),
                   "nrmse_pct": _nanmean(nr), "n": int(sc["n_entries"])}
        else:
            row = subject_mean_scores(sel)
            row.pop("subjects")
        rows.append({by: key, "trials": n_trials, **row})
    table = pd.DataFrame(rows).set_index(by)
    if by == "subject":
        mean = subject_mean_scores(trials)
        mean.pop("subjects")
    else:
        mean = table.drop(columns=["trials", "n"]).mean(axis=0, skipna=True).to_dict()
        mean["n"] = int(table["n"].sum())
    mean["trials"] = int(table["trials"].sum())
    table.loc["mean"] = pd.Series(mean)
    table["trials"] = table["trials"].astype(int)
    table["n"] = table["n"].astype(int)
    return table


def overall_table(comps: Sequence[TrialComparison]) -> pd.DataFrame:
    """Subject-mean scores of every head (all its channels)."""
    rows = []
    for head in HEADS:
        chans = common_channels(comps, head)
        if not chans:
            continue
        rows.append({"outputs": f"{head} ({len(chans)}, {HEAD_UNITS[head]})",
                     **subject_mean_scores(eval_trials(comps, head, chans))})
    return pd.DataFrame(rows).set_index("outputs") if rows else pd.DataFrame()


def paper_table(comps: Sequence[TrialComparison]) -> pd.DataFrame:
    """Our subject-mean numbers beside Gait2Hip-60's, on their output sets.

    Rows: (output set, model); columns ``rmse``, ``mae``, ``r2_paper`` (their R²
    definition), ``r2_channel`` (per-channel R² averaged; not reported by Gait2Hip-60).
    Our rows are computed on frames (100 Hz) of the test subjects, theirs on 180-sample
    resampled cycles.
    """
    rows = []
    for head, outs in PAPER_OUTPUTS.items():
        chans = [c for c in outs if comps and all(c in x.channels(head) for x in comps)]
        label = "moments (3 right-hip, N·m/kg)" if head == "moments" else \
            "forces (14 right-hip groups, N/kg)"
        if chans:
            sc = subject_mean_scores(eval_trials(comps, head, chans))
            rows.append({"outputs": label, "model": "this surrogate", "rmse": sc["rmse"],
                         "mae": sc["mae"], "r2_paper": sc["r2_paper"],
                         "r2_channel": sc["r2_channel"], "n_outputs": len(chans)})
        else:
            rows.append({"outputs": label, "model": "this surrogate", "rmse": float("nan"),
                         "mae": float("nan"), "r2_paper": float("nan"),
                         "r2_channel": float("nan"), "n_outputs": 0})
        for model, (rmse, mae, r2) in GAIT2HIP60[head].items():
            rows.append({"outputs": label, "model": f"Gait2Hip-60 {model}", "rmse": rmse,
                         "mae": mae, "r2_paper": r2, "r2_channel": float("nan"),
                         "n_outputs": len(outs)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# gait cycles
# --------------------------------------------------------------------------------------------
def side_of(channel: str) -> str | None:
    """``"r"`` / ``"l"`` for a one-sided channel (``hip_flexion_r_moment``, ``glmax1_l``)."""
    base = channel[: -len("_moment")] if channel.endswith("_moment") else channel
    if base.endswith("_r"):
        return "r"
    if base.endswith("_l"):
        return "l"
    return None


def joint_of(channel: str) -> str:
    """Side-free name: ``hip_flexion_r_moment`` -> ``hip_flexion_moment``, ``glmax_r`` -> ``glmax``."""
    if channel.endswith("_moment"):
        base = channel[: -len("_moment")]
        return (base[:-2] if base[-2:] in ("_r", "_l") else base) + "_moment"
    return channel[:-2] if channel[-2:] in ("_r", "_l") else channel


def _resample_cycle(t: np.ndarray, y: np.ndarray, start: float, end: float,
                    n: int = CYCLE_POINTS) -> np.ndarray:
    """Values of ``y(t)`` at ``n`` evenly spaced points of [start, end]; NaN near invalid frames."""
    tn = np.linspace(start, end, n)
    ok = np.isfinite(y)
    if ok.sum() < 2 or tn[0] < t[0] - 1e-6 or tn[-1] > t[-1] + 1e-6:
        return np.full(n, np.nan)
    yi = np.interp(tn, t, np.where(ok, y, 0.0))
    wi = np.interp(tn, t, ok.astype(float))
    yi[wi < 1.0 - 1e-9] = np.nan
    return yi


def cycle_curves(comp: TrialComparison, head: str, channel: str, n: int = CYCLE_POINTS
                 ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Reference and prediction of one channel over each matching cycle of a trial.

    Returns ``(ref, pred, cycles)``: arrays (cycles x n) over 0–100 % of the cycle (NaN
    where the reference is not valid; the prediction is masked the same way), and the
    cycles used (those of the channel's leg, all cycles for a side-free channel).
    """
    side = side_of(channel)
    t = np.asarray(comp.ref[head].index, dtype=float)
    y = comp.ref[head][channel].to_numpy(float)
    p = comp.pred[head][channel].to_numpy(float)
    p_masked = np.where(np.isfinite(y), p, np.nan)
    refs, preds, used = [], [], []
    for cyc in comp.cycles:
        if side is not None and cyc.get("leg") != side:
            continue
        r = _resample_cycle(t, y, float(cyc["start"]), float(cyc["end"]), n)
        q = _resample_cycle(t, p_masked, float(cyc["start"]), float(cyc["end"]), n)
        q[~np.isfinite(r)] = np.nan
        refs.append(r)
        preds.append(q)
        used.append(cyc)
    if not refs:
        return np.zeros((0, n)), np.zeros((0, n)), []
    return np.vstack(refs), np.vstack(preds), used


def pooled_cycle_curves(comps: Sequence[TrialComparison], head: str, joint: str,
                        n: int = CYCLE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Side-pooled cycle curves of ``joint`` (e.g. ``hip_flexion_moment``, ``glmax``)."""
    refs, preds = [], []
    for c in comps:
        for side in ("r", "l"):
            ch = (joint[: -len("_moment")] + f"_{side}_moment") if joint.endswith("_moment") \
                else f"{joint}_{side}"
            if ch not in c.channels(head):
                continue
            r, p, _ = cycle_curves(c, head, ch, n)
            if len(r):
                refs.append(r)
                preds.append(p)
    if not refs:
        return np.zeros((0, n)), np.zeros((0, n))
    return np.vstack(refs), np.vstack(preds)


def _peak(curve: np.ndarray, sign: float) -> tuple[float, float]:
    """Signed peak value and its timing (% cycle) of ``sign * curve`` (NaN-aware)."""
    if not np.isfinite(curve).any():
        return float("nan"), float("nan")
    k = int(np.nanargmax(sign * curve))
    return float(curve[k]), 100.0 * k / (len(curve) - 1)


def cycle_peaks(comps: Sequence[TrialComparison], head: str, channels: Sequence[str] | None = None,
                min_coverage: float = 0.5, kind: str = "dominant") -> pd.DataFrame:
    """Per cycle and channel: the reference and predicted peak and its timing.

    Parameters
    ----------
    kind
        ``"dominant"``: the extremum of largest magnitude of the reference cycle (its sign is
        then used for the prediction's peak), ``"max"``: the maximum, ``"min"``: the minimum.
    min_coverage
        Cycles whose reference is valid on less than this fraction of the 101 samples are
        skipped; otherwise peaks are taken over the valid samples only (the same samples for
        reference and prediction).

    Returns
    -------
    DataFrame
        ``trial_id, subject, condition, leg, channel, ref_peak, pred_peak, ref_time_pct,
        pred_time_pct, coverage``.
    """
    rows = []
    for c in comps:
        chans = channels if channels is not None else c.channels(head)
        for ch in chans:
            if ch not in c.channels(head):
                continue
            R, P, used = cycle_curves(c, head, ch)
            for r, p, cyc in zip(R, P, used):
                cov = float(np.isfinite(r).mean())
                if cov < min_coverage or not np.isfinite(p).any():
                    continue
                if kind == "dominant":
                    k = int(np.nanargmax(np.abs(r)))
                    sign = 1.0 if r[k] >= 0 else -1.0
                else:
                    sign = 1.0 if kind == "max" else -1.0
                rv, rt = _peak(r, sign)
                pv, pt = _peak(p, sign)
                rows.append({"trial_id": c.trial_id, "subject": c.subject,
                             "condition": c.condition, "leg": cyc.get("leg"), "channel": ch,
                             "ref_peak": rv, "pred_peak": pv, "ref_time_pct": rt,
                             "pred_time_pct": pt, "coverage": cov})
    cols = ["trial_id", "subject", "condition", "leg", "channel", "ref_peak", "pred_peak",
            "ref_time_pct", "pred_time_pct", "coverage"]
    return pd.DataFrame(rows, columns=cols)


def peak_summary(comps: Sequence[TrialComparison], head: str,
                 channels: Sequence[str]) -> pd.DataFrame:
    """Per channel: mean |peak error|, mean |timing error| (% cycle), number of cycles."""
    pk = cycle_peaks(comps, head, channels)
    if not len(pk):
        return pd.DataFrame(index=pd.Index(list(channels), name="output"),
                            columns=["peak_err", "peak_timing_err_pct", "n_cycles"])
    pk["abs_err"] = (pk["pred_peak"] - pk["ref_peak"]).abs()
    pk["abs_dt"] = (pk["pred_time_pct"] - pk["ref_time_pct"]).abs()
    g = pk.groupby("channel")
    out = pd.DataFrame({"peak_err": g["abs_err"].mean(), "peak_timing_err_pct": g["abs_dt"].mean(),
                        "n_cycles": g.size()})
    out.index.name = "output"
    return out.reindex(list(channels))


def bland_altman(ref: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Bland–Altman agreement of paired values: bias (mean pred - ref), SD, 95 % limits."""
    ref = np.asarray(ref, float)
    pred = np.asarray(pred, float)
    ok = np.isfinite(ref) & np.isfinite(pred)
    d = pred[ok] - ref[ok]
    if d.size < 2:
        return {"n": int(d.size), "bias": float("nan"), "sd": float("nan"),
                "loa_low": float("nan"), "loa_high": float("nan")}
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return {"n": int(d.size), "bias": bias, "sd": sd, "loa_low": bias - 1.96 * sd,
            "loa_high": bias + 1.96 * sd}


def hip_peaks(comps: Sequence[TrialComparison]) -> dict[str, pd.DataFrame]:
    """Per-cycle peak hip flexion (max) and extension (min) moments, both legs."""
    chans = ["hip_flexion_r_moment", "hip_flexion_l_moment"]
    return {"flexion": cycle_peaks(comps, "moments", chans, kind="max"),
            "extension": cycle_peaks(comps, "moments", chans, kind="min")}
