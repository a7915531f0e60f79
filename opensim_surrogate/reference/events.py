"""Gait events, gait cycles and the validity of inverse-dynamics labels.

Two event sources:

* force plates (:func:`events_from_grf`): a foot is in contact while the vertical force of a
  plate assigned to it (ExternalLoads ``applied_to_body`` ``calcn_r`` / ``calcn_l``; vertical
  = ``y``) exceeds a threshold. Exact, but only for contacts that land on a plate.
* kinematics (:func:`events_from_kinematics`): Zeni et al. (2008, Gait Posture 27:710):
  heel strike at a maximum of the heel's anteroposterior position relative to the pelvis,
  toe-off at a minimum of the toe's. Works on every contact, plate or not. The signals come
  from OpenSim forward kinematics (:func:`opensim_surrogate.reference.tools.foot_positions`)
  or from ``.trc`` markers (:func:`foot_positions_from_trc`).

ID labels are valid at a frame when every foot is either on a force plate or not in contact
(:func:`label_validity`): an off-plate contact means an unmeasured external force, so ID's
joint moments are wrong there.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError, MissingFileError, TableFormatError

log = logging.getLogger(__name__)

__all__ = ["LEGS", "GaitEvents", "events_from_grf", "events_from_kinematics",
           "foot_positions_from_trc", "gait_cycles", "label_validity", "combined_events",
           "cycle_table", "is_measured", "foot_of_body"]

LEGS = ("r", "l")


@dataclass
class GaitEvents:
    """Heel strikes, toe-offs and stance intervals per leg.

    Attributes
    ----------
    heel_strike, toe_off : dict
        ``{"r": [t, ...], "l": [...]}`` (s), sorted.
    contacts : dict
        ``{"r": [(start, end), ...], ...}``: stance intervals, clipped to
        ``[t_start, t_end]`` (a stance under way at the first/last frame starts/ends there).
    t_start, t_end : float
        Time span the events were detected in.
    source : str
        ``"grf"`` or ``"kinematics"``.
    """

    heel_strike: dict[str, list[float]]
    toe_off: dict[str, list[float]]
    contacts: dict[str, list[tuple[float, float]]]
    t_start: float
    t_end: float
    source: str

    def to_dict(self) -> dict[str, list[float]]:
        """``{"heel_strike_r": [...], "toe_off_r": [...], "heel_strike_l": ..., ...}``."""
        out: dict[str, list[float]] = {}
        for leg in LEGS:
            out[f"heel_strike_{leg}"] = [float(t) for t in self.heel_strike.get(leg, [])]
            out[f"toe_off_{leg}"] = [float(t) for t in self.toe_off.get(leg, [])]
        return out


def foot_of_body(body: str) -> str | None:
    """``"calcn_r"`` -> ``"r"``, ``"toes_l"`` -> ``"l"``; None if the side is unknown."""
    b = body.strip().lower()
    if b.endswith("_r") or b.startswith("r_"):
        return "r"
    if b.endswith("_l") or b.startswith("l_"):
        return "l"
    return None


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Index runs ``[i0, i1]`` (inclusive) where ``mask`` is True."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(int))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def events_from_grf(grf: pd.DataFrame | str | Path, external_loads_xml: str | Path,
                    threshold_n: float = 20.0, min_contact_s: float = 0.1,
                    merge_gap_s: float = 0.03) -> GaitEvents:
    """Heel strikes / toe-offs per foot from force-plate vertical forces.

    Parameters
    ----------
    grf
        Ground reactions (DataFrame indexed by time, or a ``.mot`` path). Use the RAW file
        (not low-pass filtered) for crisp events.
    external_loads_xml
        Maps each plate's ``force_identifier`` to a body; ``..._r`` -> right foot.
    threshold_n
        Contact while the vertical (``<force_identifier>y``) force exceeds this (N).
    min_contact_s
        Shorter contacts are ignored.
    merge_gap_s
        Contacts of one foot separated by less than this are merged.

    Returns
    -------
    GaitEvents
        A contact already under way at the first sample has no heel strike, one still under
        way at the last sample no toe-off.
    """
    from .tools import _external_force_specs, read_sto

    df = grf if isinstance(grf, pd.DataFrame) else read_sto(grf)
    t = np.asarray(df.index, dtype=float)
    specs = _external_force_specs(external_loads_xml)
    on = {leg: np.zeros(len(t), bool) for leg in LEGS}
    for sp in specs:
        leg = foot_of_body(sp["body"])
        col = sp["force"] + "y"
        if leg is None:
            log.warning("ExternalForce %s applied to %r: side unknown, ignored", sp["name"],
                        sp["body"])
            continue
        if col not in df.columns:
            raise TableFormatError(f"vertical force column {col!r} missing", column=col,
                                   path=None if isinstance(grf, pd.DataFrame) else grf,
                                   hint="force identifiers of the ExternalLoads must match "
                                        "the GRF column labels")
        on[leg] |= df[col].to_numpy(dtype=float) > threshold_n
    hs: dict[str, list[float]] = {}
    to: dict[str, list[float]] = {}
    contacts: dict[str, list[tuple[float, float]]] = {}
    for leg in LEGS:
        runs = _runs(on[leg])
        merged: list[list[int]] = []
        for a, b in runs:
            if merged and t[a] - t[merged[-1][1]] < merge_gap_s:
                merged[-1][1] = b
            else:
                merged.append([a, b])
        hs[leg], to[leg], contacts[leg] = [], [], []
        for a, b in merged:
            if t[b] - t[a] < min_contact_s and 0 < a and b < len(t) - 1:
                continue
            if t[b] - t[a] < min_contact_s:  # a short piece at an edge: keep as contact only
                contacts[leg].append((float(t[a]), float(t[b])))
                continue
            contacts[leg].append((float(t[a]), float(t[b])))
            if a > 0:
                hs[leg].append(float(t[a]))
            if b < len(t) - 1:
                to[leg].append(float(t[b]))
    return GaitEvents(hs, to, contacts, float(t[0]), float(t[-1]), "grf")


def foot_positions_from_trc(trc: str | Path, heel: Sequence[str] = ("R_FCC", "L_FCC"),
                            toe: Sequence[str] = ("R_FM2", "L_FM2"),
                            pelvis_front: Sequence[str] = ("R_IAS", "L_IAS"),
                            pelvis_back: Sequence[str] = ("R_IPS", "L_IPS"),
                            lowpass_hz: float | None = 6.0) -> pd.DataFrame:
    """Zeni anteroposterior heel/toe signals from ``.trc`` markers (y vertical).

    The pelvis origin is the mean of ``pelvis_back`` (sacrum), the walking direction the
    horizontal part of mean(front) - mean(back). Defaults are the schreiber2019 marker names
    (heel = FCC, toe = 2nd metatarsal head FM2).

    Returns
    -------
    DataFrame
        Columns ``heel_r``, ``toe_r``, ``heel_l``, ``toe_l`` (m, + = ahead of the pelvis).
    """
    p = Path(trc)
    if not p.is_file():
        raise MissingFileError("marker file not found", path=p)
    lines = p.read_text(errors="replace").splitlines()
    if len(lines) < 6:
        raise TableFormatError("too short for a .trc file", path=p)
    keys = lines[1].split("\t")
    vals = lines[2].split("\t")
    meta = dict(zip([k.strip() for k in keys], [v.strip() for v in vals]))
    scale = {"mm": 1e-3, "cm": 1e-2, "m": 1.0}.get(meta.get("Units", "mm").lower(), 1e-3)
    names = lines[3].split("\t")
    col_of: dict[str, int] = {}
    for i, n in enumerate(names):
        if i >= 2 and n.strip():
            col_of[n.strip()] = i
    rows = []
    for ln in lines[5:]:
        parts = ln.split("\t")
        if len(parts) < 3 or not parts[1].strip():
            continue
        rows.append([float(x) if x.strip() else math.nan for x in parts])
    width = max(len(r) for r in rows)
    arr = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        arr[i, :len(r)] = r
    t = arr[:, 1]

    def marker(name: str) -> np.ndarray:
        if name not in col_of:
            raise InputError(f"marker {name!r} not in the .trc", path=p, column=name)
        i = col_of[name]
        xyz = arr[:, i:i + 3] * scale
        for k in range(3):  # fill gaps linearly
            v = xyz[:, k]
            good = np.isfinite(v)
            if good.sum() < 2:
                raise InputError(f"marker {name!r} has no data", path=p, column=name)
            xyz[:, k] = np.interp(t, t[good], v[good])
        return xyz

    origin = np.mean([marker(m) for m in pelvis_back], axis=0)
    front = np.mean([marker(m) for m in pelvis_front], axis=0)
    fwd = front - origin
    fwd[:, 1] = 0.0
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
    out = {}
    for leg, h, tt in zip(LEGS, heel, toe):
        out[f"heel_{leg}"] = np.einsum("ij,ij->i", marker(h) - origin, fwd)
        out[f"toe_{leg}"] = np.einsum("ij,ij->i", marker(tt) - origin, fwd)
    df = pd.DataFrame(out, index=pd.Index(t, name="time"))
    if lowpass_hz is not None and len(t) > 12:
        from scipy.signal import butter, filtfilt

        fs = 1.0 / float(np.median(np.diff(t)))
        if lowpass_hz < fs / 2:
            b, a = butter(2, lowpass_hz / (fs / 2))
            df = df.apply(lambda c: pd.Series(filtfilt(b, a, c.to_numpy()), index=c.index))
    return df


def _peaks(t: np.ndarray, y: np.ndarray, min_sep_s: float, prominence: float) -> list[float]:
    """Times of local maxima (parabolic sub-frame refinement), not at the first/last frame."""
    from scipy.signal import find_peaks

    dt = float(np.median(np.diff(t)))
    idx, _ = find_peaks(y, distance=max(1, int(round(min_sep_s / dt))), prominence=prominence)
    out = []
    for i in idx:
        if 0 < i < len(y) - 1:
            y0, y1, y2 = y[i - 1], y[i], y[i + 1]
            den = y0 - 2 * y1 + y2
            off = 0.5 * (y0 - y2) / den if den != 0 else 0.0
            out.append(float(t[i] + np.clip(off, -0.5, 0.5) * (t[i + 1] - t[i])))
    return out


def _contacts_from_events(hs: list[float], to: list[float], t0: float,
                          t1: float) -> list[tuple[float, float]]:
    """Stance intervals from alternating heel strikes and toe-offs (conservative)."""
    ev = sorted([(x, "hs") for x in hs] + [(x, "to") for x in to])
    if not ev:
        return [(t0, t1)]  # no event: contact state unknown -> treated as contact
    out: list[tuple[float, float]] = []
    start: float | None = t0 if ev[0][1] == "to" else None
    prev = t0
    for x, kind in ev:
        if kind == "hs":
            if start is None:
                start = x
        else:
            out.append((start if start is not None else prev, x))  # missed HS: from prev
            start = None
        prev = x
    if start is not None:
        out.append((start, t1))
    return out


def events_from_kinematics(foot_ap: pd.DataFrame, min_separation_s: float = 0.3,
                           prominence_m: float = 0.05, hs_offset_s: float = 0.0) -> GaitEvents:
    """Zeni et al. (2008) events from anteroposterior heel/toe signals.

    Parameters
    ----------
    foot_ap
        Columns ``heel_r``, ``toe_r``, ``heel_l``, ``toe_l`` (m, relative to the pelvis,
        + forward), e.g. from :func:`opensim_surrogate.reference.tools.foot_positions` or
        :func:`foot_positions_from_trc`.
    min_separation_s
        Minimum time between two heel strikes (or two toe-offs) of one foot.
    prominence_m
        Minimum prominence of an extremum.
    hs_offset_s
        Added to every heel strike. Zeni heel strikes come EARLY: on schreiber2019 they
        precede the 20 N force-plate heel strikes by 43 +- 11 ms (36 plate heel strikes,
        .trc heel markers; the same with OpenSim FK of the calcaneus), so the pipeline uses
        +0.04 s (``ReferenceConfig.kinematic_hs_offset_s``). Toe-offs agree within
        7 +- 13 ms and get no offset.

    Returns
    -------
    GaitEvents
        Heel strike = maximum of ``heel_*``; toe-off = minimum of ``toe_*``. Stance runs from
        a heel strike to the next toe-off; a foot whose first event is a toe-off is in stance
        from the first frame.
    """
    need = [f"{p}_{leg}" for leg in LEGS for p in ("heel", "toe")]
    missing = [c for c in need if c not in foot_ap.columns]
    if missing:
        raise InputError(f"foot signals missing: {', '.join(missing)}", column=missing[0])
    t = np.asarray(foot_ap.index, dtype=float)
    if len(t) < 5:
        raise InputError("too few frames for kinematic events", column="time")
    hs, to, contacts = {}, {}, {}
    for leg in LEGS:
        hs[leg] = [x + hs_offset_s for x in _peaks(t, foot_ap[f"heel_{leg}"].to_numpy(float),
                                                   min_separation_s, prominence_m)]
        to[leg] = _peaks(t, -foot_ap[f"toe_{leg}"].to_numpy(float), min_separation_s,
                         prominence_m)
        contacts[leg] = _contacts_from_events(hs[leg], to[leg], float(t[0]), float(t[-1]))
    return GaitEvents(hs, to, contacts, float(t[0]), float(t[-1]), "kinematics")


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def is_measured(stance: tuple[float, float], plate_contacts: Sequence[tuple[float, float]],
                overlap_s: float = 0.05, tolerance_s: float = 0.1) -> bool:
    """True if a kinematic stance lies on a force plate of the same foot.

    The stance must overlap a plate contact widened by ``tolerance_s`` on both sides by at
    least ``min(overlap_s, half the stance)``.
    """
    need = min(overlap_s, 0.5 * (stance[1] - stance[0]))
    return any(_overlap(stance, (a - tolerance_s, b + tolerance_s)) >= need
               and _overlap(stance, (a - tolerance_s, b + tolerance_s)) > 0
               for a, b in plate_contacts)


def label_validity(time: Sequence[float] | np.ndarray, measured: GaitEvents,
                   kinematic: GaitEvents, margin_s: float = 0.03, edge_margin_s: float = 0.05,
                   measured_overlap_s: float = 0.05,
                   measured_tolerance_s: float = 0.1) -> np.ndarray:
    """Frames whose ID labels are valid: every foot on a force plate or not in contact.

    A kinematic stance of a foot counts as measured when it overlaps a force-plate contact
    of the same foot (:func:`is_measured`); every other kinematic stance is an unmeasured
    contact and makes the frames from ``margin_s`` before its start to ``margin_s`` after
    its end invalid. Frames within ``edge_margin_s`` of the first/last frame are invalid too.

    schreiber2019 overground trials (one plate stance per foot) come out valid from about
    the first toe-off to the next off-plate heel strike (~0.85 s of ~1.5 s); treadmill trials
    with one belt per foot are valid everywhere but at the edges.

    Returns
    -------
    numpy.ndarray of bool
    """
    t = np.asarray(time, dtype=float)
    valid = np.ones(len(t), bool)
    if len(t) == 0:
        return valid
    for leg in LEGS:
        plates = measured.contacts.get(leg, [])
        for k in kinematic.contacts.get(leg, []):
            if is_measured(k, plates, measured_overlap_s, measured_tolerance_s):
                continue
            valid &= ~((t >= k[0] - margin_s) & (t <= k[1] + margin_s))
    valid &= (t >= t[0] + edge_margin_s - 1e-9) & (t <= t[-1] - edge_margin_s + 1e-9)
    return valid


def gait_cycles(events: GaitEvents | Mapping[str, Sequence[float]], leg: str,
                max_duration_s: float = 2.5) -> list[tuple[float, float]]:
    """Gait cycles of ``leg``: each heel strike to the next heel strike of the same foot.

    Cycles longer than ``max_duration_s`` (a missed heel strike) are dropped.
    """
    if leg not in LEGS:
        raise InputError(f"leg must be 'r' or 'l', not {leg!r}", column="leg")
    if isinstance(events, GaitEvents):
        hs = sorted(events.heel_strike.get(leg, []))
    else:
        hs = sorted(events.get(f"heel_strike_{leg}", []))
    return [(float(a), float(b)) for a, b in zip(hs[:-1], hs[1:]) if b - a <= max_duration_s]


def combined_events(measured: GaitEvents, kinematic: GaitEvents,
                    overlap_s: float = 0.05, tolerance_s: float = 0.1
                    ) -> dict[str, list[float]]:
    """Force-plate events, completed by the kinematic events of unmeasured stances.

    Plate events are exact; a kinematic heel strike / toe-off is added only when it starts
    / ends a kinematic stance that is NOT on a plate (:func:`is_measured`), e.g. the
    off-plate steps of an overground trial. Events of measured stances come from the plates
    alone (Zeni toe-offs are ~90 ms late in running, so they would duplicate them).

    Returns
    -------
    dict
        ``{"heel_strike_r": [...], "toe_off_r": [...], ...}`` sorted.
    """
    out: dict[str, list[float]] = {}
    for leg in LEGS:
        plates = measured.contacts.get(leg, [])
        hs = list(measured.heel_strike.get(leg, []))
        to = list(measured.toe_off.get(leg, []))
        k_hs = set(kinematic.heel_strike.get(leg, []))
        k_to = set(kinematic.toe_off.get(leg, []))
        for a, b in kinematic.contacts.get(leg, []):
            if is_measured((a, b), plates, overlap_s, tolerance_s):
                continue
            if a in k_hs:
                hs.append(a)
            if b in k_to:
                to.append(b)
        out[f"heel_strike_{leg}"] = sorted(float(x) for x in hs)
        out[f"toe_off_{leg}"] = sorted(float(x) for x in to)
    return out


def cycle_table(events: Mapping[str, Sequence[float]], time: np.ndarray, valid: np.ndarray,
                max_duration_s: float = 2.5) -> list[dict[str, Any]]:
    """Cycles of both legs with the fraction of their frames whose ID labels are valid."""
    out: list[dict[str, Any]] = []
    t = np.asarray(time, float)
    for leg in LEGS:
        for a, b in gait_cycles(events, leg, max_duration_s):
            sel = (t >= a - 1e-9) & (t < b - 1e-9)
            frac = float(valid[sel].mean()) if sel.any() else 0.0
            out.append({"leg": leg, "start": a, "end": b, "labelled_fraction": frac})
    return sorted(out, key=lambda c: (c["start"], c["leg"]))
