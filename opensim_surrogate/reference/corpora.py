"""Corpus adapters: turn a data folder into a manifest of trials to build.

Three corpora are supported:

* :func:`schreiber2019` -- overground walking, 18 subjects x 2 speeds (C4 comfortable,
  C5 fast). Labels are computed by the real OpenSim pipeline (scale -> IK -> ID -> SO).
* :func:`hamner2013` -- treadmill running, 10 subjects x 4 speeds (2/3/4/5 m/s), given IK
  and already-scaled gait2392-family models (scaling and IK are skipped).
* :func:`folder` -- "bring your own OpenSim results": a lab's folder of IK/ID/SO outputs
  used as labels WITHOUT re-running OpenSim (layout documented in ``docs/dataset.md``).
  :func:`folder_trials` lists its trials, :func:`read_folder_trial` turns one into a
  :class:`~opensim_surrogate.dataset.store.TrialRecord`, :func:`folder_records` does both.

The first two return a manifest: a list of
:class:`~opensim_surrogate.reference.pipeline.TrialSpec`. A trial whose inputs are
incomplete is kept in the manifest (so the dataset reports it as failed instead of silently
dropping it) with the missing paths in ``spec.extra["missing"]``; :func:`check_spec` raises
:class:`~opensim_surrogate.errors.MissingFileError` naming the first one. Pass
``strict=True`` to an adapter to raise immediately instead.
"""
from __future__ import annotations

import csv
import functools
import json
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import pandas as pd

from ..dataset.store import TrialRecord
from ..errors import DatasetError, MissingFileError
from ..paths import data_root as _default_data_root
from .pipeline import TrialSpec

if TYPE_CHECKING:
    from ..osim.model import ModelInfo

log = logging.getLogger(__name__)

__all__ = [
    "CORPORA", "SCHREIBER_CONDITIONS", "SCHREIBER_GENERIC_MODEL", "FolderTrial",
    "check_spec", "folder", "folder_records", "folder_trials", "get_corpus", "hamner2013",
    "manifest_frame", "model_info", "read_folder_trial", "schreiber2019",
]

#: schreiber2019 condition codes -> condition labels (only C4/C5 were converted for OpenSim).
SCHREIBER_CONDITIONS = {"C4": "comfortable", "C5": "fast"}
#: Generic muscled model scaled per subject for schreiber2019 (relative to the data root).
SCHREIBER_GENERIC_MODEL = Path("models") / "Uhlrich2022_SchreiberMoissenet2019.osim"

#: TrialSpec fields holding input files.
SPEC_PATH_FIELDS = ("generic_model", "scale_set", "scale_setup", "marker_model", "trc",
                    "ik_setup", "ik_mot", "model_osim", "grf_mot", "external_loads_xml")

# Translational coordinates of the model families we know (used without an .osim).
KNOWN_TRANSLATIONAL = frozenset({"pelvis_tx", "pelvis_ty", "pelvis_tz"})


# --------------------------------------------------------------------------------------
# helpers


def _corpus_dir(data_root: str | Path | None, name: str, marker: str) -> Path:
    """``data_root/name`` or ``data_root`` itself if it already is the corpus folder."""
    root = Path(data_root) if data_root is not None else _default_data_root()
    root = root.expanduser()
    if not root.is_dir():
        raise MissingFileError("data directory not found", path=root,
                               hint="pass the shared data folder (holding models/ and "
                                    f"{name}/) or the {name} folder itself")
    if (root / marker).exists():
        return root
    d = root / name
    if not d.is_dir():
        raise MissingFileError(f"{name} corpus folder not found", path=d,
                               hint="check --data / $OPENSIM_SURROGATE_DATA")
    return d


def _missing(spec: TrialSpec) -> list[str]:
    out = []
    for name in SPEC_PATH_FIELDS:
        p = getattr(spec, name)
        if p is not None and not Path(p).exists():
            out.append(str(p))
    return out


def _finish(specs: list[TrialSpec], strict: bool) -> list[TrialSpec]:
    for spec in specs:
        missing = _missing(spec)
        if missing:
            spec.extra["missing"] = missing
            if strict:
                check_spec(spec)
            log.warning("trial %s lacks %d input file(s), e.g. %s", spec.trial_id,
                        len(missing), missing[0])
    return specs


def check_spec(spec: TrialSpec) -> None:
    """Raise :class:`MissingFileError` naming the first input file of ``spec`` that is absent.

    Also checks that the body mass is a positive finite number (:class:`DatasetError`).
    """
    missing = _missing(spec)
    if missing:
        raise MissingFileError(f"input file of trial {spec.trial_id} not found",
                               path=missing[0],
                               hint=(f"{len(missing)} file(s) missing for this trial; "
                                     "the corpus folder is incomplete"))
    if not (isinstance(spec.mass_kg, (int, float)) and math.isfinite(spec.mass_kg)
            and spec.mass_kg > 0):
        raise DatasetError(f"trial {spec.trial_id}: body mass {spec.mass_kg!r} is not a "
                           "positive number", hint="fix the subject's mass in the corpus")


def manifest_frame(specs: list[TrialSpec]) -> pd.DataFrame:
    """One row per trial: subject, trial, condition, speed, mass, height, files.

    Parameters
    ----------
    specs
        A manifest from :func:`schreiber2019`, :func:`hamner2013` (or your own).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``trial_id``; ``files`` lists the (existing or not) input files,
        ``missing`` those that do not exist, ``model_family`` the model family.
    """
    rows = []
    for s in specs:
        files = [str(getattr(s, f)) for f in SPEC_PATH_FIELDS if getattr(s, f) is not None]
        rows.append({"trial_id": s.trial_id, "subject": s.subject, "trial": s.trial,
                     "condition": s.condition, "speed": s.speed_m_s, "mass": s.mass_kg,
                     "height": s.height_m, "model_family": s.model_family,
                     "files": files, "missing": list(s.extra.get("missing", []))})
    cols = ["trial_id", "subject", "trial", "condition", "speed", "mass", "height",
            "model_family", "files", "missing"]
    return pd.DataFrame(rows, columns=cols).set_index("trial_id")


# --------------------------------------------------------------------------------------
# .osim facts (secure lxml parsing via opensim_surrogate.osim.model.read_model)


@functools.lru_cache(maxsize=64)
def _read_model_cached(path: str, mtime: float) -> "ModelInfo":
    from ..osim.model import read_model

    return read_model(path)


def model_info(path: str | Path) -> "ModelInfo":
    """:func:`opensim_surrogate.osim.model.read_model`, cached per file (path + mtime).

    Raises
    ------
    MissingFileError
        If the file does not exist.
    ModelFileError
        If it is not a well-formed OpenSim model.
    """
    p = Path(path)
    if not p.is_file():
        raise MissingFileError("model file not found", path=p, hint="check the .osim path")
    return _read_model_cached(str(p.resolve()), p.stat().st_mtime)


# --------------------------------------------------------------------------------------
# schreiber2019


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise MissingFileError("file not found", path=path, hint="the corpus folder is "
                               "incomplete")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _float(value: Any, *, path: Path, line: int, column: str, positive: bool = True) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{value!r} is not a number", path=path, line=line, column=column,
                           hint="use a plain decimal number") from None
    if not math.isfinite(x) or (positive and x <= 0):
        raise DatasetError(f"{value!r} is not a positive finite number", path=path,
                           line=line, column=column, hint="fix the value")
    return x


def schreiber2019(data_root: str | Path | None = None, *, strict: bool = False
                  ) -> list[TrialSpec]:
    """Manifest of the schreiber2019 walking corpus (the full pipeline runs on it).

    Parameters
    ----------
    data_root
        The shared data folder (holding ``models/`` and ``schreiber2019/``) or the
        ``schreiber2019`` folder itself; default :func:`opensim_surrogate.paths.data_root`.
    strict
        Raise :class:`MissingFileError` for the first trial with a missing input file
        instead of marking it (``spec.extra["missing"]``).

    Returns
    -------
    list of TrialSpec
        One per ``<subject>/dynamic/<subject>_<C4|C5>_NN.trc``, sorted by trial_id;
        ``trial_id = <subject>_<C4_NN>``, condition ``"comfortable"`` (C4) or ``"fast"``
        (C5), model family ``"rajagopal"``. ``extra`` holds ``condition_code``,
        ``quality_code`` (trials.csv), ``converter_window`` (the converter's toe-off ->
        toe-off window, s), ``converter_ik_mot`` (its IK result, degrees, muscle-free
        model), ``static_trc`` and ``corpus``.

    Raises
    ------
    MissingFileError
        The corpus folder, ``anthropometrics.csv`` or the generic model is missing.
    DatasetError
        A subject has no row / a bad mass or height in ``anthropometrics.csv``.
    """
    corpus = _corpus_dir(data_root, "schreiber2019", "anthropometrics.csv")
    generic = corpus.parent / SCHREIBER_GENERIC_MODEL
    if not generic.is_file():
        raise MissingFileError("generic model not found", path=generic,
                               hint="the shared data folder must hold models/")
    anthro_path = corpus / "anthropometrics.csv"
    anthro = {}
    for i, row in enumerate(_read_csv_rows(anthro_path), start=2):
        sid = (row.get("subjectID") or "").strip()
        if sid:
            anthro[sid] = (i, row)
    quality: dict[str, dict[str, str]] = {}
    if (corpus / "trials.csv").is_file():
        for row in _read_csv_rows(corpus / "trials.csv"):
            quality[(row.get("subjectId") or "").strip()] = row

    pattern = re.compile(r"^(?P<subject>.+)_(?P<code>C\d)_(?P<num>\d+)$")
    specs: list[TrialSpec] = []
    for sdir in sorted(p for p in corpus.iterdir() if p.is_dir()):
        subject = sdir.name
        trcs = sorted((sdir / "dynamic").glob(f"{subject}_C*_*.trc"))
        trcs = [t for t in trcs if not t.stem.endswith("_grf")]
        if not trcs:
            log.warning("schreiber2019: %s has no dynamic trials, skipped", sdir)
            continue
        if subject not in anthro:
            raise DatasetError(f"subject {subject} has no row", path=anthro_path,
                               hint="add the subject's height and mass")
        line, row = anthro[subject]
        mass = _float(row.get("mass"), path=anthro_path, line=line, column="mass")
        height = _float(row.get("height"), path=anthro_path, line=line, column="height")
        scaling = sdir / "scaling"
        for trc in trcs:
            m = pattern.match(trc.stem)
            if not m or m["subject"] != subject:
                log.warning("schreiber2019: unexpected trial file name %s, skipped", trc)
                continue
            code = m["code"]
            if code not in SCHREIBER_CONDITIONS:
                log.info("schreiber2019: condition %s not converted for OpenSim, %s skipped",
                         code, trc.name)
                continue
            trial = f"{code}_{m['num']}"
            extra: dict[str, Any] = {"corpus": "schreiber2019", "condition_code": code,
                                     "converter_ik_mot": str(sdir / "ik" / trial /
                                                             f"{trial}_ik.mot"),
                                     "static_trc": str(sdir / "static" / f"{subject}_ST.trc")}
            q = quality.get(subject, {}).get(trial)
            if q not in (None, ""):
                extra["quality_code"] = int(q) if q.strip().isdigit() else q
            ev = sdir / "events" / f"{trc.stem}.json"
            if ev.is_file():
                try:
                    e = json.loads(ev.read_text())
                    extra["converter_window"] = [float(e["startTime"]), float(e["endTime"])]
                except (ValueError, KeyError, TypeError) as exc:
                    raise DatasetError(f"bad events file: {exc}", path=ev,
                                       hint="expected {\"startTime\": s, \"endTime\": s}") \
                        from None
            specs.append(TrialSpec(
                trial_id=f"{subject}_{trial}", subject=subject, trial=trial,
                condition=SCHREIBER_CONDITIONS[code], mass_kg=mass, height_m=height,
                speed_m_s=None, model_family="rajagopal", generic_model=generic,
                scale_set=scaling / f"{subject}_scaleSet.xml",
                scale_setup=scaling / f"{subject}_scaleSetup.xml",
                marker_model=scaling / f"{subject}_scaledModelAdjusted.osim",
                trc=trc, ik_setup=sdir / "ik" / trial / f"{trial}_ikSetup.xml",
                ik_mot=None, model_osim=None,
                grf_mot=trc.with_name(f"{trc.stem}_grf.mot"),
                external_loads_xml=trc.with_name(f"{trc.stem}_grf.xml"), extra=extra))
    if not specs:
        raise DatasetError("no trials found (expected <subject>/dynamic/<subject>_C4_NN.trc)",
                           path=corpus, hint="check the data folder")
    return _finish(sorted(specs, key=lambda s: s.trial_id), strict)


# --------------------------------------------------------------------------------------
# hamner2013


def hamner2013(data_root: str | Path | None = None, *, strict: bool = False
               ) -> list[TrialSpec]:
    """Manifest of the hamner2013 running corpus (given IK, already-scaled models).

    Parameters
    ----------
    data_root
        The shared data folder or the ``hamner2013`` folder itself.
    strict
        Raise for the first trial with a missing input file instead of marking it.

    Returns
    -------
    list of TrialSpec
        One per ``<subject>/ik/Run_<s>.mot`` (speed ``s`` m/s), ``trial_id =
        <subject>_Run_<s>``, condition ``"run<s>"``, ``ik_mot`` and ``model_osim`` given
        (IK and scaling are skipped), model family ``"gait2392"``, mass = the model's total
        body mass (NaN if the model is missing), height NaN.
        ``extra["cycles"]``: the three analysed right-foot gait cycles from
        ``gaitTimes.json`` (``{"leg": "r", "start", "end"}``), ``extra["time_range"]``:
        ``[first start, last end]`` so that SO runs only there (the cycles are not always
        contiguous: the range can include a gap).

    Raises
    ------
    MissingFileError
        The corpus folder is missing (per-trial gaps are marked, see ``strict``).
    DatasetError
        A ``gaitTimes.json`` is malformed or lacks the trial's speed.
    """
    corpus = _corpus_dir(data_root, "hamner2013", "subject01")
    specs: list[TrialSpec] = []
    pattern = re.compile(r"^Run_(?P<speed>\d+(?:\.\d+)?)$")
    for sdir in sorted(p for p in corpus.iterdir() if p.is_dir()):
        subject = sdir.name
        mots = sorted((sdir / "ik").glob("Run_*.mot"))
        if not mots:
            log.warning("hamner2013: %s has no ik/Run_*.mot, skipped", sdir)
            continue
        model = sdir / "model" / f"{subject}_adjusted_scaled.osim"
        mass = model_info(model).total_mass if model.is_file() else float("nan")
        times_path = sdir / "expData" / "gaitTimes.json"
        times: dict[str, Any] | None = None
        if times_path.is_file():
            try:
                times = json.loads(times_path.read_text())
            except ValueError as exc:
                raise DatasetError(f"not valid JSON: {exc}", path=times_path) from None
        for mot in mots:
            m = pattern.match(mot.stem)
            if not m:
                log.warning("hamner2013: unexpected IK file name %s, skipped", mot)
                continue
            speed_txt = m["speed"]
            trial = mot.stem
            extra: dict[str, Any] = {"corpus": "hamner2013", "treadmill": True}
            if times is not None:
                key = f"run{speed_txt}"
                if key not in times or not isinstance(times[key], dict):
                    raise DatasetError(f"no gait cycles for {key!r}", path=times_path,
                                       hint="expected {\"run<speed>\": {\"cycle1\": ...}}")
                cycles = []
                for name, c in sorted(times[key].items()):
                    try:
                        cycles.append({"leg": "r", "name": name,
                                       "start": float(c["initialTime"]),
                                       "end": float(c["finalTime"])})
                    except (KeyError, TypeError, ValueError):
                        raise DatasetError(f"{key}.{name}: needs initialTime and finalTime",
                                           path=times_path) from None
                cycles.sort(key=lambda c: c["start"])
                extra["cycles"] = cycles
                extra["time_range"] = [min(c["start"] for c in cycles),
                                       max(c["end"] for c in cycles)]
            else:
                extra.setdefault("missing", []).append(str(times_path))
            specs.append(TrialSpec(
                trial_id=f"{subject}_{trial}", subject=subject, trial=trial,
                condition=f"run{speed_txt}", mass_kg=mass, height_m=float("nan"),
                speed_m_s=float(speed_txt), model_family="gait2392", ik_mot=mot,
                model_osim=model, grf_mot=sdir / "expData" / f"{trial}_grf.mot",
                external_loads_xml=sdir / "expData" / f"{trial}_grf.xml", extra=extra))
    if not specs:
        raise DatasetError("no trials found (expected <subject>/ik/Run_<speed>.mot)",
                           path=corpus, hint="check the data folder")
    specs = sorted(specs, key=lambda s: s.trial_id)
    for s in specs:  # gaitTimes.json absence is recorded above; add absent paths
        pre = s.extra.pop("missing", [])
        missing = pre + _missing(s)
        if missing:
            s.extra["missing"] = missing
            if strict:
                raise MissingFileError(f"input file of trial {s.trial_id} not found",
                                       path=missing[0], hint="the corpus folder is incomplete")
            log.warning("trial %s lacks %d input file(s), e.g. %s", s.trial_id, len(missing),
                        missing[0])
    return specs


# --------------------------------------------------------------------------------------
# folder: bring your own OpenSim results

#: File name suffixes of the folder layout (``<trial><suffix>``).
FOLDER_SUFFIXES = {
    "kinematics": "_ik.mot",
    "moments": "_id.sto",
    "forces": "_StaticOptimization_force.sto",
    "activations": "_StaticOptimization_activation.sto",
    "events": "_events.json",
}
_TIME_TOL = 1e-5  # s: label rows must sit on IK rows (the folder adapter resamples nothing)
_EVENT_KEYS = ("heel_strike_r", "toe_off_r", "heel_strike_l", "toe_off_l")


@dataclass
class FolderTrial:
    """One trial of a "folder" corpus (see ``docs/dataset.md``).

    Attributes
    ----------
    trial_id, subject, trial, condition : str
    mass_kg, height_m : float
    speed_m_s : float or None
    model_family : str
    files : dict
        ``kinematics`` (required), ``moments``, ``forces``, ``activations``, ``events``
        (optional) -> path.
    model_osim : Path or None
        Model used to tell rotational from translational coordinates and muscles from
        actuators.
    in_degrees : bool or None
        Override of the IK file's ``inDegrees`` header (None: use the header).
    actuators : list of str
        Names of SO columns that are not muscles (used without an .osim).
    root : Path
        The folder.
    """

    trial_id: str
    subject: str
    trial: str
    condition: str
    mass_kg: float
    files: dict[str, Path]
    root: Path
    height_m: float = float("nan")
    speed_m_s: float | None = None
    model_family: str = "unknown"
    model_osim: Path | None = None
    in_degrees: bool | None = None
    actuators: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (for ``dataset.json``)."""
        return {"trial_id": self.trial_id, "subject": self.subject, "trial": self.trial,
                "condition": self.condition, "mass_kg": self.mass_kg,
                "height_m": self.height_m, "speed_m_s": self.speed_m_s,
                "model_family": self.model_family,
                "model_osim": str(self.model_osim) if self.model_osim else None,
                "files": {k: str(v) for k, v in self.files.items()}}


def _load_folder_json(root: Path) -> dict[str, Any]:
    p = root / "folder.json"
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text())
    except ValueError as exc:
        raise DatasetError(f"not valid JSON: {exc}", path=p,
                           hint="see docs/dataset.md for the folder.json keys") from None
    if not isinstance(data, dict):
        raise DatasetError("must hold a JSON object", path=p)
    known = {"model_family", "model", "condition", "in_degrees", "actuators", "description",
             "speed_m_s"}
    unknown = set(data) - known
    if unknown:
        raise DatasetError(f"unknown key(s) {sorted(unknown)}", path=p,
                           hint=f"known keys: {sorted(known)}")
    return data


def _osim_in(folder: Path, what: str) -> Path | None:
    found = sorted(folder.glob("*.osim"))
    if len(found) > 1:
        raise DatasetError(f"{len(found)} .osim files in the {what}; cannot tell which is "
                           "the model", path=folder,
                           hint="keep one, or name it in folder.json / subjects.csv (model)")
    return found[0] if found else None


def folder_trials(path: str | Path) -> list[FolderTrial]:
    """List the trials of a "bring your own OpenSim results" folder (layout in docs/dataset.md).

    Parameters
    ----------
    path
        The folder: ``subjects.csv`` plus ``<trial>_ik.mot`` files (flat, or in
        ``<subject>/`` subfolders), optional ``trials.csv``, ``folder.json``, ``*.osim``.

    Returns
    -------
    list of FolderTrial
        Sorted by trial_id.

    Raises
    ------
    MissingFileError
        The folder, ``subjects.csv``, or a named model file does not exist.
    DatasetError
        No ``*_ik.mot``; a trial cannot be matched to a subject; bad masses; duplicate ids.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise MissingFileError("folder not found", path=root,
                               hint="name a folder of *_ik.mot / *_id.sto / SO results")
    cfg = _load_folder_json(root)
    subj_path = root / "subjects.csv"
    if not subj_path.is_file():
        raise MissingFileError("subjects.csv not found", path=subj_path,
                               hint="add subjects.csv with columns subject,mass_kg[,height_m]")
    subjects: dict[str, dict[str, Any]] = {}
    rows = _read_csv_rows(subj_path)
    if rows and ("subject" not in rows[0] or "mass_kg" not in rows[0]):
        raise DatasetError("needs the columns subject and mass_kg", path=subj_path, line=1,
                           hint="header: subject,mass_kg[,height_m][,model_family][,model]")
    for i, row in enumerate(rows, start=2):
        sid = (row.get("subject") or "").strip()
        if not sid:
            raise DatasetError("empty subject id", path=subj_path, line=i, column="subject")
        if sid in subjects:
            raise DatasetError(f"subject {sid!r} listed twice", path=subj_path, line=i,
                               column="subject")
        mass = _float(row.get("mass_kg"), path=subj_path, line=i, column="mass_kg")
        h = (row.get("height_m") or "").strip()
        height = _float(h, path=subj_path, line=i, column="height_m") if h else float("nan")
        model = (row.get("model") or "").strip()
        model_path = (root / model) if model else None
        if model_path is not None and not model_path.is_file():
            raise MissingFileError("model named in subjects.csv not found", path=model_path,
                                   hint=f"subjects.csv line {i}: paths are relative to the "
                                        "folder")
        subjects[sid] = {"mass_kg": mass, "height_m": height, "model": model_path,
                         "model_family": (row.get("model_family") or "").strip() or None}
    if not subjects:
        raise DatasetError("no subjects", path=subj_path, hint="add one row per subject")

    folder_model: Path | None
    if cfg.get("model"):
        folder_model = root / cfg["model"]
        if not folder_model.is_file():
            raise MissingFileError("model named in folder.json not found", path=folder_model)
    else:
        folder_model = _osim_in(root, "folder")

    trials_meta: dict[tuple[str | None, str], dict[str, str]] = {}
    tpath = root / "trials.csv"
    if tpath.is_file():
        trows = _read_csv_rows(tpath)
        if trows and ("trial" not in trows[0] or "subject" not in trows[0]):
            raise DatasetError("needs the columns trial and subject", path=tpath, line=1,
                               hint="header: trial,subject[,condition][,speed_m_s]")
        for i, row in enumerate(trows, start=2):
            t, s = (row.get("trial") or "").strip(), (row.get("subject") or "").strip()
            if s not in subjects:
                raise DatasetError(f"subject {s!r} is not in subjects.csv", path=tpath,
                                   line=i, column="subject")
            row = dict(row, _line=str(i))
            trials_meta[(s, t)] = row
            trials_meta.setdefault((None, t), row)

    iks = sorted(root.glob(f"*{FOLDER_SUFFIXES['kinematics']}")) + \
        sorted(root.glob(f"*/*{FOLDER_SUFFIXES['kinematics']}"))
    if not iks:
        raise DatasetError("no *_ik.mot files (flat or in <subject>/ subfolders)", path=root,
                           hint="see docs/dataset.md, 'folder' layout")
    by_len = sorted(subjects, key=len, reverse=True)
    out: dict[str, FolderTrial] = {}
    for ik in iks:
        trial = ik.name[: -len(FOLDER_SUFFIXES["kinematics"])]
        sub_folder = ik.parent != root
        meta = None
        if sub_folder:
            subject = ik.parent.name
            if subject not in subjects:
                raise DatasetError(f"subfolder {subject!r} is not a subject of subjects.csv",
                                   path=ik, hint="name subfolders after subjects.csv ids")
            meta = trials_meta.get((subject, trial))
        else:
            meta = trials_meta.get((None, trial))
            if meta is not None:
                subject = meta["subject"].strip()
            else:
                subject = next((s for s in by_len if trial.startswith(f"{s}_")), "")
                if not subject:
                    raise DatasetError(
                        "cannot tell which subject this trial belongs to", path=ik,
                        hint="name it <subject>_<trial>_ik.mot, put it in a <subject>/ "
                             "subfolder, or list it in trials.csv (trial,subject)")
        trial_id = trial if trial.startswith(f"{subject}_") else f"{subject}_{trial}"
        trial_id = re.sub(r"[^A-Za-z0-9_.-]", "_", trial_id)
        if trial_id in out:
            raise DatasetError(f"two trials map to trial id {trial_id!r}", path=ik,
                               hint=f"also {out[trial_id].files['kinematics']}")
        files = {"kinematics": ik}
        for kind, suffix in FOLDER_SUFFIXES.items():
            p = ik.parent / f"{trial}{suffix}"
            if kind != "kinematics" and p.is_file():
                files[kind] = p
        s = subjects[subject]
        model = s["model"] or (_osim_in(ik.parent, "subject folder") if sub_folder
                               else None) or folder_model
        family = s["model_family"] or cfg.get("model_family")
        if not family:
            family = model_info(model).family if model is not None else "unknown"
        condition = str(cfg.get("condition", "unknown"))
        speed = cfg.get("speed_m_s")
        if meta is not None:
            condition = (meta.get("condition") or "").strip() or condition
            sp = (meta.get("speed_m_s") or "").strip()
            if sp:
                speed = _float(sp, path=tpath, line=int(meta["_line"]), column="speed_m_s",
                               positive=False)
        in_deg = cfg.get("in_degrees")
        if in_deg is not None and not isinstance(in_deg, bool):
            raise DatasetError("in_degrees must be true, false or null",
                               path=root / "folder.json")
        out[trial_id] = FolderTrial(
            trial_id=trial_id, subject=subject, trial=trial, condition=condition,
            mass_kg=s["mass_kg"], height_m=s["height_m"],
            speed_m_s=float(speed) if speed is not None else None, model_family=family,
            files=files, root=root, model_osim=model, in_degrees=in_deg,
            actuators=list(cfg.get("actuators", [])))
    return [out[k] for k in sorted(out)]


def folder(path: str | Path) -> list[FolderTrial]:
    """Alias of :func:`folder_trials` (the "folder" corpus adapter)."""
    return folder_trials(path)


def _header_in_degrees(df: pd.DataFrame) -> bool:
    """OpenSim's rule (``opensim.Storage``): ``inDegrees=yes/no`` if the header says so;
    otherwise degrees for old SIMM headers (no ``version=`` line), radians else."""
    from ..io.tables import header_of

    hdr = header_of(df)
    if hdr is None:
        return False
    if hdr.in_degrees is not None:
        return bool(hdr.in_degrees)
    return hdr.version is None


def _motion_type(name: str, info: ModelInfo | None) -> str | None:
    if info is not None:
        return info.coordinate(name).motion_type if info.has_coordinate(name) else None
    if name in KNOWN_TRANSLATIONAL or name.endswith(("_tx", "_ty", "_tz")):
        return "translational"
    if name.endswith("_beta"):
        return "coupled"
    return "rotational"


def _read_label_table(path: Path, index: pd.Index, what: str) -> pd.DataFrame:
    from ..io.tables import read_table

    df = read_table(path)
    t = df.index.to_numpy(dtype=float)
    grid = index.to_numpy(dtype=float)
    pos = np.clip(np.searchsorted(grid, t), 1, len(grid) - 1) if len(grid) > 1 else \
        np.zeros(len(t), dtype=int)
    if len(grid) > 1:
        left = grid[pos - 1]
        right = grid[pos]
        pos = np.where(np.abs(t - left) <= np.abs(t - right), pos - 1, pos)
    bad = np.abs(grid[pos] - t) > _TIME_TOL if len(grid) else np.ones(len(t), bool)
    if bad.any():
        i = int(np.argmax(bad))
        raise DatasetError(f"{what} time {t[i]:.6f} s is not a time of the IK file",
                           path=path, hint="the folder adapter resamples nothing: write the "
                                           "labels on the IK time grid")
    out = pd.DataFrame(np.nan, index=index, columns=[str(c) for c in df.columns])
    out.iloc[pos] = df.to_numpy(dtype=float)
    return out


def _cycles(events: dict[str, list[float]], id_valid: pd.Series) -> list[dict[str, Any]]:
    cycles = []
    t = id_valid.index.to_numpy(dtype=float)
    v = id_valid.to_numpy(dtype=bool)
    for leg in ("r", "l"):
        hs = sorted(events.get(f"heel_strike_{leg}", []))
        for a, b in zip(hs, hs[1:]):
            sel = (t >= a) & (t <= b)
            frac = float(v[sel].mean()) if sel.any() else 0.0
            cycles.append({"leg": leg, "start": float(a), "end": float(b),
                           "labelled_fraction": frac})
    return sorted(cycles, key=lambda c: (c["start"], c["leg"]))


def read_folder_trial(ft: FolderTrial) -> TrialRecord:
    """Read one folder trial's files into a TrialRecord (no OpenSim run, no resampling).

    Kinematics: every coordinate of the IK file (path-style labels made plain; columns
    that are not coordinates of the model are dropped when an .osim is known); rotational
    coordinates converted from degrees to radians when the file is in degrees (OpenSim's
    rule: ``inDegrees`` header, else degrees for old SIMM headers; ``folder.json``
    ``in_degrees`` overrides). Coupled coordinates (e.g. ``knee_angle_r_beta``) and
    translations are left as they are. Labels (ID moments, SO forces/activations) are put
    on the IK rows with the same time; other IK rows get NaN; ``mask.id_valid`` /
    ``mask.so_valid`` are True where every moment / muscle force is present.

    Raises
    ------
    MissingFileError, DatasetError, TableFormatError
        Naming the file at fault.
    """
    from ..io.tables import read_table

    info = model_info(ft.model_osim) if ft.model_osim is not None else None
    ik_path = ft.files["kinematics"]
    raw = read_table(ik_path)
    in_deg = ft.in_degrees if ft.in_degrees is not None else _header_in_degrees(raw)
    index = pd.Index(raw.index.to_numpy(dtype=float), name="time")
    kin_cols: dict[str, np.ndarray] = {}
    converted, dropped = [], []
    labels = [str(c) for c in raw.columns]
    for label in labels:
        name = label
        speed = label.endswith("_u") and label[:-2] in labels  # renamed /.../speed columns
        mtype = None if speed else _motion_type(name, info)
        if mtype is None:
            dropped.append(str(label))
            continue
        if name in kin_cols:
            raise DatasetError(f"coordinate {name!r} appears twice", path=ik_path,
                               column=str(label))
        values = raw[label].to_numpy(dtype=float)
        if in_deg and mtype == "rotational":
            values = np.deg2rad(values)
            converted.append(name)
        kin_cols[name] = values
    if dropped:
        log.info("%s: %d column(s) that are not model coordinates dropped (e.g. %s)",
                 ik_path.name, len(dropped), dropped[0])
    if not kin_cols:
        raise DatasetError("no model coordinate among the IK columns", path=ik_path,
                           hint="is this the right .osim for the trial?")
    kinematics = pd.DataFrame(kin_cols, index=index)

    empty = pd.DataFrame(index=index)
    moments = (_read_label_table(ft.files["moments"], index, "ID")
               if "moments" in ft.files else empty.copy())
    forces_all = (_read_label_table(ft.files["forces"], index, "SO force")
                  if "forces" in ft.files else empty.copy())
    act_all = (_read_label_table(ft.files["activations"], index, "SO activation")
               if "activations" in ft.files else empty.copy())

    if info is not None and info.muscles:
        muscles = set(info.muscle_names())
        is_muscle = lambda c: c in muscles  # noqa: E731
    else:
        act_names = set(ft.actuators)
        coords = set(kinematics.columns)
        rx = re.compile(r"^[FM][XYZ]$|reserve|residual", re.IGNORECASE)
        is_muscle = lambda c: not (c in act_names or c in coords or rx.search(c))  # noqa
    forces = forces_all[[c for c in forces_all.columns if is_muscle(c)]]
    actuators = forces_all[[c for c in forces_all.columns if not is_muscle(c)]]
    activations = act_all[[c for c in act_all.columns if is_muscle(c)]]

    id_valid = (moments.notna().all(axis=1) if moments.shape[1]
                else pd.Series(False, index=index))
    so_valid = (forces.notna().all(axis=1) if forces.shape[1]
                else pd.Series(False, index=index))
    mask = pd.DataFrame({"id_valid": id_valid.to_numpy(bool),
                         "so_valid": so_valid.to_numpy(bool)}, index=index)

    events: dict[str, list[float]] = {}
    if "events" in ft.files:
        p = ft.files["events"]
        try:
            ev = json.loads(p.read_text())
            events = {k: [float(x) for x in ev.get(k, [])] for k in _EVENT_KEYS if k in ev}
        except (ValueError, TypeError, AttributeError) as exc:
            raise DatasetError(f"bad events file: {exc}", path=p,
                               hint='expected {"heel_strike_r": [s, ...], ...}') from None
    extras = {"corpus": "folder", "source": "folder", "folder": str(ft.root),
              "files": {k: str(v) for k, v in ft.files.items()},
              "model_osim": str(ft.model_osim) if ft.model_osim else None,
              "in_degrees": bool(in_deg), "converted_to_radians": converted,
              "dropped_columns": dropped, "seconds": {}}
    return TrialRecord(
        trial_id=ft.trial_id, subject=ft.subject, trial=ft.trial, condition=ft.condition,
        mass_kg=ft.mass_kg, model_family=ft.model_family, kinematics=kinematics,
        moments=moments, forces=forces, activations=activations, mask=mask,
        actuators=actuators, speed_m_s=ft.speed_m_s, height_m=ft.height_m, events=events,
        cycles=_cycles(events, mask["id_valid"]), extras=extras)


def folder_records(path: str | Path) -> Iterator[TrialRecord]:
    """Yield a TrialRecord per trial of a "folder" corpus (see :func:`read_folder_trial`)."""
    for ft in folder_trials(path):
        yield read_folder_trial(ft)


# --------------------------------------------------------------------------------------

#: Named corpora: name -> adapter(data_root) -> manifest.
CORPORA: dict[str, Callable[..., list[TrialSpec]]] = {
    "schreiber2019": schreiber2019,
    "hamner2013": hamner2013,
}


def get_corpus(corpus: str | Path, data_root: str | Path | None = None
               ) -> tuple[str, list[TrialSpec] | list[FolderTrial]]:
    """Resolve a corpus name or folder path to ``(name, items)``.

    ``schreiber2019`` / ``hamner2013`` give TrialSpecs; an existing folder gives
    FolderTrials (the "folder" adapter).

    Raises
    ------
    DatasetError
        If ``corpus`` is neither a known name nor an existing folder.
    """
    key = str(corpus)
    if key in CORPORA:
        return key, CORPORA[key](data_root)
    p = Path(key).expanduser()
    if p.is_dir():
        return "folder", folder_trials(p)
    raise DatasetError(f"unknown corpus {key!r}",
                       hint=f"use one of {sorted(CORPORA)} or the path of an existing folder")

