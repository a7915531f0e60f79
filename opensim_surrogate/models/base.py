"""Common interface of the sequence-to-sequence regressors.

Every architecture maps a batch of input sequences ``x`` of shape ``(batch, time, n_inputs)``
to one output sequence per *head*: ``{"moments": (batch, time, n_moments), "forces": (batch,
time, n_forces)}``. The time length is free (up to ``max_len`` for the Transformer, whose
positions are learned). All run on CPU with plain PyTorch.

Moments and forces are two linear heads on one shared trunk. Static optimization distributes
the joint moments over the muscles, so the forces are (nonlinear) functions of the same
kinematic state the moments are; sharing the trunk halves training and inference cost, and the
two heads keep their own masks (``id_valid`` / ``so_valid``) and loss terms.

Build a model with :func:`build_model`; :meth:`SequenceRegressor.config` returns everything
needed to rebuild it (stored in a bundle's ``metadata.json``).
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

import torch
from torch import nn

#: architecture name -> class (filled by the modules of this package)
ARCHITECTURES: dict[str, type["SequenceRegressor"]] = {}


def register(cls: type["SequenceRegressor"]) -> type["SequenceRegressor"]:
    ARCHITECTURES[cls.arch] = cls
    return cls


class SequenceRegressor(nn.Module):
    """Base class: input -> trunk (``encode``) -> dropout -> one linear head per output group.

    Parameters
    ----------
    n_inputs
        Input channels per frame.
    head_sizes
        ``{head name: output channels}``, e.g. ``{"moments": 10, "forces": 80}``.
    dropout
        Dropout probability (also what Monte-Carlo dropout samples).
    """

    arch: ClassVar[str] = ""
    #: hyper-parameter defaults of the architecture (Gait2Hip-60's)
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, n_inputs: int, head_sizes: Mapping[str, int], dropout: float = 0.1
                 ) -> None:
        super().__init__()
        self.n_inputs = int(n_inputs)
        self.head_sizes = {str(k): int(v) for k, v in head_sizes.items()}
        self.dropout_p = float(dropout)
        self._hp: dict[str, Any] = {"dropout": float(dropout)}

    def _make_heads(self, d_out: int) -> None:
        self.out_dropout = nn.Dropout(self.dropout_p)
        self.heads = nn.ModuleDict({k: nn.Linear(d_out, v) for k, v in self.head_sizes.items()})

    def encode(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x`` (batch, time, n_inputs) -> ``{head: (batch, time, n_outputs)}``."""
        if x.dim() != 3 or x.shape[-1] != self.n_inputs:
            raise ValueError(f"expected input (batch, time, {self.n_inputs}), got "
                             f"{tuple(x.shape)}")
        h = self.out_dropout(self.encode(x))
        return {k: head(h) for k, head in self.heads.items()}

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return dict(self._hp)

    def config(self) -> dict[str, Any]:
        """Everything :func:`build_model` needs to rebuild this model (JSON-friendly)."""
        return {"arch": self.arch, "n_inputs": self.n_inputs, "head_sizes": dict(self.head_sizes),
                "hyperparameters": self.hyperparameters}

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def default_hyperparameters(arch: str) -> dict[str, Any]:
    """Gait2Hip-60's hyper-parameters of ``arch`` (plus our ``bidirectional`` choice)."""
    return dict(_arch_class(arch).DEFAULTS)


def _arch_class(arch: str) -> type[SequenceRegressor]:
    from . import lstm, mamba, transformer  # noqa: F401  (registration)

    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}") from None


def build_model(arch: str, n_inputs: int, head_sizes: Mapping[str, int],
                **hyperparameters: Any) -> SequenceRegressor:
    """Instantiate ``arch`` (``"lstm"``, ``"transformer"`` or ``"mamba"``).

    Unknown hyper-parameter names raise :class:`TypeError` (a typo must not pass silently).
    """
    cls = _arch_class(arch)
    hp = dict(cls.DEFAULTS)
    unknown = set(hyperparameters) - set(hp)
    if unknown:
        raise TypeError(f"unknown hyper-parameter(s) for {arch}: {sorted(unknown)}; "
                        f"known: {sorted(hp)}")
    hp.update(hyperparameters)
    return cls(n_inputs, head_sizes, **hp)


@torch.no_grad()
def mc_dropout(model: SequenceRegressor, x: torch.Tensor, n_samples: int = 16,
               seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Monte-Carlo dropout: mean and standard deviation of ``n_samples`` stochastic passes.

    The batch is repeated ``n_samples`` times and sent through the model in ONE forward pass
    with only the dropout-carrying modules (``nn.Dropout``, and ``nn.LSTM`` for its dropout
    between layers) in training mode; normalisation layers stay in eval mode. The dropout
    masks are drawn from the global RNG forked and seeded with ``seed`` (``fork_rng``), so
    the result is reproducible and the caller's RNG state is restored afterwards.

    Returns
    -------
    dict
        ``{head: (mean, std)}``, each (batch, time, n_outputs).
    """
    was_training = model.training
    model.eval()
    drops = [m for m in model.modules()
             if isinstance(m, nn.Dropout) or (isinstance(m, nn.LSTM) and m.dropout > 0)]
    for m in drops:
        m.train()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            xb = x.repeat(n_samples, 1, 1)
            out = model(xb)
    finally:
        for m in drops:
            m.eval()
        model.train(was_training)
    res = {}
    for k, v in out.items():
        v = v.reshape(n_samples, x.shape[0], *v.shape[1:])
        res[k] = (v.mean(0), v.std(0, unbiased=True) if n_samples > 1 else torch.zeros_like(v[0]))
    return res


def init_linear(m: nn.Module) -> None:
    """Xavier-uniform init of a Linear layer's weights, zero bias."""
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


__all__ = ["ARCHITECTURES", "SequenceRegressor", "build_model", "default_hyperparameters",
           "mc_dropout", "register", "init_linear"]
