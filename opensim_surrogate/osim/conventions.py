"""Sign conventions of lower-limb coordinates, read from the user's ``.osim``.

OpenSim models share coordinate names but not always their sign: in gait2392 / gait2354 /
Hamner running models knee flexion is *negative* (range about -160°..10°), in the Rajagopal
family (Rajagopal 2016, Lai-Arnold, Uhlrich 2022/2023) it is *positive* (0°..120°). A
surrogate fed the wrong sign is confidently wrong, so every lower-limb coordinate's sign is
determined from the model itself and data are mapped to a **canonical convention**, the
Rajagopal one (as in ``Uhlrich2022_SchreiberMoissenet2019.osim``)::

    canonical value = sign * user value        (sign in {+1, -1})

Generalized forces (``<coord>_moment`` / ``<coord>_force``) flip with their coordinate:
they are work-conjugate (power ``tau * qdot`` must not change), so the same sign applies.

How a sign is determined (per coordinate, both kinds of evidence are used):

* **axis** -- the coordinate's joint axis, expressed in its parent *body* frame (joint
  axis rotated by the parent offset frame's orientation, times the sign of the transform
  function's slope), is compared with the reference Rajagopal axis for that coordinate
  (:data:`REFERENCE`). All OpenSim gait models share the body-frame convention (x anterior,
  y superior, z right), so the dot product is close to +1 or -1 for the same degree of
  freedom. ``|dot| >= AXIS_MIN_COS`` gives the sign; a smaller value, a different parent
  body or an unknown axis gives no axis evidence.
* **range** -- only for coordinates whose reference range is one-sided (knee flexion
  0°..120°, hip flexion -30°..120°): a user range lying at least 75 % on the same side gives
  +1, at least 75 % on the other side -1; a symmetric range (±90°, ±120°, ±180°) is
  uninformative.

Both present and agreeing -> ``source="range+axis"``; one present -> that one; both present
and contradicting, or neither present -> :class:`~opensim_surrogate.errors.ConventionError`
naming the coordinate (never a silent guess). ``overrides={"knee_angle_r": -1}`` lets a user
state a sign the model cannot tell (``source="override"``).

Default values are read (``ModelInfo``) but are not sign evidence: almost every model
defaults to 0.

Surprising but verified with OpenSim's own kinematics (see the tests): besides the knee,
``mtp_angle`` is also flipped between the two families -- the Rajagopal-family MTP axis is
the gait2392 one reversed, so +mtp_angle lowers the toes' tip in Rajagopal models (toe
flexion) and raises it in gait2392 models (toe extension).

Aliases: the supported families use identical coordinate names (``knee_angle_r`` etc.); no
renaming is needed. DataFrame columns may also carry OpenSim path labels
(``/jointset/walker_knee_r/knee_angle_r/value``, ``.../speed``), which are recognised.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import ConventionError
from .model import Joint, ModelInfo, TransformAxis, detect_family, read_model

log = logging.getLogger(__name__)

__all__ = [
    "CANONICAL", "LOWER_LIMB_COORDINATES", "REFERENCE", "SUPPORTED_FAMILIES", "AXIS_MIN_COS",
    "CoordinateConvention", "ModelConventions", "FamilyConvention",
    "conventions_for", "supported_families_markdown", "coordinate_of_column",
]

#: Name of the canonical convention (that of the Rajagopal family).
CANONICAL = "rajagopal"

#: Minimum |cos| between the user's and the reference axis to count as axis evidence (45°).
AXIS_MIN_COS = math.cos(math.radians(45.0))

#: Minimum share of a range on one side of zero for the range to be evidence.
RANGE_ONE_SIDED = 0.75


@dataclass(frozen=True)
class _Ref:
    parent_body: str
    motion_type: str
    axis: tuple[float, float, float]  # unit axis in the parent body frame, canonical +
    range: tuple[float, float]
    meaning: str = ""


# Computed from Uhlrich2022_SchreiberMoissenet2019.osim with read_model (a test recomputes
# them from the shared model and checks them to 1e-3).
#: Reference (canonical) axis, parent body, motion type and range of each lower-limb coordinate.
REFERENCE: dict[str, _Ref] = {
    "pelvis_tilt": _Ref("ground", "rotational", (0.0, 0.0, 1.0), (-1.5708, 1.5708),
                        "rotation about ground +Z (rightward): front of the pelvis up"),
    "pelvis_list": _Ref("ground", "rotational", (1.0, 0.0, 0.0), (-1.5708, 1.5708),
                        "rotation about ground +X (forward): right side of the pelvis down"),
    "pelvis_rotation": _Ref("ground", "rotational", (0.0, 1.0, 0.0), (-1.5708, 1.5708),
                            "rotation about ground +Y (up): pelvis turns to the left"),
    "pelvis_tx": _Ref("ground", "translational", (1.0, 0.0, 0.0), (-5.0, 5.0), "forward (ground +X)"),
    "pelvis_ty": _Ref("ground", "translational", (0.0, 1.0, 0.0), (-1.0, 2.0), "up (ground +Y)"),
    "pelvis_tz": _Ref("ground", "translational", (0.0, 0.0, 1.0), (-3.0, 3.0), "right (ground +Z)"),
    "hip_flexion_r": _Ref("pelvis", "rotational", (0.0, 0.0, 1.0), (-0.5236, 2.0944), "hip flexion"),
    "hip_adduction_r": _Ref("pelvis", "rotational", (1.0, 0.0, 0.0), (-0.8727, 0.5236), "hip adduction"),
    "hip_rotation_r": _Ref("pelvis", "rotational", (0.0, 1.0, 0.0), (-0.6981, 0.6981),
                           "hip internal rotation"),
    "knee_angle_r": _Ref("femur_r", "rotational", (0.0, -0.0707, -0.9975), (0.0, 2.0944), "knee flexion"),
    "ankle_angle_r": _Ref("tibia_r", "rotational", (-0.1050, -0.1740, 0.9791), (-0.6981, 0.5236),
                          "ankle dorsiflexion"),
    "subtalar_angle_r": _Ref("talus_r", "rotational", (0.7872, 0.6047, -0.1209), (-0.3491, 0.3491),
                             "subtalar inversion"),
    "mtp_angle_r": _Ref("calcn_r", "rotational", (0.5810, 0.0, -0.8139), (-0.5236, 0.5236),
                        "toe flexion (toe tip down)"),
    "hip_flexion_l": _Ref("pelvis", "rotational", (0.0, 0.0, 1.0), (-0.5236, 2.0944), "hip flexion"),
    "hip_adduction_l": _Ref("pelvis", "rotational", (-1.0, 0.0, 0.0), (-0.8727, 0.5236), "hip adduction"),
    "hip_rotation_l": _Ref("pelvis", "rotational", (0.0, -1.0, 0.0), (-0.6981, 0.6981),
                           "hip internal rotation"),
    "knee_angle_l": _Ref("femur_l", "rotational", (0.0, 0.0707, -0.9975), (0.0, 2.0944), "knee flexion"),
    "ankle_angle_l": _Ref("tibia_l", "rotational", (0.1050, 0.1740, 0.9791), (-0.6981, 0.5236),
                          "ankle dorsiflexion"),
    "subtalar_angle_l": _Ref("talus_l", "rotational", (-0.7872, -0.6047, -0.1209), (-0.3491, 0.3491),
                             "subtalar inversion"),
    "mtp_angle_l": _Ref("calcn_l", "rotational", (-0.5810, 0.0, -0.8139), (-0.5236, 0.5236),
                        "toe flexion (toe tip down)"),
    "lumbar_extension": _Ref("pelvis", "rotational", (0.0, 0.0, 1.0), (-1.5708, 1.5708),
                             "lumbar extension"),
    "lumbar_bending": _Ref("pelvis", "rotational", (1.0, 0.0, 0.0), (-1.5708, 1.5708),
                           "lumbar bending to the right"),
    "lumbar_rotation": _Ref("pelvis", "rotational", (0.0, 1.0, 0.0), (-1.5708, 1.5708),
                            "lumbar rotation to the left"),
}

#: The lower-limb (and pelvis / lumbar) coordinates whose convention is handled.
LOWER_LIMB_COORDINATES: tuple[str, ...] = tuple(REFERENCE)


@dataclass(frozen=True)
class FamilyConvention:
    """Expected sign of a coordinate in a family and the evidence that establishes it."""

    sign: int
    how: str


def _family_table(flipped: Mapping[str, str], how: Mapping[str, str]) -> dict[str, FamilyConvention]:
    return {c: FamilyConvention(-1 if c in flipped else 1, how.get(c, "axis"))
            for c in LOWER_LIMB_COORDINATES}


_RANGE_AND_AXIS_RAJ = {c: "range+axis" for c in LOWER_LIMB_COORDINATES
                       if c.startswith(("knee_angle", "hip_flexion"))}
_RANGE_AND_AXIS_G = {c: "range+axis" for c in LOWER_LIMB_COORDINATES if c.startswith("knee_angle")}

#: Supported families -> coordinate -> expected sign (canonical = sign * user) and how it is
#: determined on the family's shared models (Uhlrich 2022 / Schreiber; Hamner 2013).
SUPPORTED_FAMILIES: dict[str, dict[str, FamilyConvention]] = {
    "rajagopal": _family_table({}, _RANGE_AND_AXIS_RAJ),
    "gait2392": _family_table({c: "" for c in LOWER_LIMB_COORDINATES
                               if c.startswith(("knee_angle", "mtp_angle"))}, _RANGE_AND_AXIS_G),
}

#: Models each supported family covers (for documentation).
FAMILY_MODELS = {
    "rajagopal": "Rajagopal 2016, Lai-Arnold 2017, Uhlrich 2022/2023 (walker knee, knee_angle_*_beta)",
    "gait2392": "gait2392, gait2354, Hamner 2010 running (knee flexion negative)",
}


@dataclass(frozen=True)
class CoordinateConvention:
    """Sign convention of one coordinate: canonical value = ``sign`` * user value.

    Attributes
    ----------
    name : str
    sign : int
        +1 or -1.
    source : str
        Evidence used: ``"range+axis"``, ``"axis"``, ``"range"`` or ``"override"``.
    detail : str
        Human-readable evidence (axis cosine, range).
    """

    name: str
    sign: int
    source: str
    detail: str = ""


@dataclass
class ModelConventions:
    """Sign conventions of a model's lower-limb coordinates.

    Attributes
    ----------
    family : str
        Detected model family (informative; the signs come from the model's geometry).
    conventions : dict of str to CoordinateConvention
        One entry per lower-limb coordinate the model has.
    missing : tuple of str
        Lower-limb coordinates the model lacks.
    """

    family: str
    conventions: dict[str, CoordinateConvention]
    missing: tuple[str, ...] = ()
    model_path: Path | None = field(default=None, compare=False)

    # -- queries
    def sign(self, coordinate: str) -> int:
        """Sign of ``coordinate`` (ConventionError if the model lacks it)."""
        try:
            return self.conventions[coordinate].sign
        except KeyError:
            raise ConventionError(f"the model has no lower-limb coordinate {coordinate!r}",
                                  path=self.model_path) from None

    def signs(self) -> dict[str, int]:
        """``{coordinate: sign}``."""
        return {k: v.sign for k, v in self.conventions.items()}

    def is_canonical(self) -> bool:
        """True if every sign is +1."""
        return all(v.sign == 1 for v in self.conventions.values())

    # -- mapping
    def to_canonical(self, df: pd.DataFrame) -> pd.DataFrame:
        """Kinematics (user convention) -> canonical. Only lower-limb columns change.

        Columns may be plain coordinate names or OpenSim paths
        (``/jointset/<joint>/<coord>/value|speed|acceleration``); other columns (time,
        arms, ...) are copied unchanged. Units do not matter (degrees or radians).

        Raises
        ------
        ConventionError
            If a column is a lower-limb coordinate the model does not have.
        """
        return _apply(df, self.signs(), "kinematics", self.model_path)

    def from_canonical(self, df: pd.DataFrame) -> pd.DataFrame:
        """Kinematics canonical -> user convention (inverse of :meth:`to_canonical`)."""
        return _apply(df, self.signs(), "kinematics", self.model_path)  # s = 1/s for s=±1

    def moments_to_canonical(self, df: pd.DataFrame) -> pd.DataFrame:
        """Generalized forces ``<coord>_moment`` / ``<coord>_force``: user -> canonical."""
        return _apply(df, self.signs(), "moments", self.model_path)

    def moments_from_canonical(self, df: pd.DataFrame) -> pd.DataFrame:
        """Generalized forces ``<coord>_moment`` / ``<coord>_force``: canonical -> user."""
        return _apply(df, self.signs(), "moments", self.model_path)

    def to_bundle(self, df: pd.DataFrame, bundle: "ModelConventions") -> pd.DataFrame:
        """Kinematics: this (user) model's convention -> a bundle's (training model's) one.

        ``bundle_value = bundle_sign * user_sign * user_value``.
        """
        return _apply(df, _relative(self, bundle), "kinematics", self.model_path)

    def moments_from_bundle(self, df: pd.DataFrame, bundle: "ModelConventions") -> pd.DataFrame:
        """Generalized forces predicted in a bundle's convention -> this model's convention."""
        return _apply(df, _relative(self, bundle), "moments", self.model_path)

    # -- serialisation (bundles store their convention as JSON)
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "canonical": CANONICAL,
            "family": self.family,
            "missing": list(self.missing),
            "coordinates": {k: {"sign": v.sign, "source": v.source, "detail": v.detail}
                            for k, v in self.conventions.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConventions":
        """Inverse of :meth:`to_dict`."""
        if d.get("canonical", CANONICAL) != CANONICAL:
            raise ConventionError(f"conventions relative to {d.get('canonical')!r}, "
                                  f"expected {CANONICAL!r}")
        convs = {}
        for k, v in dict(d.get("coordinates", {})).items():
            sign = int(v["sign"])
            if sign not in (1, -1):
                raise ConventionError(f"{k}: sign must be +1 or -1, not {v['sign']!r}")
            convs[k] = CoordinateConvention(k, sign, str(v.get("source", "")), str(v.get("detail", "")))
        return cls(family=str(d.get("family", "unknown")), conventions=convs,
                   missing=tuple(d.get("missing", ())))


def _relative(user: ModelConventions, bundle: ModelConventions) -> dict[str, int]:
    return {c: s * bundle.conventions[c].sign for c, s in user.signs().items()
            if c in bundle.conventions}


def coordinate_of_column(label: str, kind: str = "kinematics") -> str | None:
    """The lower-limb coordinate a column label refers to, else None.

    ``kind="kinematics"``: ``knee_angle_r`` or ``/jointset/.../knee_angle_r/value|speed|
    acceleration``. ``kind="moments"``: ``knee_angle_r_moment`` / ``pelvis_tx_force``.
    """
    label = str(label)
    if kind == "moments":
        for suffix in ("_moment", "_force"):
            if label.endswith(suffix) and label[: -len(suffix)] in REFERENCE:
                return label[: -len(suffix)]
        return None
    if label in REFERENCE:
        return label
    if "/" in label:
        parts = [p for p in label.split("/") if p]
        if len(parts) >= 2 and parts[-1] in ("value", "speed", "acceleration") \
                and parts[-2] in REFERENCE:
            return parts[-2]
    return None


def _apply(df: pd.DataFrame, signs: Mapping[str, int], kind: str, path: Path | None) -> pd.DataFrame:
    out = df.copy()
    unknown = []
    for col in out.columns:
        coord = coordinate_of_column(col, kind)
        if coord is None:
            continue
        if coord not in signs:
            unknown.append(str(col))
            continue
        if signs[coord] == -1:
            out[col] = -out[col]
    if unknown:
        raise ConventionError(
            f"no known sign convention for column(s) {', '.join(unknown)}: the model (or the "
            "bundle) has no such coordinate", path=path,
            hint="drop those columns or use the model the data were computed with")
    return out


# --------------------------------------------------------------------------- determination
def conventions_for(model: ModelInfo | str | Path,
                    overrides: Mapping[str, int] | None = None) -> ModelConventions:
    """Determine the sign convention of every lower-limb coordinate of a model.

    Parameters
    ----------
    model
        A :class:`ModelInfo` or the path of a ``.osim``.
    overrides
        Optional ``{coordinate: +1|-1}`` stating signs explicitly (``source="override"``).

    Returns
    -------
    ModelConventions

    Raises
    ------
    ConventionError
        Naming every coordinate whose sign cannot be determined (no axis and no range
        evidence) or whose evidence contradicts itself.
    """
    info = model if isinstance(model, ModelInfo) else read_model(model)
    overrides = dict(overrides or {})
    for c, s in overrides.items():
        if c not in REFERENCE:
            raise ConventionError(f"override for {c!r}: not a lower-limb coordinate",
                                  hint="known: " + ", ".join(LOWER_LIMB_COORDINATES))
        if s not in (1, -1):
            raise ConventionError(f"override for {c!r} must be +1 or -1, not {s!r}")
    convs: dict[str, CoordinateConvention] = {}
    missing = []
    problems: list[str] = []
    first_line: int | None = None
    for name in LOWER_LIMB_COORDINATES:
        if not info.has_coordinate(name):
            missing.append(name)
            continue
        if name in overrides:
            convs[name] = CoordinateConvention(name, overrides[name], "override", "stated by the user")
            continue
        conv, problem = _determine(info, name)
        if conv is not None:
            convs[name] = conv
        else:
            problems.append(problem)
            if first_line is None:
                first_line = info.joint_of(name).line
    if problems:
        raise ConventionError(
            "cannot determine the sign convention of " + "; ".join(problems),
            path=info.path, line=first_line,
            hint="give the coordinate an informative range / a joint axis, or state the sign "
                 "with overrides={'<coordinate>': +1 or -1}")
    family = info.family or detect_family(info)
    result = ModelConventions(family=family, conventions=convs, missing=tuple(missing),
                              model_path=info.path)
    table = SUPPORTED_FAMILIES.get(family)
    if table:
        odd = [c for c, v in convs.items() if v.source != "override" and table[c].sign != v.sign]
        if odd:
            log.warning("%s: %s family model with unusual sign(s) for %s (using the model's "
                        "geometry)", info.path, family, ", ".join(odd))
    return result


def _determine(info: ModelInfo, name: str) -> tuple[CoordinateConvention | None, str]:
    ref = REFERENCE[name]
    coord = info.coordinate(name)
    joint = info.joint_of(name)
    axis_sign, axis_note = _axis_evidence(joint, name, ref)
    range_sign, range_note = _range_evidence(coord.range, coord.motion_type, ref)
    detail = f"{axis_note}; {range_note}"
    if axis_sign is not None and range_sign is not None:
        if axis_sign != range_sign:
            return None, (f"{name} (contradictory evidence: {detail})")
        return CoordinateConvention(name, axis_sign, "range+axis", detail), ""
    if axis_sign is not None:
        return CoordinateConvention(name, axis_sign, "axis", detail), ""
    if range_sign is not None:
        return CoordinateConvention(name, range_sign, "range", detail), ""
    return None, f"{name} ({detail})"


def _axis_evidence(joint: Joint, name: str, ref: _Ref) -> tuple[int | None, str]:
    kind = "rotation" if ref.motion_type == "rotational" else "translation"
    used = [a for a in joint.axes if name in a.coordinates and a.kind == kind]
    cands: list[TransformAxis] = [a for a in used if a.unit_linear] or \
        [a for a in used if a.slope_sign is not None]
    if not cands:
        return None, f"no usable {kind} axis in joint {joint.name!r}"
    if joint.parent_body != ref.parent_body:
        return None, (f"joint {joint.name!r} has parent {joint.parent_body!r}, not "
                      f"{ref.parent_body!r}: axes not comparable")
    ax = cands[0]
    v = joint.axis_in_parent_body(ax)
    if v is None or ax.slope_sign is None:
        return None, f"joint {joint.name!r}: {kind} axis unknown"
    v = v * ax.slope_sign
    cos = float(np.dot(v, np.asarray(ref.axis)) / np.linalg.norm(ref.axis))
    angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
    note = (f"axis ({v[0]:.3f}, {v[1]:.3f}, {v[2]:.3f}) in {joint.parent_body} is {angle:.0f}° "
            "from the reference axis")
    if abs(cos) < AXIS_MIN_COS:
        return None, note + " (neither parallel nor antiparallel)"
    return (1 if cos > 0 else -1), note


def _positive_share(rng: tuple[float, float]) -> float | None:
    lo, hi = rng
    if not (hi > lo) or not all(map(math.isfinite, rng)):
        return None
    return (max(hi, 0.0) - max(lo, 0.0)) / (hi - lo)


def _range_evidence(rng: tuple[float, float], motion_type: str, ref: _Ref) -> tuple[int | None, str]:
    note = f"range ({rng[0]:.3f}, {rng[1]:.3f})"
    ref_share = _positive_share(ref.range)
    if motion_type != "rotational" or ref.motion_type != "rotational" or ref_share is None \
            or RANGE_ONE_SIDED > ref_share > 1 - RANGE_ONE_SIDED:
        return None, note + " not used (reference range is not one-sided)"
    share = _positive_share(rng)
    ref_side = 1 if ref_share >= RANGE_ONE_SIDED else -1
    if share is None or 1 - RANGE_ONE_SIDED < share < RANGE_ONE_SIDED:
        return None, note + " is uninformative (not one-sided)"
    side = 1 if share >= RANGE_ONE_SIDED else -1
    return side * ref_side, note + (" on the reference side" if side == ref_side
                                    else " opposite to the reference side")


# --------------------------------------------------------------------------- docs
def supported_families_markdown() -> str:
    """The supported-families table as Markdown (for the README).

    Returns
    -------
    str
        One row per lower-limb coordinate: canonical meaning of +, then per family the sign
        (canonical = sign x user value) and the evidence that determines it.
    """
    fams = list(SUPPORTED_FAMILIES)
    head = "| coordinate | + in the canonical (Rajagopal) convention | " + \
        " | ".join(f"{f} sign (evidence)" for f in fams) + " |"
    sep = "|" + "---|" * (2 + len(fams))
    rows = [head, sep]
    for c in LOWER_LIMB_COORDINATES:
        cells = []
        for f in fams:
            e = SUPPORTED_FAMILIES[f][c]
            cells.append(f"{'+1' if e.sign > 0 else '**-1**'} ({e.how})")
        rows.append(f"| `{c}` | {REFERENCE[c].meaning} | " + " | ".join(cells) + " |")
    notes = ["", "Families: " + "; ".join(f"**{f}** = {FAMILY_MODELS[f]}" for f in fams) + ".",
             "canonical value = sign × user value; moments/forces of a coordinate flip with it. "
             "*axis*: joint axis vs. the reference Rajagopal axis in the parent body frame; "
             "*range*: one-sided coordinate range (knee, hip flexion)."]
    return "\n".join(rows + notes) + "\n"
