"""Training protocol (Gait2Hip-60's, on our data).

1. **Split**: 20 % of the subjects are held out for testing, chosen by a seeded shuffle of the
   sorted subject ids (:func:`split_subjects`) — the same subjects for every model.
2. **Cross-validation**: 5-fold GroupKFold by subject on the remaining pool
   (:func:`group_kfold`); each fold trains with early stopping on its validation subjects
   (patience ``patience`` epochs, at most ``max_epochs``) and records its best epoch.
3. **Final model**: retrained on the whole pool for the median best epoch (no validation data
   touches it), then evaluated ONCE on the held-out subjects.

Everything is seeded (split, folds, initialisation, crops, dropout) and runs with a fixed number
of threads, so a rerun reproduces the numbers.

Loss: masked MSE — only entries whose mask (``id_valid`` for moments, ``so_valid`` for forces)
is True and whose label is finite count; the two heads' masked means are added. Targets are
mass-normalised (N·m/kg, N/kg); with ``target_scaling="standard"`` they are additionally
z-scored per channel with training statistics, so every channel weighs the same in the loss
(which is what the honest per-channel R² measures) — ``"none"`` is the paper's plain MSE.

Augmentation by mirroring: left/right mirrored copies of the training trials (same subject,
so never leaking across the split). Window scheme: through
``opensim_surrogate.dataset.mirror.mirror_record`` (or a function you pass); cycle scheme:
left gait cycles are right cycles with the sides' channels exchanged
(:func:`~.features.swap_permutation`).
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import DatasetError, InputError
from . import features as F
from .metrics import EvalTrial, Evaluation, evaluate

log = logging.getLogger(__name__)

MirrorFn = Callable[[Any], Any]


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass
class TrainConfig:
    """Hyper-parameters of one training run. Defaults are Gait2Hip-60's; see :data:`PRESETS`.

    Attributes
    ----------
    arch : str
        ``"lstm"``, ``"transformer"`` or ``"mamba"``.
    scheme : str
        ``"window"`` (runtime scheme) or ``"cycle"`` (paper's).
    hyperparameters : dict
        Architecture overrides (see :func:`~opensim_surrogate.models.default_hyperparameters`).
    lr, weight_decay, grad_clip, batch_size
        AdamW settings (paper: 1e-4, 1e-5, 0.5, 64).
    max_epochs, patience
        Early stopping (paper: 300, 30).
    window, stride
        Window scheme: training crop length and inference stride (frames at 100 Hz).
    crops_per_trial
        Random crops per training trial and epoch (window scheme).
    mirror
        Use left/right mirrored training data.
    use_height, use_mass
        Height / body mass as input channels (window scheme).
    target_scaling
        ``"standard"`` (per-channel z-score of the mass-normalised targets) or ``"none"``.
    seed, split_seed
        Training seed; seed of the subject split and folds.
    test_fraction, n_folds
        Held-out fraction of subjects; GroupKFold folds.
    threads
        ``torch.set_num_threads``.
    compile
        Mamba only: train with the ``torch.compile``-d chunked scan (3-4x faster on CPU; see
        :mod:`opensim_surrogate.models.mamba`). Does not change the model or its bundle.
    """

    arch: str = "transformer"
    scheme: str = "window"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    lr: float = 1e-4
    weight_decay: float = 1e-5
    grad_clip: float = 0.5
    batch_size: int = 64
    max_epochs: int = 300
    patience: int = 30
    window: int = 64
    stride: int = 16
    crops_per_trial: int = 4
    mirror: bool = True
    use_height: bool = True
    use_mass: bool = False
    target_scaling: str = "none"
    seed: int = 0
    split_seed: int = 0
    test_fraction: float = 0.2
    n_folds: int = 5
    threads: int = 2
    compile: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ("lstm", "transformer", "mamba"):
            raise InputError(f"unknown architecture {self.arch!r}",
                             hint="choose lstm, transformer or mamba")
        if self.scheme not in ("window", "cycle"):
            raise InputError(f"unknown input scheme {self.scheme!r}", hint="window or cycle")
        if self.target_scaling not in ("standard", "none"):
            raise InputError(f"unknown target scaling {self.target_scaling!r}",
                             hint="standard or none")
        if self.window < F.MIN_FRAMES:
            raise InputError(f"window {self.window} is shorter than {F.MIN_FRAMES} frames")

    def model_hyperparameters(self) -> dict[str, Any]:
        hp = dict(self.hyperparameters)
        if self.arch == "transformer":
            hp.setdefault("max_len", self.window if self.scheme == "window" else F.CYCLE_SAMPLES)
        return hp

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Named settings. ``paper``: Gait2Hip-60's exactly. ``small``: what our small dataset (~36
#: trials, ~6 batches per epoch) and 2 CPU cores need — lr 1e-4 would need thousands of epochs,
#: lr 1e-3 converges in ~100-200; batch 32 gives more steps per epoch; per-channel target
#: scaling weighs small muscles like big ones; body mass is an input (muscle strength is not
#: scaled with mass, so the per-kg forces depend on it: +0.1 honest force R² in a pilot fold);
#: the paper's patience 30 / 300 epochs are kept (patience 20 stopped far too early on the
#: noisy validation loss of 3 subjects).
#: ``quick``: tiny networks, a few epochs, 2 folds — a smoke test, not a model.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": {"lr": 1e-3, "max_epochs": 300, "patience": 30, "target_scaling": "standard",
              "batch_size": 32, "use_mass": True, "compile": True},
    "quick": {"lr": 3e-3, "max_epochs": 4, "patience": 2, "target_scaling": "standard",
              "n_folds": 2, "batch_size": 32, "crops_per_trial": 2},
}
#: Tiny networks of the ``quick`` preset (smoke tests and CI only).
TINY_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "lstm": {"hidden_size": 16, "num_layers": 1},
    "transformer": {"d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
    "mamba": {"d_model": 16, "n_layers": 1, "d_state": 4, "expand": 1},
}


def make_config(preset: str = "small", **overrides: Any) -> TrainConfig:
    """A :class:`TrainConfig` from a preset plus overrides (None values are ignored)."""
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}", hint=f"one of {sorted(PRESETS)}")
    kw = dict(PRESETS[preset])
    kw.update({k: v for k, v in overrides.items() if v is not None})
    if preset == "quick":
        arch = kw.get("arch", TrainConfig.arch)
        kw["hyperparameters"] = {**TINY_HYPERPARAMETERS.get(arch, {}),
                                 **(kw.get("hyperparameters") or {})}
    return TrainConfig(**kw)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
@dataclass
class TrialData:
    """One trial ready for training/evaluation (original or mirrored)."""

    trial_id: str
    subject: str
    condition: str
    mass_kg: float
    height_m: float
    mirrored: bool
    kinematics: Any
    events: dict[str, list[float]]
    cycles: list[dict[str, Any]]
    features: np.ndarray | None
    labels: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]

    @property
    def time(self) -> np.ndarray:
        return np.asarray(self.kinematics.index, dtype=float)

    @property
    def n_frames(self) -> int:
        return len(self.kinematics)


@dataclass
class PreparedData:
    """All trials of a dataset, their features and labels, and the output definitions."""

    trials: list[TrialData]
    mirrored: dict[str, TrialData]
    spec: F.WindowFeatureSpec
    names: dict[str, list[str]]
    model_family: str
    fingerprint: str
    source: str
    mirror_name: str | None = None

    @property
    def subjects(self) -> list[str]:
        return sorted({t.subject for t in self.trials})

    def originals(self, subjects: Sequence[str]) -> list[TrialData]:
        s = set(subjects)
        return [t for t in self.trials if t.subject in s]

    def training_trials(self, subjects: Sequence[str], mirror: bool) -> list[TrialData]:
        out = self.originals(subjects)
        if mirror:
            out += [self.mirrored[t.trial_id] for t in list(out) if t.trial_id in self.mirrored]
        return out


def resolve_mirror(mirror: bool | MirrorFn | None) -> tuple[MirrorFn | None, str | None]:
    """The record-mirroring function to use, and its name (None if unavailable/off)."""
    if mirror is None or mirror is False:
        return None, None
    if callable(mirror):
        return mirror, getattr(mirror, "__qualname__", "custom")
    try:
        from ..dataset.mirror import mirror_record
    except ImportError:
        log.warning("opensim_surrogate.dataset.mirror is not available: no mirroring")
        return None, None
    return mirror_record, "opensim_surrogate.dataset.mirror.mirror_record"


def load_records(source: Any) -> tuple[list[Any], str, str]:
    """Records, fingerprint and a description of ``source`` (directory, Dataset or list)."""
    from ..dataset.store import Dataset

    if isinstance(source, (str, Path)):
        source = Dataset(source)
    if isinstance(source, Dataset):
        records = list(source)
        if not records:
            raise DatasetError("dataset has no complete trials", path=source.root,
                               hint="build it first (opensim-surrogate build-dataset)")
        return records, source.fingerprint(), str(source.root)
    records = list(source)
    if not records:
        raise DatasetError("no trials given")
    import hashlib

    h = hashlib.sha256()
    for r in records:
        h.update(r.trial_id.encode())
        h.update(np.ascontiguousarray(r.kinematics.to_numpy(dtype=float)).tobytes())
    return records, h.hexdigest(), "in-memory records"


def _trial_data(rec: Any, spec: F.WindowFeatureSpec, names: dict[str, list[str]],
                mirrored: bool) -> TrialData:
    h = float(rec.height_m) if rec.height_m is not None else float("nan")
    feats = F.window_features(rec.kinematics, spec, h, float(rec.mass_kg), check_rate=True)
    labels, masks = F.record_labels(rec, names)
    return TrialData(trial_id=rec.trial_id, subject=str(rec.subject), condition=str(rec.condition),
                     mass_kg=float(rec.mass_kg), height_m=h, mirrored=mirrored,
                     kinematics=rec.kinematics, events=dict(rec.events or {}),
                     cycles=list(rec.cycles or []), features=feats, labels=labels, masks=masks)


def config_spec(prepared: "PreparedData", config: TrainConfig) -> F.WindowFeatureSpec:
    """The window features a configuration uses (the prepared ones minus unused channels)."""
    return replace(prepared.spec, use_height=config.use_height, use_mass=config.use_mass)


def prepare_data(source: Any, mirror: bool | MirrorFn | None = True) -> PreparedData:
    """Load a dataset and compute every trial's features and labels.

    Parameters
    ----------
    source
        Dataset directory, :class:`~opensim_surrogate.dataset.store.Dataset` or records.
    mirror
        True: mirror with ``opensim_surrogate.dataset.mirror.mirror_record`` when available;
        a callable: use it; False/None: no mirrored copies.

    Every optional window channel (height, mass) is computed; a configuration picks its own
    (:func:`config_spec`).
    """
    records, fingerprint, desc = load_records(source)
    families = sorted({r.model_family for r in records})
    if len(families) != 1:
        raise DatasetError(f"dataset mixes model families {families}",
                           hint="train one surrogate per model family")
    rot, trans, opt = F.select_coordinates(records)
    moments, muscles = F.select_outputs(records, rot)
    if not moments or not muscles:
        raise DatasetError(f"no usable outputs (moments {moments}, muscles {len(muscles)})",
                           hint="the dataset needs ID moments and SO forces")
    heights = [r.height_m for r in records if r.height_m is not None and np.isfinite(r.height_m)]
    masses = [float(r.mass_kg) for r in records]
    fill = {c: float(np.mean(np.concatenate([r.kinematics[c].to_numpy(float) for r in records])))
            for c in opt}
    spec = F.WindowFeatureSpec(coordinates=rot, translations=trans, optional_coordinates=opt,
                               fill_values=fill, use_height=True,
                               height_fill=float(np.mean(heights)) if heights else 1.75,
                               use_mass=True, mass_fill=float(np.mean(masses)))
    names = {"moments": moments, "forces": muscles}
    trials = [_trial_data(r, spec, names, False) for r in records]
    fn, fn_name = resolve_mirror(mirror)
    mirrored: dict[str, TrialData] = {}
    if fn is not None:
        for r in records:
            m = fn(r)
            td = _trial_data(m, spec, names, True)
            td.trial_id = r.trial_id + "~mirrored"
            mirrored[r.trial_id] = td
    log.info("prepared %d trials of %d subjects (%s), %d moments, %d muscles, %d features",
             len(trials), len({t.subject for t in trials}), desc, len(moments), len(muscles),
             len(spec.feature_names()))
    return PreparedData(trials=trials, mirrored=mirrored, spec=spec, names=names,
                        model_family=families[0], fingerprint=fingerprint, source=desc,
                        mirror_name=fn_name)


# --------------------------------------------------------------------------------------------
# split
# --------------------------------------------------------------------------------------------
def split_subjects(subjects: Sequence[str], test_fraction: float = 0.2, seed: int = 0
                   ) -> tuple[list[str], list[str]]:
    """(pool, test): ``round(test_fraction * n)`` (at least 1) subjects held out, seeded."""
    subs = sorted(set(subjects))
    if len(subs) < 3:
        raise DatasetError(f"only {len(subs)} subject(s): need at least 3 to split",
                           hint="use a dataset with more subjects")
    n_test = min(max(1, int(round(test_fraction * len(subs)))), len(subs) - 2)
    perm = np.random.default_rng(seed).permutation(len(subs))
    test = sorted(subs[i] for i in perm[:n_test])
    pool = [s for s in subs if s not in set(test)]
    return pool, test


def group_kfold(subjects: Sequence[str], n_folds: int = 5, seed: int = 0
                ) -> list[tuple[list[str], list[str]]]:
    """GroupKFold by subject: seeded shuffle, then round-robin into ``n_folds`` folds."""
    subs = sorted(set(subjects))
    k = max(2, min(n_folds, len(subs)))
    perm = np.random.default_rng(seed + 1).permutation(len(subs))
    folds = []
    for i in range(k):
        val = sorted(subs[j] for j in perm[i::k])
        folds.append(([s for s in subs if s not in set(val)], val))
    return folds


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
@dataclass
class CycleSample:
    x: np.ndarray                 # (180, 10) degrees
    labels: dict[str, np.ndarray]  # (180, C) per kg
    masks: dict[str, np.ndarray]
    trial_id: str
    leg: str


def cycle_samples(trials: Sequence[TrialData], names: dict[str, list[str]],
                  legs: Sequence[str] = ("r", "l")) -> list[CycleSample]:
    """Every complete gait cycle of ``trials`` as 180-sample inputs and labels.

    Left cycles have their sides exchanged (they become right cycles).
    """
    in_perm = F.swap_permutation(F.PAPER_ANGLES)
    out_perm = {h: F.swap_permutation(n) for h, n in names.items()}
    out = []
    for t in trials:
        tt = t.time
        for c in t.cycles:
            leg = c.get("leg")
            if leg not in legs or (leg == "l" and any(p is None for p in out_perm.values())):
                continue
            start, end = float(c["start"]), float(c["end"])
            if start < tt[0] - 1e-9 or end > tt[-1] + 1e-9 or end - start < 0.3:
                continue
            x = F.cycle_inputs(t.kinematics, start, end)
            tc = F.cycle_times(start, end)
            labels, masks = {}, {}
            for h in names:
                y, m = F.resample_table(tt, t.labels[h], tc, t.masks[h])
                if leg == "l":
                    y, m = y[:, out_perm[h]], m[:, out_perm[h]]
                labels[h], masks[h] = y, m
            if leg == "l":
                x = x[:, in_perm]
            out.append(CycleSample(x, labels, masks, t.trial_id, leg))
    return out


@dataclass
class FitResult:
    """A trained network with everything needed to predict."""

    model: Any
    config: TrainConfig
    input_norm: F.Normalizer
    target_norm: dict[str, F.Normalizer]
    train_features: np.ndarray     # z-scored training frames (for the OOD statistics)
    epochs: int
    best_epoch: int
    best_val: float
    history: list[dict[str, float]]
    seconds: float


def _masked_loss(pred: dict, y: dict, m: dict) -> Any:
    total = 0.0
    for h in pred:
        mm = m[h]
        n = mm.sum().clamp(min=1)
        total = total + (((pred[h] - y[h]) ** 2) * mm).sum() / n
    return total


def _val_loss(pred: dict[str, list[np.ndarray]], y: dict[str, list[np.ndarray]],
              m: dict[str, list[np.ndarray]]) -> float:
    total = 0.0
    for h in pred:
        se = sum(float(np.sum(np.where(mm, (pp - yy) ** 2, 0.0)))
                 for pp, yy, mm in zip(pred[h], y[h], m[h]))
        n = sum(int(mm.sum()) for mm in m[h])
        total += se / max(n, 1)
    return total


class _Task:
    """Scheme-specific batching and validation on z-scored arrays."""

    def __init__(self, config: TrainConfig, prepared: PreparedData, train: list[TrialData],
                 val: list[TrialData] | None) -> None:
        self.cfg = config
        self.heads = list(prepared.names)
        if config.scheme == "window":
            cols = F.feature_columns(prepared.spec, config_spec(prepared, config))
            feat = (lambda t: t.features[:, cols])  # noqa: E731
            xs = [feat(t) for t in train]
            ys = [{h: t.labels[h] for h in self.heads} for t in train]
            ms = [{h: t.masks[h] for h in self.heads} for t in train]
            vx = [feat(t) for t in val] if val else []
            vy = [{h: t.labels[h] for h in self.heads} for t in val] if val else []
            vm = [{h: t.masks[h] for h in self.heads} for t in val] if val else []
        else:
            legs = ("r", "l") if config.mirror else ("r",)
            samples = cycle_samples(train, prepared.names, legs)
            if not samples:
                raise DatasetError("no complete gait cycles in the training trials",
                                   hint="the cycle scheme needs heel-strike-to-heel-strike "
                                        "cycles in the records' `cycles`")
            vs = cycle_samples(val, prepared.names) if val else []
            xs, ys, ms = [s.x for s in samples], [s.labels for s in samples], \
                [s.masks for s in samples]
            vx, vy, vm = [s.x for s in vs], [s.labels for s in vs], [s.masks for s in vs]
        self.in_norm = F.Normalizer.fit(xs)
        if config.target_scaling == "standard":
            self.out_norm = {h: F.Normalizer.fit([y[h] for y in ys], [m[h] for m in ms])
                             for h in self.heads}
        else:
            self.out_norm = {h: F.Normalizer.identity(ys[0][h].shape[1]) for h in self.heads}
        self.x = [self.in_norm.transform(x).astype(np.float32) for x in xs]
        self.y = [{h: np.nan_to_num(self.out_norm[h].transform(y[h])).astype(np.float32)
                   for h in self.heads} for y in ys]
        self.m = [{h: m[h] for h in self.heads} for m in ms]
        self.vx = [self.in_norm.transform(x).astype(np.float32) for x in vx]
        self.vy = {h: [np.nan_to_num(self.out_norm[h].transform(y[h])) for y in vy]
                   for h in self.heads}
        self.vm = {h: [m[h] for m in vm] for h in self.heads}
        self.n_inputs = self.x[0].shape[1]
        self.head_sizes = {h: self.y[0][h].shape[1] for h in self.heads}

    def epoch_batches(self, rng: np.random.Generator) -> list[tuple[np.ndarray, dict, dict]]:
        cfg = self.cfg
        if cfg.scheme == "cycle":
            order = rng.permutation(len(self.x))
            items = [(i, 0) for i in order]
            length = self.x[0].shape[0]
        else:
            length = cfg.window
            items = []
            for i, x in enumerate(self.x):
                hi = max(0, x.shape[0] - length)
                items += [(i, int(s)) for s in rng.integers(0, hi + 1, size=cfg.crops_per_trial)]
            items = [items[j] for j in rng.permutation(len(items))]
        batches = []
        for b in range(0, len(items), cfg.batch_size):
            chunk = items[b:b + cfg.batch_size]
            xb = np.stack([self._crop(self.x[i], s, length) for i, s in chunk])
            yb = {h: np.stack([self._crop(self.y[i][h], s, length) for i, s in chunk])
                  for h in self.heads}
            mb = {h: np.stack([self._crop(self.m[i][h], s, length, False) for i, s in chunk])
                  for h in self.heads}
            batches.append((xb, yb, mb))
        return batches

    @staticmethod
    def _crop(a: np.ndarray, s: int, length: int, pad_reflect: bool = True) -> np.ndarray:
        c = a[s:s + length]
        if c.shape[0] < length:  # shorter than the window: reflect inputs, mask labels off
            extra = length - c.shape[0]
            if pad_reflect:
                c = np.pad(c, ((0, extra), (0, 0)), mode="reflect")
            else:
                c = np.concatenate([c, np.zeros((extra, c.shape[1]), dtype=c.dtype)])
        return c

    def val_predict(self, forward: Callable[[np.ndarray], dict[str, np.ndarray]]
                    ) -> dict[str, list[np.ndarray]]:
        if self.cfg.scheme == "window":
            res = F.predict_sequences(forward, self.vx, self.cfg.window, self.cfg.stride)
            return {h: [r[h] for r in res] for h in self.heads}
        out = forward(np.stack(self.vx))
        return {h: list(out[h]) for h in self.heads}

    def has_val(self) -> bool:
        return bool(self.vx)


def fit(config: TrainConfig, prepared: PreparedData, train_subjects: Sequence[str],
        val_subjects: Sequence[str] | None = None, epochs: int | None = None,
        run_seed: int = 0, label: str = "") -> FitResult:
    """Train one network on ``train_subjects``.

    With ``val_subjects``: early stopping on their masked loss (z-scored units), at most
    ``config.max_epochs`` epochs, patience ``config.patience``; the returned model is the one
    of the best epoch. Without: exactly ``epochs`` epochs (final retraining).
    """
    import torch

    from ..models import build_model

    t0 = time.perf_counter()
    torch.set_num_threads(config.threads)
    train = prepared.training_trials(train_subjects, config.mirror and bool(prepared.mirrored))
    val = prepared.originals(val_subjects) if val_subjects else None
    task = _Task(config, prepared, train, val)
    seed = config.seed * 1_000_003 + run_seed
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(config.arch, task.n_inputs, task.head_sizes,
                        **config.model_hyperparameters())
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n_epochs = int(epochs) if epochs is not None else config.max_epochs
    use_val = task.has_val() and epochs is None

    def forward(batch: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            out = model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        return {k: v.numpy().astype(np.float64) for k, v in out.items()}

    from ..models.mamba import compiled_scan

    with compiled_scan(config.compile and config.arch == "mamba"):
        history, best, best_epoch, best_state = _train_loop(
            config, task, model, opt, rng, forward, n_epochs, use_val, label)
    if use_val and best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = len(history)
    model.eval()
    zs = np.concatenate(task.x, axis=0)
    return FitResult(model=model, config=config, input_norm=task.in_norm,
                     target_norm=task.out_norm, train_features=zs, epochs=len(history),
                     best_epoch=best_epoch, best_val=best if use_val else float("nan"),
                     history=history, seconds=time.perf_counter() - t0)


def _train_loop(config: TrainConfig, task: _Task, model: Any, opt: Any,
                rng: np.random.Generator, forward: Callable[[np.ndarray], dict],
                n_epochs: int, use_val: bool, label: str) -> tuple[list, float, int, Any]:
    import torch

    history: list[dict[str, float]] = []
    best, best_epoch, best_state = math.inf, 0, None
    for epoch in range(1, n_epochs + 1):
        model.train()
        losses = []
        for xb, yb, mb in task.epoch_batches(rng):
            pred = model(torch.from_numpy(xb))
            loss = _masked_loss(pred, {h: torch.from_numpy(v) for h, v in yb.items()},
                                {h: torch.from_numpy(v.astype(np.float32)) for h, v in mb.items()})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            losses.append(float(loss.detach()))
        rec = {"epoch": epoch, "train_loss": float(np.mean(losses))}
        if use_val:
            model.eval()
            rec["val_loss"] = _val_loss(task.val_predict(forward), task.vy, task.vm)
            if rec["val_loss"] < best - 1e-9:
                best, best_epoch = rec["val_loss"], epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        history.append(rec)
        if epoch == 1 or epoch % 10 == 0:
            log.info("%s epoch %d train %.4f%s", label, epoch, rec["train_loss"],
                     f" val {rec['val_loss']:.4f}" if "val_loss" in rec else "")
        if use_val and epoch - best_epoch >= config.patience:
            break
    return history, best, best_epoch, best_state


# --------------------------------------------------------------------------------------------
# bundle metadata and evaluation
# --------------------------------------------------------------------------------------------
def bundle_metadata(fitres: FitResult, prepared: PreparedData, name: str = "unnamed",
                    extra_training: dict[str, Any] | None = None,
                    metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """Metadata of a bundle (see :mod:`opensim_surrogate.bundle`) for a trained network."""
    from ..bundle import fit_ood, library_versions

    cfg = fitres.config
    spec = prepared.spec
    if cfg.scheme == "window":
        spec = config_spec(prepared, cfg)
        inputs = {"names": spec.feature_names(), "units": spec.feature_units(),
                  "coordinates": spec.input_coordinates,
                  "optional_coordinates": list(spec.optional_coordinates),
                  "feature_spec": spec.to_dict(), "window": cfg.window, "stride": cfg.stride}
    else:
        inputs = {"names": list(F.PAPER_ANGLES), "units": ["deg"] * len(F.PAPER_ANGLES),
                  "coordinates": list(F.PAPER_ANGLES), "optional_coordinates": [],
                  "cycle_samples": F.CYCLE_SAMPLES}
    inputs["convention"] = ("OpenSim coordinates of the Rajagopal family, canonical names and "
                            "signs; rotations in radians, translations in metres; time index "
                            f"in seconds at {F.SAMPLE_RATE:g} Hz")
    inputs["normalisation"] = fitres.input_norm.to_dict()
    outputs = {h: {"names": list(prepared.names[h]), "units": F.HEAD_UNITS[h],
                   "label_mask": F.HEAD_MASKS[h],
                   "normalisation": fitres.target_norm[h].to_dict()} for h in prepared.names}
    rng = np.random.default_rng(0)
    z = fitres.train_features
    if len(z) > 20000:
        z = z[rng.choice(len(z), 20000, replace=False)]
    training = {"dataset": prepared.source, "fingerprint": prepared.fingerprint,
                "config": cfg.to_dict(), "epochs": fitres.epochs,
                "fit_seconds": round(fitres.seconds, 1), "mirroring": prepared.mirror_name}
    training.update(extra_training or {})
    return {"name": name, "scheme": cfg.scheme, "sample_rate": F.SAMPLE_RATE,
            "inputs": inputs, "outputs": outputs, "model_family": prepared.model_family,
            "muscle_names": list(prepared.names["forces"]),
            "training": training, "metrics": metrics or {},
            "ood": fit_ood(z),
            "uncertainty": {"method": "mc_dropout", "samples": 16, "seed": 0,
                            "note": "std of 16 dropout-on passes batched in one forward pass; "
                                    "the point prediction is the deterministic one"},
            "versions": library_versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def bundle_from_fit(fitres: FitResult, prepared: PreparedData, name: str = "unnamed",
                    **kw: Any) -> Any:
    """An in-memory :class:`~opensim_surrogate.bundle.Bundle` of a trained network."""
    from ..bundle import Bundle

    return Bundle.from_model(fitres.model, bundle_metadata(fitres, prepared, name, **kw))


def predict_trials(bundle: Any, trials: Sequence[TrialData]) -> list[dict[str, np.ndarray]]:
    """Mass-normalised predictions ``{head: (T, C)}`` of whole trials through a bundle.

    Window scheme: every frame. Cycle scheme: frames inside the trials' gait cycles (both
    legs), NaN elsewhere.
    """
    if bundle.scheme == "window":
        return bundle.predict_per_kg([t.kinematics for t in trials],
                                     [t.height_m for t in trials], [t.mass_kg for t in trials])
    return [bundle.predict_cycles_per_kg(t.kinematics, t.cycles) for t in trials]


#: channel groups evaluated: name -> (head, how to derive from the head's channels)
GROUPS = ("moments", "forces", "hip_moments", "hip_groups")


def derive_groups(names: dict[str, list[str]]) -> dict[str, tuple[str, list[str], np.ndarray]]:
    """Evaluation groups: ``{group: (head, channel names, (C_group, C_head) matrix)}``."""
    out = {}
    for h in ("moments", "forces"):
        out[h] = (h, list(names[h]), np.eye(len(names[h])))
    hip = [n for n in F.PAPER_HIP_MOMENTS if n in names["moments"]]
    if hip:
        idx = [names["moments"].index(n) for n in hip]
        out["hip_moments"] = ("moments", hip, np.eye(len(names["moments"]))[idx])
    gnames, gmat = F.hip_group_matrix(names["forces"], "r")
    if gnames:
        out["hip_groups"] = ("forces", gnames, gmat)
    return out


def eval_trials(trials: Sequence[TrialData], preds: Sequence[dict[str, np.ndarray]],
                names: dict[str, list[str]], frame_masks: Sequence[np.ndarray] | None = None
                ) -> dict[str, list[EvalTrial]]:
    """:class:`EvalTrial` lists per group (derived groups summed; a group entry is valid only
    where all its parts are). ``frame_masks`` (T,) restrict the scored frames."""
    groups = derive_groups(names)
    out: dict[str, list[EvalTrial]] = {g: [] for g in groups}
    for i, (t, p) in enumerate(zip(trials, preds)):
        fm = np.ones(t.n_frames, bool) if frame_masks is None else frame_masks[i]
        for g, (h, _, mat) in groups.items():
            y = np.nan_to_num(t.labels[h]) @ mat.T
            m = (~t.masks[h]).astype(float) @ (mat.T != 0) == 0
            m &= fm[:, None]
            pp = p[h]
            pm = np.isfinite(pp).all(axis=1)
            m &= pm[:, None]
            yp = np.nan_to_num(pp) @ mat.T
            out[g].append(EvalTrial(t.subject, t.condition, np.where(m, y, np.nan), yp, m,
                                    t.trial_id))
    return out


def evaluate_predictions(trials: Sequence[TrialData], preds: Sequence[dict[str, np.ndarray]],
                         names: dict[str, list[str]],
                         frame_masks: Sequence[np.ndarray] | None = None
                         ) -> dict[str, Evaluation]:
    """Metrics of every group (see :mod:`.metrics`)."""
    groups = derive_groups(names)
    ev = eval_trials(trials, preds, names, frame_masks)
    return {g: evaluate(ev[g], groups[g][1]) for g in ev}


def metrics_summary(evals: dict[str, Evaluation]) -> dict[str, Any]:
    """JSON-friendly metrics (overall + per condition + per channel) of every group."""
    return {g: e.to_dict() for g, e in evals.items()}


# --------------------------------------------------------------------------------------------
# the whole protocol
# --------------------------------------------------------------------------------------------
@dataclass
class ProtocolResult:
    """Outcome of :func:`run_protocol`."""

    config: TrainConfig
    pool: list[str]
    test: list[str]
    folds: list[dict[str, Any]]
    final_epochs: int
    final: FitResult
    bundle: Any
    test_predictions: list[dict[str, np.ndarray]]
    evaluation: dict[str, Evaluation]
    seconds: float

    @property
    def cv_val_loss(self) -> float:
        return float(np.mean([f["best_val"] for f in self.folds])) if self.folds else math.nan


def run_protocol(config: TrainConfig, prepared: PreparedData, name: str = "unnamed",
                 final_epochs: int | None = None) -> ProtocolResult:
    """Split, CV with early stopping, final retraining on the pool, one test evaluation.

    ``final_epochs`` skips the cross-validation and retrains for that many epochs.
    """
    t0 = time.perf_counter()
    pool, test = split_subjects(prepared.subjects, config.test_fraction, config.split_seed)
    folds_info: list[dict[str, Any]] = []
    if final_epochs is None:
        for k, (tr, va) in enumerate(group_kfold(pool, config.n_folds, config.split_seed)):
            r = fit(config, prepared, tr, va, run_seed=k + 1,
                    label=f"{config.arch}/{config.scheme} fold {k + 1}")
            folds_info.append({"fold": k + 1, "val_subjects": va, "best_epoch": r.best_epoch,
                               "best_val": r.best_val, "epochs": r.epochs,
                               "seconds": round(r.seconds, 1)})
            log.info("%s/%s fold %d: best epoch %d, val %.4f (%.0f s)", config.arch,
                     config.scheme, k + 1, r.best_epoch, r.best_val, r.seconds)
        final_epochs = max(1, int(round(float(np.median([f["best_epoch"] for f in folds_info])))))
    final = fit(config, prepared, pool, None, epochs=final_epochs, run_seed=0,
                label=f"{config.arch}/{config.scheme} final")
    test_trials = prepared.originals(test)
    cv = {"folds": folds_info, "final_epochs": final_epochs,
          "cv_val_loss": float(np.mean([f["best_val"] for f in folds_info])) if folds_info
          else None}
    extra = {"split": {"seed": config.split_seed, "test_fraction": config.test_fraction,
                       "train_subjects": pool, "test_subjects": test}, "cv": cv,
             "n_trials": len(prepared.originals(pool)), "n_subjects": len(pool),
             "n_test_trials": len(test_trials),
             "conditions": sorted({t.condition for t in prepared.trials}),
             "threads": config.threads}
    bundle = bundle_from_fit(final, prepared, name, extra_training=extra)
    preds = predict_trials(bundle, test_trials)
    evals = evaluate_predictions(test_trials, preds, prepared.names)
    seconds = time.perf_counter() - t0
    bundle.metadata["metrics"] = metrics_summary(evals)
    bundle.metadata["training"]["protocol_seconds"] = round(seconds, 1)
    return ProtocolResult(config=config, pool=pool, test=test, folds=folds_info,
                          final_epochs=final_epochs, final=final, bundle=bundle,
                          test_predictions=preds, evaluation=evals, seconds=seconds)
