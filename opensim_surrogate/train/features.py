"""Inputs, outputs and their normalisation — ONE implementation for training and the runtime.

Two input schemes
-----------------
``cycle`` (Gait2Hip-60's)
    The 10 joint angles of :data:`PAPER_ANGLES` in **degrees**, one gait cycle (heel strike to
    heel strike of the same foot) resampled to :data:`CYCLE_SAMPLES` = 180 samples, z-scored per
    channel with statistics of the training frames.
``window`` (the runtime scheme used by ``surrogate.run``)
    Per-frame features at 100 Hz computed by :func:`window_features` from a kinematics table in
    radians (canonical Rajagopal convention, one column per coordinate):

    * every rotational lower-limb coordinate of :attr:`WindowFeatureSpec.coordinates` (pelvis
      tilt/list/rotation, hips, knees, ankles, and subtalar/mtp when they move): value (rad),
      velocity (rad/s) and acceleration (rad/s²) — inverse dynamics depends on accelerations, so
      they are given explicitly rather than left for the network to difference;
    * ``pelvis_tx`` / ``pelvis_tz``: velocity and acceleration only (walking speed and sway, not
      the position in the laboratory, which is arbitrary);
    * ``pelvis_ty``: position relative to the trial median (m; the absolute height depends on the
      model's pelvis origin and on the lab floor), velocity and acceleration;
    * optional coordinates (lumbar): value/velocity/acceleration when present, otherwise the
      training mean angle with zero velocity/acceleration;
    * optionally the subject's height (m; the training mean when unknown).

    Derivatives are Savitzky-Golay (window 9 frames = 90 ms, cubic), which also smooths the
    noise that finite differences amplify. Windows of fixed length are cropped at random in
    training; at inference :func:`predict_sequences` slides overlapping windows and blends them
    with centre-heavy (Hann) weights, so any trial of at least :data:`MIN_FRAMES` frames can be
    predicted; a trial shorter than the window is padded by reflection and cropped back.

Outputs are mass-normalised (moments N·m/kg, forces N/kg): every lower-limb joint moment of both
legs (``<coord>_moment`` of the moving hip/knee/ankle/subtalar/mtp coordinates) and every muscle
force of the model. Gait2Hip-60's 3 right-hip moments and 14 right-hip muscle groups
(:data:`HIP_GROUPS`, sums of their parts) are *derived* from these for the comparison.
"""
from __future__ import annotations

from functools import lru_cache

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError

log = logging.getLogger(__name__)

SAMPLE_RATE = 100.0
#: Shortest input (frames at 100 Hz) the window scheme accepts (0.3 s).
MIN_FRAMES = 30
CYCLE_SAMPLES = 180

#: Gait2Hip-60's inputs (degrees), in their order.
PAPER_ANGLES = [
    "hip_flexion_r", "hip_adduction_r", "hip_rotation_r",
    "hip_flexion_l", "hip_adduction_l", "hip_rotation_l",
    "knee_angle_r", "knee_angle_l", "ankle_angle_r", "ankle_angle_l",
]
#: Gait2Hip-60's three right-hip moments.
PAPER_HIP_MOMENTS = ["hip_flexion_r_moment", "hip_adduction_r_moment", "hip_rotation_r_moment"]
#: Gait2Hip-60's 14 right-hip muscle groups -> Rajagopal-family muscles (without side suffix).
HIP_GROUPS: dict[str, list[str]] = {
    "addbrev": ["addbrev"],
    "addlong": ["addlong"],
    "addmag": ["addmagDist", "addmagIsch", "addmagMid", "addmagProx"],
    "grac": ["grac"],
    "iliopsoas": ["iliacus", "psoas"],
    "recfem": ["recfem"],
    "sart": ["sart"],
    "glmax": ["glmax1", "glmax2", "glmax3"],
    "bflh": ["bflh"],
    "hamstring": ["semimem", "semiten"],
    "glmed": ["glmed1", "glmed2", "glmed3"],
    "glmin": ["glmin1", "glmin2", "glmin3"],
    "tfl": ["tfl"],
    "piri": ["piri"],
}

PELVIS_ROTATIONS = ["pelvis_tilt", "pelvis_list", "pelvis_rotation"]
PELVIS_TRANSLATIONS = ["pelvis_tx", "pelvis_ty", "pelvis_tz"]
LEG_COORDS_ONE_SIDE = ["hip_flexion", "hip_adduction", "hip_rotation", "knee_angle",
                       "ankle_angle", "subtalar_angle", "mtp_angle"]
LEG_COORDINATES = [f"{c}_{s}" for s in ("r", "l") for c in LEG_COORDS_ONE_SIDE]
LUMBAR_COORDINATES = ["lumbar_extension", "lumbar_bending", "lumbar_rotation"]
HEADS = ("moments", "forces")
HEAD_UNITS = {"moments": "N*m/kg", "forces": "N/kg"}
HEAD_MASKS = {"moments": "id_valid", "forces": "so_valid"}


# --------------------------------------------------------------------------------------------
# output selection and labels
# --------------------------------------------------------------------------------------------
def _moving(records: Sequence[Any], coord: str, tol: float = 1e-4) -> bool:
    """True if ``coord`` is present in every record and actually moves (not locked)."""
    spans = []
    for r in records:
        if coord not in r.kinematics.columns:
            return False
        x = r.kinematics[coord].to_numpy(dtype=float)
        if not np.all(np.isfinite(x)):
            return False
        spans.append(float(np.ptp(x)))
    return bool(spans) and max(spans) > tol


def select_coordinates(records: Sequence[Any]) -> tuple[list[str], list[str], list[str]]:
    """Window-scheme input coordinates found in (all) ``records``.

    Returns
    -------
    rotational, translations, optional
        Required rotational coordinates (pelvis rotations + moving leg coordinates), pelvis
        translations present, optional coordinates (lumbar) present in the training data.
    """
    rot = [c for c in PELVIS_ROTATIONS + LEG_COORDINATES if _moving(records, c)]
    trans = [c for c in PELVIS_TRANSLATIONS if _moving(records, c)]
    opt = [c for c in LUMBAR_COORDINATES if _moving(records, c)]
    missing = [c for c in PAPER_ANGLES if c not in rot]
    if missing:
        raise InputError(f"training kinematics lack the joint angles {missing}",
                         hint="the surrogate needs hip, knee and ankle angles of both legs")
    return rot, trans, opt


def select_outputs(records: Sequence[Any], coordinates: Sequence[str]) -> tuple[list[str],
                                                                                list[str]]:
    """Output channels: lower-limb moments of moving coordinates, and all muscles.

    A moment is kept when its coordinate is a (moving) input coordinate and the column exists
    in every record; muscles are the force columns common to every record, in the order of the
    first record.
    """
    moments = []
    for c in LEG_COORDINATES:
        name = f"{c}_moment"
        if c in coordinates and all(name in r.moments.columns for r in records):
            moments.append(name)
    first = list(records[0].forces.columns)
    common = set(first)
    for r in records[1:]:
        common &= set(r.forces.columns)
    muscles = [m for m in first if m in common]
    return moments, muscles


def record_labels(record: Any, names: dict[str, Sequence[str]]) -> tuple[
        dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Mass-normalised labels and element masks of one record.

    Parameters
    ----------
    record
        A :class:`~opensim_surrogate.dataset.store.TrialRecord`.
    names
        ``{"moments": [...], "forces": [...]}``.

    Returns
    -------
    labels, masks
        ``{head: (T, C) float array}`` (per kg, NaN where invalid) and ``{head: (T, C) bool}``:
        the head's mask column (``id_valid`` / ``so_valid``) and a finite label.
    """
    labels, masks = {}, {}
    table = {"moments": record.moments, "forces": record.forces}
    for head, cols in names.items():
        df = table[head]
        y = df.reindex(columns=list(cols)).to_numpy(dtype=np.float64) / float(record.mass_kg)
        valid = record.mask[HEAD_MASKS[head]].to_numpy(dtype=bool)
        m = valid[:, None] & np.isfinite(y)
        labels[head] = np.where(m, y, np.nan)
        masks[head] = m
    return labels, masks


def hip_group_matrix(muscle_names: Sequence[str], side: str = "r") -> tuple[list[str],
                                                                          np.ndarray]:
    """(14, n_muscles) 0/1 matrix summing the parts of Gait2Hip-60's hip groups."""
    idx = {m: i for i, m in enumerate(muscle_names)}
    rows, names = [], []
    for g, parts in HIP_GROUPS.items():
        cols = [idx[f"{p}_{side}"] for p in parts if f"{p}_{side}" in idx]
        if not cols:
            continue
        row = np.zeros(len(muscle_names))
        row[cols] = 1.0
        rows.append(row)
        names.append(f"{g}_{side}")
    return names, np.array(rows).reshape(len(rows), len(muscle_names))


# --------------------------------------------------------------------------------------------
# window scheme features
# --------------------------------------------------------------------------------------------
@dataclass
class WindowFeatureSpec:
    """What :func:`window_features` computes (stored in a bundle's metadata).

    Attributes
    ----------
    coordinates : list of str
        Required rotational coordinates (radians).
    translations : list of str
        Pelvis translations used (metres): tx/tz as velocity + acceleration, ty as relative
        position + velocity + acceleration.
    optional_coordinates : list of str
        Used when present, otherwise filled with ``fill_values``.
    fill_values : dict
        Training mean of each optional coordinate (radians).
    use_height : bool
        Add the subject's height (m) as a constant channel.
    height_fill : float
        Training mean height, used when the height is unknown.
    use_mass : bool
        Add the subject's body mass (kg) as a constant channel (the targets are per kg, but
        the muscles' strength is not scaled with mass, so the per-kg forces depend on it).
    mass_fill : float
        Training mean mass (used only if a mass is missing).
    sample_rate : float
        Hz; inputs must be sampled at this rate.
    savgol_window, savgol_polyorder : int
        Savitzky-Golay differentiator settings.
    """

    coordinates: list[str]
    translations: list[str] = field(default_factory=list)
    optional_coordinates: list[str] = field(default_factory=list)
    fill_values: dict[str, float] = field(default_factory=dict)
    use_height: bool = True
    height_fill: float = 1.75
    use_mass: bool = False
    mass_fill: float = 70.0
    sample_rate: float = SAMPLE_RATE
    savgol_window: int = 9
    savgol_polyorder: int = 3

    @property
    def input_coordinates(self) -> list[str]:
        return list(self.coordinates) + list(self.translations)

    def feature_names(self) -> list[str]:
        names: list[str] = []
        for c in list(self.coordinates) + list(self.optional_coordinates):
            names += [c, f"{c}:vel", f"{c}:acc"]
        for c in self.translations:
            if c == "pelvis_ty":
                names += ["pelvis_ty:rel", "pelvis_ty:vel", "pelvis_ty:acc"]
            else:
                names += [f"{c}:vel", f"{c}:acc"]
        if self.use_height:
            names.append("height_m")
        if self.use_mass:
            names.append("mass_kg")
        return names

    def feature_units(self) -> list[str]:
        units = []
        for n in self.feature_names():
            if n == "mass_kg":
                units.append("kg")
                continue
            base, _, kind = n.partition(":")
            lin = base in PELVIS_TRANSLATIONS or base == "height_m"
            u = "m" if lin else "rad"
            units.append({"": u, "rel": u, "vel": f"{u}/s", "acc": f"{u}/s^2"}[kind])
        return units

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WindowFeatureSpec":
        return cls(**d)


def check_sample_rate(index: pd.Index, rate: float = SAMPLE_RATE, what: str = "kinematics"
                      ) -> None:
    """Raise :class:`InputError` unless ``index`` (seconds) is uniform at ``rate`` Hz (±2 %)."""
    t = np.asarray(index, dtype=float)
    if t.size < 2:
        raise InputError(f"{what} has {t.size} frame(s)", hint="give at least 0.3 s of motion")
    dt = np.diff(t)
    expected = 1.0 / rate
    if np.any(dt <= 0) or np.max(np.abs(dt - expected)) > 0.02 * expected:
        raise InputError(f"{what} is not sampled uniformly at {rate:g} Hz "
                         f"(time steps {dt.min():.4g}..{dt.max():.4g} s)",
                         hint=f"resample the coordinates to {rate:g} Hz first")


@lru_cache(maxsize=64)
def _savgol_operators(win: int, polyorder: int, deriv: int,
                      delta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear operators of a Savitzky-Golay derivative with scipy's ``mode="interp"``.

    Returns the interior kernel (``win``,), the first-edge matrix (``win // 2``, ``win``) and the
    last-edge matrix (``win // 2``, ``win``): a least-squares polynomial of order ``polyorder``
    over a window, differentiated ``deriv`` times and evaluated at the window centre (interior)
    or at the edge positions (first/last ``win // 2`` samples, fitted on the first/last window),
    exactly what ``scipy.signal.savgol_filter(..., mode="interp")`` computes. Kept in numpy so
    that predicting does not import ``scipy.signal`` (~0.8 s of cold start).
    """
    half = win // 2
    pos = np.arange(win, dtype=float) - half          # centred positions: better conditioning
    powers = np.arange(polyorder + 1)
    fit = np.linalg.pinv(pos[:, None] ** powers[None, :])   # (p+1, win): samples -> coefficients
    from math import factorial

    def evaluate(t: np.ndarray) -> np.ndarray:        # (len(t), p+1): d^deriv/dt^deriv of t**j
        out = np.zeros((len(t), polyorder + 1))
        for j in range(deriv, polyorder + 1):
            out[:, j] = factorial(j) / factorial(j - deriv) * t ** (j - deriv)
        return out / delta ** deriv

    kernel = (evaluate(np.array([0.0])) @ fit)[0]
    first = evaluate(pos[:half]) @ fit
    last = evaluate(pos[half + 1:]) @ fit
    return kernel, first, last


def savgol(x: np.ndarray, win: int, polyorder: int, deriv: int, delta: float) -> np.ndarray:
    """Savitzky-Golay filter along axis 0, equal to scipy's ``savgol_filter(mode="interp")``."""
    x = np.asarray(x, dtype=float)
    kernel, first, last = _savgol_operators(int(win), int(polyorder), int(deriv), float(delta))
    half = win // 2
    n = x.shape[0]
    out = np.empty_like(x)
    windows = np.lib.stride_tricks.sliding_window_view(x, win, axis=0)  # (n-win+1, ..., win)
    out[half:n - half] = windows @ kernel
    out[:half] = np.tensordot(first, x[:win], axes=(1, 0))
    out[n - half:] = np.tensordot(last, x[n - win:], axes=(1, 0))
    return out


def _savgol(x: np.ndarray, spec: WindowFeatureSpec, deriv: int) -> np.ndarray:
    win = spec.savgol_window
    if x.shape[0] < win:  # only reachable for very short inputs; keep an odd window
        win = max(spec.savgol_polyorder + 2 - (spec.savgol_polyorder % 2), x.shape[0] // 2 * 2 - 1)
    return savgol(x, win, spec.savgol_polyorder, deriv, 1.0 / spec.sample_rate)


def window_features(kinematics: pd.DataFrame, spec: WindowFeatureSpec,
                    height_m: float | None = None, mass_kg: float | None = None,
                    check_rate: bool = True) -> np.ndarray:
    """Raw (not z-scored) per-frame features of one trial, shape (T, n_features), float64.

    Parameters
    ----------
    kinematics
        One column per coordinate (radians / metres), time index in seconds at
        ``spec.sample_rate``.
    spec
        Which features.
    height_m
        Subject height; ``None``/NaN uses ``spec.height_fill``.
    mass_kg
        Subject mass (used if ``spec.use_mass``); ``None``/NaN uses ``spec.mass_fill``.

    Raises
    ------
    InputError
        Missing required coordinates, non-finite values, wrong sample rate, fewer than
        :data:`MIN_FRAMES` frames.
    """
    missing = [c for c in spec.input_coordinates if c not in kinematics.columns]
    if missing:
        raise InputError(f"kinematics lack the coordinate(s) {missing}", column=missing[0],
                         hint="give IK coordinates of the Rajagopal family (pelvis, hips, knees, "
                              "ankles), in radians")
    n = len(kinematics)
    if n < MIN_FRAMES:
        raise InputError(f"kinematics have {n} frames; at least {MIN_FRAMES} "
                         f"({MIN_FRAMES / spec.sample_rate:g} s) are needed",
                         hint="give a longer trial")
    if check_rate:
        check_sample_rate(kinematics.index, spec.sample_rate)
    cols = list(spec.coordinates) + list(spec.optional_coordinates)
    q = np.empty((n, len(cols)))
    for j, c in enumerate(cols):
        if c in kinematics.columns:
            q[:, j] = kinematics[c].to_numpy(dtype=float)
        else:
            q[:, j] = spec.fill_values.get(c, 0.0)
    bad = ~np.isfinite(q)
    if bad.any():
        j = int(np.argwhere(bad)[0][1])
        raise InputError("kinematics contain NaN/inf", column=cols[j],
                         hint="interpolate gaps before predicting")
    parts = [q, _savgol(q, spec, 1), _savgol(q, spec, 2)]
    # interleave value/vel/acc per coordinate
    rot = np.stack(parts, axis=2).reshape(n, -1)
    blocks = [rot]
    for c in spec.translations:
        x = kinematics[c].to_numpy(dtype=float)
        if not np.all(np.isfinite(x)):
            raise InputError("kinematics contain NaN/inf", column=c,
                             hint="interpolate gaps before predicting")
        v, a = _savgol(x, spec, 1), _savgol(x, spec, 2)
        if c == "pelvis_ty":
            blocks.append(np.stack([x - np.median(x), v, a], axis=1))
        else:
            blocks.append(np.stack([v, a], axis=1))
    if spec.use_height:
        h = spec.height_fill if height_m is None or not np.isfinite(height_m) else float(height_m)
        blocks.append(np.full((n, 1), h))
    if spec.use_mass:
        m = spec.mass_fill if mass_kg is None or not np.isfinite(mass_kg) else float(mass_kg)
        blocks.append(np.full((n, 1), m))
    return np.concatenate(blocks, axis=1)


def feature_columns(full: WindowFeatureSpec, sub: WindowFeatureSpec) -> list[int]:
    """Indices of ``sub``'s features among ``full``'s (``sub`` drops optional channels)."""
    names = full.feature_names()
    try:
        return [names.index(n) for n in sub.feature_names()]
    except ValueError as exc:
        raise InputError(f"feature not prepared: {exc}") from None


# --------------------------------------------------------------------------------------------
# cycle scheme
# --------------------------------------------------------------------------------------------
def cycle_times(start: float, end: float, n: int = CYCLE_SAMPLES) -> np.ndarray:
    """The ``n`` sample times of a cycle from ``start`` to ``end`` inclusive."""
    return np.linspace(float(start), float(end), n)


def resample_table(t_src: np.ndarray, values: np.ndarray, t_new: np.ndarray,
                   mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Linear resampling of (T, C) ``values`` at ``t_new``; NaN-aware.

    A new sample is valid only if both neighbouring source frames are valid (``mask`` and
    finite); invalid samples are NaN. Returns ``(values, mask)``.
    """
    values = np.asarray(values, dtype=float)
    ok = np.isfinite(values) if mask is None else (np.asarray(mask, bool) & np.isfinite(values))
    filled = np.where(ok, values, 0.0)
    out = np.empty((len(t_new), values.shape[1]))
    okf = np.empty((len(t_new), values.shape[1]))
    for j in range(values.shape[1]):
        out[:, j] = np.interp(t_new, t_src, filled[:, j])
        okf[:, j] = np.interp(t_new, t_src, ok[:, j].astype(float))
    m = okf > 1.0 - 1e-9
    return np.where(m, out, np.nan), m


def cycle_inputs(kinematics: pd.DataFrame, start: float, end: float,
                 n: int = CYCLE_SAMPLES) -> np.ndarray:
    """(n, 10) paper inputs (degrees) of one cycle; raises :class:`InputError` if angles lack."""
    missing = [c for c in PAPER_ANGLES if c not in kinematics.columns]
    if missing:
        raise InputError(f"kinematics lack the joint angle(s) {missing}", column=missing[0],
                         hint="the cycle scheme needs hip/knee/ankle angles of both legs")
    t = np.asarray(kinematics.index, dtype=float)
    x = np.rad2deg(kinematics[PAPER_ANGLES].to_numpy(dtype=float))
    vals, ok = resample_table(t, x, cycle_times(start, end, n))
    if not ok.all():
        raise InputError("kinematics contain NaN/inf inside the gait cycle",
                         hint="interpolate gaps before predicting")
    return vals


# --------------------------------------------------------------------------------------------
# normalisation
# --------------------------------------------------------------------------------------------
@dataclass
class Normalizer:
    """Per-channel z-score ``(x - mean) / std`` (statistics of training frames)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, arrays: Iterable[np.ndarray], masks: Iterable[np.ndarray] | None = None,
            min_std: float = 1e-6) -> "Normalizer":
        """Fit on the (masked, finite) rows of (T, C) arrays."""
        arrays = list(arrays)
        masks = list(masks) if masks is not None else [np.isfinite(a) for a in arrays]
        x = np.concatenate(arrays, axis=0)
        m = np.concatenate(masks, axis=0) & np.isfinite(x)
        cnt = m.sum(axis=0)
        xs = np.where(m, x, 0.0)
        mean = xs.sum(axis=0) / np.maximum(cnt, 1)
        var = (np.where(m, x - mean, 0.0) ** 2).sum(axis=0) / np.maximum(cnt - 1, 1)
        std = np.sqrt(var)
        std = np.where(std > min_std, std, 1.0)  # constant channel (e.g. one height): scale 1
        return cls(mean=mean.astype(np.float64), std=std.astype(np.float64))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return z * self.std + self.mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Normalizer":
        return cls(mean=np.asarray(d["mean"], dtype=np.float64),
                   std=np.asarray(d["std"], dtype=np.float64))

    @classmethod
    def identity(cls, n: int) -> "Normalizer":
        return cls(mean=np.zeros(n), std=np.ones(n))


# --------------------------------------------------------------------------------------------
# sliding windows
# --------------------------------------------------------------------------------------------
def window_starts(n: int, length: int, stride: int) -> list[int]:
    """Start frames of overlapping windows covering ``n`` frames (last one flush with the end)."""
    if n <= length:
        return [0]
    starts = list(range(0, n - length + 1, max(1, stride)))
    if starts[-1] != n - length:
        starts.append(n - length)
    return starts


def blend_weights(length: int) -> np.ndarray:
    """Centre-heavy (Hann) blending weights of one window, strictly positive."""
    w = np.hanning(length + 2)[1:-1]
    return np.maximum(w, 1e-3)


def make_windows(features: Sequence[np.ndarray], length: int, stride: int
                 ) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Cut every (T_i, F) feature array into windows of ``length``.

    A sequence shorter than ``length`` is padded by reflection on both sides.

    Returns
    -------
    windows
        (N, length, F) array.
    index
        For each window: (sequence number, start frame in the sequence, pad_before, n_frames
        of the sequence covered by it).
    """
    wins, index = [], []
    for i, f in enumerate(features):
        n = f.shape[0]
        if n < length:
            before = (length - n) // 2
            padded = np.pad(f, ((before, length - n - before), (0, 0)), mode="reflect")
            wins.append(padded)
            index.append((i, 0, before, n))
            continue
        for s in window_starts(n, length, stride):
            wins.append(f[s:s + length])
            index.append((i, s, 0, length))
    return np.stack(wins).astype(np.float32), index


def blend_windows(outputs: np.ndarray, index: Sequence[tuple[int, int, int, int]],
                  lengths: Sequence[int]) -> list[np.ndarray]:
    """Blend (N, length, C) window outputs back into per-sequence (T_i, C) arrays."""
    length = outputs.shape[1]
    w = blend_weights(length)
    acc = [np.zeros((n, outputs.shape[2])) for n in lengths]
    wsum = [np.zeros((n, 1)) for n in lengths]
    for k, (i, s, before, cover) in enumerate(index):
        o = outputs[k, before:before + cover]
        # a padded short sequence has exactly one window: plain crop, no blending
        ww = np.ones((cover, 1)) if cover < length else w[:, None]
        acc[i][s:s + cover] += ww * o
        wsum[i][s:s + cover] += ww
    return [a / ws for a, ws in zip(acc, wsum)]


def predict_sequences(forward: Callable[[np.ndarray], dict[str, np.ndarray]],
                      features: Sequence[np.ndarray], length: int, stride: int,
                      max_batch: int = 512) -> list[dict[str, np.ndarray]]:
    """Predict every (T_i, F) normalised feature sequence with overlapping windows.

    ``forward`` maps an (N, length, F) float32 batch to ``{head: (N, length, C)}``. All windows
    of all sequences go through it in batches of ``max_batch`` (one pass for typical inputs).
    """
    wins, index = make_windows(features, length, stride)
    outs: dict[str, list[np.ndarray]] = {}
    for b in range(0, len(wins), max_batch):
        res = forward(wins[b:b + max_batch])
        for k, v in res.items():
            outs.setdefault(k, []).append(v)
    lengths = [f.shape[0] for f in features]
    blended = {k: blend_windows(np.concatenate(v, axis=0), index, lengths)
               for k, v in outs.items()}
    return [{k: blended[k][i] for k in blended} for i in range(len(features))]


# --------------------------------------------------------------------------------------------
# sides
# --------------------------------------------------------------------------------------------
def swap_side(name: str) -> str:
    """The other side's name of a sided channel (``hip_flexion_r_moment`` <->
    ``hip_flexion_l_moment``, ``glmax1_r`` <-> ``glmax1_l``); unsided names are returned as is."""
    for a, b in (("_r", "_l"), ("_l", "_r")):
        if name.endswith(a):
            return name[: -len(a)] + b
        if f"{a}_" in name:
            head, _, tail = name.rpartition(f"{a}_")
            return f"{head}{b}_{tail}"
    return name


def side_of(name: str) -> str | None:
    """``"r"``, ``"l"`` or ``None`` for a channel name."""
    s = swap_side(name)
    if s == name:
        return None
    return "r" if (name.endswith("_r") or "_r_" in name) else "l"


def swap_permutation(names: Sequence[str]) -> np.ndarray | None:
    """Index array ``perm`` with ``names[perm[j]] == swap_side(names[j])``; None if incomplete.

    Used by the cycle scheme: the paper's inputs (hip/knee/ankle angles) and our outputs (leg
    moments, muscles) have identical anatomical conventions on both sides, so a LEFT gait cycle
    is a right one with the sides' channels exchanged.
    """
    idx = {n: i for i, n in enumerate(names)}
    perm = []
    for n in names:
        j = idx.get(swap_side(n))
        if j is None:
            return None
        perm.append(j)
    return np.asarray(perm, dtype=int)
