"""The user-facing runtime: ``run`` and the drop-in OpenSim tools.

* :func:`run` / :class:`Surrogate` (:mod:`.api`): kinematics -> joint moments and muscle
  forces, with per-frame uncertainty and an out-of-distribution check.
* :class:`SurrogateResult` (:mod:`.result`): the tables, warnings and ``write(out_dir)``
  producing OpenSim-layout ``.sto`` files (:mod:`.writers`).
* :class:`InverseDynamicsTool`, :class:`AnalyzeTool` (:mod:`.tools`): read OpenSim setup files,
  write where OpenSim would.
* :mod:`.inputs`: the input pipeline; :mod:`.select`: which bundle serves which model.
"""
from __future__ import annotations

from .api import Surrogate, run
from .result import SurrogateResult, WrittenFiles
from .tools import AnalyzeTool, InverseDynamicsTool, tool_for_setup

__all__ = ["run", "Surrogate", "SurrogateResult", "WrittenFiles", "InverseDynamicsTool",
           "AnalyzeTool", "tool_for_setup"]
