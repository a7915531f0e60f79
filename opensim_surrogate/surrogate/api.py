"""``surrogate.run``: OpenSim inverse dynamics + static optimization in milliseconds.

>>> import opensim_surrogate as surrogate
>>> res = surrogate.run("trial.mot", model="subject.osim")      # doctest: +SKIP
>>> res.moments, res.forces, res.warnings                       # doctest: +SKIP
>>> res.write("out/")                                           # doctest: +SKIP

:func:`run` is a thin wrapper over :class:`Surrogate`, which keeps the model, mass and bundle
for many trials (the CLI and the drop-in tools use it directly).

Per trial: :func:`~.inputs.prepare_trial` (read, check, radians, bundle convention, 6 Hz
low-pass, 100 Hz) -> ``Bundle.predict`` / ``Bundle.predict_many`` (N·m and N, with a per-frame
standard deviation) and ``Bundle.ood`` (distance of each frame's kinematics to the training
distribution) -> moments mapped back to the user's convention -> everything interpolated back
to the input's own time stamps.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from ..errors import BundleNotFoundError, ConventionError, InputError
from .inputs import PreparedTrial, prepare_trial, to_times, unique_names
from .result import SurrogateResult
from .select import BundleChoice, ConventionMap, choose_bundle, convention_map
from .writers import id_column_order, so_column_order

log = logging.getLogger(__name__)

__all__ = ["run", "Surrogate", "OOD_WARN_FRACTION", "MASS_RANGE_KG", "THREADS_ENV",
           "inference_threads"]

#: Warn when more than this fraction of a trial's frames are out of distribution (used only
#: when the bundle's ``OODResult`` has no ``is_ood`` decision of its own).
OOD_WARN_FRACTION = 0.05
#: Plausible body masses (kg); outside -> InputError.
MASS_RANGE_KG = (15.0, 300.0)
#: |model mass - mass_kg| / mass_kg above which a warning is given.
_MASS_MISMATCH = 0.05



#: Environment variable: torch threads used for inference (default 1).
THREADS_ENV = "OPENSIM_SURROGATE_THREADS"


@contextlib.contextmanager
def inference_threads() -> Iterator[None]:
    """Run torch with ``$OPENSIM_SURROGATE_THREADS`` (default 1) threads inside, then restore.

    The networks are small: one thread predicts a gait trial in tens of milliseconds, while
    several intra-op threads on a busy machine spin-wait for each other and can take seconds.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        yield
        return
    try:
        want = max(1, int(os.environ.get(THREADS_ENV, "1")))
    except ValueError:
        want = 1
    before = torch.get_num_threads()
    torch.set_num_threads(want)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _uncertainty_method(md: dict) -> str:
    u = md.get("uncertainty", md.get("uncertainty_method", ""))
    if isinstance(u, dict):
        text = str(u.get("method", ""))
        if u.get("samples"):
            text += f" ({u['samples']} samples)"
        return text
    return str(u or "")


def _read_model(model: Any):
    from ..osim.model import ModelInfo, read_model

    if model is None or isinstance(model, ModelInfo):
        return model
    if isinstance(model, (str, os.PathLike)):
        return read_model(model)
    raise InputError(f"model must be a .osim path, not {type(model).__name__}", column="model")


def _check_mass(mass: float, what: str) -> float:
    try:
        m = float(mass)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number, not {mass!r}", column="mass_kg") from None
    lo, hi = MASS_RANGE_KG
    if not math.isfinite(m) or not lo <= m <= hi:
        raise InputError(f"{what} = {mass!r} kg is not a plausible body mass", column="mass_kg",
                         hint=f"give the subject's mass in kg ({lo:g}..{hi:g})")
    return m


def _as_frame(x: Any, index: pd.Index, columns: Sequence[str] | None = None) -> pd.DataFrame | None:
    if x is None:
        return None
    if isinstance(x, pd.DataFrame):
        df = x.copy()
        if len(df) == len(index):
            df.index = index
        return df
    arr = np.asarray(x, dtype=float)
    return pd.DataFrame(arr, index=index, columns=list(columns or []))


class Surrogate:
    """A model + mass + bundle, ready to run many trials.

    Parameters
    ----------
    model
        The subject's ``.osim`` (or a ``ModelInfo``). Gives the mass, the sign conventions,
        the model family (bundle choice), the muscles and the output column order.
    mass_kg
        Body mass (kg); required without ``model``, overrides the model's total mass.
    height_m
        Subject height (m), if known (some bundles use it).
    bundle
        Bundle name / folder / loaded ``Bundle``; default: chosen from the model
        (:func:`~.select.choose_bundle`).
    uncertainty
        Compute the per-frame standard deviation (``moments_std``, ``forces_std``).
    lowpass_hz
        Low-pass cut-off applied to the coordinates (6 Hz, as the reference pipeline that
        produced the training labels); None: the input is already filtered.

    Raises
    ------
    InputError
        No mass (neither model nor ``mass_kg``), implausible mass.
    ModelFileError, MissingFileError
        Unreadable model.
    BundleNotFoundError
        No bundle can serve this model.
    """

    def __init__(self, model: Any = None, *, mass_kg: float | None = None,
                 height_m: float | None = None, bundle: Any = None, uncertainty: bool = True,
                 lowpass_hz: float | None = 6.0) -> None:
        t0 = time.perf_counter()
        self.model = _read_model(model)
        self.warnings: list[str] = []
        if mass_kg is not None:
            self.mass_kg = _check_mass(mass_kg, "mass_kg")
            if self.model is not None:
                mm = float(self.model.total_mass)
                if abs(mm - self.mass_kg) > _MASS_MISMATCH * self.mass_kg:
                    self.warnings.append(
                        f"mass_kg={self.mass_kg:g} differs from the model's total mass "
                        f"{mm:.1f} kg; using mass_kg")
        elif self.model is not None:
            self.mass_kg = _check_mass(self.model.total_mass,
                                       f"the total mass of {Path(self.model.path).name}")
        else:
            raise InputError("no body mass: give model= (a .osim) or mass_kg=",
                             column="mass_kg", hint="e.g. surrogate.run('trial.mot', mass_kg=72.5)")
        self.height_m = None if height_m is None else float(height_m)
        if self.height_m is not None and not (0.5 < self.height_m < 2.6):
            raise InputError(f"height_m = {height_m!r} m is not a plausible height",
                             column="height_m", hint="give the height in metres")
        self.choice: BundleChoice = choose_bundle(self.model, bundle)
        self.bundle = self.choice.bundle
        self.warnings += self.choice.warnings
        try:
            self.conventions: ConventionMap = convention_map(self.model, self.bundle)
        except ConventionError as exc:
            if self.choice.forces:
                raise
            raise BundleNotFoundError(
                f"no surrogate bundle for this model (family {self.model.family}) and its sign "
                f"conventions cannot be mapped to the bundle {self.choice.name!r}: {exc.message}",
                path=self.model.path, hint=exc.hint) from None
        if self.conventions.flipped:
            log.info("model %s: signs of %s differ from the bundle's convention (mapped)",
                     getattr(self.model, "path", ""), ", ".join(self.conventions.flipped))
        self.uncertainty = bool(uncertainty)
        self.lowpass_hz = lowpass_hz
        self.required = list(getattr(self.bundle, "input_coordinates", []))
        self.optional = [c for c in getattr(self.bundle, "optional_coordinates", [])
                         if c not in self.required]
        self.rate_hz = float(getattr(self.bundle, "sample_rate", 100.0) or 100.0)
        self.setup_seconds = time.perf_counter() - t0
        for w in self.warnings:
            log.warning(w)

    # ------------------------------------------------------------------ steps
    @property
    def bundle_name(self) -> str:
        return self.choice.name

    def prepare(self, trial: Any, *, in_degrees: bool | None = None,
                time_range: tuple[float, float] | None = None,
                name: str | None = None) -> PreparedTrial:
        """Read, check and resample one trial (see :func:`~.inputs.prepare_trial`)."""
        hint = ("the bundle " + repr(self.bundle_name) + " needs " + ", ".join(self.required))
        return prepare_trial(trial, required=self.required, optional=self.optional,
                             model=self.model, convert=self.conventions.kinematics,
                             rate_hz=self.rate_hz, lowpass_hz=self.lowpass_hz,
                             in_degrees=in_degrees, time_range=time_range, name=name, hint=hint)

    def _predict_raw(self, kins: list[pd.DataFrame]) -> list[Any]:
        b = self.bundle
        with inference_threads():
            if len(kins) == 1 or not hasattr(b, "predict_many"):
                return [b.predict(k, self.mass_kg, height_m=self.height_m,
                                  uncertainty=self.uncertainty) for k in kins]
            return list(b.predict_many(kins, [self.mass_kg] * len(kins),
                                       [self.height_m] * len(kins),
                                       uncertainty=self.uncertainty))

    def _ood(self, kin: pd.DataFrame, pred: Any) -> tuple[pd.DataFrame, float, str | None]:
        res = getattr(pred, "ood", None)  # computed with the prediction (same features)
        if res is None:
            with inference_threads():
                res = self.bundle.ood(kin, height_m=self.height_m, mass_kg=self.mass_kg)
        dist = np.asarray(getattr(res, "distance", []), dtype=float).reshape(-1)
        thr = float(getattr(res, "threshold", float("nan")))
        if dist.shape[0] != len(kin):
            log.debug("OOD distances (%d) do not match frames (%d)", dist.shape[0], len(kin))
            return pd.DataFrame(index=kin.index), thr, None
        df = pd.DataFrame({"distance": dist}, index=kin.index)
        frac = float(np.mean(dist > thr)) if math.isfinite(thr) else float("nan")
        frac = float(getattr(res, "fraction_over", frac))
        flagged = getattr(res, "is_ood", None)
        if not isinstance(flagged, bool):
            flagged = frac > OOD_WARN_FRACTION
        msg = None
        if flagged:
            msg = (f"out of distribution: the input kinematics of {frac:.0%} of the frames are "
                   f"farther from the bundle's training data than the threshold "
                   f"(distance up to {np.nanmax(dist):.3g} vs {thr:.3g}); the bundle "
                   f"{self.bundle_name!r} was trained on "
                   f"{self._training_description()} — treat these results with caution")
        return df, thr, msg

    def _training_description(self) -> str:
        md = getattr(self.bundle, "metadata", {}) or {}
        for key in ("training_description", "description"):
            v = md.get(key)
            if isinstance(v, str) and v:
                return v
        training = md.get("training") if isinstance(md.get("training"), dict) else {}
        if "schreiber" in str(training.get("dataset", "")):
            return "healthy overground walking (schreiber2019)"
        return "walking data"

    def _finish(self, p: PreparedTrial, pred: Any, t_prepare: float, t_predict: float
                ) -> SurrogateResult:
        t0 = time.perf_counter()
        grid = p.kinematics.index
        warnings = list(self.warnings) + list(p.warnings)
        mom = _as_frame(pred.moments, grid, getattr(self.bundle, "moment_names", None))
        mom_std = _as_frame(getattr(pred, "moments_std", None), grid, list(mom.columns))
        if self.conventions.moments is not None:
            mom = self.conventions.moments(mom)  # std is a magnitude: sign-free
        order = id_column_order(mom.columns, self.model)
        mom = to_times(mom[order], p.times)
        mom_std = to_times(mom_std[order], p.times, nonnegative=True) if mom_std is not None else None
        if self.choice.forces:
            frc = _as_frame(pred.forces, grid, getattr(self.bundle, "muscle_names", None))
            frc_std = _as_frame(getattr(pred, "forces_std", None), grid, list(frc.columns))
            cols = so_column_order([m for m in self.choice.muscles if m in frc.columns],
                                   self.model)
            frc = to_times(frc[cols], p.times, nonnegative=True)
            frc_std = (to_times(frc_std[cols], p.times, nonnegative=True)
                       if frc_std is not None else None)
        else:
            frc = pd.DataFrame(index=pd.Index(p.times, name="time"))
            frc_std = pd.DataFrame(index=pd.Index(p.times, name="time")) if self.uncertainty else None
        ood_grid, thr, msg = self._ood(p.kinematics, pred)
        if msg:
            warnings.append(f"{p.name}: {msg}")
        if "distance" in ood_grid:
            d = np.interp(p.times, np.asarray(ood_grid.index, float),
                          ood_grid["distance"].to_numpy(float))
            ood = pd.DataFrame({"distance": d, "over": d > thr},
                               index=pd.Index(p.times, name="time"))
        else:
            ood = pd.DataFrame(index=pd.Index(p.times, name="time"))
        for w in p.warnings + ([f"{p.name}: {msg}"] if msg else []):
            log.warning(w)
        t_post = time.perf_counter() - t0
        md = getattr(self.bundle, "metadata", {}) or {}
        return SurrogateResult(
            name=p.name, moments=mom, forces=frc, moments_std=mom_std if self.uncertainty else None,
            forces_std=frc_std if self.uncertainty else None, ood=ood, ood_threshold=thr,
            warnings=warnings, mass_kg=self.mass_kg, bundle=self.bundle_name,
            model=Path(self.model.path) if self.model is not None else None, source=p.source,
            input_rate_hz=p.input_rate_hz, in_degrees=p.in_degrees,
            uncertainty_method=_uncertainty_method(md),
            seconds={"prepare": t_prepare, "predict": t_predict, "post": t_post,
                     "total": t_prepare + t_predict + t_post},
            info={"lowpass_hz": p.lowpass_hz, "rate_hz": p.rate_hz,
                  "optional_used": p.used_optional, "optional_missing": p.missing_optional,
                  "sign_flipped": list(self.conventions.flipped),
                  "bundle_choice": self.choice.reason, "forces_predicted": self.choice.forces})

    def predict(self, prepared: Sequence[PreparedTrial],
                prepare_seconds: Sequence[float] | None = None) -> list[SurrogateResult]:
        """Predict prepared trials in one batched network call."""
        if not prepared:
            return []
        t0 = time.perf_counter()
        preds = self._predict_raw([p.kinematics for p in prepared])
        t_pred = (time.perf_counter() - t0) / len(prepared)
        ps = list(prepare_seconds or [0.0] * len(prepared))
        return [self._finish(p, pr, tp, t_pred) for p, pr, tp in zip(prepared, preds, ps)]

    def run(self, trials: Any, *, in_degrees: bool | None = None,
            time_range: tuple[float, float] | None = None, name: str | None = None
            ) -> SurrogateResult | list[SurrogateResult]:
        """Run one trial (file or DataFrame) or a list of them (batched).

        Returns a :class:`SurrogateResult` for one trial, a list for a list.
        """
        single = not isinstance(trials, (list, tuple))
        items = [trials] if single else list(trials)
        if not items:
            raise InputError("no trial given", hint="give a .mot file, a DataFrame or a list")
        files = [i for i, tr in enumerate(items) if isinstance(tr, (str, os.PathLike))]
        file_names = dict(zip(files, unique_names([items[i] for i in files])))
        prepared, secs = [], []
        for i, tr in enumerate(items):
            t0 = time.perf_counter()
            nm = name if single else file_names.get(i)
            if nm is None and isinstance(tr, pd.DataFrame) and not single:
                nm = str(tr.attrs.get("name", "") or f"trial{i + 1}")
            prepared.append(self.prepare(tr, in_degrees=in_degrees, time_range=time_range,
                                         name=nm))
            secs.append(time.perf_counter() - t0)
        results = self.predict(prepared, secs)
        return results[0] if single else results


def run(trial: Any, model: Any = None, *, mass_kg: float | None = None,
        height_m: float | None = None, bundle: Any = None, in_degrees: bool | None = None,
        uncertainty: bool = True, lowpass_hz: float | None = 6.0,
        time_range: tuple[float, float] | None = None, name: str | None = None
        ) -> SurrogateResult | list[SurrogateResult]:
    """Surrogate inverse dynamics and static optimization of a trial.

    Parameters
    ----------
    trial
        IK coordinates: a ``.mot``/``.sto`` path, a DataFrame (time index or ``time`` column),
        or a list of those (predicted in one batch; returns a list).
    model
        The subject's ``.osim``: mass, sign conventions, family (bundle choice), muscles.
    mass_kg
        Body mass (kg); required without ``model``, overrides the model's mass.
    height_m
        Subject height (m), optional.
    bundle
        Bundle name or folder (default: chosen from the model).
    in_degrees
        Rotational unit of a DataFrame input (files say it in their header); inferred from the
        magnitudes, with a warning, when not given.
    uncertainty
        Also return the per-frame standard deviation.
    lowpass_hz
        Low-pass cut-off for the coordinates (6 Hz like the reference); None if already
        filtered.
    time_range
        ``(start, end)`` s: only return frames in this range.
    name
        Trial name for a single input (default: the file stem, ``"trial"`` for a DataFrame).

    Returns
    -------
    SurrogateResult or list of SurrogateResult

    Raises
    ------
    SurrogateError subclasses
        Missing file, malformed table, missing required coordinate (named), NaN (column and
        time named), time not increasing, trial shorter than 0.3 s, no mass, no bundle for the
        model, ...
    """
    s = Surrogate(model, mass_kg=mass_kg, height_m=height_m, bundle=bundle,
                  uncertainty=uncertainty, lowpass_hz=lowpass_hz)
    return s.run(trial, in_degrees=in_degrees, time_range=time_range, name=name)
