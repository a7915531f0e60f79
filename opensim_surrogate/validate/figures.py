"""Figures of the validation report (matplotlib, Agg backend; PNG bytes).

Every function returns the PNG as ``bytes`` so the HTML report can embed it (base64) and the
Markdown report can link the same file.
"""
from __future__ import annotations

import io
import logging
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .compare import (CYCLE_POINTS, HEAD_UNITS, TrialComparison, bland_altman,
                      pooled_cycle_curves)

log = logging.getLogger(__name__)

__all__ = ["MOMENT_PANELS", "HIP_MUSCLE_PANELS", "cycle_figure", "r2_bar_figure",
           "bland_altman_figure", "physics_figure"]

REF_COLOR = "#333333"
SUR_COLOR = "#d9480f"

#: (side-free channel, title) of the joint-moment panels.
MOMENT_PANELS = [
    ("hip_flexion_moment", "Hip flexion (+) moment"),
    ("hip_adduction_moment", "Hip adduction (+) moment"),
    ("hip_rotation_moment", "Hip internal rotation (+) moment"),
    ("knee_angle_moment", "Knee moment (canonical: flexion +)"),
    ("ankle_angle_moment", "Ankle dorsiflexion (+) moment"),
]
#: Main hip muscle groups (Gait2Hip-60 groups) shown as cycle curves.
HIP_MUSCLE_PANELS = [
    ("iliopsoas", "Iliopsoas"), ("glmax", "Gluteus maximus"), ("glmed", "Gluteus medius"),
    ("glmin", "Gluteus minimus"), ("addmag", "Adductor magnus"), ("hamstring", "Semimem. + semiten."),
    ("bflh", "Biceps femoris LH"), ("recfem", "Rectus femoris"), ("tfl", "Tensor fasciae latae"),
]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _mean_sd(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NaN-aware mean, SD and count per column (no warnings for empty columns)."""
    n = np.isfinite(a).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.nansum(a, axis=0)
        mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        dev = np.where(np.isfinite(a), a - mean, 0.0)
        sd = np.where(n > 1, np.sqrt((dev ** 2).sum(axis=0) / np.maximum(n - 1, 1)), np.nan)
    return mean, sd, n


def cycle_figure(comps: Sequence[TrialComparison], head: str,
                 panels: Sequence[tuple[str, str]], title: str, ncols: int = 3) -> bytes | None:
    """Mean ± SD over the gait cycle (0–100 %), reference vs surrogate, one panel per channel.

    Channels are side-pooled (right channels on right-leg cycles, left on left). Returns
    ``None`` if no panel has data.
    """
    plt = _plt()
    data = []
    for joint, label in panels:
        R, P = pooled_cycle_curves(comps, head, joint)
        if len(R) and np.isfinite(R).any():
            data.append((joint, label, R, P))
    if not data:
        return None
    ncols = min(ncols, len(data))
    nrows = int(np.ceil(len(data) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    x = np.linspace(0, 100, CYCLE_POINTS)
    unit = HEAD_UNITS[head]
    for ax, (joint, label, R, P) in zip(axes.ravel(), data):
        for arr, color, name in ((R, REF_COLOR, "OpenSim"), (P, SUR_COLOR, "surrogate")):
            m, s, n = _mean_sd(arr)
            ax.plot(x, m, color=color, lw=1.8, label=name)
            ax.fill_between(x, m - s, m + s, color=color, alpha=0.18, lw=0)
        ax.axhline(0.0, color="#999999", lw=0.6)
        ax.set_title(f"{label} (n={len(R)} cycles)", fontsize=9)
        ax.set_xlim(0, 100)
        ax.set_xlabel("gait cycle (%)", fontsize=8)
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(data):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7, loc="best")
    fig.suptitle(title + "  (mean ± SD; NaN where not labelled)", fontsize=10)
    fig.tight_layout()
    return _png(fig)


def r2_bar_figure(table: pd.DataFrame, title: str, column: str = "r2") -> bytes | None:
    """Per-muscle R² bars: one row per muscle (sides side by side)."""
    if table is None or not len(table) or column not in table:
        return None
    plt = _plt()
    names = list(table.index)
    bases: list[str] = []
    for n in names:
        b = n[:-2] if n[-2:] in ("_r", "_l") else n
        if b not in bases:
            bases.append(b)
    vals = {s: [float(table[column].get(f"{b}_{s}", np.nan)) for b in bases] for s in ("r", "l")}
    y = np.arange(len(bases))
    fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.2 * len(bases) + 1.2)))
    h = 0.4
    for k, (s, color) in enumerate((("r", "#1c7ed6"), ("l", "#74c0fc"))):
        v = np.array(vals[s])
        ax.barh(y + (k - 0.5) * h, np.clip(np.nan_to_num(v, nan=0.0), -1, 1), height=h,
                color=color, label="right" if s == "r" else "left")
    ax.set_yticks(y)
    ax.set_yticklabels(bases, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.0, color="#555555", lw=0.7)
    finite = np.array([x for s in vals.values() for x in s if np.isfinite(x)])
    lo = max(-1.0, min(-0.05, float(finite.min()) - 0.05)) if finite.size else -1.0
    ax.set_xlim(lo, 1.0)
    ax.set_xlabel("per-channel R² (clipped to [-1, 1])", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def bland_altman_figure(peaks: Mapping[str, pd.DataFrame], unit: str = "N·m/kg") -> bytes | None:
    """Bland–Altman plots of per-cycle peak hip moments (one panel per peak kind)."""
    kinds = [(k, v) for k, v in peaks.items() if len(v)]
    if not kinds:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.0 * len(kinds), 3.8), squeeze=False)
    for ax, (kind, df) in zip(axes.ravel(), kinds):
        r = df["ref_peak"].to_numpy(float)
        p = df["pred_peak"].to_numpy(float)
        st = bland_altman(r, p)
        mean = (r + p) / 2
        diff = p - r
        for leg, marker in (("r", "o"), ("l", "s")):
            sel = (df["leg"] == leg).to_numpy()
            ax.scatter(mean[sel], diff[sel], s=16, marker=marker, alpha=0.7,
                       label="right" if leg == "r" else "left")
        for v, ls in ((st["bias"], "-"), (st["loa_low"], "--"), (st["loa_high"], "--")):
            if np.isfinite(v):
                ax.axhline(v, color="#c92a2a", ls=ls, lw=1)
        ax.axhline(0, color="#999999", lw=0.6)
        ax.set_title(f"Peak hip {kind} moment (n={st['n']})\nbias {st['bias']:.3f}, "
                     f"LoA [{st['loa_low']:.3f}, {st['loa_high']:.3f}] {unit}", fontsize=9)
        ax.set_xlabel(f"mean of OpenSim and surrogate ({unit})", fontsize=8)
        ax.set_ylabel(f"surrogate − OpenSim ({unit})", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def physics_figure(summary: pd.DataFrame) -> bytes | None:
    """RMS moment-balance residual per joint (N·m/kg) for the reference and the surrogate."""
    if summary is None or not len(summary):
        return None
    plt = _plt()
    cols = [("ref_per_kg", "OpenSim SO + reserves", "#495057"),
            ("ref_no_reserve_per_kg", "OpenSim SO, no reserves", "#adb5bd"),
            ("sur_vs_pred_per_kg", "surrogate forces vs its moments", "#d9480f"),
            ("sur_vs_id_per_kg", "surrogate forces vs ID", "#ffa94d")]
    cols = [c for c in cols if c[0] in summary and summary[c[0]].notna().any()]
    joints = list(summary.index)
    x = np.arange(len(joints))
    w = 0.8 / max(1, len(cols))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(joints) + 2), 3.4))
    for k, (col, label, color) in enumerate(cols):
        ax.bar(x + (k - (len(cols) - 1) / 2) * w, summary[col].to_numpy(float), width=w,
               color=color, label=label)
    if "id_rms_per_kg" in summary:
        ax.plot(x, summary["id_rms_per_kg"].to_numpy(float), "k_", ms=18, mew=2,
                label="RMS ID moment (scale)")
    ax.set_xticks(x)
    ax.set_xticklabels(joints, rotation=20, fontsize=8)
    ax.set_ylabel("RMS residual (N·m/kg)", fontsize=8)
    title = "Moment balance Σ F·r (+ reserve) − moment"
    if "ref_per_kg" in summary and summary["ref_per_kg"].notna().any():
        title += (f"\nOpenSim SO + reserves: ≤ {np.nanmax(summary['ref_per_kg']):.1e} N·m/kg "
                  "(bars too small to see)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return _png(fig)
