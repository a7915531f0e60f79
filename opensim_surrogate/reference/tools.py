"""Thin, typed wrappers over the real OpenSim 4.6 tools (Scale, IK, ID, SO).

Every wrapper builds its tool in Python, writes the setup XML into the output directory
(``printToXML``) and runs the tool *from that file* on a fresh model, which is the reliable
route in OpenSim 4.x and leaves a reproducible setup next to the results. Each returns a
dataclass with the outputs as :class:`pandas.DataFrame` (index ``time`` in seconds), the
written file paths, and the wall-clock seconds the step took.

Conventions
-----------
* Processed coordinates (the input of ID and SO, and what a dataset stores as kinematics):
  IK output with plain coordinate labels, only the model's coordinates, rotational ones in
  **radians**, translational in metres, low-pass filtered ONCE at ``config.lowpass_hz``
  (OpenSim ``TabOpLowPassFilter``) and resampled to ``config.sample_rate_hz``. The tools'
  own filters are off.
* Ground reactions: force and free-moment columns optionally filtered
  (``config.grf_lowpass_hz``) and re-zeroed below ``config.threshold_n``; a copy of the
  ExternalLoads XML pointing at the processed file (absolute path) is written next to it.
* Static optimisation failure is silent in OpenSim (``run()`` still returns true), so the
  OpenSim log is captured in a file sink during SO and parsed per frame.

OpenSim is imported lazily; importing this module is cheap.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError, MissingFileError, ModelFileError, SimulationError, TableFormatError
from .config import ReferenceConfig

log = logging.getLogger(__name__)

__all__ = [
    "ScaleResult", "IKResult", "IDResult", "SOResult", "ModelCoordinates",
    "scale_model", "inverse_kinematics", "inverse_dynamics", "static_optimization",
    "process_coordinates", "process_grf", "write_external_loads", "model_coordinates",
    "read_sto", "write_sto", "opensim_version", "foot_positions",
    "parse_so_log", "actuator_force_set",
]

_OSIM: Any = None


def _osim() -> Any:
    """Import OpenSim once, silence its console logger and drop its default ``opensim.log``."""
    global _OSIM
    if _OSIM is None:
        import opensim

        opensim.Logger.setLevelString("error")
        opensim.Logger.removeFileSink()  # OpenSim would otherwise write ./opensim.log
        _OSIM = opensim
    return _OSIM


def coupled_dependents(model: Any) -> set[str]:
    """Coordinates driven by an enforced ``CoordinateCouplerConstraint`` (e.g.
    ``knee_angle_r_beta``): set by assembling, never by hand."""
    osim = _osim()
    dependent = set()
    cons = model.getConstraintSet()
    for i in range(cons.getSize()):
        cc = osim.CoordinateCouplerConstraint.safeDownCast(cons.get(i))
        if cc is not None and cc.get_isEnforced():
            dependent.add(cc.getDependentCoordinateName())
    return dependent


#: Public name of :func:`_osim` for other modules (validation) that drive OpenSim.
import_opensim = _osim


def opensim_version() -> str:
    """Version string of the OpenSim Python package in use."""
    osim = _osim()
    return f"{osim.__version__} ({osim.GetVersionAndDate()})"


# ---------------------------------------------------------------------------------------
# console capture
# ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def _captured_console(path: Path | None) -> Iterator[None]:
    """Redirect file descriptors 1 and 2 to ``path`` (OpenSim's C++ console) while inside.

    ``None`` leaves the console alone.
    """
    if path is None:
        yield
        return
    libc = None
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL(None)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        if libc is not None:
            with contextlib.suppress(Exception):
                libc.fflush(None)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (*saved, fd):
            os.close(f)


def _console(config: ReferenceConfig | None, out_dir: Path, step: str) -> Path | None:
    if config is not None and not config.capture_console:
        return None
    return out_dir / f"{step}.console.log"


# ---------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------
def read_sto(path: str | Path, *, tolerant: bool = True) -> pd.DataFrame:
    """Read an OpenSim ``.sto`` / ``.mot`` table into a DataFrame indexed by ``time``.

    Uses :func:`opensim_surrogate.io.tables.read_table` (path-style labels renamed, surplus
    trailing labels of SO force files dropped). When ``tolerant`` and that strict reader
    refuses the file's *content* (e.g. a non-finite cell in an SO output), a lenient parser
    here reads it instead (NaN allowed).

    Returns
    -------
    pandas.DataFrame
        ``attrs["in_degrees"]`` is True/False from the header, or None if absent (old SIMM
        ``.mot`` files, which OpenSim assumes to be in degrees).
    """
    from ..io.tables import header_of, read_table

    p = Path(path)
    if not p.is_file():
        raise MissingFileError("table file not found", path=p, hint="check the path")
    try:
        df = read_table(p)
    except TableFormatError:
        if not tolerant:
            raise
        log.warning("%s: strict table reader refused it; reading leniently", p)
        return _read_sto_lenient(p)
    hdr = header_of(df)
    df.attrs["in_degrees"] = hdr.in_degrees if hdr is not None else None
    return df


def _read_sto_lenient(p: Path) -> pd.DataFrame:
    """Minimal reader: header up to ``endheader``, labels, whitespace-separated numbers."""
    lines = p.read_text(errors="replace").splitlines()
    try:
        end = next(i for i, ln in enumerate(lines) if ln.strip().lower() == "endheader")
    except StopIteration:
        raise TableFormatError("no 'endheader' line", path=p,
                               hint="not an OpenSim .sto/.mot table") from None
    header = lines[:end]
    in_degrees: bool | None = None
    for ln in header:
        m = re.match(r"\s*inDegrees\s*=\s*(\w+)", ln)
        if m:
            in_degrees = m.group(1).lower() in ("yes", "true", "1")
    i = end + 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines):
        raise TableFormatError("no column labels after 'endheader'", path=p, line=end + 2)
    labels = lines[i].rstrip("\n").split("\t") if "\t" in lines[i] else lines[i].split()
    labels = [s.strip() for s in labels]
    while labels and labels[-1] == "":
        labels.pop()
    rows = [ln.split() for ln in lines[i + 1:] if ln.strip()]
    ncols = {len(r) for r in rows}
    if len(ncols) > 1:
        raise TableFormatError(f"rows have different numbers of columns {sorted(ncols)}",
                               path=p)
    n = ncols.pop() if ncols else len(labels)
    if len(labels) > n:
        log.warning("%s: %d labels but %d data columns; dropping %s", p.name, len(labels), n,
                    labels[n:])
        labels = labels[:n]
    elif len(labels) < n:
        raise TableFormatError(f"{len(labels)} labels but {n} data columns", path=p, line=i + 1)
    try:
        data = np.array(rows, dtype=float) if rows else np.zeros((0, n))
    except ValueError as exc:
        raise TableFormatError(f"non-numeric cell: {exc}", path=p) from None
    if labels[0].lower() != "time":
        raise TableFormatError(f"first column is {labels[0]!r}, not 'time'", path=p,
                               line=i + 1, column=labels[0])
    df = pd.DataFrame(data[:, 1:], index=pd.Index(data[:, 0], name="time"), columns=labels[1:])
    df.attrs["in_degrees"] = in_degrees
    return df


def write_sto(df: pd.DataFrame, path: str | Path, name: str = "table", *,
              in_degrees: bool = False) -> Path:
    """Write ``df`` (index = time) as a plain OpenSim table that the tools read exactly.

    Thin wrapper over :func:`opensim_surrogate.io.tables.write_table` (atomic write).
    """
    from ..io.tables import write_table

    out = df.copy()
    out.attrs = {}
    return write_table(out, path, name=name, in_degrees=in_degrees)


# ---------------------------------------------------------------------------------------
# model helpers
# ---------------------------------------------------------------------------------------
@dataclass
class ModelCoordinates:
    """Coordinates of a model, grouped the way the reference pipeline needs them.

    Attributes
    ----------
    names : list of str
        All coordinates in model order.
    rotational : set of str
        Coordinates whose motion type is rotational (values in radians).
    locked, dependent : set of str
        Locked coordinates; dependent coordinates of CoordinateCouplerConstraints.
    ground : list of str
        Coordinates of the joint(s) whose parent is ground (the pelvis).
    actuated : set of str
        Coordinates already driven by an enabled CoordinateActuator in the model.
    muscles : list of str
        Muscle names in model order.
    total_mass : float
        Model mass (kg).
    muscle_spanned : set of str
        Unlocked coordinates with a nonzero muscle moment arm in the default pose.
    """

    names: list[str]
    rotational: set[str]
    locked: set[str]
    dependent: set[str]
    ground: list[str]
    actuated: set[str]
    muscles: list[str]
    total_mass: float = float("nan")
    muscle_spanned: set[str] = field(default_factory=set)


def load_model(path: str | Path) -> Any:
    """A fresh ``opensim.Model`` from ``path``; clear errors for a missing/unloadable file."""
    p = Path(path)
    if not p.is_file():
        raise MissingFileError("model file not found", path=p, hint="check the .osim path")
    osim = _osim()
    try:
        return osim.Model(str(p))
    except Exception as exc:  # OpenSim raises RuntimeError with its own text
        raise ModelFileError(f"OpenSim cannot load the model: {exc}", path=p,
                             hint="is it an OpenSim 4.x .osim file?") from exc


_MC_CACHE: dict[tuple[str, float, int], ModelCoordinates] = {}


def model_coordinates(model_osim: str | Path) -> ModelCoordinates:
    """Inspect ``model_osim`` with OpenSim (coordinates, muscles, mass); cached per file."""
    p = Path(model_osim)
    if not p.is_file():
        raise MissingFileError("model file not found", path=p, hint="check the .osim path")
    st = p.stat()
    key = (str(p.resolve()), st.st_mtime, st.st_size)
    if key not in _MC_CACHE:
        _MC_CACHE[key] = _model_coordinates(p)
    mc = _MC_CACHE[key]
    return ModelCoordinates(list(mc.names), set(mc.rotational), set(mc.locked),
                            set(mc.dependent), list(mc.ground), set(mc.actuated),
                            list(mc.muscles), mc.total_mass, set(mc.muscle_spanned))


def _model_coordinates(model_osim: Path) -> ModelCoordinates:
    osim = _osim()
    model = load_model(model_osim)
    state = model.initSystem()
    cs = model.getCoordinateSet()
    names, rot, locked, ground = [], set(), set(), []
    for i in range(cs.getSize()):
        c = cs.get(i)
        n = c.getName()
        names.append(n)
        if c.getMotionType() == osim.Coordinate.Rotational:
            rot.add(n)
        if c.getDefaultLocked():
            locked.add(n)
        if c.getJoint().getParentFrame().findBaseFrame().getName() == "ground":
            ground.append(n)
    dependent = coupled_dependents(model)
    actuated = set()
    fs = model.getForceSet()
    for i in range(fs.getSize()):
        ca = osim.CoordinateActuator.safeDownCast(fs.get(i))
        if ca is not None and ca.get_appliesForce():
            actuated.add(ca.get_coordinate())
    ms = model.getMuscles()
    muscles = [ms.get(i).getName() for i in range(ms.getSize())]
    spanned = set()
    for i in range(ms.getSize()):
        mu = ms.get(i)
        for j in range(cs.getSize()):
            c = cs.get(j)
            if c.getName() not in spanned and c.getName() not in locked \
                    and abs(mu.computeMomentArm(state, c)) > 1e-6:
                spanned.add(c.getName())
    return ModelCoordinates(names, rot, locked, dependent, ground, actuated, muscles,
                            float(model.getTotalMass(state)), spanned)


def _plain_label(label: str) -> str | None:
    """``/jointset/hip_r/hip_flexion_r/value`` -> ``hip_flexion_r``; speeds -> None."""
    if "/" not in label:
        return label
    parts = [s for s in label.split("/") if s]
    if parts and parts[-1] == "value" and len(parts) >= 2:
        return parts[-2]
    return None


def _external_force_specs(external_loads_xml: str | Path) -> list[dict[str, str]]:
    """ExternalForce entries of an ExternalLoads XML (name, body, identifiers)."""
    from ..osim.xml import parse_xml

    tree = parse_xml(external_loads_xml)
    out = []
    for ef in tree.iter("ExternalForce"):
        def text(tag: str) -> str:
            el = ef.find(tag)
            return (el.text or "").strip() if el is not None else ""
        out.append({"name": ef.get("name", ""), "body": text("applied_to_body"),
                    "force": text("force_identifier"), "point": text("point_identifier"),
                    "torque": text("torque_identifier"),
                    "force_expressed_in": text("force_expressed_in_body") or "ground"})
    if not out:
        raise ModelFileError("no ExternalForce in the ExternalLoads file",
                             path=external_loads_xml, hint="is this an ExternalLoads XML?")
    return out


# ---------------------------------------------------------------------------------------
# scale
# ---------------------------------------------------------------------------------------
@dataclass
class ScaleResult:
    """Result of :func:`scale_model`.

    Attributes
    ----------
    model_path : Path
        The scaled subject model (with muscles).
    total_mass_kg : float
        Its total mass (equals the subject mass).
    markers_copied : int
        Marker locations copied from ``marker_source_osim``.
    setup_path : Path
        The ScaleTool setup that was used.
    seconds : float
        Wall-clock time.
    """

    model_path: Path
    total_mass_kg: float
    markers_copied: int
    setup_path: Path
    seconds: float


def scale_model(generic_osim: str | Path, scale_set_xml_or_setup: str | Path, mass_kg: float,
                out_path: str | Path, marker_source_osim: str | Path | None = None, *,
                name: str | None = None) -> ScaleResult:
    """Scale a generic muscled model with a subject's scale factors and mass.

    A ScaleTool is built programmatically (``manualScale`` with the given scale set,
    mass distribution preserved, marker placer off); its ModelScaler scales a fresh copy of
    the generic model (bodies, muscles' optimal fibre and tendon slack lengths, ...) to
    ``mass_kg``. Marker locations (and parent frames) of markers that also exist in
    ``marker_source_osim`` are then copied from it (schreiber2019: the converter's
    ``*_scaledModelAdjusted.osim``). The model is written to a temporary file and renamed,
    so concurrent processes scaling the same subject never see a half-written model.

    Parameters
    ----------
    generic_osim
        Generic model with muscles.
    scale_set_xml_or_setup
        A ``ScaleSet`` XML, or a ScaleTool setup with an embedded ScaleSet (its file paths
        are ignored).
    mass_kg
        Subject mass; the scaled model's total mass.
    out_path
        Where to write the scaled model.
    marker_source_osim
        Optional model to copy adjusted marker locations from.
    name
        Model name (default: the out file stem).

    Raises
    ------
    InputError
        ``mass_kg`` not positive.
    SimulationError
        Scaling failed or the result's mass differs from ``mass_kg``.
    """
    osim = _osim()
    t0 = time.perf_counter()
    if not (math.isfinite(mass_kg) and mass_kg > 0):
        raise InputError(f"subject mass must be positive, not {mass_kg!r}", column="mass_kg")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    scale_set = _scale_set_file(Path(scale_set_xml_or_setup), out.parent)
    tool = osim.ScaleTool()
    tool.setName(name or out.stem)
    tool.setSubjectMass(float(mass_kg))
    tool.getGenericModelMaker().setModelFileName(str(Path(generic_osim).resolve()))
    scaler = tool.getModelScaler()
    scaler.setApply(True)
    order = osim.ArrayStr()
    order.append("manualScale")
    scaler.setScalingOrder(order)
    scaler.setScaleSetFile(str(scale_set))
    scaler.setPreserveMassDist(True)
    scaler.setOutputModelFileName(str(out))
    tool.getMarkerPlacer().setApply(False)
    setup = out.with_name(out.stem + "_scaleSetup.xml")
    tmp_setup = out.with_name(f".{setup.name}.{os.getpid()}.tmp.xml")
    tool.printToXML(str(tmp_setup))
    os.replace(tmp_setup, setup)

    model = load_model(generic_osim)
    model.initSystem()
    if not tool.getModelScaler().processModel(model, "", float(mass_kg)):
        raise SimulationError("OpenSim ModelScaler failed", path=scale_set,
                              hint="check the scale set's segment names against the model")
    model.setName(name or out.stem)
    copied = 0
    if marker_source_osim is not None:
        copied = _copy_markers(model, Path(marker_source_osim))
    model.finalizeConnections()
    state = model.initSystem()
    total = float(model.getTotalMass(state))
    if abs(total - mass_kg) > 1e-6 * max(1.0, mass_kg):
        raise SimulationError(f"scaled model mass {total:.4f} kg != subject mass {mass_kg} kg",
                              path=out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp.osim")
    model.printToXML(str(tmp))
    os.replace(tmp, out)
    dt = time.perf_counter() - t0
    log.info("scaled %s -> %s (%.2f kg, %d markers copied) in %.2f s", Path(generic_osim).name,
             out, total, copied, dt)
    return ScaleResult(out, total, copied, setup, dt)


def _scale_set_file(path: Path, work: Path) -> Path:
    """A standalone ScaleSet XML: ``path`` itself, or extracted from a ScaleTool setup."""
    from lxml import etree

    from ..osim.xml import parse_xml

    tree = parse_xml(path)
    root = tree.getroot()
    if root.find("ScaleSet") is not None or root.tag == "ScaleSet":
        return path
    ss = tree.find(".//ScaleSet")
    if ss is None:
        raise ModelFileError("neither a ScaleSet nor a ScaleTool setup with a ScaleSet",
                             path=path, hint="pass the subject's *_scaleSet.xml")
    doc = etree.Element("OpenSimDocument", Version=root.get("Version", "40500"))
    doc.append(ss)
    out = work / f"{path.stem}_scaleSet.xml"
    tmp = work / f".{out.name}.{os.getpid()}.tmp.xml"
    etree.ElementTree(doc).write(str(tmp), xml_declaration=True, encoding="UTF-8")
    os.replace(tmp, out)
    return out


def _copy_markers(model: Any, source: Path) -> int:
    src = load_model(source)
    dst_set = model.updMarkerSet()
    src_set = src.getMarkerSet()
    n = 0
    for i in range(src_set.getSize()):
        mk = src_set.get(i)
        if not dst_set.contains(mk.getName()):
            continue
        dst = dst_set.get(mk.getName())
        parent = mk.getParentFrameName()
        if not model.hasComponent(parent):
            continue
        dst.setParentFrameName(parent)
        dst.set_location(mk.get_location())
        n += 1
    return n


# ---------------------------------------------------------------------------------------
# IK
# ---------------------------------------------------------------------------------------
@dataclass
class IKResult:
    """Result of :func:`inverse_kinematics`.

    Attributes
    ----------
    coordinates : DataFrame
        IK output as written (rotational coordinates in DEGREES, OpenSim convention).
    mot_path, setup_path : Path
        The motion file and the IK setup.
    marker_rms_m, marker_max_m : float
        Mean over frames of the RMS marker error, and the largest marker error (m).
    seconds : float
    """

    coordinates: pd.DataFrame
    mot_path: Path
    setup_path: Path
    marker_rms_m: float
    marker_max_m: float
    seconds: float


def _trc_time_range(trc: Path) -> tuple[float, float]:
    lines = trc.read_text(errors="replace").splitlines()
    times = []
    for ln in lines[5:]:
        parts = ln.split("\t")
        if len(parts) > 2 and parts[1].strip():
            with contextlib.suppress(ValueError):
                times.append(float(parts[1]))
    if not times:
        raise TableFormatError("no marker frames", path=trc, hint="is this a .trc file?")
    return times[0], times[-1]


def _ik_task_set(ik_setup: Path, work: Path) -> Path:
    from lxml import etree

    from ..osim.xml import parse_xml

    tree = parse_xml(ik_setup)
    ts = tree.find(".//IKTaskSet")
    if ts is None:
        raise ModelFileError("no IKTaskSet in the IK setup", path=ik_setup,
                             hint="pass an InverseKinematicsTool setup XML")
    doc = etree.Element("OpenSimDocument", Version=tree.getroot().get("Version", "40500"))
    doc.append(ts)
    out = work / "ik_tasks.xml"
    etree.ElementTree(doc).write(str(out), xml_declaration=True, encoding="UTF-8")
    return out


def inverse_kinematics(model_osim: str | Path, trc: str | Path, out_mot: str | Path,
                       ik_setup_for_weights: str | Path | None = None,
                       time_range: tuple[float, float] | None = None, *,
                       config: ReferenceConfig | None = None) -> IKResult:
    """Run OpenSim IK over a whole ``.trc`` (or ``time_range``).

    Marker weights come from the IKTaskSet of ``ik_setup_for_weights`` (its model/marker
    paths are ignored); without it every marker present in model and data has weight 1.
    Output: ``out_mot`` (degrees) and ``_ik_marker_errors.sto`` next to it.
    """
    osim = _osim()
    t0 = time.perf_counter()
    trc = Path(trc)
    if not trc.is_file():
        raise MissingFileError("marker file not found", path=trc)
    out = Path(out_mot)
    work = out.parent
    work.mkdir(parents=True, exist_ok=True)
    start, end = time_range if time_range is not None else _trc_time_range(trc)
    tool = osim.InverseKinematicsTool()
    tool.setName(out.stem)
    tool.set_model_file(str(Path(model_osim).resolve()))
    tool.setMarkerDataFileName(str(trc.resolve()))
    if ik_setup_for_weights is not None:
        tool.set_IKTaskSet(osim.IKTaskSet(str(_ik_task_set(Path(ik_setup_for_weights), work))))
    tool.setOutputMotionFileName(str(out.resolve()))
    tool.set_results_directory(str(work.resolve()))
    tool.set_report_errors(True)
    tool.set_time_range(0, float(start))
    tool.set_time_range(1, float(end))
    setup = work / f"{out.stem}_ikSetup.xml"
    tool.printToXML(str(setup))
    with _captured_console(_console(config, work, "ik")):
        try:
            ok = osim.InverseKinematicsTool(str(setup)).run()
        except Exception as exc:
            raise SimulationError(f"IK failed: {exc}", path=setup) from exc
    if not ok or not out.is_file():
        raise SimulationError("IK did not produce a motion file", path=setup)
    coords = read_sto(out)
    rms = mx = float("nan")
    err = work / f"{out.stem}_ik_marker_errors.sto"
    if err.is_file():
        with contextlib.suppress(Exception):
            e = read_sto(err)
            rms = float(e["marker_error_RMS"].mean())
            mx = float(e["marker_error_max"].max())
    dt = time.perf_counter() - t0
    log.info("IK %s: %d frames, marker RMS %.4f m in %.2f s", trc.name, len(coords), rms, dt)
    return IKResult(coords, out, setup, rms, mx, dt)


# ---------------------------------------------------------------------------------------
# coordinate / GRF processing
# ---------------------------------------------------------------------------------------
def process_coordinates(coordinates: str | Path | pd.DataFrame, model_osim: str | Path,
                        config: ReferenceConfig, out_sto: str | Path | None = None,
                        time_range: tuple[float, float] | None = None) -> pd.DataFrame:
    """Low-pass filter IK coordinates once, resample them, convert to radians.

    Keeps only the model's coordinates (plain labels; path-style ``.../value`` labels are
    shortened, speeds and extra columns such as marker positions dropped), converts the
    rotational ones to radians if the table is in degrees (a table without an ``inDegrees``
    header line is taken as degrees, the OpenSim ``.mot`` convention), filters with
    OpenSim's ``TabOpLowPassFilter(config.lowpass_hz)``, resamples linearly to
    ``config.sample_rate_hz`` on a grid starting at the first row, and trims to
    ``time_range``. Writes ``out_sto`` (radians) when given.

    Returns
    -------
    DataFrame
        Index ``time`` (s), columns the model's coordinates (rad / m).
    """
    osim = _osim()
    info = model_coordinates(model_osim)
    df = read_sto(coordinates) if not isinstance(coordinates, pd.DataFrame) else coordinates.copy()
    in_deg = df.attrs.get("in_degrees")
    if in_deg is None:
        in_deg = not isinstance(coordinates, pd.DataFrame)
    rename = {}
    for c in df.columns:
        plain = _plain_label(str(c))
        if plain is not None and plain in info.names:
            rename[c] = plain
    df = df[list(rename)].rename(columns=rename)
    df = df.loc[:, ~df.columns.duplicated()]
    missing = [c for c in info.names if c not in df.columns
               and c not in info.locked and c not in info.dependent]
    if missing:
        src = coordinates if not isinstance(coordinates, pd.DataFrame) else None
        raise InputError(f"coordinates missing from the motion: {', '.join(missing)}",
                         path=src, column=missing[0],
                         hint="the motion must come from IK with this model")
    if in_deg:
        for c in df.columns:
            if c in info.rotational:
                df[c] = np.deg2rad(df[c].to_numpy(dtype=float))
    t = np.asarray(df.index, dtype=float)
    if len(t) < 4 or np.any(np.diff(t) <= 0):
        raise InputError("coordinates need >= 4 rows with strictly increasing time",
                         column="time")
    # OpenSim's filter (Storage IIR with padding) needs uniform sampling: resample first
    # if the source is not uniform.
    dts = np.diff(t)
    if dts.max() - dts.min() > 1e-6 * max(1.0, dts.mean()):
        step = float(np.median(dts))
        grid = np.arange(t[0], t[-1] + step * 0.5, step)
        df = pd.DataFrame({c: np.interp(grid, t, df[c].to_numpy()) for c in df.columns},
                          index=pd.Index(grid, name="time"))
        t = grid
    tmp_dir = Path(out_sto).parent if out_sto is not None else None
    import tempfile

    with tempfile.TemporaryDirectory(dir=tmp_dir) as td:
        raw = write_sto(df, Path(td) / "raw_coordinates.sto", "raw_coordinates")
        proc = osim.TableProcessor(str(raw))
        proc.append(osim.TabOpLowPassFilter(float(config.lowpass_hz)))
        table = proc.process()
        vals = table.getMatrix().to_numpy()
        tt = np.asarray(table.getIndependentColumn(), dtype=float)
        labels = list(table.getColumnLabels())
    filt = pd.DataFrame(vals, index=tt, columns=labels)
    fs = float(config.sample_rate_hz)
    lo, hi = (tt[0], tt[-1]) if time_range is None else (max(tt[0], time_range[0]),
                                                         min(tt[-1], time_range[1]))
    k0 = math.ceil((lo - tt[0]) * fs - 1e-6)
    k1 = math.floor((hi - tt[0]) * fs + 1e-6)
    grid = np.round(tt[0] + np.arange(k0, k1 + 1) / fs, 9)
    if len(grid) < 2:
        raise InputError("time range leaves fewer than 2 frames", column="time")
    out = pd.DataFrame({c: np.interp(grid, tt, filt[c].to_numpy()) for c in labels},
                       index=pd.Index(grid, name="time"))
    out = out[[c for c in info.names if c in out.columns]]
    if out_sto is not None:
        write_sto(out, out_sto, "processed_coordinates", in_degrees=False)
    return out


def process_grf(grf: str | Path | pd.DataFrame, external_loads_xml: str | Path,
                config: ReferenceConfig, out_mot: str | Path) -> tuple[pd.DataFrame, Path, Path]:
    """Filter the ground reactions as configured and write them with a matching ExternalLoads.

    Force (``<force_identifier>x/y/z``) and free-moment (``<torque_identifier>x/y/z``)
    columns are low-pass filtered (zero-lag Butterworth, 2nd order run forwards and
    backwards = 4th order, ``config.grf_lowpass_hz``) and set back to zero wherever the raw
    vertical force is below ``config.threshold_n``; point columns are left as they are.

    Returns
    -------
    (DataFrame, Path, Path)
        Processed GRF, the written ``.mot``, and the ExternalLoads XML pointing at it.
    """
    from scipy.signal import butter, filtfilt

    raw = read_sto(grf) if not isinstance(grf, pd.DataFrame) else grf.copy()
    specs = _external_force_specs(external_loads_xml)
    out = raw.copy()
    if config.grf_lowpass_hz is not None and len(raw) > 12:
        t = np.asarray(raw.index, dtype=float)
        fs = 1.0 / float(np.median(np.diff(t)))
        wn = config.grf_lowpass_hz / (fs / 2)
        if wn < 1:
            b, a = butter(2, wn)
            for sp in specs:
                vy = raw.get(sp["force"] + "y")
                off = (vy.to_numpy() < config.threshold_n) if vy is not None else None
                for ident in (sp["force"], sp["torque"]):
                    for ax in "xyz":
                        col = ident + ax
                        if col in out.columns:
                            y = filtfilt(b, a, raw[col].to_numpy(dtype=float))
                            if off is not None:
                                y[off] = 0.0
                            out[col] = y
    path = write_sto(out, out_mot, Path(out_mot).stem, in_degrees=False)
    xml = write_external_loads(external_loads_xml, path,
                               Path(out_mot).with_name(Path(out_mot).stem + "_loads.xml"))
    return out, path, xml


def write_external_loads(template_xml: str | Path, datafile: str | Path, out_xml: str | Path,
                         swap_sides: bool = False) -> Path:
    """Copy an ExternalLoads XML, pointing ``<datafile>`` at ``datafile`` (absolute path).

    ``swap_sides`` exchanges ``_r``/``_l`` in every ``applied_to_body`` (and the
    ``*_expressed_in_body`` entries), e.g. ``calcn_r`` <-> ``calcn_l`` for a mirrored trial.
    """
    from ..osim.xml import parse_xml

    tree = parse_xml(template_xml)
    root = tree.getroot()
    df = root.find(".//datafile")
    if df is None:
        el = root.find(".//ExternalLoads")
        if el is None:
            raise ModelFileError("no ExternalLoads element", path=template_xml)
        from lxml import etree

        df = etree.SubElement(el, "datafile")
    df.text = str(Path(datafile).resolve())
    if swap_sides:
        from .mirror_inputs import swap_side_name

        for tag in ("applied_to_body", "force_expressed_in_body", "point_expressed_in_body"):
            for el in root.iter(tag):
                if el.text:
                    el.text = swap_side_name(el.text.strip())
    out = Path(out_xml)
    out.parent.mkdir(parents=True, exist_ok=True)
    tree.write(str(out), xml_declaration=True, encoding="UTF-8")
    return out


# ---------------------------------------------------------------------------------------
# ID
# ---------------------------------------------------------------------------------------
@dataclass
class IDResult:
    """Result of :func:`inverse_dynamics`.

    Attributes
    ----------
    moments : DataFrame
        Generalised forces ``<coord>_moment`` (N·m) / ``<coord>_force`` (N).
    coordinates : DataFrame
        The processed coordinates ID ran on (radians / m, ``sample_rate_hz``).
    grf : DataFrame
        The processed ground reactions ID applied.
    sto_path, coordinates_path, grf_path, external_loads_path, setup_path : Path
    seconds : float
    """

    moments: pd.DataFrame
    coordinates: pd.DataFrame
    grf: pd.DataFrame
    sto_path: Path
    coordinates_path: Path
    grf_path: Path
    external_loads_path: Path
    setup_path: Path
    seconds: float


def inverse_dynamics(model_osim: str | Path, coordinates: str | Path | pd.DataFrame,
                     external_loads_xml: str | Path, grf_mot: str | Path | pd.DataFrame,
                     config: ReferenceConfig, time_range: tuple[float, float] | None = None,
                     *, out_dir: str | Path, name: str = "id") -> IDResult:
    """Run OpenSim inverse dynamics (muscles excluded) on processed coordinates.

    Parameters
    ----------
    model_osim
        Subject model; a fresh copy is loaded by the tool for this run.
    coordinates
        An IK motion file (filtered once at ``config.lowpass_hz`` and resampled by
        :func:`process_coordinates`), or a DataFrame of ALREADY processed coordinates
        (radians / m, uniform rate) that is used as is.
    external_loads_xml, grf_mot
        ExternalLoads XML (its ``datafile`` is replaced) and the ground reactions (file or
        DataFrame), processed by :func:`process_grf`.
    time_range
        Frames to keep (default: all).
    out_dir
        Work directory: ``<name>_coordinates.sto`` (exactly what ID ran on, radians),
        ``<name>_grf.mot``, ``<name>_grf_loads.xml``, ``<name>_setup.xml``, ``<name>.sto``.
    """
    osim = _osim()
    t0 = time.perf_counter()
    work = Path(out_dir)
    work.mkdir(parents=True, exist_ok=True)
    coords_path = work / f"{name}_coordinates.sto"
    if isinstance(coordinates, pd.DataFrame):
        coords = coordinates
        if time_range is not None:
            coords = coords.loc[(coords.index >= time_range[0] - 1e-9)
                                & (coords.index <= time_range[1] + 1e-9)]
        write_sto(coords, coords_path, "processed_coordinates", in_degrees=False)
    else:
        coords = process_coordinates(coordinates, model_osim, config, coords_path, time_range)
    grf, grf_path, loads = process_grf(grf_mot, external_loads_xml, config,
                                       work / f"{name}_grf.mot")
    tool = osim.InverseDynamicsTool()
    tool.setName(name)
    tool.setModelFileName(str(Path(model_osim).resolve()))
    tool.setCoordinatesFileName(str(coords_path.resolve()))
    tool.setExternalLoadsFileName(str(loads.resolve()))
    tool.setLowpassCutoffFrequency(-1)
    excluded = osim.ArrayStr()
    excluded.append("Muscles")
    tool.setExcludedForces(excluded)
    # The setup XML prints times with ~6 significant digits: a range equal to the first and last
    # frame times can round inwards and drop a frame (e.g. 5.698333 -> 5.69833 at 120 Hz
    # sources). Pad by half a sample; ID still returns exactly the coordinate frames.
    half = 0.5 / float(config.sample_rate_hz)
    tool.setStartTime(float(coords.index[0]) - half)
    tool.setEndTime(float(coords.index[-1]) + half)
    tool.setResultsDir(str(work.resolve()))
    tool.setOutputGenForceFileName(f"{name}.sto")
    setup = work / f"{name}_setup.xml"
    tool.printToXML(str(setup))
    with _captured_console(_console(config, work, name)):
        try:
            ok = osim.InverseDynamicsTool(str(setup)).run()
        except Exception as exc:
            raise SimulationError(f"inverse dynamics failed: {exc}", path=setup) from exc
    sto = work / f"{name}.sto"
    if not ok or not sto.is_file():
        raise SimulationError("inverse dynamics produced no output", path=setup)
    moments = read_sto(sto)
    moments.index = pd.Index(np.round(moments.index.to_numpy(), 9), name="time")
    if len(moments) != len(coords):
        raise SimulationError(f"ID returned {len(moments)} frames for {len(coords)} "
                              "coordinate frames", path=sto)
    moments.index = coords.index
    dt = time.perf_counter() - t0
    log.info("ID %s: %d frames in %.2f s", name, len(moments), dt)
    return IDResult(moments, coords, grf, sto, coords_path, grf_path, loads, setup, dt)


# ---------------------------------------------------------------------------------------
# SO
# ---------------------------------------------------------------------------------------
@dataclass
class SOResult:
    """Result of :func:`static_optimization`.

    Attributes
    ----------
    forces : DataFrame
        Muscle forces (N), muscles only, every SO frame (failed frames included; see
        ``frames``).
    activations : DataFrame
        Muscle activations (0..1).
    actuators : DataFrame
        Non-muscle actuator outputs (N·m or N): the model's own CoordinateActuators, the
        pelvis residuals ``residual_<coord>``, reserves ``reserve_<coord>`` and torque
        actuators ``torque_<coord>`` on coordinates no muscle spans.
    frames : DataFrame
        Per frame: ``performance``, ``constraint_violation``, ``max_reserve`` (largest
        absolute reserve output, N·m or N), ``failed`` (bool), ``reason``.
    failed_frames : list of float
        Times of failed frames.
    actuator_stats : dict
        ``{actuator: {"max_abs": ..., "rms": ..., "kind": "residual"|"reserve"|"torque"|
        "model"}}``
        over the frames that did not fail.
    force_path, activation_path, log_path, setup_path, force_set_path : Path
    seconds : float
    """

    forces: pd.DataFrame
    activations: pd.DataFrame
    actuators: pd.DataFrame
    frames: pd.DataFrame
    failed_frames: list[float]
    actuator_stats: dict[str, dict[str, Any]]
    force_path: Path
    activation_path: Path
    log_path: Path
    setup_path: Path
    force_set_path: Path
    seconds: float


def actuator_force_set(model_osim: str | Path, out_xml: str | Path, config: ReferenceConfig,
                       info: ModelCoordinates | None = None) -> tuple[Path, dict[str, str]]:
    """Write the residual + reserve CoordinateActuators for SO as a ForceSet XML.

    Pelvis (ground-joint) coordinates get ``residual_<coord>`` with
    ``config.residual_optimal_force``; every other coordinate that is not locked, not a
    dependent coupled coordinate, and not already actuated by a model CoordinateActuator
    gets ``reserve_<coord>`` with ``config.reserve_optimal_force`` if muscles span it
    (unless ``config.add_reserves`` is False), or ``torque_<coord>`` (same optimal force,
    always added) if no muscle does (e.g. the gait2392 arms). Controls are unbounded.

    Returns
    -------
    (Path, dict)
        The XML and ``{actuator name: "residual"|"reserve"|"torque"}``.
    """
    osim = _osim()
    info = info or model_coordinates(model_osim)
    fs = osim.ForceSet()
    kinds: dict[str, str] = {}

    def add(coord: str, force: float, name: str) -> None:
        a = osim.CoordinateActuator(coord)
        a.setName(name)
        a.setOptimalForce(float(force))
        a.setMinControl(-math.inf)
        a.setMaxControl(math.inf)
        fs.cloneAndAppend(a)

    for c in info.names:
        if c in info.locked or c in info.dependent:
            continue
        if c in info.ground:
            add(c, config.residual_optimal_force, f"residual_{c}")
            kinds[f"residual_{c}"] = "residual"
        elif c not in info.actuated and c not in info.muscle_spanned:
            # no muscle can move it (e.g. gait2392 arms): a torque actuator is its only
            # driver; decoupled from the muscles, so its strength does not bias them
            add(c, config.reserve_optimal_force, f"torque_{c}")
            kinds[f"torque_{c}"] = "torque"
        elif config.add_reserves and c not in info.actuated:
            add(c, config.reserve_optimal_force, f"reserve_{c}")
            kinds[f"reserve_{c}"] = "reserve"
    out = Path(out_xml)
    fs.printToXML(str(out))
    return out, kinds


_RE_FRAME = re.compile(r"time\s*=\s*([-+0-9.eE]+)\s+Performance\s*=\s*(\S+)\s+"
                       r"Constraint violation\s*=\s*(\S+)")
_RE_FAIL = re.compile(r"could not find a solution at time\s*=\s*([-+0-9.eE]+?)\.?\s*$")


def parse_so_log(text: str) -> tuple[dict[float, tuple[float, float]], set[float], int]:
    """Parse an OpenSim SO log.

    Returns
    -------
    (per_frame, failed, n_failed_messages)
        ``{time: (performance, constraint_violation)}``, times the optimiser reported it
        could not solve, and the number of "OPTIMIZATION FAILED" lines.
    """
    per: dict[float, tuple[float, float]] = {}
    failed: set[float] = set()
    n_fail = 0
    for ln in text.splitlines():
        if "OPTIMIZATION FAILED" in ln:
            n_fail += 1
        m = _RE_FAIL.search(ln)
        if m:
            with contextlib.suppress(ValueError):
                failed.add(round(float(m.group(1)), 6))
            continue
        m = _RE_FRAME.search(ln)
        if m:
            with contextlib.suppress(ValueError):
                def num(s: str) -> float:
                    try:
                        return float(s)
                    except ValueError:
                        return float("nan")
                per[round(float(m.group(1)), 6)] = (num(m.group(2)), num(m.group(3)))
    return per, failed, n_fail


@contextlib.contextmanager
def _log_to_file(path: Path) -> Iterator[None]:
    """Send OpenSim's log (info level) to ``path`` while inside; restore afterwards."""
    osim = _osim()
    prev = osim.Logger.getLevelString()
    osim.Logger.removeFileSink()
    osim.Logger.addFileSink(str(path))
    osim.Logger.setLevelString("info")
    try:
        yield
    finally:
        osim.Logger.setLevelString(prev if prev and prev.lower() != "off" else "error")
        osim.Logger.removeFileSink()


def static_optimization(model_osim: str | Path, coordinates_sto: str | Path,
                        external_loads_xml: str | Path, config: ReferenceConfig,
                        time_range: tuple[float, float], *, out_dir: str | Path,
                        name: str = "so") -> SOResult:
    """Run OpenSim static optimisation (AnalyzeTool + StaticOptimization) on a time range.

    The AnalyzeTool is built in Python (activation exponent, muscle physiology from
    ``config``; tool filter off), written with ``printToXML`` and run as
    ``AnalyzeTool(setup).run()``, which loads a fresh model and adds the ExternalLoads
    exactly once (checked afterwards from the output columns). Residual and reserve
    actuators come from :func:`actuator_force_set`. OpenSim's log is captured in
    ``<name>.log`` and parsed: a frame FAILED if the optimiser said so, its constraint
    violation exceeds ``config.so_max_constraint_violation``, it has no log line, its
    outputs are not finite, or (if ``config.so_max_reserve`` is set) a reserve exceeds it.

    Parameters
    ----------
    coordinates_sto
        PROCESSED coordinates (radians), e.g. ``IDResult.coordinates_path``; use the same
        file as ID so both see the same kinematics.
    external_loads_xml
        ExternalLoads whose datafile is the processed GRF (``IDResult.external_loads_path``).
    time_range
        First and last frame time to solve (inclusive).
    """
    osim = _osim()
    t0 = time.perf_counter()
    work = Path(out_dir)
    work.mkdir(parents=True, exist_ok=True)
    info = model_coordinates(model_osim)
    n_ext = len(_external_force_specs(external_loads_xml))
    if _model_has_external_forces(model_osim):
        raise SimulationError("the model already contains ExternalForce components; SO would "
                              "apply the ground reactions twice", path=model_osim,
                              hint="use a model file written before any tool added loads")
    fs_xml, kinds = actuator_force_set(model_osim, work / f"{name}_actuators.xml", config, info)
    results = work / f"{name}_results"
    results.mkdir(exist_ok=True)
    ti, tf = float(time_range[0]), float(time_range[1])
    tool = osim.AnalyzeTool()
    tool.setName(name)
    tool.setModelFilename(str(Path(model_osim).resolve()))
    files = osim.ArrayStr()
    files.append(str(fs_xml.resolve()))
    tool.setForceSetFiles(files)
    tool.setReplaceForceSet(False)
    tool.setCoordinatesFileName(str(Path(coordinates_sto).resolve()))
    tool.setExternalLoadsFileName(str(Path(external_loads_xml).resolve()))
    tool.setLowpassCutoffFrequency(-1)
    tool.setInitialTime(ti)
    tool.setFinalTime(tf)
    tool.setResultsDir(str(results.resolve()))
    so = osim.StaticOptimization()
    so.setName("StaticOptimization")
    so.setStartTime(ti)
    so.setEndTime(tf)
    so.setActivationExponent(float(config.activation_exponent))
    so.setUseMusclePhysiology(bool(config.use_muscle_physiology))
    so.setUseModelForceSet(True)
    tool.getAnalysisSet().cloneAndAppend(so)
    setup = work / f"{name}_setup.xml"
    tool.printToXML(str(setup))
    log_path = work / f"{name}.log"
    log_path.unlink(missing_ok=True)
    with _captured_console(_console(config, work, name)), _log_to_file(log_path):
        try:
            osim.AnalyzeTool(str(setup)).run()
        except Exception as exc:
            raise SimulationError(f"static optimisation failed: {exc}", path=setup) from exc
    force_path = results / f"{name}_StaticOptimization_force.sto"
    act_path = results / f"{name}_StaticOptimization_activation.sto"
    if not force_path.is_file() or not act_path.is_file():
        raise SimulationError("static optimisation wrote no results", path=setup,
                              hint=f"see {log_path}")
    force_all = read_sto(force_path, tolerant=True)
    act_all = read_sto(act_path, tolerant=True)
    for df in (force_all, act_all):
        df.index = pd.Index(np.round(df.index.to_numpy(dtype=float), 9), name="time")
    ext_cols = [c for c in force_all.columns if re.search(r"_(F[xyz]|p[xyz]|T[xyz])$", c)
                and c not in kinds and c not in info.muscles]
    if len(ext_cols) != 9 * n_ext:
        raise SimulationError(f"SO applied {len(ext_cols) // 9} external forces, expected "
                              f"{n_ext} (duplicated ExternalLoads?)", path=force_path)
    muscles = [m for m in info.muscles if m in force_all.columns]
    if len(muscles) != len(info.muscles):
        raise SimulationError("SO force file lacks some muscles", path=force_path)
    forces = force_all[muscles]
    activations = act_all[[m for m in muscles if m in act_all.columns]]
    act_cols = [c for c in force_all.columns if c not in muscles and c not in ext_cols]
    actuators = force_all[act_cols]

    text = log_path.read_text(errors="replace") if log_path.is_file() else ""
    per, failed, _ = parse_so_log(text)
    reserve_cols = [c for c in actuators.columns if kinds.get(c) == "reserve"]
    rows = []
    for t in forces.index:
        key = round(float(t), 6)
        perf, viol = per.get(key, (float("nan"), float("nan")))
        reason = ""
        if key in failed:
            reason = "optimizer failed"
        elif key not in per:
            reason = "no log line"
        elif not math.isfinite(viol) or viol > config.so_max_constraint_violation:
            reason = f"constraint violation {viol:.3g}"
        elif not (np.isfinite(forces.loc[t].to_numpy()).all()
                  and np.isfinite(activations.loc[t].to_numpy()).all()):
            reason = "non-finite output"
        max_res = float(np.abs(actuators.loc[t, reserve_cols].to_numpy()).max()) \
            if reserve_cols else 0.0
        if not reason and config.so_max_reserve is not None \
                and max_res > config.so_max_reserve:
            reason = f"reserve {max_res:.3g} > {config.so_max_reserve:g}"
        rows.append({"time": float(t), "performance": perf, "constraint_violation": viol,
                     "max_reserve": max_res, "failed": bool(reason), "reason": reason})
    frames = pd.DataFrame(rows).set_index("time") if rows else pd.DataFrame(
        columns=["performance", "constraint_violation", "max_reserve", "failed", "reason"])
    failed_times = [float(t) for t in frames.index[frames["failed"].astype(bool)]]
    ok = actuators.loc[~frames["failed"].astype(bool).to_numpy()] if len(frames) else actuators
    stats: dict[str, dict[str, Any]] = {}
    for c in actuators.columns:
        v = ok[c].to_numpy(dtype=float)
        stats[c] = {"kind": kinds.get(c, "model"),
                    "max_abs": float(np.nanmax(np.abs(v))) if len(v) else float("nan"),
                    "rms": float(np.sqrt(np.nanmean(v ** 2))) if len(v) else float("nan")}
    dt = time.perf_counter() - t0
    if failed_times:
        log.warning("SO %s: %d of %d frames failed", name, len(failed_times), len(frames))
    log.info("SO %s: %d frames in %.2f s", name, len(frames), dt)
    return SOResult(forces, activations, actuators, frames, failed_times, stats, force_path,
                    act_path, log_path, setup, fs_xml, dt)


def _model_has_external_forces(model_osim: str | Path) -> bool:
    from ..osim.xml import parse_xml

    tree = parse_xml(model_osim)
    return next(tree.iter("ExternalForce"), None) is not None


# ---------------------------------------------------------------------------------------
# forward kinematics (for gait events)
# ---------------------------------------------------------------------------------------
def foot_positions(model_osim: str | Path, coordinates: pd.DataFrame,
                   heel_body: Sequence[str] = ("calcn_r", "calcn_l"),
                   toe_body: Sequence[str] = ("toes_r", "toes_l"),
                   pelvis_body: str = "pelvis") -> pd.DataFrame:
    """Heel/toe positions relative to the pelvis along the walking direction (OpenSim FK).

    For every frame of the PROCESSED coordinates (radians / m) the model is posed and the
    origins of the heel bodies (``calcn_*``) and toe bodies (``toes_*``, at the MTP joint)
    are expressed relative to the pelvis origin and projected on the pelvis' forward axis
    (its x axis in ground, horizontal part, normalised): the anteroposterior signals of
    Zeni et al. (2008).

    Returns
    -------
    DataFrame
        Index time; columns ``heel_r``, ``toe_r``, ``heel_l``, ``toe_l`` (m, + = ahead of
        the pelvis).
    """
    model = load_model(model_osim)
    state = model.initSystem()
    cs = model.getCoordinateSet()
    coords = [(cs.get(c), c) for c in coordinates.columns if cs.contains(c)]
    bodies = model.getBodySet()
    pel = bodies.get(pelvis_body)
    pts = {f"heel_{s}": bodies.get(b) for s, b in zip("rl", heel_body)}
    pts.update({f"toe_{s}": bodies.get(b) for s, b in zip("rl", toe_body)})
    vals = coordinates[[c for _, c in coords]].to_numpy(dtype=float)
    out = np.zeros((len(coordinates), len(pts)))
    for i in range(len(coordinates)):
        for j, (c, _) in enumerate(coords):
            c.setValue(state, float(vals[i, j]), False)
        model.realizePosition(state)
        tr = pel.getTransformInGround(state)
        p0 = tr.p()
        rot = tr.R()
        fwd = np.array([rot.get(0, 0), 0.0, rot.get(2, 0)])
        fwd /= np.linalg.norm(fwd) or 1.0
        for k, body in enumerate(pts.values()):
            p = body.getPositionInGround(state)
            out[i, k] = (p.get(0) - p0.get(0)) * fwd[0] + (p.get(2) - p0.get(2)) * fwd[2]
    return pd.DataFrame(out, index=coordinates.index, columns=list(pts))
