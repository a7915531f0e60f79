"""What ``surrogate.run`` returns: :class:`SurrogateResult`."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .writers import DEFAULT_PRECISION, write_id_sto, write_so_force_sto

log = logging.getLogger(__name__)

__all__ = ["SurrogateResult", "WrittenFiles", "id_file_name", "so_force_file_name"]


def id_file_name(trial: str) -> str:
    """``<trial>_id.sto``: the ID output name :meth:`SurrogateResult.write` uses."""
    return f"{trial}_id.sto"


def so_force_file_name(trial: str, analysis: str = "StaticOptimization") -> str:
    """``<trial>_<analysis>_force.sto``: AnalyzeTool's SO force file name."""
    return f"{trial}_{analysis}_force.sto"


@dataclass
class WrittenFiles:
    """Files written by :meth:`SurrogateResult.write`.

    Attributes
    ----------
    id : Path
        Generalized forces in OpenSim's ID layout.
    so_force : Path or None
        Muscle forces in OpenSim's SO force layout (None when the result has no forces).
    """

    id: Path
    so_force: Path | None = None

    def paths(self) -> list[Path]:
        return [p for p in (self.id, self.so_force) if p is not None]


@dataclass
class SurrogateResult:
    """Surrogate inverse dynamics + static optimization of one trial.

    All tables share the index: the input trial's own time stamps (s, named ``time``).

    Attributes
    ----------
    name : str
        Trial name (file stem; used for output file names).
    moments : pandas.DataFrame
        Joint moments ``<coordinate>_moment`` (N·m), in the convention of the user's model
        (or of the input when no model is given), columns in the model's multibody-tree order
        (the order of OpenSim's ID output).
    forces : pandas.DataFrame
        Muscle forces (N), one column per muscle of the model (ForceSet order). Empty (no
        columns) when no bundle was trained for the model's family; :attr:`warnings` says why.
    moments_std, forces_std : pandas.DataFrame or None
        Per-frame predictive standard deviation (same units and columns), None if uncertainty
        was not requested. How it is computed (ensemble / MC dropout) is recorded in
        :attr:`uncertainty_method`.
    ood : pandas.DataFrame
        Per-frame out-of-distribution check of the input kinematics: ``distance`` (distance to
        the training distribution stored in the bundle) and ``over`` (distance > threshold).
    ood_threshold : float
        Threshold of :attr:`ood`.
    warnings : list of str
        Human-readable warnings (out of distribution, extrapolated rate, units inferred, no
        muscle forces for this model family, ...).
    mass_kg : float
        Body mass used (kg).
    bundle : str
        Bundle used.
    model : Path or None
        The user's ``.osim``.
    source : Path or None
        The input file (None for a DataFrame).
    input_rate_hz : float
        Sampling rate of the input.
    in_degrees : bool
        Whether the input's rotational coordinates were in degrees.
    seconds : dict
        Wall-clock seconds: ``prepare`` (read, check, filter, resample), ``predict`` (this
        trial's share of the batched network call), ``total``.
    info : dict
        Anything else (lowpass applied, optional coordinates used/missing, ...).
    """

    name: str
    moments: pd.DataFrame
    forces: pd.DataFrame
    moments_std: pd.DataFrame | None = None
    forces_std: pd.DataFrame | None = None
    ood: pd.DataFrame = field(default_factory=pd.DataFrame)
    ood_threshold: float = float("nan")
    warnings: list[str] = field(default_factory=list)
    mass_kg: float = float("nan")
    bundle: str = ""
    model: Path | None = None
    source: Path | None = None
    input_rate_hz: float = float("nan")
    in_degrees: bool = False
    uncertainty_method: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ queries
    @property
    def time(self) -> np.ndarray:
        """The time stamps (s)."""
        return np.asarray(self.moments.index, dtype=float)

    @property
    def n_frames(self) -> int:
        return int(self.moments.shape[0])

    @property
    def duration_s(self) -> float:
        t = self.time
        return float(t[-1] - t[0]) if t.size else 0.0

    @property
    def has_forces(self) -> bool:
        return self.forces.shape[1] > 0

    @property
    def ood_fraction(self) -> float:
        """Fraction of frames whose kinematics are out of the training distribution."""
        if self.ood.empty or "over" not in self.ood:
            return float("nan")
        return float(np.mean(self.ood["over"].to_numpy(dtype=bool)))

    def summary(self) -> str:
        """One line: frames, duration, warnings."""
        n = len(self.warnings)
        return (f"{self.name}: {self.n_frames} frames, {self.duration_s:.2f} s, "
                f"{self.moments.shape[1]} moments, {self.forces.shape[1]} muscle forces, "
                f"{n} warning{'s' if n != 1 else ''}")

    # ------------------------------------------------------------------ output
    def write(self, out_dir: str | os.PathLike[str], *, id_file: str | None = None,
              so_force_file: str | None = None, precision: int = DEFAULT_PRECISION
              ) -> WrittenFiles:
        """Write the results where and how OpenSim's tools would.

        ``out_dir/<name>_id.sto`` in the InverseDynamicsTool layout and
        ``out_dir/<name>_StaticOptimization_force.sto`` in the AnalyzeTool
        StaticOptimization layout (see :mod:`.writers`); both read back with
        ``opensim.Storage`` / ``opensim.TimeSeriesTable``. The SO file is skipped (and a
        message logged) when the result has no muscle forces.

        Parameters
        ----------
        out_dir
            Folder (created if needed).
        id_file, so_force_file
            File names overriding the defaults (as OpenSim's ``output_gen_force_file`` /
            ``<tool name>_<analysis>_force.sto``).
        precision
            Digits after the decimal point (OpenSim's ``output_precision``, 8).

        Returns
        -------
        WrittenFiles
        """
        out = Path(out_dir)
        id_path = write_id_sto(self.moments, out / (id_file or id_file_name(self.name)),
                               precision=precision)
        so_path = None
        if self.has_forces:
            so_path = write_so_force_sto(
                self.forces, out / (so_force_file or so_force_file_name(self.name)),
                precision=precision)
        else:
            log.warning("%s: no muscle forces (see the result's warnings); %s not written",
                        self.name, so_force_file or so_force_file_name(self.name))
        return WrittenFiles(id=id_path, so_force=so_path)
