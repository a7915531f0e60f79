"""opensim-surrogate: millisecond neural stand-ins for OpenSim inverse dynamics and
static optimization, with the real OpenSim pipeline that trains and validates them.

>>> import opensim_surrogate as surrogate
>>> res = surrogate.run("trial.mot", model="subject.osim")   # doctest: +SKIP
>>> res.moments, res.forces                                   # doctest: +SKIP
"""
from __future__ import annotations

import logging

from ._version import __version__
from .errors import SurrogateError

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__", "SurrogateError"]


def __getattr__(name: str):  # lazy: keep `import opensim_surrogate` light (no torch/opensim)
    if name in {"run", "InverseDynamicsTool", "AnalyzeTool", "SurrogateResult"}:
        from . import surrogate as _s

        return getattr(_s, name)
    raise AttributeError(f"module 'opensim_surrogate' has no attribute {name!r}")
