"""On-disk dataset schema (version 1) and its reader/writer.

Layout of a dataset directory::

    DATASET/
      dataset.json                 # schema_version, corpus, created, versions, config, trials, failures
      trials/<trial_id>/
        meta.json                  # TrialRecord metadata (written LAST: marks the trial complete)
        kinematics.parquet         # IK coordinates, all of them. Rotational: radians; translational: m
        moments.parquet            # ID generalized forces "<coord>_moment" (N·m) / "<coord>_force" (N)
        forces.parquet             # SO muscle forces (N), one column per muscle
        activations.parquet        # SO muscle activations (0..1)
        actuators.parquet          # SO residual/reserve actuator outputs (N·m or N)
        mask.parquet               # bool columns: id_valid (all ground contacts measured),
                                   #               so_valid (SO frame solved, not failed)
      failures/<trial_id>.json     # a trial whose reference failed: its error text

All per-frame tables of a trial share one time index (seconds, name ``time``, 100 Hz by
default). Labels that were not computed or are not trustworthy are NaN and their mask is
False: train and evaluate only where the mask is True.

``trial_id`` is ``<subject>_<trial>`` (filesystem-safe). A trial directory is written to a
temporary name and renamed when complete, so a killed build never leaves a half trial.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ..errors import DatasetError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FRAME_TABLES = ("kinematics", "moments", "forces", "activations", "actuators", "mask")


@dataclass
class TrialRecord:
    """One trial's reference results and metadata.

    Attributes
    ----------
    trial_id : str
        ``<subject>_<trial>``, unique within a dataset.
    subject, trial, condition : str
        Subject id, trial name, condition label (e.g. ``"C4"`` comfortable, ``"run3"``).
    speed_m_s : float or None
        Nominal speed when known (treadmill), else None.
    mass_kg, height_m : float
        Subject body mass (kg) and height (m, NaN if unknown).
    model_family : str
        OpenSim model family of the subject model (e.g. ``"rajagopal"``, ``"gait2392"``).
    kinematics, moments, forces, activations, actuators, mask : pandas.DataFrame
        Per-frame tables sharing one time index (see module docstring for units).
    events : dict
        ``{"heel_strike_r": [...], "toe_off_r": [...], "heel_strike_l": ..., "toe_off_l": ...}``
        in seconds.
    cycles : list of dict
        ``{"leg": "r"|"l", "start": t0, "end": t1, "labelled_fraction": f}``: heel strike to
        next heel strike of the same foot, and the fraction of its frames with valid ID labels.
    extras : dict
        Anything else worth keeping: seconds per step, SO failed frames, reserve/residual
        magnitudes, source files, OpenSim version.
    """

    trial_id: str
    subject: str
    trial: str
    condition: str
    mass_kg: float
    model_family: str
    kinematics: pd.DataFrame
    moments: pd.DataFrame
    forces: pd.DataFrame
    activations: pd.DataFrame
    mask: pd.DataFrame
    actuators: pd.DataFrame = field(default_factory=pd.DataFrame)
    speed_m_s: float | None = None
    height_m: float = float("nan")
    events: dict[str, list[float]] = field(default_factory=dict)
    cycles: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    META_FIELDS = ("trial_id", "subject", "trial", "condition", "mass_kg", "model_family",
                   "speed_m_s", "height_m", "events", "cycles", "extras")

    def meta(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.META_FIELDS}

    @property
    def time(self) -> pd.Index:
        return self.kinematics.index


def _write_frame(df: pd.DataFrame, path: Path) -> None:
    out = df.copy()
    out.attrs = {}  # e.g. an OpenSim TableHeader from read_table: not parquet metadata
    out.index = pd.Index(out.index.to_numpy(dtype=float), name="time")
    out.columns = [str(c) for c in out.columns]
    out.to_parquet(path)


def write_trial(root: str | Path, record: TrialRecord) -> Path:
    """Write ``record`` atomically under ``root/trials/<trial_id>``; returns that directory."""
    root = Path(root)
    trials = root / "trials"
    trials.mkdir(parents=True, exist_ok=True)
    final = trials / record.trial_id
    tmp = Path(tempfile.mkdtemp(prefix=f".{record.trial_id}.", dir=trials))
    try:
        for name in FRAME_TABLES:
            _write_frame(getattr(record, name), tmp / f"{name}.parquet")
        meta = record.meta()
        meta["schema_version"] = SCHEMA_VERSION
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=_json_default))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    failure = root / "failures" / f"{record.trial_id}.json"
    failure.unlink(missing_ok=True)
    return final


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_trial(root: str | Path, trial_id: str) -> TrialRecord:
    """Read one trial; raises :class:`DatasetError` if it is absent or incomplete."""
    d = Path(root) / "trials" / trial_id
    meta_path = d / "meta.json"
    if not meta_path.is_file():
        raise DatasetError(f"trial {trial_id!r} is missing or incomplete", path=d,
                           hint="rebuild it with `opensim-surrogate build-dataset`")
    meta = json.loads(meta_path.read_text())
    if meta.get("schema_version") != SCHEMA_VERSION:
        raise DatasetError(f"trial schema version {meta.get('schema_version')} is not "
                           f"{SCHEMA_VERSION}", path=meta_path, hint="rebuild the dataset")
    meta.pop("schema_version")
    frames = {}
    for name in FRAME_TABLES:
        p = d / f"{name}.parquet"
        if not p.is_file():
            raise DatasetError(f"missing {name}.parquet", path=d, hint="rebuild this trial")
        frames[name] = pd.read_parquet(p)
    return TrialRecord(**meta, **frames)


def is_complete(root: str | Path, trial_id: str) -> bool:
    """True if ``trial_id`` was fully written (a rerun of the builder skips it)."""
    return (Path(root) / "trials" / trial_id / "meta.json").is_file()


def record_failure(root: str | Path, trial_id: str, error: str, **info: Any) -> Path:
    """Record that a trial failed (the build goes on); a later success removes it."""
    d = Path(root) / "failures"
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{trial_id}.json"
    tmp = d / f".{trial_id}.json.tmp"
    tmp.write_text(json.dumps({"trial_id": trial_id, "error": error, **info}, indent=1,
                              default=_json_default))
    os.replace(tmp, p)
    return p


class Dataset:
    """A dataset directory (read side).

    Parameters
    ----------
    root
        Directory holding ``dataset.json`` and ``trials/``.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        info = self.root / "dataset.json"
        if not info.is_file():
            raise DatasetError("not a dataset directory (no dataset.json)", path=self.root,
                               hint="build one with `opensim-surrogate build-dataset`")
        self.info: dict[str, Any] = json.loads(info.read_text())
        if self.info.get("schema_version") != SCHEMA_VERSION:
            raise DatasetError(f"dataset schema version {self.info.get('schema_version')} is "
                               f"not {SCHEMA_VERSION}", path=info, hint="rebuild the dataset")

    @property
    def trial_ids(self) -> list[str]:
        d = self.root / "trials"
        if not d.is_dir():
            return []
        return sorted(p.name for p in d.iterdir()
                      if not p.name.startswith(".") and (p / "meta.json").is_file())

    def failures(self) -> list[dict[str, Any]]:
        d = self.root / "failures"
        return [json.loads(p.read_text()) for p in sorted(d.glob("*.json"))] if d.is_dir() else []

    def load(self, trial_id: str) -> TrialRecord:
        return read_trial(self.root, trial_id)

    def __iter__(self) -> Iterator[TrialRecord]:
        for tid in self.trial_ids:
            yield self.load(tid)

    def __len__(self) -> int:
        return len(self.trial_ids)

    def fingerprint(self) -> str:
        """SHA-256 over every trial's meta.json and parquet bytes (identifies training data)."""
        import hashlib

        h = hashlib.sha256()
        for tid in self.trial_ids:
            for p in sorted((self.root / "trials" / tid).iterdir()):
                h.update(p.name.encode())
                h.update(p.read_bytes())
        return h.hexdigest()


def write_info(root: str | Path, info: dict[str, Any]) -> Path:
    """Write ``dataset.json`` (adds ``schema_version``)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    p = root / "dataset.json"
    data = {"schema_version": SCHEMA_VERSION, **info}
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default))
    os.replace(tmp, p)
    return p
