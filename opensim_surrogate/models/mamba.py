"""Mamba (selective state-space) regressor in pure PyTorch.

Gait2Hip-60: 2 blocks, d_model 128, state 16, conv 4, expand 2.

Why a scan of our own: the reference implementation (``mamba_ssm``) needs CUDA-only kernels
(``selective_scan_cuda``, ``causal_conv1d``) and does not install or run on a CPU-only machine.
The selective scan is a short recurrence, so we implement Mamba-1 exactly (Gu & Dao 2023,
Algorithm 2): input-dependent step ``dt``, ``B`` and ``C``; zero-order-hold discretisation
``Ā = exp(dt·A)``, ``B̄x ≈ dt·B·x``; ``h_t = Ā_t h_{t-1} + B̄_t x_t``, ``y_t = C_t·h_t + D x_t``.
The projections producing ``dt``, ``B``, ``C`` run over the whole sequence in parallel; only
the recurrence is a Python loop over time, on small (batch, d_inner, d_state) tensors — the
(batch, time, d_inner, d_state) discretisation is never materialised (on a 2-core CPU the
memory traffic of that tensor costs more than the arithmetic). Unlike chunked "parallel
scan" tricks based on cumulative products, the loop never divides by decays that underflow.
It is exact and deterministic, and autograd differentiates through it.

Training speed: on CPU the eager loop is bound by per-step elementwise work. With
:func:`compiled_scan` enabled (``TrainConfig.compile``), training passes use a chunked variant
(:func:`selective_scan_chunked`): the sequence is cut into chunks of :data:`CHUNK` steps (padded
at the end with ``dt = 0``, which leaves the state untouched and, the scan being causal, cannot
affect earlier outputs), and one chunk's recurrence is compiled once by ``torch.compile`` into
fused C++ loops (3-4x faster forward + backward; ~1 min of compilation per process, needs a C
compiler). Inference, and any failure to compile, uses the eager loop — the math is the same
(differences ~1e-6).

Blocks are bidirectional by default (a second mixer reads the sequence backwards, as in
Vision-Mamba / BiMamba): the regression is offline over a whole window and a frame's moments
depend on the following frames too.
"""
from __future__ import annotations

import contextlib
import logging
import math
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .base import SequenceRegressor, register

log = logging.getLogger(__name__)

#: Steps per compiled chunk of :func:`selective_scan_chunked`.
CHUNK = 16
_STATE: dict[str, Any] = {"enabled": False, "fn": None, "failed": False}


def selective_scan(u: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                   C: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """Sequential selective scan.

    Parameters
    ----------
    u, dt
        (batch, time, d_inner): input and positive step sizes.
    A
        (d_inner, d_state), negative real.
    B, C
        (batch, time, d_state).
    D
        (d_inner,) skip connection.

    Returns
    -------
    torch.Tensor
        (batch, time, d_inner).
    """
    b, t, d = u.shape
    # unbind once (its backward is one stack) instead of indexing per step (each index's
    # backward would write a full-size zero gradient)
    dtu = (dt * u).unsqueeze(-1).unbind(1)        # t x (b, d, 1)
    dts = dt.unsqueeze(-1).unbind(1)              # t x (b, d, 1)
    Bs = B.unsqueeze(1).unbind(2)                 # t x (b, 1, n)
    Cs = C.unsqueeze(-1).unbind(1)                # t x (b, n, 1)
    h = u.new_zeros(b, d, A.shape[1])
    ys = []
    for i in range(t):
        # per-step tensors stay small (batch x d_inner x d_state): materialising the whole
        # (batch, time, d_inner, d_state) discretisation costs far more in memory traffic
        h = torch.addcmul(dtu[i] * Bs[i], torch.exp(dts[i] * A), h)
        ys.append(torch.bmm(h, Cs[i]))
    return torch.cat(ys, dim=-1).transpose(1, 2) + u * D


def _scan_chunk(h: torch.Tensor, dtu: torch.Tensor, dts: torch.Tensor, Bc: torch.Tensor,
                Cc: torch.Tensor, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:data:`CHUNK` steps of the recurrence from state ``h`` (the unit torch.compile fuses)."""
    ys = []
    for i in range(CHUNK):
        h = torch.addcmul(dtu[:, i, :, None] * Bc[:, i, None, :],
                          torch.exp(dts[:, i, :, None] * A), h)
        ys.append(torch.bmm(h, Cc[:, i, :, None]))
    return h, torch.cat(ys, dim=-1).transpose(1, 2)


def selective_scan_chunked(u: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                           C: torch.Tensor, D: torch.Tensor, fn: Any = None) -> torch.Tensor:
    """Same result as :func:`selective_scan`, computed chunk by chunk with ``fn`` (default: the
    eager :func:`_scan_chunk`; training passes the compiled one)."""
    fn = fn or _scan_chunk
    b, t, d = u.shape
    pad = (-t) % CHUNK
    dtu = dt * u
    dts, Bp, Cp = dt, B, C
    if pad:  # dt = 0 on the padding: state unchanged, outputs discarded
        dtu, dts, Bp, Cp = (F.pad(x, (0, 0, 0, pad)) for x in (dtu, dt, B, C))
    h = u.new_zeros(b, d, A.shape[1])
    ys = []
    for c in range(0, t + pad, CHUNK):
        h, y = fn(h, dtu[:, c:c + CHUNK], dts[:, c:c + CHUNK], Bp[:, c:c + CHUNK],
                  Cp[:, c:c + CHUNK], A)
        ys.append(y)
    return torch.cat(ys, dim=1)[:, :t] + u * D


@contextlib.contextmanager
def compiled_scan(enabled: bool = True) -> Iterator[None]:
    """Within this context, training passes of Mamba use the compiled chunked scan."""
    old = _STATE["enabled"]
    _STATE["enabled"] = bool(enabled)
    try:
        yield
    finally:
        _STATE["enabled"] = old


def _scan(u: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
          D: torch.Tensor) -> torch.Tensor:
    if _STATE["enabled"] and not _STATE["failed"] and torch.is_grad_enabled():
        try:
            if _STATE["fn"] is None:
                _STATE["fn"] = torch.compile(_scan_chunk, fullgraph=True)
            return selective_scan_chunked(u, dt, A, B, C, D, _STATE["fn"])
        except Exception as exc:  # no compiler, unsupported platform: stay correct, go eager
            log.warning("compiled Mamba scan unavailable (%s); using the eager loop",
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            _STATE["failed"] = True
    return selective_scan(u, dt, A, B, C, D)


class MambaMixer(nn.Module):
    """One Mamba mixer (in-projection, causal depthwise conv, selective SSM, gated output)."""

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        d_inner = expand * d_model
        self.d_inner, self.d_state = d_inner, d_state
        self.dt_rank = math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner, bias=True)
        # dt initialised log-uniformly in [dt_min, dt_max] through the softplus bias (as Mamba)
        dt = torch.exp(torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min))
                       + math.log(dt_min))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)
                                            ).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        xz = self.in_proj(x)
        xs, z = xz.chunk(2, dim=-1)
        xs = self.conv(xs.transpose(1, 2))[..., :t].transpose(1, 2)   # causal
        xs = F.silu(xs)
        dbc = self.x_proj(xs)
        dt, Bm, Cm = torch.split(dbc, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        dt = F.softplus(self.dt_proj(dt))
        A = -torch.exp(self.A_log)
        y = _scan(xs, dt, A, Bm, Cm, self.D)
        return self.out_proj(y * F.silu(z))


class MambaBlock(nn.Module):
    """Residual block: ``x + dropout(mixer(norm(x)))`` (+ the backward mixer if bidirectional)."""

    def __init__(self, d_model: int, d_state: int, d_conv: int, expand: int, dropout: float,
                 bidirectional: bool) -> None:
        super().__init__()
        self.norm = nn.RMSNorm(d_model)
        self.fwd = MambaMixer(d_model, d_state, d_conv, expand)
        self.bwd = MambaMixer(d_model, d_state, d_conv, expand) if bidirectional else None
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        y = self.fwd(h)
        if self.bwd is not None:
            y = y + self.bwd(h.flip(1)).flip(1)
        return x + self.drop(y)


@register
class MambaRegressor(SequenceRegressor):
    """Linear embedding + Mamba blocks + RMSNorm + linear heads.

    Parameters
    ----------
    d_model, n_layers, d_state, d_conv, expand
        Gait2Hip-60: 128, 2, 16, 4, 2.
    bidirectional
        Default True (see the module docstring).
    dropout
        On the embedding, each block's output, and before the heads.
    """

    arch = "mamba"
    DEFAULTS: dict[str, Any] = {"d_model": 128, "n_layers": 2, "d_state": 16, "d_conv": 4,
                                "expand": 2, "bidirectional": True, "dropout": 0.1}

    def __init__(self, n_inputs: int, head_sizes: Mapping[str, int], d_model: int = 128,
                 n_layers: int = 2, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 bidirectional: bool = True, dropout: float = 0.1) -> None:
        super().__init__(n_inputs, head_sizes, dropout)
        self._hp.update(d_model=int(d_model), n_layers=int(n_layers), d_state=int(d_state),
                        d_conv=int(d_conv), expand=int(expand), bidirectional=bool(bidirectional))
        self.embed = nn.Linear(n_inputs, d_model)
        self.drop_in = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(MambaBlock(d_model, d_state, d_conv, expand, dropout,
                                               bidirectional) for _ in range(n_layers))
        self.norm = nn.RMSNorm(d_model)
        self._make_heads(d_model)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop_in(self.embed(x))
        for blk in self.blocks:
            h = blk(h)
        return self.norm(h)
