"""Baselines a surrogate network has to beat, fitted on the same split.

``template`` — the mean gait-cycle template, phase-matched
    Every frame gets a gait phase in [0, 1) from the trial's heel strikes (linear between
    consecutive heel strikes of the same foot; before the first / after the last one,
    extrapolated with the trial's stride period). The template of a channel is the mean of the
    valid training labels in each of ``n_bins`` phase bins, using the phase of the channel's
    own side (``_r`` channels: right heel strikes; ``_l``: left; unsided: right). A test frame
    gets the template at its phase (circular linear interpolation). It knows the test trial's
    gait events — information the networks do not get — and nothing else.

``ridge`` — ridge regression on the window features
    The z-scored per-frame features of the window scheme (angles, velocities, accelerations,
    pelvis translation rates, height) at lags ``-10, -5, 0, +5, +10`` frames, plus a bias,
    linearly mapped to the z-scored targets; the penalty is chosen per head by GroupKFold
    cross-validation on the pool (the networks' folds). Trained with the same (mirrored)
    training trials as the networks.

Both predict mass-normalised outputs ``{head: (T, C)}`` like
:func:`~.protocol.predict_trials`; predicted forces are clipped at 0 as the networks' are.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from . import features as F
from .protocol import PreparedData, TrialData

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# gait phase
# --------------------------------------------------------------------------------------------
def stride_period(events: dict[str, list[float]], default: float) -> float:
    """Median interval between heel strikes of the same foot (``default`` if none)."""
    diffs: list[float] = []
    for side in ("r", "l"):
        hs = sorted(events.get(f"heel_strike_{side}", []) or [])
        diffs += list(np.diff(hs))
    diffs = [d for d in diffs if 0.3 < d < 3.0]
    return float(np.median(diffs)) if diffs else float(default)


def gait_phase(time: np.ndarray, heel_strikes: Sequence[float], period: float) -> np.ndarray:
    """Phase in [0, 1) of every time from the heel strikes of one foot (NaN if none)."""
    t = np.asarray(time, dtype=float)
    hs = np.sort(np.asarray(list(heel_strikes or []), dtype=float))
    if hs.size == 0:
        return np.full(t.shape, np.nan)
    i = np.searchsorted(hs, t, side="right") - 1
    phase = np.empty_like(t)
    inside = (i >= 0) & (i < hs.size - 1)
    ii = i[inside]
    phase[inside] = (t[inside] - hs[ii]) / (hs[ii + 1] - hs[ii])
    before = i < 0
    phase[before] = np.mod((t[before] - hs[0]) / period, 1.0)
    after = i >= hs.size - 1
    phase[after] = np.mod((t[after] - hs[-1]) / period, 1.0)
    return np.mod(phase, 1.0)


def trial_phases(trial: TrialData, default_period: float) -> dict[str, np.ndarray]:
    """``{"r": phase, "l": phase}`` of a trial; a foot without heel strikes gets the other
    foot's phase shifted by half a cycle."""
    period = stride_period(trial.events, default_period)
    ph = {s: gait_phase(trial.time, trial.events.get(f"heel_strike_{s}", []), period)
          for s in ("r", "l")}
    for s, o in (("r", "l"), ("l", "r")):
        if np.isnan(ph[s]).all() and not np.isnan(ph[o]).all():
            ph[s] = np.mod(ph[o] + 0.5, 1.0)
    return ph


# --------------------------------------------------------------------------------------------
# template
# --------------------------------------------------------------------------------------------
class TemplateBaseline:
    """Phase-matched mean gait-cycle template (see the module docstring)."""

    name = "template"

    def __init__(self, n_bins: int = 50) -> None:
        self.n_bins = n_bins
        self.templates: dict[str, np.ndarray] = {}
        self.means: dict[str, np.ndarray] = {}
        self.sides: dict[str, list[str]] = {}
        self.default_period = 1.1

    def fit(self, trials: Sequence[TrialData], names: dict[str, list[str]]) -> "TemplateBaseline":
        periods = [stride_period(t.events, np.nan) for t in trials]
        periods = [p for p in periods if np.isfinite(p)]
        self.default_period = float(np.median(periods)) if periods else 1.1
        for h, cols in names.items():
            sides = [F.side_of(c) or "r" for c in cols]
            self.sides[h] = sides
            s = np.zeros((self.n_bins, len(cols)))
            n = np.zeros((self.n_bins, len(cols)))
            tot, cnt = np.zeros(len(cols)), np.zeros(len(cols))
            for t in trials:
                ph = trial_phases(t, self.default_period)
                y, m = t.labels[h], t.masks[h]
                for side in ("r", "l"):
                    cs = [j for j, sd in enumerate(sides) if sd == side]
                    if not cs:
                        continue
                    p = ph[side]
                    ok = np.isfinite(p)
                    b = np.minimum((np.nan_to_num(p) * self.n_bins).astype(int), self.n_bins - 1)
                    for j in cs:
                        sel = ok & m[:, j]
                        np.add.at(s[:, j], b[sel], y[sel, j])
                        np.add.at(n[:, j], b[sel], 1)
                tot += np.nansum(np.where(m, y, 0.0), axis=0)
                cnt += m.sum(axis=0)
            mean = tot / np.maximum(cnt, 1)
            tmpl = np.where(n > 0, s / np.maximum(n, 1), np.nan)
            for j in range(len(cols)):  # fill empty bins by circular interpolation
                col = tmpl[:, j]
                good = np.flatnonzero(np.isfinite(col))
                if good.size == 0:
                    tmpl[:, j] = mean[j]
                elif good.size < self.n_bins:
                    xp = np.concatenate([good - self.n_bins, good, good + self.n_bins])
                    fp = np.tile(col[good], 3)
                    tmpl[:, j] = np.interp(np.arange(self.n_bins), xp, fp)
            self.templates[h] = tmpl
            self.means[h] = mean
        return self

    def _at(self, h: str, phase: np.ndarray, j: int) -> np.ndarray:
        col = self.templates[h][:, j]
        x = np.nan_to_num(phase) * self.n_bins - 0.5
        xp = np.arange(-1, self.n_bins + 1)
        fp = np.concatenate([[col[-1]], col, [col[0]]])
        v = np.interp(x, xp, fp)
        return np.where(np.isfinite(phase), v, self.means[h][j])

    def predict(self, trials: Sequence[TrialData]) -> list[dict[str, np.ndarray]]:
        out = []
        for t in trials:
            ph = trial_phases(t, self.default_period)
            d = {}
            for h, sides in self.sides.items():
                d[h] = np.stack([self._at(h, ph[s], j) for j, s in enumerate(sides)], axis=1)
                if h == "forces":
                    d[h] = np.maximum(d[h], 0.0)
            out.append(d)
        return out


# --------------------------------------------------------------------------------------------
# ridge
# --------------------------------------------------------------------------------------------
def lagged(x: np.ndarray, lags: Sequence[int]) -> np.ndarray:
    """(T, F) -> (T, F * len(lags) + 1): copies shifted by each lag (edge-clamped) + bias."""
    n = x.shape[0]
    cols = [x[np.clip(np.arange(n) + lag, 0, n - 1)] for lag in lags]
    return np.concatenate(cols + [np.ones((n, 1))], axis=1)


class RidgeBaseline:
    """Ridge regression on lagged window features (see the module docstring)."""

    name = "ridge"

    def __init__(self, lags: Sequence[int] = (-10, -5, 0, 5, 10),
                 alphas: Sequence[float] = (0.1, 1.0, 10.0, 100.0, 1e3, 1e4)) -> None:
        self.lags = tuple(lags)
        self.alphas = tuple(alphas)
        self.alpha: dict[str, float] = {}
        self.weights: dict[str, np.ndarray] = {}
        self.in_norm: F.Normalizer | None = None
        self.out_norm: dict[str, F.Normalizer] = {}
        self.heads: list[str] = []

    def _stats(self, trials: Sequence[TrialData], h: str) -> list[tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray, np.ndarray]]:
        out = []
        for t in trials:
            x = lagged(self.in_norm.transform(t.features), self.lags)
            rows = t.masks[h].all(axis=1)
            y = self.out_norm[h].transform(np.nan_to_num(t.labels[h]))[rows]
            xr = x[rows]
            out.append((xr.T @ xr, xr.T @ y, xr, y))
        return out

    def _solve(self, g: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
        reg = np.eye(g.shape[0]) * alpha
        reg[-1, -1] = 0.0  # no penalty on the bias
        return np.linalg.solve(g + reg, b)

    def fit(self, prepared: PreparedData, pool: Sequence[str],
            folds: Sequence[tuple[Sequence[str], Sequence[str]]], mirror: bool = True
            ) -> "RidgeBaseline":
        """Fit on the pool subjects; the penalty is chosen by CV over ``folds``."""
        train = prepared.training_trials(pool, mirror and bool(prepared.mirrored))
        self.in_norm = F.Normalizer.fit([t.features for t in train])
        self.heads = list(prepared.names)
        for h in self.heads:
            self.out_norm[h] = F.Normalizer.fit([t.labels[h] for t in train],
                                                [t.masks[h] for t in train])
            stats = dict(zip([t.trial_id for t in train], self._stats(train, h)))
            subj = {t.trial_id: t.subject for t in train}
            orig = {t.trial_id: not t.mirrored for t in train}
            errs = np.zeros(len(self.alphas))
            for tr, va in folds:
                trs, vas = set(tr), set(va)
                g = sum(stats[k][0] for k in stats if subj[k] in trs)
                b = sum(stats[k][1] for k in stats if subj[k] in trs)
                for ai, a in enumerate(self.alphas):
                    w = self._solve(g, b, a)
                    se = sum(float(np.sum((stats[k][2] @ w - stats[k][3]) ** 2)) for k in stats
                             if subj[k] in vas and orig[k])
                    n = sum(stats[k][3].size for k in stats if subj[k] in vas and orig[k])
                    errs[ai] += se / max(n, 1)
            self.alpha[h] = float(self.alphas[int(np.argmin(errs))])
            g = sum(s[0] for s in stats.values())
            b = sum(s[1] for s in stats.values())
            self.weights[h] = self._solve(g, b, self.alpha[h])
            log.info("ridge %s: alpha %g", h, self.alpha[h])
        return self

    def predict(self, trials: Sequence[TrialData]) -> list[dict[str, np.ndarray]]:
        out = []
        for t in trials:
            x = lagged(self.in_norm.transform(t.features), self.lags)
            d = {}
            for h in self.heads:
                y = self.out_norm[h].inverse(x @ self.weights[h])
                d[h] = np.maximum(y, 0.0) if h == "forces" else y
            out.append(d)
        return out
