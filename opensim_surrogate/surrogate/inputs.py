"""Input pipeline of the surrogate runtime: any kinematics table -> what a bundle predicts from.

Steps (:func:`prepare_trial`), each with a clear error or a human-readable warning:

1. **Read** (:func:`read_kinematics`): an OpenSim ``.mot``/``.sto`` (via
   :func:`opensim_surrogate.io.tables.read_table`: path-style labels are renamed, malformed
   files are refused naming file/line/column) or a :class:`pandas.DataFrame` (time index or a
   ``time`` column). The time column must strictly increase (:class:`TimeColumnError`).
2. **Select** the bundle's required and optional coordinates (:func:`select_coordinates`):
   a missing required coordinate is an :class:`InputError` naming every missing one; extra
   columns are ignored; missing optional ones are filled by the bundle. NaN/inf in a used column
   is a :class:`TableValueError` naming the column and time.
3. **Units**: rotational coordinates to radians. The unit comes from the file header
   (``inDegrees``), else from the ``in_degrees`` argument, else it is inferred from the
   magnitudes of the hip/knee/ankle angles (any above 2π means degrees) and a warning says so.
   Rotational = the model's rotational coordinates; without a model every selected coordinate
   except the pelvis translations.
4. **Convention**: lower-limb signs mapped from the user's model to the bundle's
   (:mod:`opensim_surrogate.osim.conventions`; e.g. gait2392 knee flexion is negative).
5. **Duration**: at least :data:`MIN_DURATION_S` (0.3 s); shorter than
   :data:`SHORT_TRIAL_S` gives a warning.
6. **Filter and resample**: the coordinates are low-pass filtered exactly like the reference
   pipeline (OpenSim's ``TabOpLowPassFilter``: 3rd-order Butterworth, forward-backward, after
   padding half the trial length by odd reflection at each end; see :func:`lowpass`) and
   resampled with a cubic spline to the bundle rate (100 Hz) on a grid starting at the first
   input time. Inputs faster than the bundle rate are filtered at their own rate and then
   resampled; slower ones are resampled first and filtered at the bundle rate. Below
   :data:`LOW_RATE_HZ` (50 Hz) the result is flagged as an *extrapolated rate*; at or below
   twice the cut-off the filter is skipped (the data cannot hold that content anyway).

The runtime predicts on that grid and interpolates the outputs back to the input's own time
stamps (:func:`to_times`).
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError, TableValueError, TimeColumnError
from ..io.tables import header_of, plain_label, read_table

log = logging.getLogger(__name__)

__all__ = [
    "MIN_DURATION_S", "SHORT_TRIAL_S", "LOW_RATE_HZ", "TRANSLATIONAL", "TrialInput",
    "PreparedTrial", "read_kinematics", "select_coordinates", "prepare_trial", "lowpass",
    "resample", "to_times", "uniform_grid", "trial_name", "unique_names",
]

#: Shortest trial accepted (s).
MIN_DURATION_S = 0.3
#: Trials shorter than this get a warning (edge effects of filtering and of the windows).
SHORT_TRIAL_S = 0.5
#: Input rates below this (Hz) get an "extrapolated rate" warning.
LOW_RATE_HZ = 50.0
#: Coordinates that are lengths (m), never converted to radians.
TRANSLATIONAL = frozenset({"pelvis_tx", "pelvis_ty", "pelvis_tz"})
_UNIT_PROBES = ("hip_flexion", "hip_adduction", "knee_angle", "ankle_angle")
_TIME_TOL = 1e-9


@dataclass
class TrialInput:
    """A kinematics table as read, before unit/convention handling.

    Attributes
    ----------
    name : str
        Trial name (file stem, or the ``name`` given for a DataFrame).
    source : Path or None
        File read (None for a DataFrame).
    table : pandas.DataFrame
        Float time index named ``time``; plain coordinate labels; values as in the source.
    in_degrees : bool or None
        What the source says about rotational units (header ``inDegrees`` or the caller's
        ``in_degrees``); None if unknown.
    """

    name: str
    source: Path | None
    table: pd.DataFrame
    in_degrees: bool | None

    @property
    def where(self) -> str:
        """File name, or ``DataFrame <name>``, for messages."""
        return str(self.source) if self.source is not None else f"DataFrame {self.name!r}"


@dataclass
class PreparedTrial:
    """One trial ready for ``Bundle.predict``.

    Attributes
    ----------
    name, source
        As :class:`TrialInput`.
    times : numpy.ndarray
        The input's time stamps at which results are returned (within ``time_range``).
    kinematics : pandas.DataFrame
        Required + present optional coordinates: radians / metres, bundle convention, low-pass
        filtered, uniform at ``rate_hz`` (index = grid times).
    input_rate_hz : float
        Input sampling rate (from the median time step).
    rate_hz : float
        Rate of :attr:`kinematics`.
    in_degrees : bool
        Unit of the input's rotational coordinates.
    lowpass_hz : float or None
        Cut-off applied (None: not filtered).
    used_optional, missing_optional : list of str
        Optional coordinates used / absent (filled by the bundle).
    warnings : list of str
        Human-readable warnings.
    """

    name: str
    source: Path | None
    times: np.ndarray
    kinematics: pd.DataFrame
    input_rate_hz: float
    rate_hz: float
    in_degrees: bool
    lowpass_hz: float | None
    used_optional: list[str] = field(default_factory=list)
    missing_optional: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return float(self.times[-1] - self.times[0]) if self.times.size else 0.0


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------
def trial_name(path: str | os.PathLike[str]) -> str:
    """Trial name of a file: its name without the suffix (``walk_01.mot`` -> ``walk_01``)."""
    return Path(path).stem


def unique_names(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Trial names for many files: the stems, made unique by prefixing parent folders.

    ``[a/ik/Run_2.mot, b/ik/Run_2.mot]`` -> ``["a_ik_Run_2", "b_ik_Run_2"]``, so that output
    files written side by side do not overwrite each other.
    """
    ps = [Path(p) for p in paths]
    names = [p.stem for p in ps]
    depth = 0
    while len(set(names)) < len(names) and depth < 32:
        depth += 1
        dup = {n for n in names if names.count(n) > 1}
        new = []
        for p, n in zip(ps, names):
            if n in dup:
                parents = [q.name for q in p.resolve().parents][:depth][::-1]
                new.append("_".join([*(x for x in parents if x), p.stem]))
            else:
                new.append(n)
        names = new
    return names


def _frame_from_dataframe(df: pd.DataFrame, name: str) -> pd.DataFrame:
    out = df.copy()
    if "time" in out.columns:
        if not isinstance(out.index, pd.RangeIndex):
            raise InputError("the DataFrame has both a 'time' column and an index",
                             column="time", hint="use either a time index or a 'time' column")
        out = out.set_index("time")
    elif isinstance(out.index, pd.RangeIndex) or not pd.api.types.is_numeric_dtype(out.index):
        raise InputError(f"DataFrame {name!r} has no time", column="time",
                         hint="give the time (s) as the index or as a 'time' column")
    try:
        t = np.asarray(out.index, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"DataFrame {name!r}: the time index is not numeric", column="time",
                         hint="time in seconds") from None
    out.index = pd.Index(t, name="time")
    rename = {}
    for c in out.columns:
        lab = str(c)
        if lab.startswith("/"):
            plain = plain_label(lab)
            if plain is not None and plain not in out.columns:
                rename[c] = plain
    if rename:
        out = out.rename(columns=rename)
    out.columns = [str(c) for c in out.columns]
    if len(set(out.columns)) != len(out.columns):
        dup = sorted({c for c in out.columns if list(out.columns).count(c) > 1})
        raise InputError(f"DataFrame {name!r} has duplicated columns {dup}", column=dup[0],
                         hint="column labels must be unique")
    return out


def _check_time(t: np.ndarray, where: str, path: Path | None) -> None:
    if t.size == 0:
        raise InputError(f"{where} has no rows", path=path, hint="give at least 0.3 s of motion")
    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        k = int(bad[0])
        raise TimeColumnError(f"time at row {k + 1} is {t[k]!r}", path=path, column="time",
                              hint="the time column must hold finite seconds")
    steps = np.diff(t)
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        k = int(bad[0]) + 1
        raise TimeColumnError(f"time does not strictly increase at row {k + 1} "
                              f"({t[k]!r} after {t[k - 1]!r})", path=path, column="time",
                              hint="sort by time and drop duplicated rows")


def read_kinematics(trial: str | os.PathLike[str] | pd.DataFrame, *,
                    in_degrees: bool | None = None, name: str | None = None) -> TrialInput:
    """Read a kinematics file or take a DataFrame, and check its time column.

    Parameters
    ----------
    trial
        ``.mot``/``.sto`` path, or a DataFrame (time index or ``time`` column; path-style
        labels are renamed like :func:`~opensim_surrogate.io.tables.read_table` does).
    in_degrees
        Unit of the rotational columns of a DataFrame (ignored for files whose header says it;
        used for a file whose header does not).
    name
        Trial name (default: file stem, or ``"trial"``).

    Raises
    ------
    MissingFileError, TableFormatError, TimeColumnError, InputError
    """
    if isinstance(trial, pd.DataFrame):
        nm = name or str(trial.attrs.get("name", "") or "trial")
        table = _frame_from_dataframe(trial, nm)
        hdr = header_of(trial)
        unit = in_degrees if in_degrees is not None else (hdr.in_degrees if hdr else None)
        ti = TrialInput(nm, None, table, unit)
    elif isinstance(trial, (str, os.PathLike)):
        path = Path(trial)
        table = read_table(path)
        hdr = header_of(table)
        unit = hdr.in_degrees if hdr is not None and hdr.in_degrees is not None else in_degrees
        table.index = pd.Index(np.asarray(table.index, dtype=np.float64), name="time")
        ti = TrialInput(name or trial_name(path), path, table, unit)
    else:
        raise InputError(f"cannot read kinematics from a {type(trial).__name__}",
                         hint="give a .mot/.sto path, a DataFrame, or a list of those")
    _check_time(np.asarray(ti.table.index, dtype=float), ti.where, ti.source)
    return ti


# --------------------------------------------------------------------------------------
# coordinates, units
# --------------------------------------------------------------------------------------
def _rotational(columns: Iterable[str], model) -> list[str]:
    if model is not None:
        rot = set(model.rotational_coordinates())
        return [c for c in columns if c in rot]
    return [c for c in columns if c not in TRANSLATIONAL]


def _infer_degrees(df: pd.DataFrame) -> tuple[bool | None, str]:
    """Degrees if any hip/knee/ankle angle exceeds 2π in magnitude; None if no probe column."""
    probes = [c for c in df.columns if c.startswith(_UNIT_PROBES)]
    if not probes:
        return None, ""
    mags = df[probes].abs().max()
    col = str(mags.idxmax())
    peak = float(mags.max())
    return peak > 2.0 * math.pi, f"max |{col}| = {peak:.3g}"


def select_coordinates(ti: TrialInput, required: Sequence[str], optional: Sequence[str] = (),
                       *, model=None, hint: str | None = None
                       ) -> tuple[pd.DataFrame, bool, list[str], list[str]]:
    """The required + present optional coordinates of a trial, rotational ones in radians.

    Returns
    -------
    table, in_degrees, warnings, missing_optional

    Raises
    ------
    InputError
        Naming every missing required coordinate.
    TableValueError
        NaN / inf in a used column (names the column and the time).
    """
    cols = set(ti.table.columns)
    missing = [c for c in required if c not in cols]
    if missing:
        raise InputError(
            f"missing required coordinate{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}", path=ti.source, column=missing[0],
            hint=hint or "the surrogate needs the pelvis, hip, knee and ankle coordinates of "
                         "both legs (OpenSim IK output)")
    used_opt = [c for c in optional if c in cols]
    missing_opt = [c for c in optional if c not in cols]
    use = list(dict.fromkeys([*required, *used_opt]))
    df = ti.table[use].astype(np.float64)
    values = df.to_numpy()
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = (int(x[0]) for x in np.nonzero(bad))
        raise TableValueError(f"{values[r, c]!r} at time {df.index[r]:.6g} s", path=ti.source,
                              column=use[c], hint="fill or interpolate gaps before running")
    extra = sorted(cols - set(use))
    if extra:
        log.debug("%s: ignoring %d unused column(s): %s", ti.where, len(extra),
                  ", ".join(extra[:10]) + (" ..." if len(extra) > 10 else ""))
    warnings: list[str] = []
    unit = ti.in_degrees
    inferred, evidence = _infer_degrees(df)
    if unit is None:
        if inferred is None:
            unit = False
            warnings.append(f"{ti.where}: units not stated and no joint angle to infer them "
                            "from; assuming radians")
        else:
            unit = inferred
            msg = (f"{ti.where}: units of the rotational coordinates not stated; inferred "
                   f"{'degrees' if unit else 'radians'} from their magnitudes ({evidence})")
            if ti.source is not None and unit:
                # OpenSim reads a file without inDegrees (old SIMM .mot) as degrees too.
                log.info(msg)
            else:
                warnings.append(msg + ("; pass in_degrees= to state them"
                                       if ti.source is None else ""))
    elif inferred is not None and inferred != unit:
        warnings.append(f"{ti.where}: stated to be in {'degrees' if unit else 'radians'} but the "
                        f"magnitudes look like {'degrees' if inferred else 'radians'} "
                        f"({evidence}); using the stated unit")
    if unit:
        rot = _rotational(use, model)
        if rot:
            df[rot] = df[rot].to_numpy() * (math.pi / 180.0)
    return df, bool(unit), warnings, missing_opt


# --------------------------------------------------------------------------------------
# filtering, resampling
# --------------------------------------------------------------------------------------
def lowpass(values: np.ndarray, rate_hz: float, cutoff_hz: float) -> np.ndarray:
    """Zero-lag low-pass filter identical to OpenSim's ``TabOpLowPassFilter``.

    3rd-order Butterworth applied forward and backward (``filtfilt``) after padding
    ``n // 2`` samples at each end by odd reflection about the end points (OpenSim's
    ``TableUtilities::pad`` + ``Signal::LowpassIIR``); agrees with OpenSim to ~1e-6 of the
    signal amplitude.

    Parameters
    ----------
    values
        (n,) or (n, c) uniformly sampled.
    rate_hz, cutoff_hz
        Sampling rate and cut-off (cut-off below the Nyquist frequency).
    """
    from scipy.signal import butter, filtfilt

    x = np.asarray(values, dtype=np.float64)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[:, None]
    n = x.shape[0]
    if n < 4:
        return x[:, 0] if squeeze else x
    pad = max(n // 2, 1)
    head = 2.0 * x[0] - x[pad:0:-1]
    tail = 2.0 * x[-1] - x[-2:-pad - 2:-1]
    padded = np.concatenate([head, x, tail], axis=0)
    b, a = butter(3, cutoff_hz / (rate_hz / 2.0))
    y = filtfilt(b, a, padded, axis=0, padlen=0)[pad:pad + n]
    return y[:, 0] if squeeze else y


def uniform_grid(t0: float, t1: float, rate_hz: float) -> np.ndarray:
    """Times ``t0 + k / rate`` covering ``[t0, t1]`` (the last one may exceed ``t1`` by < 1/rate)."""
    n = int(math.ceil((t1 - t0) * rate_hz - 1e-6)) + 1
    return t0 + np.arange(n) / rate_hz


def resample(t: np.ndarray, values: np.ndarray, t_new: np.ndarray) -> np.ndarray:
    """Cubic-spline (not-a-knot) interpolation of ``values`` (n, c) from ``t`` to ``t_new``.

    Exact at coinciding times; extrapolates smoothly by less than one sample at the ends.
    """
    from scipy.interpolate import CubicSpline

    t = np.asarray(t, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    t_new = np.asarray(t_new, dtype=np.float64)
    if t.size == t_new.size and np.allclose(t, t_new, rtol=0.0, atol=_TIME_TOL):
        return v.copy()
    if t.size < 4:
        return np.stack([np.interp(t_new, t, v[:, j]) for j in range(v.shape[1])], axis=1)
    return CubicSpline(t, v, axis=0, bc_type="not-a-knot", extrapolate=True)(t_new)


def to_times(df: pd.DataFrame, times: np.ndarray, *, nonnegative: bool = False) -> pd.DataFrame:
    """Interpolate a per-frame table (uniform grid) to ``times`` (cubic; exact on the grid)."""
    if df.shape[1] == 0:
        return pd.DataFrame(index=pd.Index(np.asarray(times, dtype=float), name="time"))
    v = resample(np.asarray(df.index, dtype=float), df.to_numpy(dtype=float), times)
    if nonnegative:
        v = np.maximum(v, 0.0)
    return pd.DataFrame(v, index=pd.Index(np.asarray(times, dtype=float), name="time"),
                        columns=list(df.columns))


def _filter_and_resample(t: np.ndarray, x: np.ndarray, rate: float, cutoff: float | None,
                         where: str) -> tuple[np.ndarray, np.ndarray, float, float | None,
                                              list[str]]:
    warnings: list[str] = []
    steps = np.diff(t)
    in_rate = float(1.0 / np.median(steps))
    grid = uniform_grid(float(t[0]), float(t[-1]), rate)
    uniform = bool(np.max(np.abs(steps - np.median(steps))) <= 0.01 * np.median(steps))
    applied: float | None = None
    if in_rate < LOW_RATE_HZ:
        warnings.append(f"{where}: sampled at {in_rate:.3g} Hz, below {LOW_RATE_HZ:g} Hz; the "
                        f"coordinates are interpolated to {rate:g} Hz (extrapolated rate: "
                        "fast events between samples are lost, results less reliable)"
                        + ("; check that the time column is in seconds" if in_rate < 10 else ""))
    if cutoff is None or cutoff <= 0:
        return grid, resample(t, x, grid), in_rate, None, warnings
    if in_rate >= rate:
        # filter at the input rate (on a uniform grid at that rate), then resample
        if not uniform:
            t_u = uniform_grid(float(t[0]), float(t[-1]), in_rate)
            x = resample(t, x, t_u)
            t = t_u
        x = lowpass(x, in_rate, cutoff)
        applied = cutoff
        return grid, resample(t, x, grid), in_rate, applied, warnings
    y = resample(t, x, grid)
    if in_rate > 2.0 * cutoff * 1.05:
        y = lowpass(y, rate, cutoff)
        applied = cutoff
    else:
        warnings.append(f"{where}: sampled at {in_rate:.3g} Hz, too slow for the {cutoff:g} Hz "
                        "low-pass filter of the reference pipeline; not filtered")
    return grid, y, in_rate, applied, warnings


# --------------------------------------------------------------------------------------
# the whole pipeline
# --------------------------------------------------------------------------------------
def prepare_trial(trial: str | os.PathLike[str] | pd.DataFrame | TrialInput, *,
                  required: Sequence[str], optional: Sequence[str] = (), model=None,
                  convert=None, rate_hz: float = 100.0, lowpass_hz: float | None = 6.0,
                  in_degrees: bool | None = None, time_range: tuple[float, float] | None = None,
                  name: str | None = None, hint: str | None = None) -> PreparedTrial:
    """Read, check, convert, filter and resample one trial (see the module docstring).

    Parameters
    ----------
    trial
        File, DataFrame or an already read :class:`TrialInput`.
    required, optional
        Coordinates the bundle needs / can use.
    model
        The user's :class:`~opensim_surrogate.osim.model.ModelInfo` (rotational coordinates),
        or None.
    convert
        Callable mapping a kinematics DataFrame (radians, user convention) to the bundle's
        convention, or None (already in it).
    rate_hz
        Bundle rate.
    lowpass_hz
        Cut-off (Hz) of the low-pass filter; None or <= 0: no filtering.
    in_degrees
        Rotational unit of a DataFrame (see :func:`read_kinematics`).
    time_range
        ``(start, end)``: return results only at input times in this range (OpenSim's
        ``time_range`` / ``initial_time``..``final_time``); the whole trial is still used.
    name
        Trial name.
    hint
        Hint for the missing-coordinate error.

    Raises
    ------
    SurrogateError subclasses
        See the module docstring.
    """
    ti = trial if isinstance(trial, TrialInput) else read_kinematics(trial, in_degrees=in_degrees,
                                                                       name=name)
    df, unit, warnings, missing_opt = select_coordinates(ti, required, optional, model=model,
                                                         hint=hint)
    t = np.asarray(df.index, dtype=np.float64)
    duration = float(t[-1] - t[0]) if t.size else 0.0
    if t.size < 2 or duration < MIN_DURATION_S - 1e-6:
        raise InputError(f"the trial lasts {duration:.3g} s ({t.size} frame"
                         f"{'s' if t.size != 1 else ''}); at least {MIN_DURATION_S:g} s is needed",
                         path=ti.source, column="time", hint="give a longer trial")
    if duration < SHORT_TRIAL_S:
        warnings.append(f"{ti.where}: very short trial ({duration:.2f} s): filter and window edge "
                        "effects cover much of it; results at the ends are less reliable")
    if convert is not None:
        df = convert(df)
    grid, values, in_rate, applied, w = _filter_and_resample(t, df.to_numpy(), rate_hz,
                                                            lowpass_hz, ti.where)
    warnings += w
    kin = pd.DataFrame(values, index=pd.Index(grid, name="time"), columns=list(df.columns))
    times = t
    if time_range is not None:
        lo, hi = time_range
        sel = (t >= lo - _TIME_TOL) & (t <= hi + _TIME_TOL)
        if not sel.any():
            raise InputError(f"time range {lo:g}..{hi:g} s contains no frame of the trial "
                             f"({t[0]:g}..{t[-1]:g} s)", path=ti.source, column="time",
                             hint="check the time range")
        times = t[sel]
    return PreparedTrial(name=ti.name, source=ti.source, times=times, kinematics=kin,
                         input_rate_hz=in_rate, rate_hz=rate_hz, in_degrees=unit,
                         lowpass_hz=applied,
                         used_optional=[c for c in optional if c in df.columns],
                         missing_optional=missing_opt, warnings=warnings)
