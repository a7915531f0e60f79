"""Sequence-to-sequence regressors standing in for OpenSim ID and SO.

Three architectures with one interface (:class:`~.base.SequenceRegressor`): ``"lstm"``,
``"transformer"`` and ``"mamba"`` (pure-PyTorch selective scan), all CPU-friendly.

>>> from opensim_surrogate.models import build_model
>>> m = build_model("transformer", n_inputs=40, head_sizes={"moments": 10, "forces": 80})
>>> out = m(torch.zeros(2, 64, 40))   # doctest: +SKIP
>>> out["moments"].shape              # doctest: +SKIP
torch.Size([2, 64, 10])
"""
from __future__ import annotations

from .base import (ARCHITECTURES, SequenceRegressor, build_model, default_hyperparameters,
                   mc_dropout)
from .lstm import LSTMRegressor
from .mamba import MambaRegressor, compiled_scan, selective_scan, selective_scan_chunked
from .transformer import TransformerRegressor

__all__ = ["ARCHITECTURES", "SequenceRegressor", "build_model", "default_hyperparameters",
           "mc_dropout", "LSTMRegressor", "TransformerRegressor", "MambaRegressor",
           "selective_scan", "selective_scan_chunked", "compiled_scan"]
