"""Reference pipeline for one trial: scale -> IK -> ID -> events/validity -> SO -> TrialRecord.

:func:`process_trial` is what the dataset builder (:mod:`.build`) calls for every
:class:`TrialSpec` of a corpus manifest (:mod:`.corpora`). All OpenSim work happens through
the wrappers of :mod:`.tools`; every intermediate file is kept in the trial's work directory.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError, MissingFileError
from .config import ReferenceConfig

log = logging.getLogger(__name__)

__all__ = ["TrialSpec", "process_trial", "so_windows"]


@dataclass
class TrialSpec:
    """Everything needed to compute the reference labels of one trial.

    Paths are absolute (or relative to the working directory). Optional inputs are ``None``.

    Attributes
    ----------
    trial_id : str
        ``<subject>_<trial>``, filesystem-safe, unique within a corpus.
    subject, trial, condition : str
        Subject id, trial name (e.g. ``"C4_05"``, ``"Run_3"``), condition label.
    mass_kg : float
        Subject body mass (kg); the scaled model's total mass is set to it.
    height_m : float
        Subject height (m), NaN if unknown.
    speed_m_s : float or None
        Nominal speed when known (treadmill), else None.
    model_family : str
        ``"rajagopal"`` (schreiber2019) or ``"gait2392"`` (hamner2013).
    generic_model : Path or None
        Generic muscled model to scale (ignored when ``model_osim`` is set).
    scale_set : Path or None
        Subject's ``*_scaleSet.xml`` (per-body scale factors).
    scale_setup : Path or None
        Subject's ``*_scaleSetup.xml``; used for its embedded ScaleSet only when
        ``scale_set`` is None (its file paths are never used).
    marker_model : Path or None
        Model whose marker locations are copied into the scaled model
        (schreiber2019: ``*_scaledModelAdjusted.osim``).
    trc : Path or None
        Marker trajectories for IK (ignored when ``ik_mot`` is set).
    ik_setup : Path or None
        IK setup whose IKTaskSet supplies the marker weights (its file paths are ignored).
    ik_mot : Path or None
        Precomputed IK coordinates; when set, IK is skipped.
    model_osim : Path or None
        Already-scaled subject model; when set, scaling is skipped.
    grf_mot : Path
        Ground reactions (.mot).
    external_loads_xml : Path
        ExternalLoads XML applying ``grf_mot`` to the feet.
    extra : dict
        Anything else, copied into the record's extras under ``"spec_extra"``. Keys the
        pipeline understands: ``"time_range": [t0, t1]`` (frames kept in the record,
        default all; filtering, ID, events and validity still see the whole motion, so the
        range's ends are not treated as recording edges).
    """

    trial_id: str
    subject: str
    trial: str
    condition: str
    mass_kg: float
    height_m: float = float("nan")
    speed_m_s: float | None = None
    model_family: str = "rajagopal"
    generic_model: Path | None = None
    scale_set: Path | None = None
    scale_setup: Path | None = None
    marker_model: Path | None = None
    trc: Path | None = None
    ik_setup: Path | None = None
    ik_mot: Path | None = None
    model_osim: Path | None = None
    grf_mot: Path | None = None
    external_loads_xml: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (paths as strings)."""
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(int))
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist()))


def so_windows(time_s: np.ndarray, id_valid: np.ndarray, config: ReferenceConfig,
               merge_gap_s: float = 0.5) -> list[tuple[float, float]]:
    """Time ranges (inclusive) on which to run SO.

    ``"labelled"``: every run of valid-ID frames widened by ``so_margin_s`` (clipped to the
    trial), runs closer than ``merge_gap_s`` merged; ``"all"``: the whole trial; ``"none"``:
    nothing. ``so_max_frames`` keeps only the middle frames of the first window.
    """
    t = np.asarray(time_s, float)
    if config.so_window == "none" or len(t) == 0:
        return []
    if config.so_window == "all":
        wins = [(float(t[0]), float(t[-1]))]
    else:
        wins = []
        for a, b in _runs(id_valid):
            lo = max(float(t[0]), float(t[a]) - config.so_margin_s)
            hi = min(float(t[-1]), float(t[b]) + config.so_margin_s)
            if wins and lo - wins[-1][1] < merge_gap_s:
                wins[-1] = (wins[-1][0], hi)
            else:
                wins.append((lo, hi))
    if config.so_max_frames is not None and wins:
        lo, hi = wins[0]
        sel = np.flatnonzero((t >= lo - 1e-9) & (t <= hi + 1e-9))
        n = max(1, int(config.so_max_frames))
        if len(sel) > n:
            start = (len(sel) - n) // 2
            sel = sel[start:start + n]
        wins = [(float(t[sel[0]]), float(t[sel[-1]]))]
    return wins


def _align(df: pd.DataFrame, index: pd.Index, columns: list[str]) -> pd.DataFrame:
    """Put ``df`` rows on ``index`` (nearest time within 1e-6 s); other rows NaN."""
    out = pd.DataFrame(np.nan, index=index, columns=columns)
    if df is None or df.empty:
        return out
    t = np.asarray(index, float)
    src = np.asarray(df.index, float)
    pos = np.clip(np.searchsorted(t, src), 0, len(t) - 1)
    prev = np.clip(pos - 1, 0, len(t) - 1)
    pos = np.where(np.abs(t[prev] - src) < np.abs(t[pos] - src), prev, pos)
    ok = np.abs(t[pos] - src) < 1e-6
    cols = [c for c in columns if c in df.columns]
    out.loc[out.index[pos[ok]], cols] = df.loc[df.index[ok], cols].to_numpy()
    return out


def _model_path(spec: TrialSpec, config: ReferenceConfig, workdir: Path,
                timings: dict[str, float]) -> Path:
    """The scaled subject model: given, cached in ``workdir/../models``, or scaled now."""
    from .tools import scale_model

    if spec.model_osim is not None:
        p = Path(spec.model_osim)
        if not p.is_file():
            raise MissingFileError("subject model not found", path=p)
        timings["scale"] = 0.0
        return p
    models = workdir.parent / "models"
    models.mkdir(parents=True, exist_ok=True)
    target = models / f"{spec.subject}.osim"
    if target.is_file():
        log.info("using cached scaled model %s", target)
        timings["scale"] = 0.0
        return target
    if spec.generic_model is None or (spec.scale_set is None and spec.scale_setup is None):
        raise InputError(f"trial {spec.trial_id}: no model_osim and no generic_model + "
                         "scale_set to scale one", column="model_osim",
                         hint="fill the manifest's model fields")
    res = scale_model(spec.generic_model, spec.scale_set or spec.scale_setup, spec.mass_kg,
                      target, spec.marker_model, name=spec.subject)
    timings["scale"] = res.seconds
    return res.model_path


def process_trial(spec: TrialSpec, config: ReferenceConfig | dict[str, Any] | None,
                  workdir: Path) -> "TrialRecord":
    """Compute the reference labels of one trial with real OpenSim.

    Steps: scale (unless ``spec.model_osim``; the scaled model is cached per subject in
    ``workdir/../models/<subject>.osim``, written atomically so concurrent trials of one
    subject are safe) -> IK over the whole ``.trc`` (unless ``spec.ik_mot``) -> coordinates
    filtered once and resampled -> ID over the whole trial -> gait events (force plates +
    Zeni kinematics from OpenSim FK) and ID-label validity -> SO on the labelled window(s)
    -> :class:`~opensim_surrogate.dataset.store.TrialRecord`.

    Parameters
    ----------
    spec
        The trial (see :class:`TrialSpec`).
    config
        Pipeline settings (default :class:`ReferenceConfig()`; a dict is read with
        :meth:`ReferenceConfig.from_dict`).
    workdir
        This trial's work directory (created); every tool's setup, output and log is kept.

    Returns
    -------
    TrialRecord
        kinematics = the processed coordinates ID/SO ran on (rad / m); moments = ID output;
        forces / activations / actuators = SO output on SO frames that did not fail and
        whose ID labels are valid, NaN elsewhere; mask ``id_valid`` / ``so_valid``; events
        (plate events completed by kinematic ones), cycles with ``labelled_fraction``;
        extras (seconds per step, SO failed frames, residual/reserve magnitudes, OpenSim
        version, source files, ...).

    Raises
    ------
    InputError, MissingFileError, ModelFileError, TableFormatError
        Bad or missing inputs.
    SimulationError
        An OpenSim tool failed.
    """
    from ..dataset.store import TrialRecord
    from . import events as ev
    from . import tools

    if isinstance(config, dict):
        config = ReferenceConfig.from_dict(config)
    config = config or ReferenceConfig()
    t_all = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    for name in ("grf_mot", "external_loads_xml"):
        if getattr(spec, name) is None:
            raise InputError(f"trial {spec.trial_id}: {name} is required", column=name)

    model = _model_path(spec, config, workdir, timings)

    ik_rms = ik_max = float("nan")
    if spec.ik_mot is not None:
        motion = Path(spec.ik_mot)
        timings["ik"] = 0.0
    else:
        if spec.trc is None:
            raise InputError(f"trial {spec.trial_id}: neither ik_mot nor trc given",
                             column="trc")
        ik = tools.inverse_kinematics(model, spec.trc, workdir / f"{spec.trial}_ik.mot",
                                      spec.ik_setup, config=config)
        motion, ik_rms, ik_max = ik.mot_path, ik.marker_rms_m, ik.marker_max_m
        timings["ik"] = ik.seconds

    # ID, events and validity use the whole motion (filter and event-detection edges are
    # those of the recording, not of the requested time range); tables are trimmed last.
    idr = tools.inverse_dynamics(model, motion, spec.external_loads_xml, spec.grf_mot, config,
                                 None, out_dir=workdir, name="id")
    timings["id"] = idr.seconds
    t_full = np.asarray(idr.coordinates.index, float)
    keep = np.ones(len(t_full), bool)
    time_range = spec.extra.get("time_range")
    if time_range:
        lo, hi = float(time_range[0]), float(time_range[1])
        keep = (t_full >= lo - 1e-9) & (t_full <= hi + 1e-9)
        if keep.sum() < 2:
            raise InputError(f"trial {spec.trial_id}: time_range {time_range} leaves fewer "
                             f"than 2 frames of [{t_full[0]}, {t_full[-1]}]",
                             column="time_range")

    t0 = time.perf_counter()
    raw_grf = tools.read_sto(spec.grf_mot)
    plates = ev.events_from_grf(raw_grf, spec.external_loads_xml, config.threshold_n,
                                config.min_contact_s)
    foot = tools.foot_positions(model, idr.coordinates)
    kin = ev.events_from_kinematics(foot, config.kinematic_min_separation_s,
                                    config.kinematic_prominence_m, config.kinematic_hs_offset_s)
    valid_full = ev.label_validity(t_full, plates, kin, config.validity_margin_s,
                                   config.edge_margin_s, config.measured_overlap_s,
                                   config.measured_tolerance_s)
    events = ev.combined_events(plates, kin, config.measured_overlap_s,
                                config.measured_tolerance_s)
    index = idr.coordinates.index[keep]
    t = t_full[keep]
    id_valid = valid_full[keep]
    events = {k: [x for x in v if t[0] - 1e-9 <= x <= t[-1] + 1e-9] for k, v in events.items()}
    cycles = ev.cycle_table(events, t, id_valid)
    timings["events"] = time.perf_counter() - t0

    info = tools.model_coordinates(model)
    windows = so_windows(t, id_valid, config)
    so_parts = []
    for i, (lo, hi) in enumerate(windows):
        so_parts.append(tools.static_optimization(
            model, idr.coordinates_path, idr.external_loads_path, config, (lo, hi),
            out_dir=workdir, name="so" if len(windows) == 1 else f"so{i + 1}"))
    timings["so"] = float(sum(r.seconds for r in so_parts))

    muscles = info.muscles
    act_cols: list[str] = []
    for r in so_parts:
        act_cols += [c for c in r.actuators.columns if c not in act_cols]
    cat = (lambda xs: pd.concat(xs) if xs else pd.DataFrame())  # noqa: E731
    forces = _align(cat([r.forces for r in so_parts]), index, muscles)
    activations = _align(cat([r.activations for r in so_parts]), index, muscles)
    actuators = _align(cat([r.actuators for r in so_parts]), index, act_cols)
    frames = cat([r.frames for r in so_parts])
    solved = np.zeros(len(t), bool)
    failed = np.zeros(len(t), bool)
    if len(frames):
        fr = _align(frames[["failed"]].astype(float), index, ["failed"])["failed"].to_numpy()
        solved = np.isfinite(fr)
        failed = solved & (fr > 0.5)
    so_valid = solved & ~failed & id_valid
    for df in (forces, activations, actuators):
        df.loc[~so_valid, :] = np.nan
    mask = pd.DataFrame({"id_valid": id_valid, "so_valid": so_valid}, index=index)

    failed_times = sorted(float(x) for r in so_parts for x in r.failed_frames)
    stats: dict[str, dict[str, Any]] = {}
    for r in so_parts:  # worst case over windows
        for k, v in r.actuator_stats.items():
            s = stats.setdefault(k, {"kind": v["kind"], "max_abs": 0.0, "rms": 0.0})
            s["max_abs"] = max(s["max_abs"], v["max_abs"]) if math.isfinite(v["max_abs"]) \
                else s["max_abs"]
            s["rms"] = max(s["rms"], v["rms"]) if math.isfinite(v["rms"]) else s["rms"]
    family = spec.model_family
    detected = None
    try:
        from ..osim.model import detect_family, read_model

        detected = detect_family(read_model(model))
        if detected != "unknown" and detected != family:
            log.warning("%s: manifest says model family %r, the model looks %r", spec.trial_id,
                        family, detected)
    except Exception as exc:  # informational only
        log.debug("family detection failed: %s", exc)

    timings["total"] = time.perf_counter() - t_all
    extras: dict[str, Any] = {
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "n_frames": int(len(t)),
        "n_id_valid": int(id_valid.sum()),
        "so_windows": [[lo, hi] for lo, hi in windows],
        "n_so_frames": int(len(frames)),
        "n_so_valid": int(so_valid.sum()),
        "so_failed_frames": failed_times,
        "so_max_constraint_violation": (float(np.nanmax(frames["constraint_violation"]))
                                        if len(frames) else None),
        "residuals": {k: v for k, v in stats.items() if v["kind"] == "residual"},
        "reserves": {k: v for k, v in stats.items() if v["kind"] == "reserve"},
        "torque_actuators": {k: v for k, v in stats.items() if v["kind"] == "torque"},
        "so_frames_reserve_over_10": (int((frames.loc[~frames["failed"].astype(bool),
                                                      "max_reserve"] > 10.0).sum())
                                      if len(frames) else 0),
        "model_actuators": {k: v for k, v in stats.items() if v["kind"] == "model"},
        "ik_marker_rms_m": ik_rms,
        "ik_marker_max_m": ik_max,
        "plate_contacts": {leg: [[a, b] for a, b in plates.contacts[leg]] for leg in ev.LEGS},
        "kinematic_events": kin.to_dict(),
        "detected_model_family": detected,
        "opensim_version": tools.opensim_version(),
        "scaled_model": str(model),
        "sources": {k: v for k, v in spec.to_dict().items()
                    if k not in ("extra",) and v is not None},
        "spec_extra": spec.extra,
        "workdir": str(workdir),
    }
    kinematics = idr.coordinates.loc[keep].copy()
    moments = idr.moments.loc[keep].copy()
    for df in (kinematics, moments, forces, activations, actuators, mask):
        df.attrs = {}  # TableHeader objects are not parquet metadata
        df.index = pd.Index(np.asarray(index, float), name="time")
    log.info("%s: %d frames, %d ID-valid, %d SO frames (%d failed) in %.1f s", spec.trial_id,
             len(t), id_valid.sum(), len(frames), len(failed_times), timings["total"])
    return TrialRecord(
        trial_id=spec.trial_id, subject=spec.subject, trial=spec.trial,
        condition=spec.condition, mass_kg=float(spec.mass_kg), model_family=family,
        kinematics=kinematics, moments=moments, forces=forces,
        activations=activations, mask=mask, actuators=actuators, speed_m_s=spec.speed_m_s,
        height_m=float(spec.height_m), events=events, cycles=cycles, extras=extras)
