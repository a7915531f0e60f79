"""Transformer-encoder regressor (Gait2Hip-60: d_model 128, 2 layers, 4 heads, FF 256,
dropout 0.1, learned positions)."""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .base import SequenceRegressor, init_linear, register


class EncoderBlock(nn.Module):
    """Self-attention + feed-forward block (pre-norm by default).

    Written out instead of ``nn.TransformerEncoderLayer`` so that inference never takes
    PyTorch's fused "fast path" (which ignores dropout modules put in training mode, breaking
    Monte-Carlo dropout) and so the computation is the same in every mode.
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float,
                 norm_first: bool) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not a multiple of n_heads {n_heads}")
        self.n_heads = n_heads
        self.norm_first = norm_first
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.drop_attn = nn.Dropout(dropout)
        self.drop_ff = nn.Dropout(dropout)
        self.drop_res1 = nn.Dropout(dropout)
        self.drop_res2 = nn.Dropout(dropout)

    def _attn(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(
            2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        att = self.drop_attn(att.softmax(dim=-1))
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        return self.drop_res1(self.proj(y))

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop_res2(self.ff2(self.drop_ff(F.relu(self.ff1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self._attn(self.norm1(x))
            return x + self._ff(self.norm2(x))
        x = self.norm1(x + self._attn(x))
        return self.norm2(x + self._ff(x))


@register
class TransformerRegressor(SequenceRegressor):
    """Linear embedding + learned positional embedding + encoder blocks + linear heads.

    Parameters
    ----------
    d_model, n_layers, n_heads, d_ff, dropout
        Gait2Hip-60: 128, 2, 4, 256, 0.1.
    max_len
        Longest sequence (learned positions): 180 for gait cycles, the window length for the
        window scheme. Longer inputs are refused.
    norm_first
        Pre-norm blocks (default True; trains more stably on small data than post-norm).
    """

    arch = "transformer"
    DEFAULTS: dict[str, Any] = {"d_model": 128, "n_layers": 2, "n_heads": 4, "d_ff": 256,
                                "dropout": 0.1, "max_len": 180, "norm_first": True}

    def __init__(self, n_inputs: int, head_sizes: Mapping[str, int], d_model: int = 128,
                 n_layers: int = 2, n_heads: int = 4, d_ff: int = 256, dropout: float = 0.1,
                 max_len: int = 180, norm_first: bool = True) -> None:
        super().__init__(n_inputs, head_sizes, dropout)
        self._hp.update(d_model=int(d_model), n_layers=int(n_layers), n_heads=int(n_heads),
                        d_ff=int(d_ff), max_len=int(max_len), norm_first=bool(norm_first))
        self.embed = nn.Linear(n_inputs, d_model)
        self.pos = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        self.drop_in = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(EncoderBlock(d_model, n_heads, d_ff, dropout, norm_first)
                                    for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self._make_heads(d_model)
        self.apply(init_linear)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if t > self.pos.shape[0]:
            raise ValueError(f"sequence of {t} frames is longer than max_len "
                             f"{self.pos.shape[0]} of this Transformer")
        h = self.drop_in(self.embed(x) + self.pos[:t])
        for blk in self.blocks:
            h = blk(h)
        return self.norm(h)
