"""Read what the surrogate needs from an OpenSim 4 ``.osim`` model, without OpenSim.

:func:`read_model` parses the model XML (securely, see :mod:`.xml`) and returns a
:class:`ModelInfo`: bodies and masses, coordinates (with their motion type, range,
default, locked/clamped flags and coordinate couplings), muscles and their parameters,
the joints' geometry (axes, parent frames; used by :mod:`.conventions`) and the model
family (:func:`detect_family`).

Everything here is checked against the OpenSim 4.6 API on every shared model (see
``tests/test_osim_model.py``): body masses sum to ``Model.getTotalMass`` and coordinate /
muscle properties equal what ``opensim.Model`` reports, including the defaults for properties a file leaves out: those
of the file's own ``<Model><defaults>`` block (e.g. Hamner models define a default
``Thelen2003Muscle`` with ``max_isometric_force`` 546), else OpenSim's built-in ones.

Motion type of a coordinate (``opensim.Coordinate.getMotionType``) follows OpenSim's rule,
established empirically against OpenSim 4.6 for ``CustomJoint``: a coordinate is
*translational* if a translation ``TransformAxis`` uses it through a ``LinearFunction`` of
slope exactly +1 or -1 (any intercept); otherwise *rotational* if a rotation axis does so;
otherwise (only splines, ``MultiplierFunction``, other slopes, ...) *coupled*. Joints with
fixed mobilities (Pin, Slider, Universal, Gimbal, Ball, Free, Planar, ...) have fixed motion
types. A ``CoordinateCouplerConstraint`` does NOT change the motion type (OpenSim keeps a
linearly driven dependent coordinate rotational); it is recorded in
:attr:`Coordinate.coupled_to`.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
from lxml import etree

from ..errors import ModelFileError
from .xml import parse_xml

log = logging.getLogger(__name__)

__all__ = [
    "Body", "Coordinate", "Muscle", "TransformAxis", "Joint", "ModelInfo",
    "read_model", "detect_family", "FAMILIES",
]

#: Model families :func:`detect_family` can return.
FAMILIES = ("rajagopal", "gait2392", "unknown")

# OpenSim 4.6 defaults for properties a file may omit (checked in the tests).
_MUSCLE_DEFAULTS = {
    "max_isometric_force": 1000.0,
    "optimal_fiber_length": 0.1,
    "tendon_slack_length": 0.2,
    "pennation_angle_at_optimal": 0.0,
}
_COORD_DEFAULT_RANGE = (-10.0, 10.0)

# Fixed-mobility joints: per coordinate index, (kind, axis in the joint's parent frame).
# Axis None = rotational but with no single fixed axis we model (not used for conventions).
_X, _Y, _Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
_FIXED_JOINTS: dict[str, tuple[tuple[str, tuple[float, float, float] | None], ...]] = {
    "PinJoint": (("rotation", _Z),),
    "SliderJoint": (("translation", _X),),
    "UniversalJoint": (("rotation", _X), ("rotation", _Y)),
    "GimbalJoint": (("rotation", _X), ("rotation", _Y), ("rotation", _Z)),
    "BallJoint": (("rotation", _X), ("rotation", _Y), ("rotation", _Z)),
    "FreeJoint": (("rotation", _X), ("rotation", _Y), ("rotation", _Z),
                  ("translation", _X), ("translation", _Y), ("translation", _Z)),
    "PlanarJoint": (("rotation", _Z), ("translation", _X), ("translation", _Y)),
    "WeldJoint": (),
    "EllipsoidJoint": (("rotation", None),) * 3,
    "ConstantCurvatureJoint": (("rotation", None),) * 3,
    "ScapulothoracicJoint": (("rotation", None),) * 4,
}
_SPLINE_FUNCTIONS = {"SimmSpline", "NaturalCubicSpline", "GCVSpline", "PiecewiseLinearFunction",
                     "PiecewiseConstantFunction"}


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class Body:
    """A body of the model's BodySet."""

    name: str
    mass: float


@dataclass(frozen=True)
class Coordinate:
    """A generalized coordinate.

    Attributes
    ----------
    name, joint : str
        Coordinate name and the joint that owns it.
    motion_type : str
        ``"rotational"``, ``"translational"`` or ``"coupled"`` (as ``Coordinate.getMotionType``).
    default_value : float
        Radians or metres.
    range : tuple of float
        ``(min, max)``, radians or metres.
    locked, clamped : bool
        Default locked / clamped flags.
    coupled_to : str or None
        For the dependent coordinate of an enforced ``CoordinateCouplerConstraint``
        (e.g. ``knee_angle_r_beta``): the (first) independent coordinate.
    """

    name: str
    joint: str
    motion_type: str
    default_value: float
    range: tuple[float, float]
    locked: bool
    clamped: bool
    coupled_to: str | None = None


@dataclass(frozen=True)
class Muscle:
    """A muscle of the ForceSet (any force with ``max_isometric_force`` or a *Muscle type)."""

    name: str
    type: str
    max_isometric_force: float
    optimal_fiber_length: float
    tendon_slack_length: float
    pennation_angle_at_optimal: float
    side: str | None


@dataclass(frozen=True)
class TransformAxis:
    """One mobility of a joint, in the joint's parent frame.

    Attributes
    ----------
    kind : str
        ``"rotation"`` or ``"translation"``.
    axis : tuple of float or None
        Unit axis in the joint's parent (offset) frame; None if unknown / degenerate.
    coordinates : tuple of str
        Coordinates the transform function depends on.
    function : str
        Function type (``LinearFunction``, ``SimmSpline``, ...; ``"identity"`` for the
        fixed mobilities of Pin/Universal/... joints).
    unit_linear : bool
        True if the function is a ``LinearFunction`` of slope exactly +1 or -1 (or the
        identity): the case OpenSim counts as a pure rotation/translation.
    slope_sign : int or None
        Sign of d(displacement)/d(coordinate) if it is determinable (linear, polynomial,
        multiplier of those, or a strictly monotonic spline), else None.
    """

    kind: str
    axis: tuple[float, float, float] | None
    coordinates: tuple[str, ...]
    function: str
    unit_linear: bool
    slope_sign: int | None


@dataclass(frozen=True)
class Joint:
    """A joint's topology and geometry.

    Attributes
    ----------
    name, type : str
        Joint name and XML type (``CustomJoint``, ``PinJoint``, ...).
    parent_body, child_body : str
        Bodies (or ``"ground"``) the parent / child frames are attached to.
    parent_rotation : tuple of tuple of float
        3x3 rotation taking vectors in the joint's parent frame to the parent *body* frame.
    coordinates : tuple of str
        The joint's coordinates, in order.
    axes : tuple of TransformAxis
        Its mobilities (the six TransformAxes of a CustomJoint, or the fixed ones).
    line : int or None
        Line of the joint element in the file.
    """

    name: str
    type: str
    parent_body: str
    child_body: str
    parent_rotation: tuple[tuple[float, float, float], ...]
    coordinates: tuple[str, ...]
    axes: tuple[TransformAxis, ...]
    line: int | None = None

    def axis_in_parent_body(self, axis: TransformAxis) -> np.ndarray | None:
        """The mobility's unit axis expressed in the parent body frame (None if unknown)."""
        if axis.axis is None:
            return None
        return np.asarray(self.parent_rotation) @ np.asarray(axis.axis)


@dataclass
class ModelInfo:
    """What :func:`read_model` learns from a ``.osim`` file.

    Attributes
    ----------
    path : Path
        The file read.
    name : str
        ``Model@name``.
    document_version : int
        ``OpenSimDocument@Version`` (e.g. 40000, 40500).
    bodies : list of Body
    total_mass : float
        Sum of body masses (kg); equals ``opensim.Model.getTotalMass``.
    coordinates : list of Coordinate
        In model order (joint by joint).
    muscles : list of Muscle
        In ForceSet order.
    family : str
        ``"rajagopal"``, ``"gait2392"`` or ``"unknown"`` (:func:`detect_family`).
    joints : list of Joint
        Joint geometry (used to determine sign conventions).
    """

    path: Path
    name: str
    document_version: int
    bodies: list[Body]
    total_mass: float
    coordinates: list[Coordinate]
    muscles: list[Muscle]
    family: str = "unknown"
    joints: list[Joint] = field(default_factory=list, repr=False)

    def rotational_coordinates(self) -> list[str]:
        """Names of the rotational coordinates (motion type ``"rotational"``)."""
        return [c.name for c in self.coordinates if c.motion_type == "rotational"]

    def coordinate(self, name: str) -> Coordinate:
        """The coordinate called ``name``.

        Raises
        ------
        KeyError
            If the model has no such coordinate.
        """
        for c in self.coordinates:
            if c.name == name:
                return c
        raise KeyError(f"model {self.name!r} has no coordinate {name!r}")

    def has_coordinate(self, name: str) -> bool:
        """Whether the model has a coordinate called ``name``."""
        return any(c.name == name for c in self.coordinates)

    def muscle_names(self) -> list[str]:
        """Muscle names, in ForceSet order."""
        return [m.name for m in self.muscles]

    def joint(self, name: str) -> Joint:
        """The joint called ``name`` (KeyError if absent)."""
        for j in self.joints:
            if j.name == name:
                return j
        raise KeyError(f"model {self.name!r} has no joint {name!r}")

    def joint_of(self, coordinate: str) -> Joint:
        """The joint that owns ``coordinate`` (KeyError if absent)."""
        return self.joint(self.coordinate(coordinate).joint)


# --------------------------------------------------------------------------- reading
def read_model(path: str | Path) -> ModelInfo:
    """Read an OpenSim 4 ``.osim`` model.

    Parameters
    ----------
    path
        The ``.osim`` file.

    Returns
    -------
    ModelInfo

    Raises
    ------
    MissingFileError
        If the file does not exist.
    ModelFileError
        If it is not well-formed / safe XML, not an OpenSim 4 model, or lacks something
        required (a body mass, a joint's frames, ...). The message names file and line.
    """
    p = Path(path)
    tree = parse_xml(p)
    return _Reader(p, tree).read()


class _Reader:
    def __init__(self, path: Path, tree: etree._ElementTree) -> None:
        self.path = path
        self.root = tree.getroot()
        self.defaults: dict[str, etree._Element] = {}

    # -- helpers
    def err(self, message: str, elem: etree._Element | None = None, hint: str | None = None
            ) -> ModelFileError:
        return ModelFileError(message, path=self.path,
                              line=getattr(elem, "sourceline", None), hint=hint)

    def floats(self, elem: etree._Element, what: str) -> list[float]:
        text = (elem.text or "").split()
        try:
            return [float(t) for t in text]
        except ValueError:
            raise self.err(f"{what}: not a list of numbers: {(elem.text or '').strip()!r}",
                           elem) from None

    def prop(self, parent: etree._Element, tag: str) -> etree._Element | None:
        """Property ``tag`` of ``parent``, else from the model's ``<defaults>`` object of the
        same type (OpenSim's file-level defaults), else None."""
        e = parent.find(tag)
        if e is not None and (e.text or "").strip():
            return e
        d = self.defaults.get(parent.tag)
        if d is not None:
            e = d.find(tag)
            if e is not None and (e.text or "").strip():
                return e
        return None

    def number(self, parent: etree._Element, tag: str, default: float | None, what: str) -> float:
        e = self.prop(parent, tag)
        if e is None:
            if default is None:
                raise self.err(f"{what} has no <{tag}>", parent)
            return default
        vals = self.floats(e, f"{what} <{tag}>")
        if len(vals) != 1:
            raise self.err(f"{what} <{tag}> must hold one number", e)
        return vals[0]

    def flag(self, parent: etree._Element, tag: str, default: bool) -> bool:
        e = self.prop(parent, tag)
        if e is None:
            return default
        t = e.text.strip().lower()
        if t in ("true", "1"):
            return True
        if t in ("false", "0"):
            return False
        raise self.err(f"<{tag}> must be true or false, not {e.text.strip()!r}", e)

    @staticmethod
    def children(parent: etree._Element | None) -> list[etree._Element]:
        """Element children (no comments / processing instructions)."""
        if parent is None:
            return []
        return [c for c in parent if isinstance(c.tag, str)]

    # -- main
    def read(self) -> ModelInfo:
        root = self.root
        if root.tag != "OpenSimDocument":
            raise self.err(f"not an OpenSim document: root element is <{root.tag}>", root,
                           hint="expected <OpenSimDocument Version=...><Model ...>")
        try:
            version = int(root.get("Version", "0"))
        except ValueError:
            raise self.err(f"OpenSimDocument Version {root.get('Version')!r} is not an integer",
                           root) from None
        model = root.find("Model")
        if model is None:
            raise self.err("OpenSimDocument has no <Model>", root,
                           hint="is this a setup file rather than a model?")
        if version < 40000 or model.find("JointSet") is None:
            raise self.err(
                f"OpenSim 3.x model format (Version {version}) is not supported", root,
                hint="open and save it with OpenSim 4 (python: "
                     "opensim.Model('in.osim').printToXML('out.osim'))")
        self.model = model
        # OpenSim uses the objects in <defaults> as the defaults of their type.
        self.defaults = {d.tag: d for d in self.children(model.find("defaults"))}
        bodies = self.read_bodies()
        couplings = self.read_couplings()
        joints, coords = self.read_joints(couplings)
        muscles = self.read_muscles()
        info = ModelInfo(
            path=self.path,
            name=model.get("name", ""),
            document_version=version,
            bodies=bodies,
            total_mass=float(math.fsum(b.mass for b in bodies)),
            coordinates=coords,
            muscles=muscles,
            joints=joints,
        )
        info.family = detect_family(info)
        log.debug("read %s: %d bodies, %d coordinates, %d muscles, family %s", self.path,
                  len(bodies), len(coords), len(muscles), info.family)
        return info

    def read_bodies(self) -> list[Body]:
        out = []
        for b in self.model.iterfind("BodySet/objects/Body"):
            name = b.get("name", "")
            mass = self.number(b, "mass", None, f"body {name!r}")
            out.append(Body(name=name, mass=mass))
        if not out:
            raise self.err("the model has no bodies (Model/BodySet/objects/Body)", self.model)
        return out

    def read_couplings(self) -> dict[str, str]:
        """dependent coordinate -> first independent coordinate, for enforced couplers."""
        out: dict[str, str] = {}
        for c in self.model.iterfind("ConstraintSet/objects/CoordinateCouplerConstraint"):
            if not self.flag(c, "isEnforced", True):
                continue
            dep = (c.findtext("dependent_coordinate_name") or "").strip()
            indep = (c.findtext("independent_coordinate_names") or "").split()
            if dep and indep:
                out[dep] = indep[0]
        return out

    # -- frames
    def frame_index(self) -> dict[str, list[etree._Element]]:
        if not hasattr(self, "_frames"):
            idx: dict[str, list[etree._Element]] = {}
            for f in self.model.iter("PhysicalOffsetFrame"):
                idx.setdefault(f.get("name", ""), []).append(f)
            self._frames = idx
        return self._frames

    def resolve_frame(self, ref: str, context: etree._Element, depth: int = 0
                      ) -> tuple[str, np.ndarray]:
        """Frame path -> (body name or "ground", rotation frame->body)."""
        if depth > 20:
            raise self.err(f"frame {ref!r}: offset frames form a cycle", context)
        parts = [s for s in ref.strip().split("/") if s not in ("", ".")]
        if not parts:
            raise self.err("empty frame reference", context)
        if parts == [".."]:
            # the owner of the context element (a body or ground owning this frame)
            owner = context.getparent()
            while owner is not None and owner.tag not in ("Body", "Ground"):
                owner = owner.getparent()
            if owner is None:
                raise self.err(f"frame {ref!r}: cannot find its owner", context)
            return ("ground" if owner.tag == "Ground" else owner.get("name", "")), np.eye(3)
        last = parts[-1]
        # 1. an offset frame owned by the context joint
        if context.tag.endswith("Joint"):
            for f in self.children(context.find("frames")):
                if f.get("name") == last and len(parts) == 1:
                    return self.offset_frame(f, depth)
        # 2. ground / a body
        if parts in (["ground"],) or (len(parts) == 1 and last == "ground"):
            return "ground", np.eye(3)
        if len(parts) == 2 and parts[0] == "bodyset":
            if self.model.find(f"BodySet/objects/Body[@name='{last}']") is None:
                raise self.err(f"frame {ref!r}: no body {last!r}", context)
            return last, np.eye(3)
        if len(parts) == 1 and self.model.find(f"BodySet/objects/Body[@name='{last}']") is not None:
            return last, np.eye(3)
        # 3. any other offset frame of that name (e.g. /jointset/hip_r/pelvis_offset)
        cands = self.frame_index().get(last, [])
        if len(parts) >= 2:
            owner_name = parts[-2]
            narrowed = [f for f in cands if self._owner_name(f) == owner_name]
            cands = narrowed or cands
        if len(cands) == 1:
            return self.offset_frame(cands[0], depth)
        raise self.err(f"cannot resolve frame {ref!r}", context,
                       hint="frames must be bodies, ground, or PhysicalOffsetFrames")

    @staticmethod
    def _owner_name(frame: etree._Element) -> str | None:
        e = frame.getparent()
        while e is not None and e.get("name") is None:
            e = e.getparent()
        return e.get("name") if e is not None else None

    def offset_frame(self, f: etree._Element, depth: int) -> tuple[str, np.ndarray]:
        orient = f.find("orientation")
        angles = self.floats(orient, "orientation") if orient is not None else [0.0, 0.0, 0.0]
        if len(angles) != 3:
            raise self.err("orientation must have 3 numbers", orient)
        parent_ref = (f.findtext("socket_parent") or "").strip()
        if not parent_ref:
            raise self.err(f"offset frame {f.get('name')!r} has no <socket_parent>", f)
        body, r_parent = self.resolve_frame(parent_ref, f, depth + 1)
        return body, r_parent @ body_fixed_xyz(*angles)

    # -- joints and coordinates
    def read_joints(self, couplings: dict[str, str]) -> tuple[list[Joint], list[Coordinate]]:
        joints: list[Joint] = []
        coords: list[Coordinate] = []
        for j in self.children(self.model.find("JointSet/objects")):
            jname = j.get("name", "")
            coord_elems = [c for c in self.children(j.find("coordinates")) if c.tag == "Coordinate"]
            cnames = tuple(c.get("name", "") for c in coord_elems)
            parent_ref = (j.findtext("socket_parent_frame") or "").strip()
            child_ref = (j.findtext("socket_child_frame") or "").strip()
            if not parent_ref or not child_ref:
                raise self.err(f"joint {jname!r} lacks socket_parent_frame/socket_child_frame", j)
            parent_body, r_parent = self.resolve_frame(parent_ref, j)
            child_body, _ = self.resolve_frame(child_ref, j)
            if j.tag == "CustomJoint":
                axes = self.custom_axes(j)
                mtypes = [self.custom_motion_type(j, n, axes) for n in cnames]
            elif j.tag in _FIXED_JOINTS:
                spec = _FIXED_JOINTS[j.tag]
                if len(cnames) != len(spec):
                    raise self.err(f"{j.tag} {jname!r} must have {len(spec)} coordinates, "
                                   f"has {len(cnames)}", j)
                axes = tuple(TransformAxis(kind=k, axis=a, coordinates=(n,), function="identity",
                                           unit_linear=True, slope_sign=1)
                             for (k, a), n in zip(spec, cnames))
                mtypes = ["translational" if k == "translation" else "rotational" for k, _ in spec]
            else:
                raise self.err(f"unsupported joint type <{j.tag}> ({jname!r})", j,
                               hint="supported: CustomJoint, " + ", ".join(sorted(_FIXED_JOINTS)))
            joints.append(Joint(
                name=jname, type=j.tag, parent_body=parent_body, child_body=child_body,
                parent_rotation=tuple(tuple(float(v) for v in row) for row in r_parent),
                coordinates=cnames, axes=axes, line=j.sourceline))
            for ce, mt in zip(coord_elems, mtypes):
                name = ce.get("name", "")
                rng_e = self.prop(ce, "range")
                rng = self.floats(rng_e, f"coordinate {name!r} range") if rng_e is not None \
                    else list(_COORD_DEFAULT_RANGE)
                if len(rng) != 2:
                    raise self.err(f"coordinate {name!r}: range must have 2 numbers", rng_e)
                coords.append(Coordinate(
                    name=name, joint=jname, motion_type=mt,
                    default_value=self.number(ce, "default_value", 0.0, f"coordinate {name!r}"),
                    range=(rng[0], rng[1]),
                    locked=self.flag(ce, "locked", False),
                    clamped=self.flag(ce, "clamped", False),
                    coupled_to=couplings.get(name)))
        return joints, coords

    def custom_axes(self, j: etree._Element) -> tuple[TransformAxis, ...]:
        st = j.find("SpatialTransform")
        if st is None:
            raise self.err(f"CustomJoint {j.get('name')!r} has no <SpatialTransform>", j)
        tas = [t for t in self.children(st) if t.tag == "TransformAxis"]
        order = {f"rotation{i}": i - 1 for i in (1, 2, 3)}
        order.update({f"translation{i}": i + 2 for i in (1, 2, 3)})
        if len(tas) != 6:
            raise self.err(f"CustomJoint {j.get('name')!r}: SpatialTransform must have 6 "
                           f"TransformAxis elements, has {len(tas)}", st)
        if all(t.get("name") in order for t in tas):
            tas = sorted(tas, key=lambda t: order[t.get("name")])
        out = []
        for i, t in enumerate(tas):
            axis_e = t.find("axis")
            vec: tuple[float, float, float] | None = None
            if axis_e is not None:
                v = self.floats(axis_e, "TransformAxis axis")
                if len(v) != 3:
                    raise self.err("TransformAxis axis must have 3 numbers", axis_e)
                n = math.sqrt(sum(x * x for x in v))
                vec = tuple(x / n for x in v) if n > 0 else None  # type: ignore[assignment]
            names = tuple((t.findtext("coordinates") or "").split())
            funcs = [c for c in self.children(t) if c.tag not in ("coordinates", "axis")]
            fe = funcs[0] if funcs else None
            out.append(TransformAxis(
                kind="rotation" if i < 3 else "translation",
                axis=vec, coordinates=names,
                function=fe.tag if fe is not None else "none",
                unit_linear=fe is not None and _is_unit_linear(fe),
                slope_sign=_slope_sign(fe) if fe is not None else None))
        return tuple(out)

    def custom_motion_type(self, j: etree._Element, coord: str,
                           axes: Iterable[TransformAxis]) -> str:
        axes = list(axes)
        used = [a for a in axes if coord in a.coordinates]
        if not used:
            raise self.err(f"coordinate {coord!r} of CustomJoint {j.get('name')!r} is not used "
                           "by any TransformAxis", j, hint="OpenSim refuses such a model too")
        if any(a.kind == "translation" and a.unit_linear for a in used):
            return "translational"
        if any(a.kind == "rotation" and a.unit_linear for a in used):
            return "rotational"
        return "coupled"

    # -- muscles
    def read_muscles(self) -> list[Muscle]:
        out = []
        for f in self.children(self.model.find("ForceSet/objects")):
            if f.find("max_isometric_force") is None and not f.tag.endswith("Muscle"):
                continue
            name = f.get("name", "")
            what = f"muscle {name!r}"
            vals = {k: self.number(f, k, d, what) for k, d in _MUSCLE_DEFAULTS.items()}
            side = "r" if name.endswith("_r") else "l" if name.endswith("_l") else None
            out.append(Muscle(name=name, type=f.tag, side=side, **vals))
        return out


def body_fixed_xyz(a: float, b: float, c: float) -> np.ndarray:
    """Rotation matrix of OpenSim's frame ``orientation`` (body-fixed X-Y-Z angles, rad)."""
    ca, sa, cb, sb, cc, sc = math.cos(a), math.sin(a), math.cos(b), math.sin(b), math.cos(c), math.sin(c)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return rx @ ry @ rz


def _linear_coefficients(fe: etree._Element) -> list[float] | None:
    try:
        return [float(v) for v in (fe.findtext("coefficients") or "").split()]
    except ValueError:
        return None


def _is_unit_linear(fe: etree._Element) -> bool:
    if fe.tag != "LinearFunction":
        return False
    co = _linear_coefficients(fe)
    if not co:
        return True  # OpenSim's LinearFunction default is slope 1, intercept 0
    return abs(co[0]) == 1.0


def _slope_sign(fe: etree._Element) -> int | None:
    """Sign of the function's slope if determinable (see :class:`TransformAxis`)."""
    tag = fe.tag
    if tag == "LinearFunction":
        co = _linear_coefficients(fe)
        if not co:
            return 1
        return int(np.sign(co[0])) or None
    if tag == "PolynomialFunction":
        co = _linear_coefficients(fe)  # highest order first; slope at 0 = coefficient of x
        if co and len(co) >= 2 and co[-2] != 0:
            return int(np.sign(co[-2]))
        return None
    if tag == "MultiplierFunction":
        inner = [c for c in fe.findall("function/*") if isinstance(c.tag, str)]
        try:
            scale = float((fe.findtext("scale") or "1").strip())
        except ValueError:
            return None
        if not inner or scale == 0:
            return None
        s = _slope_sign(inner[0])
        return None if s is None else s * int(np.sign(scale))
    if tag in _SPLINE_FUNCTIONS:
        try:
            x = np.array([float(v) for v in (fe.findtext("x") or "").split()])
            y = np.array([float(v) for v in (fe.findtext("y") or "").split()])
        except ValueError:
            return None
        if len(x) < 2 or len(x) != len(y):
            return None
        order = np.argsort(x)
        dy = np.diff(y[order])
        if np.all(dy > 0):
            return 1
        if np.all(dy < 0):
            return -1
        return None
    return None


# --------------------------------------------------------------------------- family
#: Muscles (without side suffix) only found in the Rajagopal family
#: (Rajagopal 2016, Lai-Arnold 2017, Uhlrich 2022/2023).
RAJAGOPAL_MUSCLES = frozenset({"glmax1", "glmed1", "glmin1", "recfem", "bflh", "bfsh", "vasint",
                               "vaslat", "vasmed", "addmagDist", "gaslat", "gasmed", "tibant",
                               "perlong", "edl", "fdl"})
#: Muscles only found in the gait2392 family (gait2392, gait2354, Hamner 2010 running).
GAIT2392_MUSCLES = frozenset({"glut_max1", "glut_med1", "glut_min1", "rect_fem", "bifemlh",
                              "bifemsh", "vas_int", "vas_lat", "vas_med", "add_mag1", "lat_gas",
                              "med_gas", "tib_ant", "per_long", "ext_dig", "flex_dig"})


def detect_family(info: ModelInfo) -> str:
    """Model family from muscle names and coordinates.

    Rules (first that applies):

    1. Muscles present: count the family-specific marker muscles on either side
       (:data:`RAJAGOPAL_MUSCLES`, e.g. ``glmax1_r``, ``recfem_r``; :data:`GAIT2392_MUSCLES`,
       e.g. ``glut_max1_r``, ``rect_fem_r``). At least 3 markers of one family and none
       of the other -> that family, provided the knee range does not contradict it
       (gait2392: knee range mostly negative; Rajagopal: mostly positive).
    2. No muscles (e.g. a muscle-free IK model): ``knee_angle_r_beta`` / ``_l_beta``
       coordinates (the Rajagopal patellofemoral coupling) and a mostly positive knee
       range -> ``"rajagopal"``; no ``*_beta`` and a mostly negative knee range ->
       ``"gait2392"``.
    3. Otherwise ``"unknown"``.

    Parameters
    ----------
    info
        A model read by :func:`read_model`.

    Returns
    -------
    str
        ``"rajagopal"``, ``"gait2392"`` or ``"unknown"``.
    """
    knee = _knee_range_sign(info)
    stems = {m.name[:-2] if m.side else m.name for m in info.muscles}
    n_raj = len(stems & RAJAGOPAL_MUSCLES)
    n_g = len(stems & GAIT2392_MUSCLES)
    if info.muscles and (n_raj or n_g):
        if n_raj >= 3 and n_g == 0 and knee != -1:
            return "rajagopal"
        if n_g >= 3 and n_raj == 0 and knee != 1:
            return "gait2392"
        return "unknown"
    if not info.muscles:
        beta = any(info.has_coordinate(f"knee_angle_{s}_beta") for s in "rl")
        if beta and knee == 1:
            return "rajagopal"
        if not beta and knee == -1:
            return "gait2392"
    return "unknown"


def _knee_range_sign(info: ModelInfo) -> int | None:
    """+1 if the knee range lies mostly above 0, -1 if mostly below, else None."""
    for name in ("knee_angle_r", "knee_angle_l"):
        if info.has_coordinate(name):
            lo, hi = info.coordinate(name).range
            if hi <= lo:
                return None
            pos = (max(hi, 0.0) - max(lo, 0.0)) / (hi - lo)
            return 1 if pos >= 0.75 else -1 if pos <= 0.25 else None
    return None
