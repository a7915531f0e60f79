"""Left/right mirroring of trial records (data augmentation), explicit and never stored.

:func:`mirror_record` turns a trial into its mirror image about the sagittal plane, so that
a left-leg gait cycle becomes a right-leg one (and vice versa):

* every ``_r`` / ``_l`` name is swapped in all tables (coordinates, ``<coord>_moment`` /
  ``<coord>_force`` moments, muscles, actuators, mask columns), in event names and in the
  ``leg`` of each cycle;
* the sign flips for the coordinates in :data:`MIRROR_SIGN_FLIPS` (out-of-sagittal-plane
  pelvis and lumbar motion) and for their generalized forces;
* leg and arm joint angles keep their sign: OpenSim's left-side joint axes are already
  mirrored, so ``hip_adduction_l`` means adduction just as ``hip_adduction_r`` does.

Mirroring twice gives the original record back (``extras["mirrored"]`` toggles). Apply it in
the training data pipeline, not to stored datasets.
"""
from __future__ import annotations

import copy
import re
from typing import Literal

import pandas as pd

from .store import TrialRecord

__all__ = ["ACTUATOR_COORDINATES", "MIRROR_SIGN_FLIPS", "MIRRORED_KEY", "mirror_frame",
           "mirror_name", "mirror_record", "sign_flipped"]

#: Coordinates whose value (and generalized force) changes sign under a sagittal-plane
#: mirror (pelvis obliquity and axial rotation, mediolateral pelvis translation, trunk lateral
#: bending and axial rotation). Joint angles of the legs and arms are NOT listed: OpenSim's
#: left-side axes are already mirrored. Verified against real ID by the reference pipeline.
MIRROR_SIGN_FLIPS: tuple[str, ...] = ("pelvis_list", "pelvis_rotation", "pelvis_tz",
                                      "lumbar_bending", "lumbar_rotation")

#: Actuator name -> the coordinate it drives, for actuators whose name does not contain the
#: coordinate (the Rajagopal-family model's own torso CoordinateActuators). Actuators named
#: after their coordinate (``residual_pelvis_list``, ``reserve_hip_flexion_r``) need no entry.
ACTUATOR_COORDINATES: dict[str, str] = {"lumbar_ext": "lumbar_extension",
                                        "lumbar_bend": "lumbar_bending",
                                        "lumbar_rot": "lumbar_rotation"}

#: ``record.extras`` key set to True on a mirrored record (removed when mirrored back).
MIRRORED_KEY = "mirrored"

Kind = Literal["kinematics", "moments", "forces", "activations", "actuators", "mask"]
KINDS = ("kinematics", "moments", "forces", "activations", "actuators", "mask")

def mirror_name(name: str) -> str:
    """Swap the side of a name: every ``_r``/``_l`` token (``_``-delimited) is exchanged.

    >>> mirror_name("hip_flexion_r_moment"), mirror_name("knee_angle_l_beta")
    ('hip_flexion_l_moment', 'knee_angle_r_beta')
    >>> mirror_name("glmax1_r"), mirror_name("pelvis_tilt")
    ('glmax1_l', 'pelvis_tilt')
    """
    parts = name.split("_")
    swapped = [{"r": "l", "l": "r"}.get(p, p) if i > 0 else p for i, p in enumerate(parts)]
    return "_".join(swapped)


def sign_flipped(column: str, kind: str,
                 actuator_coordinates: dict[str, str] | None = None) -> bool:
    """True if ``column`` of a table of kind ``kind`` changes sign under mirroring.

    * kinematics: the coordinate is in :data:`MIRROR_SIGN_FLIPS` (or its speed ``<c>_u``);
    * moments: ``<c>_moment`` / ``<c>_force`` for such a coordinate;
    * actuators: a coordinate actuator whose name contains such a coordinate (e.g.
      ``residual_pelvis_list``, ``reserve_lumbar_bending``) or that ``actuator_coordinates``
      (default :data:`ACTUATOR_COORDINATES`) maps to one (``lumbar_bend``);
    * forces, activations, mask: never (muscle forces and activations are non-negative).
    """
    if kind == "kinematics":
        return column in MIRROR_SIGN_FLIPS or (column.endswith("_u")
                                               and column[:-2] in MIRROR_SIGN_FLIPS)
    if kind == "moments":
        for suffix in ("_moment", "_force"):
            if column.endswith(suffix) and column[: -len(suffix)] in MIRROR_SIGN_FLIPS:
                return True
        return False
    if kind == "actuators":
        amap = ACTUATOR_COORDINATES if actuator_coordinates is None else actuator_coordinates
        if column in amap:
            return amap[column] in MIRROR_SIGN_FLIPS
        return any(re.search(rf"(?<![A-Za-z0-9]){re.escape(c)}(?![A-Za-z0-9])", column)
                   for c in MIRROR_SIGN_FLIPS)
    if kind in ("forces", "activations", "mask"):
        return False
    raise ValueError(f"unknown table kind {kind!r}; expected one of {KINDS}")


def mirror_frame(df: pd.DataFrame, kind: Kind,
                 actuator_coordinates: dict[str, str] | None = None) -> pd.DataFrame:
    """Mirror one per-frame table (a copy; ``df`` is not modified).

    Parameters
    ----------
    df
        A table of a :class:`TrialRecord` (or any frame with those column names).
    kind
        ``"kinematics"``, ``"moments"``, ``"forces"``, ``"activations"``, ``"actuators"``
        or ``"mask"`` (which columns flip sign: see :func:`sign_flipped`).
    actuator_coordinates
        Actuator -> coordinate names (see :func:`sign_flipped`); default
        :data:`ACTUATOR_COORDINATES`.

    Returns
    -------
    pandas.DataFrame
        Same index. Column ``c`` of the result holds the (sign-corrected) values of column
        ``mirror_name(c)`` of ``df``; when both sides are present the column order is kept.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown table kind {kind!r}; expected one of {KINDS}")
    cols = [str(c) for c in df.columns]
    out = df.copy()
    out.columns = cols
    for c in cols:
        if sign_flipped(c, kind, actuator_coordinates):
            out[c] = -out[c]
    renamed = [mirror_name(c) for c in cols]
    if len(set(renamed)) != len(renamed):
        raise ValueError(f"mirroring {kind} would create duplicate columns")
    out.columns = renamed
    if set(renamed) == set(cols):
        out = out[cols]
    out.attrs = copy.deepcopy(df.attrs)
    return out


def mirror_record(record: TrialRecord,
                  actuator_coordinates: dict[str, str] | None = None) -> TrialRecord:
    """The mirror image of a trial (left leg <-> right leg); ``record`` is not modified.

    Tables are mirrored with :func:`mirror_frame`; event names (``heel_strike_r`` ...) and
    cycle legs are swapped; the mask's values are unchanged; ``extras["mirrored"]`` is set
    (or removed when mirroring a mirrored record), so ``mirror_record(mirror_record(r))``
    equals ``r``. Identity fields (trial_id, subject, ...) are kept.

    ``actuator_coordinates`` (actuator -> coordinate) defaults to
    ``record.extras["actuator_coordinates"]`` when the pipeline stored one, else
    :data:`ACTUATOR_COORDINATES`.
    """
    if actuator_coordinates is None and isinstance(
            record.extras.get("actuator_coordinates"), dict):
        actuator_coordinates = {**ACTUATOR_COORDINATES,
                                **record.extras["actuator_coordinates"]}
    events = {mirror_name(k): list(v) for k, v in record.events.items()}
    cycles = []
    for c in record.cycles:
        c2 = copy.deepcopy(c)
        if c2.get("leg") in ("r", "l"):
            c2["leg"] = {"r": "l", "l": "r"}[c2["leg"]]
        cycles.append(c2)
    extras = copy.deepcopy(record.extras)
    if extras.get(MIRRORED_KEY):
        extras.pop(MIRRORED_KEY)
    else:
        extras[MIRRORED_KEY] = True
    tables = {k: mirror_frame(getattr(record, k), k, actuator_coordinates) for k in KINDS}
    return TrialRecord(
        trial_id=record.trial_id, subject=record.subject, trial=record.trial,
        condition=record.condition, mass_kg=record.mass_kg, model_family=record.model_family,
        speed_m_s=record.speed_m_s, height_m=record.height_m, events=events, cycles=cycles,
        extras=extras, **tables)
