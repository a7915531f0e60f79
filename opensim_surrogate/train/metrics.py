"""Error metrics of surrogate predictions: RMSE, MAE and two R² definitions.

All metrics are computed only over *valid* entries (``mask`` True and a finite label), per
subject (all that subject's trials pooled), then averaged over subjects ("subject-mean", as
Gait2Hip-60 reports them).

Two R² definitions
------------------
``r2_paper`` (Gait2Hip-60's)
    ``1 - SSres / SStot`` with ``SStot`` taken around ONE grand mean of all output channels
    pooled. Differences *between* channels (a big muscle vs a small one) then count as
    "explained", which flatters the score; we report it only to compare with the paper.
``r2_channel`` (honest)
    R² of every channel around its own mean, then the mean over channels. A channel whose
    labels do not vary for a subject (SStot = 0) or that has fewer than ``min_frames`` valid
    frames is left out of that subject's mean.

RMSE and MAE pool every valid (frame, channel) entry of a subject.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

MIN_FRAMES = 3


@dataclass
class EvalTrial:
    """Labels and predictions of one trial for one group of output channels.

    Attributes
    ----------
    subject, condition : str
        Grouping keys.
    y, p : numpy.ndarray
        (T, C) labels and predictions (same units).
    mask : numpy.ndarray
        (T, C) bool: entries to score. Entries with a non-finite label are ignored too; a
        non-finite prediction on a scored entry is an error.
    trial_id : str
        For reports.
    """

    subject: str
    condition: str
    y: np.ndarray
    p: np.ndarray
    mask: np.ndarray
    trial_id: str = ""


def _valid(y: np.ndarray, p: np.ndarray, mask: np.ndarray) -> np.ndarray:
    y, p, mask = np.asarray(y, float), np.asarray(p, float), np.asarray(mask, bool)
    if y.shape != p.shape or y.shape != mask.shape:
        raise ValueError(f"shapes differ: labels {y.shape}, predictions {p.shape}, "
                         f"mask {mask.shape}")
    m = mask & np.isfinite(y)
    if np.any(m & ~np.isfinite(p)):
        raise ValueError("prediction is NaN/inf on a scored entry")
    return m


def rmse(y: np.ndarray, p: np.ndarray, mask: np.ndarray) -> float:
    """Root-mean-square error over the valid entries (NaN if none)."""
    m = _valid(y, p, mask)
    return float(np.sqrt(np.mean((np.asarray(y)[m] - np.asarray(p)[m]) ** 2))) if m.any() \
        else float("nan")


def mae(y: np.ndarray, p: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute error over the valid entries (NaN if none)."""
    m = _valid(y, p, mask)
    return float(np.mean(np.abs(np.asarray(y)[m] - np.asarray(p)[m]))) if m.any() \
        else float("nan")


def r2_paper(y: np.ndarray, p: np.ndarray, mask: np.ndarray) -> float:
    """Gait2Hip-60's R²: SStot around the grand mean of all valid entries of all channels."""
    m = _valid(y, p, mask)
    if m.sum() < 2:
        return float("nan")
    yy, pp = np.asarray(y, float)[m], np.asarray(p, float)[m]
    ss_tot = float(np.sum((yy - yy.mean()) ** 2))
    if ss_tot <= 0:
        return float("nan")
    return 1.0 - float(np.sum((yy - pp) ** 2)) / ss_tot


def r2_per_channel(y: np.ndarray, p: np.ndarray, mask: np.ndarray,
                   min_frames: int = MIN_FRAMES) -> np.ndarray:
    """R² of every channel around its own mean, shape (C,); NaN where undefined."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    m = _valid(y, p, mask)
    out = np.full(y.shape[1], np.nan)
    for c in range(y.shape[1]):
        mc = m[:, c]
        if mc.sum() < min_frames:
            continue
        yc, pc = y[mc, c], p[mc, c]
        ss_tot = float(np.sum((yc - yc.mean()) ** 2))
        if ss_tot <= 1e-12 * max(1.0, float(np.sum(yc ** 2))):
            continue
        out[c] = 1.0 - float(np.sum((yc - pc) ** 2)) / ss_tot
    return out


def r2_channel(y: np.ndarray, p: np.ndarray, mask: np.ndarray,
               min_frames: int = MIN_FRAMES) -> float:
    """Honest R²: mean over channels of the per-channel R² (undefined channels left out)."""
    r = r2_per_channel(y, p, mask, min_frames)
    return float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")


def _stack(trials: Sequence[EvalTrial]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.concatenate([t.y for t in trials]), np.concatenate([t.p for t in trials]),
            np.concatenate([t.mask for t in trials]))


def scores(y: np.ndarray, p: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, both R², the median per-channel R² (robust to a few small, spiky channels)
    and the number of scored entries of one pooled set."""
    m = _valid(y, p, mask)
    r = r2_per_channel(y, p, mask)
    med = float(np.nanmedian(r)) if np.isfinite(r).any() else float("nan")
    return {"rmse": rmse(y, p, mask), "mae": mae(y, p, mask), "r2_paper": r2_paper(y, p, mask),
            "r2_channel": r2_channel(y, p, mask), "r2_channel_median": med,
            "n_entries": int(m.sum()), "n_frames": int(m.any(axis=1).sum())}


def per_subject(trials: Sequence[EvalTrial]) -> pd.DataFrame:
    """One row of :func:`scores` per subject (its trials pooled)."""
    rows = []
    for subj in sorted({t.subject for t in trials}):
        sel = [t for t in trials if t.subject == subj]
        y, p, m = _stack(sel)
        rows.append({"subject": subj, **scores(y, p, m)})
    return pd.DataFrame(rows)


def subject_mean(trials: Sequence[EvalTrial]) -> dict[str, float]:
    """Metrics per subject, then averaged over the subjects that have scored entries."""
    df = per_subject(trials)
    df = df[df["n_entries"] > 0]
    out = {k: float(np.nanmean(df[k])) if len(df) and np.isfinite(df[k]).any() else float("nan")
           for k in ("rmse", "mae", "r2_paper", "r2_channel", "r2_channel_median")}
    out["n_subjects"] = int(len(df))
    out["n_entries"] = int(df["n_entries"].sum()) if len(df) else 0
    return out


def per_condition(trials: Sequence[EvalTrial]) -> pd.DataFrame:
    """Subject-mean metrics of each condition's trials."""
    rows = []
    for cond in sorted({t.condition for t in trials}):
        rows.append({"condition": cond,
                     **subject_mean([t for t in trials if t.condition == cond])})
    return pd.DataFrame(rows)


def per_channel(trials: Sequence[EvalTrial], channel_names: Sequence[str]) -> pd.DataFrame:
    """RMSE, MAE and R² of every channel: per subject, then averaged over subjects."""
    subjects = sorted({t.subject for t in trials})
    acc = {k: np.full((len(subjects), len(channel_names)), np.nan) for k in ("rmse", "mae", "r2")}
    for i, subj in enumerate(subjects):
        y, p, m = _stack([t for t in trials if t.subject == subj])
        mv = _valid(y, p, m)
        for c in range(len(channel_names)):
            mc = mv[:, c]
            if not mc.any():
                continue
            e = y[mc, c] - p[mc, c]
            acc["rmse"][i, c] = np.sqrt(np.mean(e ** 2))
            acc["mae"][i, c] = np.mean(np.abs(e))
        acc["r2"][i] = r2_per_channel(y, p, m)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return pd.DataFrame({"channel": list(channel_names),
                                 "rmse": np.nanmean(acc["rmse"], axis=0),
                                 "mae": np.nanmean(acc["mae"], axis=0),
                                 "r2": np.nanmean(acc["r2"], axis=0)})


@dataclass
class Evaluation:
    """Every view of the metrics of one method on one group of channels."""

    overall: dict[str, float]
    subjects: pd.DataFrame
    conditions: pd.DataFrame
    channels: pd.DataFrame
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"overall": self.overall,
                "per_condition": self.conditions.to_dict(orient="records"),
                "per_channel": self.channels.to_dict(orient="records")}


def evaluate(trials: Sequence[EvalTrial], channel_names: Sequence[str]) -> Evaluation:
    """Overall (subject-mean), per-subject, per-condition and per-channel metrics."""
    return Evaluation(overall=subject_mean(trials), subjects=per_subject(trials),
                      conditions=per_condition(trials),
                      channels=per_channel(trials, channel_names))
