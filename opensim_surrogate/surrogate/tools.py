"""Drop-in replacements for OpenSim's ``InverseDynamicsTool`` and ``AnalyzeTool`` (static
optimization) that read the same setup files and write the same output files.

>>> import opensim_surrogate as surrogate
>>> surrogate.InverseDynamicsTool("setup_ID.xml").run()     # doctest: +SKIP
>>> surrogate.AnalyzeTool("setup_SO.xml").run()             # doctest: +SKIP

Setup files are parsed securely (:func:`~opensim_surrogate.osim.xml.parse_xml`). Relative
paths in them are resolved against the setup file's folder, as ``opensim-cmd run-tool``
does ("the tool runs as if executed from the directory containing the setup file").

InverseDynamicsTool elements used: ``model_file``, ``coordinates_file``, ``time_range``,
``results_directory``, ``output_gen_force_file`` (default ``inverse_dynamics.sto``),
``lowpass_cutoff_frequency_for_coordinates`` (a negative value: no filtering, like OpenSim).
``external_loads_file`` is not needed by the surrogate (it learned the ground reactions) and is
ignored (logged); ``forces_to_exclude`` is ignored; ``joints_to_report_body_forces`` is not
supported (warning, no body-forces file).

AnalyzeTool elements used: ``name`` (attribute), ``model_file``, ``coordinates_file`` (or
``states_file``), ``initial_time``, ``final_time``, ``results_directory``,
``output_precision``, ``lowpass_cutoff_frequency_for_coordinates`` and one enabled
``StaticOptimization`` in ``AnalysisSet`` (its ``start_time``/``end_time`` narrow the window).
Output: ``<results_directory>/<name>_<analysis name>_force.sto`` (SO force layout). The
activation and controls files are not written (the surrogate predicts forces). Other analyses
are ignored with a warning; ``external_loads_file``, ``force_set_files`` (reserve actuators)
and ``speeds_file`` are ignored (logged).

A setup without a required element (``model_file``, ``coordinates_file``), with an unknown
root tool, or an AnalyzeTool without an enabled StaticOptimization raises
:class:`~opensim_surrogate.errors.ModelFileError` naming the element and the file.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from ..errors import InputError, ModelFileError
from ..osim.xml import parse_xml
from .result import SurrogateResult, so_force_file_name
from .writers import DEFAULT_PRECISION, write_id_sto, write_so_force_sto

log = logging.getLogger(__name__)

__all__ = ["InverseDynamicsTool", "AnalyzeTool", "tool_for_setup", "SUPPORTED_TOOLS",
           "DEFAULT_ID_OUTPUT"]

#: OpenSim's default ``output_gen_force_file``.
DEFAULT_ID_OUTPUT = "inverse_dynamics.sto"
#: Root elements of the setups that can be run.
SUPPORTED_TOOLS = ("InverseDynamicsTool", "AnalyzeTool")


# --------------------------------------------------------------------------------------
# XML helpers
# --------------------------------------------------------------------------------------
def _root_tool(path: Path) -> etree._Element:
    tree = parse_xml(path)
    doc = tree.getroot()
    if not isinstance(doc.tag, str):
        raise ModelFileError("not an OpenSim setup file", path=path, line=1)
    if doc.tag == "OpenSimDocument":
        tools = [c for c in doc if isinstance(c.tag, str)]
        if not tools:
            raise ModelFileError("<OpenSimDocument> holds no tool", path=path, line=doc.sourceline,
                                 hint="an OpenSim setup file has e.g. <InverseDynamicsTool>")
        return tools[0]
    return doc


def _text(el: etree._Element, tag: str) -> str | None:
    child = el.find(tag)
    if child is None or child.text is None:
        return None
    t = child.text.strip()
    return t or None


def _float(el: etree._Element, tag: str, path: Path) -> float | None:
    t = _text(el, tag)
    if t is None:
        return None
    try:
        return float(t)
    except ValueError:
        child = el.find(tag)
        raise ModelFileError(f"<{tag}> must be a number, not {t!r}", path=path,
                             line=child.sourceline if child is not None else None,
                             column=tag) from None


def _bool(el: etree._Element, tag: str, default: bool) -> bool:
    t = _text(el, tag)
    if t is None:
        return default
    return t.lower() in ("true", "1", "yes", "on")


def _resolve(base: Path, value: str | None) -> Path | None:
    if value is None or value.lower() in ("unassigned", "none"):
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def _require(el: etree._Element, tag: str, path: Path, what: str) -> str:
    v = _text(el, tag)
    if v is None or v.lower() == "unassigned":
        child = el.find(tag)
        raise ModelFileError(
            f"<{tag}> is {'missing' if child is None else 'empty'} in the <{el.tag}> setup",
            path=path, line=(child.sourceline if child is not None else el.sourceline),
            column=tag, hint=f"name the {what}")
    return v


# --------------------------------------------------------------------------------------
# tools
# --------------------------------------------------------------------------------------
@dataclass
class _ToolBase:
    setup_file: Path | None = None
    name: str = ""
    model_file: Path | None = None
    coordinates_file: Path | None = None
    results_directory: Path = field(default_factory=Path.cwd)
    lowpass_cutoff_frequency_for_coordinates: float = -1.0
    external_loads_file: Path | None = None
    bundle: Any = None
    mass_kg: float | None = None
    uncertainty: bool = False
    result: SurrogateResult | None = field(default=None, repr=False)
    output_files: list[Path] = field(default_factory=list)

    def _surrogate_run(self, time_range: tuple[float, float] | None) -> SurrogateResult:
        from .api import Surrogate

        if self.model_file is None:
            raise ModelFileError("no <model_file>", path=self.setup_file, column="model_file",
                                 hint="name the subject's .osim model")
        if self.coordinates_file is None:
            raise ModelFileError("no <coordinates_file>", path=self.setup_file,
                                 column="coordinates_file", hint="name the IK .mot file")
        if self.external_loads_file is not None:
            log.info("%s: external_loads_file %s ignored: the surrogate needs no ground "
                     "reactions", self.setup_file or type(self).__name__, self.external_loads_file)
        cutoff = self.lowpass_cutoff_frequency_for_coordinates
        lowpass = cutoff if cutoff is not None and cutoff > 0 else None
        s = Surrogate(self.model_file, mass_kg=self.mass_kg, bundle=self.bundle,
                      uncertainty=self.uncertainty, lowpass_hz=lowpass)
        res = s.run(self.coordinates_file, time_range=time_range)
        if lowpass is None:
            res.warnings.append(
                f"{res.name}: the setup asks for no low-pass filter "
                "(lowpass_cutoff_frequency_for_coordinates < 0); the surrogate was trained on "
                "coordinates low-passed at 6 Hz, so unfiltered noisy input gives noisier results")
        self.result = res
        return res


@dataclass
class InverseDynamicsTool(_ToolBase):
    """Surrogate stand-in for ``opensim.InverseDynamicsTool``.

    Parameters
    ----------
    setup_file
        An ID setup XML (as written by OpenSim's ``printToXML`` or the GUI). Without it, set
        the attributes (or the OpenSim-style setters) before :meth:`run`.
    bundle, mass_kg, uncertainty
        Surrogate options (bundle override, mass override, compute the std).

    Attributes mirror the setup elements: ``model_file``, ``coordinates_file``,
    ``time_range``, ``results_directory``, ``output_gen_force_file``,
    ``lowpass_cutoff_frequency_for_coordinates``, ``external_loads_file``. After :meth:`run`:
    ``result`` (:class:`SurrogateResult`) and ``output_files``.
    """

    time_range: tuple[float, float] = (-math.inf, math.inf)
    output_gen_force_file: str = DEFAULT_ID_OUTPUT
    joints_to_report_body_forces: list[str] = field(default_factory=list)

    def __init__(self, setup_file: str | os.PathLike[str] | None = None, *, bundle: Any = None,
                 mass_kg: float | None = None, uncertainty: bool = False) -> None:
        _ToolBase.__init__(self, bundle=bundle, mass_kg=mass_kg, uncertainty=uncertainty)
        self.time_range = (-math.inf, math.inf)
        self.output_gen_force_file = DEFAULT_ID_OUTPUT
        self.joints_to_report_body_forces = []
        if setup_file is not None:
            self._load(Path(setup_file))

    def _load(self, path: Path) -> None:
        el = _root_tool(path)
        if el.tag != "InverseDynamicsTool":
            raise ModelFileError(f"expected an <InverseDynamicsTool> setup, found <{el.tag}>",
                                 path=path, line=el.sourceline,
                                 hint="use opensim-surrogate run-tool for any supported setup")
        base = path.resolve().parent
        self.setup_file = path
        self.name = el.get("name", "") or ""
        self.model_file = _resolve(base, _require(el, "model_file", path, "subject's .osim model"))
        self.coordinates_file = _resolve(base, _require(el, "coordinates_file", path,
                                                        "coordinates (.mot) file"))
        self.results_directory = _resolve(base, _text(el, "results_directory")) or base
        self.output_gen_force_file = _text(el, "output_gen_force_file") or DEFAULT_ID_OUTPUT
        lp = _float(el, "lowpass_cutoff_frequency_for_coordinates", path)
        self.lowpass_cutoff_frequency_for_coordinates = -1.0 if lp is None else lp
        self.external_loads_file = _resolve(base, _text(el, "external_loads_file"))
        tr = _text(el, "time_range")
        if tr is not None:
            try:
                a, b = (float(x) for x in tr.split())
            except ValueError:
                child = el.find("time_range")
                raise ModelFileError(f"<time_range> must hold two numbers, not {tr!r}", path=path,
                                     line=child.sourceline if child is not None else None,
                                     column="time_range") from None
            if not b >= a:
                raise ModelFileError(f"<time_range> {a:g} {b:g}: end before start", path=path,
                                     column="time_range")
            self.time_range = (a, b)
        joints = (_text(el, "joints_to_report_body_forces") or "").split()
        self.joints_to_report_body_forces = joints
        excl = (_text(el, "forces_to_exclude") or "").split()
        if excl and "Muscles" not in excl:
            log.info("%s: forces_to_exclude %s ignored (the surrogate's moments are muscle-free "
                     "inverse dynamics)", path, excl)

    # OpenSim-style setters / getters (the common ones)
    def setModelFileName(self, p: str) -> None:  # noqa: N802 - OpenSim API names
        self.model_file = Path(p)

    def setCoordinatesFileName(self, p: str) -> None:  # noqa: N802
        self.coordinates_file = Path(p)

    def setResultsDir(self, p: str) -> None:  # noqa: N802
        self.results_directory = Path(p)

    def setOutputGenForceFileName(self, n: str) -> None:  # noqa: N802
        self.output_gen_force_file = n

    def setStartTime(self, t: float) -> None:  # noqa: N802
        self.time_range = (float(t), self.time_range[1])

    def setEndTime(self, t: float) -> None:  # noqa: N802
        self.time_range = (self.time_range[0], float(t))

    def setLowpassCutoffFrequency(self, f: float) -> None:  # noqa: N802
        self.lowpass_cutoff_frequency_for_coordinates = float(f)

    def getOutputGenForceFileName(self) -> str:  # noqa: N802
        return self.output_gen_force_file

    @property
    def output_path(self) -> Path:
        """Where the generalized forces are written."""
        return Path(self.results_directory) / self.output_gen_force_file

    def run(self) -> bool:
        """Predict and write ``results_directory/output_gen_force_file``; True on success.

        Raises
        ------
        SurrogateError subclasses
            Bad setup or input (unlike OpenSim, failures are never silent).
        """
        if self.joints_to_report_body_forces:
            log.warning("joints_to_report_body_forces (%s) is not supported by the surrogate; "
                        "no body-forces file is written", " ".join(self.joints_to_report_body_forces))
        tr = None if self.time_range == (-math.inf, math.inf) else self.time_range
        res = self._surrogate_run(tr)
        out = write_id_sto(res.moments, self.output_path)
        self.output_files = [out]
        log.info("wrote %s", out)
        return True


@dataclass
class AnalyzeTool(_ToolBase):
    """Surrogate stand-in for ``opensim.AnalyzeTool`` running a ``StaticOptimization``.

    Parameters
    ----------
    setup_file
        An AnalyzeTool setup XML with a StaticOptimization analysis.
    bundle, mass_kg, uncertainty
        Surrogate options.

    Writes ``<results_directory>/<name>_<analysis name>_force.sto`` in OpenSim's SO force
    layout; after :meth:`run`, ``result`` and ``output_files``.
    """

    initial_time: float = -math.inf
    final_time: float = math.inf
    analysis_name: str = "StaticOptimization"
    analysis_start: float = -math.inf
    analysis_end: float = math.inf
    output_precision: int = DEFAULT_PRECISION

    def __init__(self, setup_file: str | os.PathLike[str] | None = None, *, bundle: Any = None,
                 mass_kg: float | None = None, uncertainty: bool = False) -> None:
        _ToolBase.__init__(self, bundle=bundle, mass_kg=mass_kg, uncertainty=uncertainty)
        self.initial_time, self.final_time = -math.inf, math.inf
        self.analysis_name = "StaticOptimization"
        self.analysis_start, self.analysis_end = -math.inf, math.inf
        self.output_precision = DEFAULT_PRECISION
        if setup_file is not None:
            self._load(Path(setup_file))

    def _load(self, path: Path) -> None:
        el = _root_tool(path)
        if el.tag != "AnalyzeTool":
            raise ModelFileError(f"expected an <AnalyzeTool> setup, found <{el.tag}>", path=path,
                                 line=el.sourceline,
                                 hint="use opensim-surrogate run-tool for any supported setup")
        base = path.resolve().parent
        self.setup_file = path
        self.name = el.get("name", "") or ""
        self.model_file = _resolve(base, _require(el, "model_file", path, "subject's .osim model"))
        coords = _resolve(base, _text(el, "coordinates_file"))
        states = _resolve(base, _text(el, "states_file"))
        if coords is None and states is None:
            raise ModelFileError("<coordinates_file> is missing or empty (and there is no "
                                 "<states_file>) in the <AnalyzeTool> setup", path=path,
                                 line=el.sourceline, column="coordinates_file",
                                 hint="name the IK coordinates (.mot) file")
        self.coordinates_file = coords or states
        if _text(el, "speeds_file"):
            log.info("%s: speeds_file ignored (speeds come from the coordinates)", path)
        self.results_directory = _resolve(base, _text(el, "results_directory")) or base
        lp = _float(el, "lowpass_cutoff_frequency_for_coordinates", path)
        self.lowpass_cutoff_frequency_for_coordinates = -1.0 if lp is None else lp
        self.external_loads_file = _resolve(base, _text(el, "external_loads_file"))
        t0 = _float(el, "initial_time", path)
        t1 = _float(el, "final_time", path)
        self.initial_time = -math.inf if t0 is None else t0
        self.final_time = math.inf if t1 is None else t1
        prec = _float(el, "output_precision", path)
        self.output_precision = DEFAULT_PRECISION if prec is None else int(prec)
        if (_text(el, "force_set_files") or "").strip():
            log.info("%s: force_set_files ignored (reserve/residual actuators are not part of "
                     "the surrogate's output)", path)
        aset = el.find("AnalysisSet/objects")
        analyses = [a for a in (aset if aset is not None else []) if isinstance(a.tag, str)]
        so = [a for a in analyses if a.tag == "StaticOptimization" and _bool(a, "on", True)]
        others = [a.tag for a in analyses if a.tag != "StaticOptimization" and _bool(a, "on", True)]
        if not so:
            raise ModelFileError(
                "the <AnalyzeTool> setup has no enabled <StaticOptimization> analysis in "
                "<AnalysisSet>", path=path, line=(aset.sourceline if aset is not None
                                                  else el.sourceline),
                column="StaticOptimization",
                hint="the surrogate replaces static optimization only; add a StaticOptimization "
                     "analysis (other analyses need OpenSim)")
        if others:
            log.warning("%s: analyses %s are not supported by the surrogate and are skipped",
                        path, ", ".join(others))
        a = so[0]
        self.analysis_name = a.get("name", "") or "StaticOptimization"
        s0 = _float(a, "start_time", path)
        s1 = _float(a, "end_time", path)
        self.analysis_start = -math.inf if s0 is None else s0
        self.analysis_end = math.inf if s1 is None else s1
        exp = _float(a, "activation_exponent", path)
        if exp is not None and exp != 2:
            log.warning("%s: activation_exponent %g: the surrogate reproduces static optimization "
                        "with exponent 2 (its training labels)", path, exp)
        if not _bool(a, "use_muscle_physiology", True):
            log.warning("%s: use_muscle_physiology false: the surrogate reproduces static "
                        "optimization with muscle physiology (its training labels)", path)

    # OpenSim-style setters (the common ones)
    def setModelFilename(self, p: str) -> None:  # noqa: N802 - OpenSim API names
        self.model_file = Path(p)

    def setCoordinatesFileName(self, p: str) -> None:  # noqa: N802
        self.coordinates_file = Path(p)

    def setResultsDir(self, p: str) -> None:  # noqa: N802
        self.results_directory = Path(p)

    def setInitialTime(self, t: float) -> None:  # noqa: N802
        self.initial_time = float(t)

    def setFinalTime(self, t: float) -> None:  # noqa: N802
        self.final_time = float(t)

    def setLowpassCutoffFrequency(self, f: float) -> None:  # noqa: N802
        self.lowpass_cutoff_frequency_for_coordinates = float(f)

    def setName(self, n: str) -> None:  # noqa: N802
        self.name = n

    @property
    def output_path(self) -> Path:
        """Where the SO forces are written."""
        return Path(self.results_directory) / so_force_file_name(self.name or "Analyze",
                                                                 self.analysis_name)

    def run(self) -> bool:
        """Predict and write the SO force file; True on success.

        Raises
        ------
        SurrogateError subclasses
            Bad setup or input; also when the model has no muscle-force bundle (an SO stand-in
            without forces would silently produce an empty file).
        """
        lo = max(self.initial_time, self.analysis_start)
        hi = min(self.final_time, self.analysis_end)
        if hi < lo:
            raise InputError(f"empty analysis window {lo:g}..{hi:g} s", path=self.setup_file,
                             column="final_time",
                             hint="check initial_time/final_time and the analysis' start/end")
        tr = None if (lo, hi) == (-math.inf, math.inf) else (lo, hi)
        res = self._surrogate_run(tr)
        if not res.has_forces:
            from ..errors import BundleNotFoundError

            raise BundleNotFoundError(
                "static optimization needs a bundle trained for this model's muscles: "
                + "; ".join(w for w in res.warnings if "no muscle forces" in w),
                path=self.model_file, hint="use the InverseDynamicsTool for moments only")
        out = write_so_force_sto(res.forces, self.output_path, precision=self.output_precision)
        self.output_files = [out]
        log.info("wrote %s", out)
        return True


def tool_for_setup(setup_file: str | os.PathLike[str], **kwargs: Any
                   ) -> InverseDynamicsTool | AnalyzeTool:
    """The drop-in tool for a setup file (by its root element), like ``opensim-cmd run-tool``.

    Raises
    ------
    ModelFileError
        Unsupported tool (e.g. ``InverseKinematicsTool``), naming the element and file.
    """
    path = Path(setup_file)
    el = _root_tool(path)
    if el.tag == "InverseDynamicsTool":
        return InverseDynamicsTool(path, **kwargs)
    if el.tag == "AnalyzeTool":
        return AnalyzeTool(path, **kwargs)
    raise ModelFileError(f"<{el.tag}> is not supported by the surrogate", path=path,
                         line=el.sourceline, column=el.tag,
                         hint="supported: " + ", ".join(f"<{t}>" for t in SUPPORTED_TOOLS)
                         + " (with StaticOptimization); run other tools with opensim-cmd")
