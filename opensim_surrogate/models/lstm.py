"""LSTM regressor (Gait2Hip-60: 2 layers, hidden 128)."""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from .base import SequenceRegressor, register


@register
class LSTMRegressor(SequenceRegressor):
    """Stacked LSTM over the frames, a linear head per output group.

    Parameters
    ----------
    hidden_size, num_layers
        Gait2Hip-60: 128 and 2.
    bidirectional
        Default True (our choice): the whole input window is available offline, and a frame's
        moments depend on the *following* frames too (accelerations, the coming contact); a
        forward-only LSTM sees only the past and is weakest at the start of a window.
    dropout
        Between the LSTM layers and before the heads.
    """

    arch = "lstm"
    DEFAULTS: dict[str, Any] = {"hidden_size": 128, "num_layers": 2, "bidirectional": True,
                                "dropout": 0.1}

    def __init__(self, n_inputs: int, head_sizes: Mapping[str, int], hidden_size: int = 128,
                 num_layers: int = 2, bidirectional: bool = True, dropout: float = 0.1) -> None:
        super().__init__(n_inputs, head_sizes, dropout)
        self._hp.update(hidden_size=int(hidden_size), num_layers=int(num_layers),
                        bidirectional=bool(bidirectional))
        self.lstm = nn.LSTM(n_inputs, hidden_size, num_layers=num_layers, batch_first=True,
                            bidirectional=bidirectional,
                            dropout=dropout if num_layers > 1 else 0.0)
        self._make_heads(hidden_size * (2 if bidirectional else 1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(x)
        return h
