"""Validation of surrogate bundles against the real OpenSim outputs.

* :mod:`.compare` -- predictions on dataset trials, per-output / per-subject / per-condition
  metrics, gait-cycle curves, peaks, Bland–Altman, the Gait2Hip-60 comparison table;
* :mod:`.figures` -- the report's figures (PNG);
* :mod:`.report` -- :func:`run_validation` and :func:`write_report` (``report.md`` and a
  self-contained ``report.html``); the ``opensim-surrogate validate`` command;
* :mod:`.physics` -- the moment-balance check Σ F·r (+ reserve) vs joint moment with
  OpenSim moment arms.

Submodules import OpenSim, torch and matplotlib lazily.
"""
from __future__ import annotations

__all__ = ["run_validation", "write_report", "physics_check"]


def __getattr__(name: str):  # lazy re-exports
    if name in ("run_validation", "write_report"):
        from . import report

        return getattr(report, name)
    if name == "physics_check":
        from .physics import physics_check

        return physics_check
    raise AttributeError(name)
