"""Left/right mirroring of the INPUTS of the OpenSim tools (coordinates and ground reactions).

Mirror plane: the ground's x-y plane (x forward, y up, z to the subject's right), i.e.
``z -> -z``. A mirrored trial is the same movement performed by the mirror-image subject:
what the right leg did, the left leg now does.

Sign conventions (shared with the dataset-level mirroring of stored labels,
:mod:`opensim_surrogate.dataset.mirror`; keep both in agreement)
----------------------------------------------------------------------------------------
Coordinates (radians / m) -- Rajagopal and gait2392 families:

* bilateral coordinates swap sides WITHOUT a sign change (the models define left-side joint
  axes as mirror images of the right ones): ``hip_flexion_r`` <-> ``hip_flexion_l``,
  ``hip_adduction_*``, ``hip_rotation_*``, ``knee_angle_*``, ``knee_angle_*_beta``,
  ``ankle_angle_*``, ``subtalar_angle_*``, ``mtp_angle_*``, ``arm_*``, ``elbow_flex_*``,
  ``pro_sup_*``, ``wrist_*``;
* these change sign (:data:`FLIP_COORDINATES`): ``pelvis_list`` (about x),
  ``pelvis_rotation`` (about y), ``pelvis_tz`` (along z), ``lumbar_bending`` (about x),
  ``lumbar_rotation`` (about y). A reflection ``M = diag(1, 1, -1)`` maps a rotation by
  ``θ`` about axis ``n`` to a rotation by ``-θ`` about ``M n``: rotations about x or y flip,
  rotations about z (``pelvis_tilt``, ``lumbar_extension``) do not; translations along z
  flip;
* unchanged: ``pelvis_tilt``, ``pelvis_tx``, ``pelvis_ty``, ``lumbar_extension``.

Generalised forces from ID (``<coord>_moment`` / ``<coord>_force``) follow their
coordinate: swap sides, and flip exactly for the coordinates in :data:`FLIP_COORDINATES`
(:func:`mirror_generalized_forces`). Muscle forces/activations swap sides, no sign.

Ground reactions (ground frame), per ExternalForce of the ExternalLoads file:

* force ``<force_identifier>z`` flips (``x``, ``y`` kept);
* point ``<point_identifier>z`` flips (``x``, ``y`` kept);
* free moment ``<torque_identifier>x`` and ``...y`` flip, ``...z`` kept (a moment is a
  pseudo-vector: it maps as ``-M m``);
* the plates swap feet: ``applied_to_body`` ``calcn_r`` <-> ``calcn_l`` (and any ``_r``/``_l``
  body) in the mirrored ExternalLoads XML; the GRF column names stay the same.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from ..errors import InputError

__all__ = ["FLIP_COORDINATES", "swap_side_name", "mirror_coordinates", "mirror_grf",
           "mirror_external_loads", "mirror_generalized_forces", "mirror_side_columns"]

#: Coordinates whose value changes sign under the z -> -z mirror.
FLIP_COORDINATES: frozenset[str] = frozenset(
    {"pelvis_list", "pelvis_rotation", "pelvis_tz", "lumbar_bending", "lumbar_rotation"})

_SIDE = re.compile(r"(?<=_)([rl])(?=_|$)")


def swap_side_name(name: str) -> str:
    """Exchange the side of a name: ``_r`` <-> ``_l`` as a suffix or infix.

    ``hip_flexion_r`` -> ``hip_flexion_l``, ``knee_angle_r_beta`` -> ``knee_angle_l_beta``,
    ``calcn_l`` -> ``calcn_r``, ``hip_flexion_r_moment`` -> ``hip_flexion_l_moment``;
    names without a side are returned unchanged.
    """
    return _SIDE.sub(lambda m: "l" if m.group(1) == "r" else "r", name)


def mirror_side_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Swap left/right column DATA, keeping the column order (no sign changes)."""
    cols = list(df.columns)
    out = df.copy()
    for c in cols:
        other = swap_side_name(str(c))
        if other != c:
            if other not in df.columns:
                raise InputError(f"column {c!r} has no other-side partner {other!r}",
                                 column=str(c), hint="mirroring needs both sides")
            out[c] = df[other].to_numpy()
    return out


def mirror_coordinates(coords: pd.DataFrame,
                       flip: Iterable[str] = FLIP_COORDINATES) -> pd.DataFrame:
    """Mirror a coordinate table (radians / m): swap sides, flip :data:`FLIP_COORDINATES`.

    Works on degrees too (only signs and column data move).
    """
    out = mirror_side_columns(coords)
    for c in set(flip) & set(out.columns):
        out[c] = -out[c]
    out.attrs = dict(coords.attrs)
    return out


def mirror_generalized_forces(moments: pd.DataFrame,
                              flip: Iterable[str] = FLIP_COORDINATES) -> pd.DataFrame:
    """Mirror ID output (``<coord>_moment`` / ``<coord>_force``) like its coordinates."""
    out = mirror_side_columns(moments)
    flips = {f"{c}_moment" for c in flip} | {f"{c}_force" for c in flip}
    for c in flips & set(out.columns):
        out[c] = -out[c]
    return out


def mirror_grf(grf: pd.DataFrame, external_loads_xml: str | Path) -> pd.DataFrame:
    """Mirror ground reactions: flip force z, point z, free-moment x and y (see module doc).

    The plates' foot assignment is swapped separately, in the ExternalLoads XML
    (:func:`mirror_external_loads`).
    """
    from .tools import _external_force_specs

    out = grf.copy()
    flips: list[str] = []
    for sp in _external_force_specs(external_loads_xml):
        flips += [sp["force"] + "z", sp["point"] + "z", sp["torque"] + "x", sp["torque"] + "y"]
        if sp["force_expressed_in"] not in ("ground", ""):
            raise InputError(f"ExternalForce {sp['name']} is expressed in "
                             f"{sp['force_expressed_in']!r}; only ground-frame GRF can be "
                             "mirrored", path=external_loads_xml)
    missing = [c for c in flips if c not in out.columns]
    if missing:
        raise InputError(f"GRF columns missing: {', '.join(missing)}", column=missing[0],
                         path=external_loads_xml)
    for c in dict.fromkeys(flips):
        out[c] = -out[c]
    return out


def mirror_external_loads(external_loads_xml: str | Path, datafile: str | Path,
                          out_xml: str | Path) -> Path:
    """ExternalLoads for a mirrored trial: feet swapped, ``datafile`` = the mirrored GRF."""
    from .tools import write_external_loads

    return write_external_loads(external_loads_xml, datafile, out_xml, swap_sides=True)
