"""Reference pipeline: real OpenSim Scale -> IK -> ID -> events -> SO for one trial.

Public entry points: :class:`~.config.ReferenceConfig`, :class:`~.pipeline.TrialSpec`,
:func:`~.pipeline.process_trial`. The tool wrappers live in :mod:`.tools`, gait events and
label validity in :mod:`.events`, left/right mirroring of tool inputs in :mod:`.mirror_inputs`.
Submodules import OpenSim lazily, so importing this package is cheap.
"""
from __future__ import annotations

__all__ = ["ReferenceConfig", "TrialSpec", "process_trial"]


def __getattr__(name: str):  # lazy re-exports (keep `import opensim` out of package import)
    if name == "ReferenceConfig":
        from .config import ReferenceConfig

        return ReferenceConfig
    if name in ("TrialSpec", "process_trial"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
