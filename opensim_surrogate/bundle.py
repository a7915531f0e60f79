"""Trained surrogate bundles: save, load (safely), predict.

A bundle is a directory::

    NAME/
      weights.safetensors   # the network's tensors (never pickle)
      metadata.json         # everything else (see below); JSON only
      README.md             # the model card

``metadata.json`` holds: ``format`` / ``format_version``; ``arch`` (name, hyper-parameters,
number of inputs, head sizes); ``scheme`` (``window`` or ``cycle``); ``sample_rate``; ``inputs``
(feature names, units, coordinate convention, required and optional coordinates, the feature
spec, window/stride, normalisation statistics); ``outputs`` (per head: channel names, units
N·m/kg or N/kg, normalisation); ``model_family`` and ``muscle_names`` of the ``.osim`` family
it was trained for; ``training`` (dataset fingerprint, configuration, subject split, CV,
epochs, seconds); ``metrics`` (held-out test); ``ood`` (statistics of the training features);
``uncertainty``; library ``versions``; and ``integrity`` (SHA-256 of ``weights.safetensors`` and
of the rest of the metadata).

:meth:`Bundle.load` refuses, with a :class:`~opensim_surrogate.errors.CheckpointError` naming
the field, a bundle whose format version is unknown, whose weights or metadata were modified
after saving (hash mismatch), whose architecture is unknown, or whose tensors do not match
the architecture described by the metadata. It never unpickles anything (no ``torch.load``).

Runtime API (stable; used by ``surrogate.run``)
-----------------------------------------------
``Bundle.load(dir_or_name)``
    A directory, or a name resolved under :data:`opensim_surrogate.paths.BUNDLES_DIR`.
``bundle.input_coordinates``
    Coordinates the kinematics MUST contain (canonical Rajagopal names; radians / metres).
``bundle.optional_coordinates``
    Used when present (lumbar), else replaced by the training mean angle.
``bundle.moment_names`` / ``bundle.muscle_names``
    Output columns (``<coord>_moment``; muscle names of the model family).
``bundle.model_family``, ``bundle.sample_rate`` (Hz).
``bundle.predict(kinematics, mass_kg, height_m=None, uncertainty=False) -> Prediction``
    ``kinematics``: DataFrame with a time index in seconds at ``sample_rate`` (100 Hz), one
    column per coordinate, at least 0.3 s. Returns moments (N·m) and forces (N) on the same
    index; with ``uncertainty=True`` also their standard deviations by Monte-Carlo dropout
    (:data:`MC_SAMPLES` stochastic passes, batched into ONE forward pass, fixed seed — the
    point prediction stays the deterministic one).
``bundle.predict_many(list_of_kinematics, masses, heights=None, uncertainty=False)``
    Same for many trials; all their windows go through the network together (throughput).
``bundle.ood(kinematics) -> OODResult``
    Per-frame distance of the input features to the training distribution (Mahalanobis
    distance in a PCA of the training frames' z-scored features, plus the residual outside the
    kept components), the threshold (99.5th percentile of the training frames) and the
    fraction of frames above it.
``find_bundle(model_family, muscle_names=None)``
    The bundle under ``BUNDLES_DIR`` trained for that model family (and muscle set).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import BundleNotFoundError, CheckpointError, InputError

log = logging.getLogger(__name__)

FORMAT = "opensim-surrogate-bundle"
FORMAT_VERSION = 1
WEIGHTS_FILE = "weights.safetensors"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
#: Monte-Carlo dropout samples of ``predict(..., uncertainty=True)``.
MC_SAMPLES = 16
#: A trial is flagged out-of-distribution when more than this fraction of its frames exceed
#: the OOD threshold (in distribution, about 0.5 % do).
OOD_FRACTION = 0.05
_MAX_WINDOWS = 512


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass
class Prediction:
    """Surrogate outputs of one trial (same time index as the input kinematics).

    Attributes
    ----------
    moments : pandas.DataFrame
        Joint moments, N·m (columns :attr:`Bundle.moment_names`).
    forces : pandas.DataFrame
        Muscle forces, N (columns :attr:`Bundle.muscle_names`), >= 0.
    moments_std, forces_std : pandas.DataFrame or None
        Monte-Carlo-dropout standard deviations (same units), when asked for.
    ood : OODResult or None
        Out-of-distribution check of the same input features (window-scheme bundles; equal to
        :meth:`Bundle.ood` on the same inputs, without computing the features twice).
    """

    moments: pd.DataFrame
    forces: pd.DataFrame
    moments_std: pd.DataFrame | None = None
    forces_std: pd.DataFrame | None = None
    ood: "OODResult | None" = None


@dataclass
class OODResult:
    """Out-of-distribution check of one trial's input features.

    Attributes
    ----------
    distance : pandas.Series
        Per-frame distance to the training distribution.
    threshold : float
        99.5th percentile of the training frames' distances.
    over : pandas.Series
        ``distance > threshold``.
    fraction_over : float
        Fraction of frames over the threshold.
    """

    distance: pd.Series
    threshold: float
    over: pd.Series
    fraction_over: float

    @property
    def is_ood(self) -> bool:
        """True when more than :data:`OOD_FRACTION` of the frames are over the threshold."""
        return self.fraction_over > OOD_FRACTION


# --------------------------------------------------------------------------------------------
# OOD statistics
# --------------------------------------------------------------------------------------------
def fit_ood(z: np.ndarray, variance_kept: float = 0.99, percentile: float = 99.5
            ) -> dict[str, Any]:
    """OOD statistics of (N, F) z-scored training features (see :meth:`Bundle.ood`)."""
    z = np.asarray(z, dtype=np.float64)
    mean = z.mean(axis=0)
    zc = z - mean
    cov = zc.T @ zc / max(len(z) - 1, 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0.0, None), evecs[:, order]
    total = float(evals.sum()) or 1.0
    k = int(np.searchsorted(np.cumsum(evals) / total, variance_kept) + 1)
    k = min(max(k, 1), z.shape[1])
    floor = 1e-6 * max(float(evals[0]), 1e-12)
    stats = {"mean": mean.tolist(), "components": evecs[:, :k].T.tolist(),
             "eigenvalues": np.maximum(evals[:k], floor).tolist(), "percentile": percentile,
             "variance_kept": variance_kept}
    resid = zc - (zc @ evecs[:, :k]) @ evecs[:, :k].T
    stats["residual_variance"] = max(float(np.mean(np.sum(resid ** 2, axis=1))), floor)
    d = ood_distance(z, stats)
    stats["threshold"] = float(np.percentile(d, percentile))
    return stats


def ood_distance(z: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """Per-row distance: sqrt(Mahalanobis² in the PCA subspace + residual² / mean residual²)."""
    zc = np.asarray(z, dtype=np.float64) - np.asarray(stats["mean"])
    comp = np.asarray(stats["components"])
    proj = zc @ comp.T
    resid = zc - proj @ comp
    d2 = np.sum(proj ** 2 / np.asarray(stats["eigenvalues"]), axis=1)
    d2 += np.sum(resid ** 2, axis=1) / float(stats["residual_variance"])
    return np.sqrt(d2)


# --------------------------------------------------------------------------------------------
# hashing / versions
# --------------------------------------------------------------------------------------------
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def metadata_digest(metadata: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``metadata`` without its ``integrity`` entry."""
    body = {k: v for k, v in metadata.items() if k != "integrity"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries a bundle depends on."""
    import safetensors
    import torch

    from ._version import __version__

    return {"opensim_surrogate": __version__, "torch": torch.__version__,
            "numpy": np.__version__, "pandas": pd.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


# --------------------------------------------------------------------------------------------
# save
# --------------------------------------------------------------------------------------------
def save_bundle(directory: str | Path, model: Any, metadata: dict[str, Any],
                card: str | None = None) -> Path:
    """Write ``model`` + ``metadata`` as a bundle directory (replaced atomically if present).

    Parameters
    ----------
    directory
        Target directory (its parent is created).
    model
        A :class:`~opensim_surrogate.models.SequenceRegressor`; its ``config()`` overrides
        ``metadata["arch"]``.
    metadata
        Everything but ``arch``, ``format*``, ``versions`` and ``integrity`` (filled here).
    card
        Model-card Markdown; a minimal card is generated from the metadata when None.

    Returns
    -------
    pathlib.Path
        The bundle directory.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    cfg = model.config()
    meta = dict(metadata)
    meta["format"] = FORMAT
    meta["format_version"] = FORMAT_VERSION
    meta["arch"] = {"name": cfg["arch"], "hyperparameters": cfg["hyperparameters"],
                    "n_inputs": cfg["n_inputs"], "head_sizes": cfg["head_sizes"]}
    meta.setdefault("versions", library_versions())
    meta = _jsonable(meta)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in
                   model.state_dict().items()}
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT,
                                                              "format_version":
                                                                  str(FORMAT_VERSION)})
        meta["integrity"] = {"weights_sha256": _sha256_file(tmp / WEIGHTS_FILE)}
        meta["integrity"]["metadata_sha256"] = metadata_digest(meta)
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=1, allow_nan=False))
        (tmp / CARD_FILE).write_text(card if card is not None else default_card(meta))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; a bundle is meant to be shared
        for f in tmp.iterdir():
            os.chmod(f, 0o666 & ~umask)
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("saved bundle %s", directory)
    return directory


#: Gait2Hip-60's published test numbers (subject-mean RMSE, R² paper definition), Transformer.
_G2H60 = {"hip_moments": (0.110, 0.862), "hip_groups": (1.33, 0.819)}


def _f(x: Any, nd: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "–"
    return f"{v:.{nd}f}" if np.isfinite(v) else "–"


def default_card(meta: dict[str, Any], notes: str | None = None) -> str:
    """The model card (README.md) of a bundle, generated from its metadata.

    ``notes`` (Markdown) is inserted as a section "Choices and justification".
    """
    tr = meta.get("training", {}) or {}
    cfg = tr.get("config", {}) or {}
    split = tr.get("split", {}) or {}
    cv = tr.get("cv", {}) or {}
    arch = meta.get("arch", {})
    metrics = meta.get("metrics", {}) or {}
    outs = meta.get("outputs", {})
    ins = meta.get("inputs", {})
    name = meta.get("name", "?")
    n_mom = len(outs.get("moments", {}).get("names", []))
    n_frc = len(outs.get("forces", {}).get("names", []))
    L = [f"# Surrogate bundle `{name}`", "",
         f"A {arch.get('name')} network ({meta.get('scheme')} input scheme) that stands in for "
         f"OpenSim inverse dynamics and static optimization of **{meta.get('model_family')}**-"
         f"family models: from joint kinematics it predicts {n_mom} lower-limb joint moments "
         f"and {n_frc} muscle forces, frame by frame, in milliseconds.", "",
         "## Intended use", "",
         "- Fast estimates of joint moments and muscle forces of healthy adults **walking** "
         "(overground, comfortable to fast speed) from IK coordinates, for screening, "
         "exploration, feedback and large-scale processing where running the real OpenSim ID "
         "and SO (≈ 0.5 s and ≈ 20 s per gait cycle) is too slow.",
         "- Always check `bundle.ood(kinematics)`; for decisions about individuals, confirm with "
         "the real tools (`opensim-surrogate` runs them too).", "",
         "## Not intended for / known limits", "",
         "- **Running**, stair climbing, jumping, sit-to-stand: not in the training data "
         "(running: large OOD distances are expected; predictions are extrapolations).",
         "- **Pathological gait** (e.g. osteonecrosis, stroke, cerebral palsy, amputees): "
         "Gait2Hip-60's Transformer fell from R² 0.82-0.86 to 0.54-0.57 on patients; expect "
         "the same or worse.",
         "- Other model families (gait2392, custom models) or modified muscle sets: refused by "
         "`check_compatible`; retrain.",
         "- The network never sees ground reactions: ID moments are inferred from kinematics "
         "alone (the contact forces are learned as a typical function of the motion). Unusual "
         "loading (carrying, pushing, a slip) is invisible to it.",
         "- Small training set (see Data): subject-level variation beyond the training "
         "subjects (very tall/short, obese, elderly, children) is untested.",
         "- Labels exist only where both feet were on force plates (ID) and SO converged, so "
         "the network learned from ~60 % of each trial; frames near trial starts/ends are "
         "predicted from less context (windows are blended centre-heavy).", "",
         "## Data", "",
         f"- dataset: `{tr.get('dataset')}`, fingerprint `{tr.get('fingerprint')}`",
         f"- training pool: {tr.get('n_trials', '?')} trials of {tr.get('n_subjects', '?')} "
         f"subjects; conditions {', '.join(tr.get('conditions', []) or [])}; mirrored copies: "
         f"{tr.get('mirroring') or 'none'}",
         f"- held-out test subjects (seed {split.get('seed')}, {split.get('test_fraction')} of "
         f"subjects): {', '.join(split.get('test_subjects', []) or [])} "
         f"({tr.get('n_test_trials', '?')} trials) — never used for training or model "
         "selection",
         f"- training subjects: {', '.join(split.get('train_subjects', []) or [])}", "",
         "## Held-out metrics (subject-mean over the test subjects)", "",
         "`R² ch` is the honest definition (R² of every channel around its own mean, averaged "
         "over channels); `R² paper` is Gait2Hip-60's (one grand mean over all channels, which "
         "counts between-channel differences as explained). Units N·m/kg and N/kg.", "",
         "| outputs | RMSE | MAE | R² ch | R² paper | Gait2Hip-60 (Transformer) RMSE / R² paper |",
         "|---|---|---|---|---|---|"]
    for g, label in (("moments", "all joint moments"), ("forces", "all muscle forces"),
                     ("hip_moments", "3 right-hip moments"),
                     ("hip_groups", "14 right-hip muscle groups")):
        o = (metrics.get(g) or {}).get("overall") if isinstance(metrics.get(g), dict) else None
        if not o:
            continue
        ref = _G2H60.get(g)
        L.append(f"| {label} | {_f(o.get('rmse'))} | {_f(o.get('mae'))} | "
                 f"{_f(o.get('r2_channel'))} | {_f(o.get('r2_paper'))} | "
                 + (f"{ref[0]} / {ref[1]}" if ref else "–") + " |")
    L.append("")
    conds = []
    for g in ("moments", "forces"):
        for r in (metrics.get(g) or {}).get("per_condition", []) if isinstance(
                metrics.get(g), dict) else []:
            conds.append(f"{g} {r.get('condition')}: RMSE {_f(r.get('rmse'))}, R² ch "
                         f"{_f(r.get('r2_channel'))}")
    if conds:
        L += ["Per condition: " + "; ".join(conds) + ".", ""]
    worst = []
    for g in ("moments", "forces"):
        chans = (metrics.get(g) or {}).get("per_channel", []) if isinstance(
            metrics.get(g), dict) else []
        chans = sorted([c for c in chans if c.get("r2") is not None
                        and np.isfinite(float(c["r2"]))], key=lambda c: float(c["r2"]))[:5]
        if chans:
            worst.append(f"{g}: " + ", ".join(f"{c['channel']} {_f(c['r2'], 2)}"
                                              for c in chans))
    if worst:
        L += ["Weakest channels (honest R²): " + "; ".join(worst) + ".", ""]
    folds = cv.get("folds") or []
    L += ["## Training", "",
          f"- architecture: {arch.get('name')} {json.dumps(arch.get('hyperparameters'))}, "
          f"{arch.get('n_inputs')} input features, heads "
          f"{json.dumps(arch.get('head_sizes'))} (two heads on one trunk)",
          f"- optimiser: AdamW lr {cfg.get('lr')}, weight decay {cfg.get('weight_decay')}, "
          f"grad-clip {cfg.get('grad_clip')}, batch {cfg.get('batch_size')}; masked MSE "
          f"(moments where `id_valid`, forces where `so_valid`) on mass-normalised targets, "
          f"target scaling `{cfg.get('target_scaling')}`",
          f"- window {cfg.get('window')} frames ({cfg.get('crops_per_trial')} random crops per "
          f"trial and epoch), inference stride {cfg.get('stride')} with centre-weighted "
          "blending" if meta.get("scheme") == "window" else "- one gait cycle, 180 samples",
          f"- protocol: {cfg.get('n_folds')}-fold GroupKFold by subject on the pool, early "
          f"stopping (patience {cfg.get('patience')}, ≤ {cfg.get('max_epochs')} epochs); best "
          f"epochs per fold {[f.get('best_epoch') for f in folds]}; final model retrained on "
          f"the pool for {cv.get('final_epochs', tr.get('epochs'))} epochs",
          f"- time: {_f((tr.get('protocol_seconds') or 0) / 60, 1)} min in all (CV + final), "
          f"final fit {_f((tr.get('fit_seconds') or 0) / 60, 1)} min, "
          f"{tr.get('threads', cfg.get('threads'))} CPU threads",
          f"- seed {cfg.get('seed')}, split seed {cfg.get('split_seed')}: rerunning "
          "`opensim-surrogate train` with the same arguments on the same data reproduces it",
          ""]
    if notes:
        L += ["## Choices and justification", "", notes.strip(), ""]
    L += ["## Inputs and outputs", "",
          f"- input: a kinematics table at {meta.get('sample_rate')} Hz, {ins.get('convention')}",
          f"- required coordinates: {', '.join(ins.get('coordinates', []))}",
          f"- optional coordinates: {', '.join(ins.get('optional_coordinates', [])) or 'none'} "
          "(training mean when absent)",
          f"- features ({len(ins.get('names', []))}): values, Savitzky-Golay velocities and "
          "accelerations; pelvis tx/tz as velocities, pelvis ty relative to its median"
          + "".join(f"; {label}" for n, label in (("height_m", "height"),
                                                   ("mass_kg", "body mass"))
                    if n in ins.get("names", []))
          if meta.get("scheme") == "window" else "- features: the 10 paper angles in degrees",
          "- outputs: moments `<coord>_moment` (N·m = N·m/kg × mass), muscle forces (N, ≥ 0)",
          f"- uncertainty: Monte-Carlo dropout, {(meta.get('uncertainty') or {}).get('samples')}"
          " samples in one batched pass (spread of the network, not of the reference tools)",
          f"- out-of-distribution check: Mahalanobis distance in a PCA of the training features "
          f"({len((meta.get('ood') or {}).get('eigenvalues', []))} components, "
          f"{(meta.get('ood') or {}).get('variance_kept')} of the variance) plus the residual; "
          f"threshold {_f((meta.get('ood') or {}).get('threshold'), 2)} = "
          f"{(meta.get('ood') or {}).get('percentile')}th percentile of training frames", "",
          "## Use", "", "```python",
          "from opensim_surrogate.bundle import Bundle",
          f"b = Bundle.load(\"{name}\")",
          "pred = b.predict(kinematics_df, mass_kg=70.0, height_m=1.75, uncertainty=True)",
          "pred.moments, pred.forces, pred.forces_std",
          "b.ood(kinematics_df).fraction_over", "```", "",
          "## Files", "",
          "- `weights.safetensors` — tensors only (no pickle); SHA-256 in `metadata.json`",
          "- `metadata.json` — inputs, outputs, normalisation, split, metrics, versions; its own "
          "SHA-256 guards against edits",
          f"- versions: {json.dumps(meta.get('versions', {}))}", ""]
    return "\n".join(L)


# --------------------------------------------------------------------------------------------
# load / check
# --------------------------------------------------------------------------------------------
def _need(meta: dict[str, Any], dotted: str, path: Path) -> Any:
    cur: Any = meta
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise CheckpointError(f"metadata lacks the field {dotted!r}", path=path,
                                  column=dotted, hint="the bundle is incomplete; retrain it")
        cur = cur[part]
    return cur


def resolve_bundle_dir(dir_or_name: str | Path) -> Path:
    """A bundle directory: an existing path, or a name under ``BUNDLES_DIR``."""
    from .paths import BUNDLES_DIR

    p = Path(dir_or_name)
    if p.is_dir():
        return p
    q = BUNDLES_DIR / str(dir_or_name)
    if q.is_dir():
        return q
    raise BundleNotFoundError(f"no surrogate bundle {str(dir_or_name)!r}", path=p,
                              hint=f"give a bundle directory or one of "
                                   f"{sorted(x.name for x in BUNDLES_DIR.glob('*') if x.is_dir())}"
                                   f" (in {BUNDLES_DIR})")


def _check_metadata(meta: dict[str, Any], mpath: Path) -> None:
    """Consistency of the metadata with itself (sizes of names vs the architecture)."""
    from .models.base import ARCHITECTURES, _arch_class

    arch = _need(meta, "arch.name", mpath)
    try:
        _arch_class(arch)
    except ValueError:
        raise CheckpointError(f"unknown architecture {arch!r}", path=mpath, column="arch.name",
                              hint=f"this library knows {sorted(ARCHITECTURES)}") from None
    scheme = _need(meta, "scheme", mpath)
    if scheme not in ("window", "cycle"):
        raise CheckpointError(f"unknown scheme {scheme!r}", path=mpath, column="scheme",
                              hint="expected 'window' or 'cycle'")
    n_in = int(_need(meta, "arch.n_inputs", mpath))
    names = _need(meta, "inputs.names", mpath)
    if len(names) != n_in:
        raise CheckpointError(f"{len(names)} input names but the network takes {n_in} inputs",
                              path=mpath, column="inputs.names", hint="retrain the bundle")
    for key in ("mean", "std"):
        if len(_need(meta, f"inputs.normalisation.{key}", mpath)) != n_in:
            raise CheckpointError("input normalisation does not match the inputs", path=mpath,
                                  column=f"inputs.normalisation.{key}", hint="retrain the bundle")
    heads = _need(meta, "arch.head_sizes", mpath)
    for head, size in heads.items():
        out_names = _need(meta, f"outputs.{head}.names", mpath)
        if len(out_names) != int(size):
            raise CheckpointError(f"{len(out_names)} {head} names but the network has {size} "
                                  f"{head} outputs", path=mpath, column=f"outputs.{head}.names",
                                  hint="retrain the bundle")
        for key in ("mean", "std"):
            if len(_need(meta, f"outputs.{head}.normalisation.{key}", mpath)) != int(size):
                raise CheckpointError(f"{head} normalisation does not match the outputs",
                                      path=mpath, column=f"outputs.{head}.normalisation.{key}",
                                      hint="retrain the bundle")


def _field_of_tensor(name: str) -> str:
    if name.startswith("heads."):
        return f"outputs.{name.split('.')[1]}.names"
    if name.startswith(("embed.", "lstm.weight_ih_l0")):
        return "inputs.names"
    return "arch.hyperparameters"


class Bundle:
    """A trained surrogate: the network, its metadata and the prediction code.

    Build one with :meth:`load` (from disk) or :meth:`from_model` (in memory, as training
    does before saving); both predict through the same code.
    """

    def __init__(self, model: Any, metadata: dict[str, Any], path: Path | None = None) -> None:
        import torch

        from .train.features import Normalizer, WindowFeatureSpec

        self.model = model.eval()
        self.metadata = metadata
        self.path = path
        inputs = metadata["inputs"]
        self._in_norm = Normalizer.from_dict(inputs["normalisation"])
        self._out_norm = {h: Normalizer.from_dict(metadata["outputs"][h]["normalisation"])
                          for h in metadata["arch"]["head_sizes"]}
        self.spec = (WindowFeatureSpec.from_dict(inputs["feature_spec"])
                     if metadata["scheme"] == "window" else None)
        self._torch = torch

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_model(cls, model: Any, metadata: dict[str, Any]) -> "Bundle":
        """Wrap an in-memory model (metadata as :func:`save_bundle` would complete it)."""
        cfg = model.config()
        meta = _jsonable({**metadata, "format": FORMAT, "format_version": FORMAT_VERSION,
                          "arch": {"name": cfg["arch"], "hyperparameters": cfg["hyperparameters"],
                                   "n_inputs": cfg["n_inputs"], "head_sizes": cfg["head_sizes"]}})
        return cls(model, meta)

    @classmethod
    def load(cls, dir_or_name: str | Path, model_family: str | None = None) -> "Bundle":
        """Load and verify a bundle directory (or a name under ``BUNDLES_DIR``).

        Raises
        ------
        BundleNotFoundError
            No such bundle, or it is for another ``model_family``.
        CheckpointError
            Missing file, unknown format version, hash mismatch (tampered weights or edited
            metadata), unknown architecture, or tensors that do not fit the architecture.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from .models import build_model

        d = resolve_bundle_dir(dir_or_name)
        mpath, wpath = d / METADATA_FILE, d / WEIGHTS_FILE
        for p in (mpath, wpath):
            if not p.is_file():
                raise CheckpointError(f"bundle lacks {p.name}", path=d,
                                      hint="copy the whole bundle directory, or retrain it")
        try:
            meta = json.loads(mpath.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"metadata is not valid JSON ({exc})", path=mpath,
                                  line=getattr(exc, "lineno", None),
                                  hint="restore the original metadata.json") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError("not an opensim-surrogate bundle", path=mpath, column="format",
                                  hint=f"expected format {FORMAT!r}")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(f"unknown bundle format version {version!r} (this library "
                                  f"reads version {FORMAT_VERSION})", path=mpath,
                                  column="format_version",
                                  hint="use the opensim-surrogate version that wrote it, or "
                                       "retrain the bundle")
        integ = _need(meta, "integrity", mpath)
        actual = _sha256_file(wpath)
        if integ.get("weights_sha256") != actual:
            raise CheckpointError("weights.safetensors does not match its SHA-256 in the "
                                  "metadata (modified or corrupted)", path=wpath,
                                  column="integrity.weights_sha256",
                                  hint="restore the original bundle files")
        if integ.get("metadata_sha256") != metadata_digest(meta):
            raise CheckpointError("metadata.json was edited after the bundle was saved (its "
                                  "SHA-256 does not match)", path=mpath,
                                  column="integrity.metadata_sha256",
                                  hint="restore the original metadata.json, or retrain")
        _check_metadata(meta, mpath)
        if model_family is not None and meta.get("model_family") != model_family:
            raise BundleNotFoundError(f"bundle is for model family {meta.get('model_family')!r}"
                                      f", not {model_family!r}", path=mpath,
                                      column="model_family", hint="pick a matching bundle")
        arch = meta["arch"]
        try:
            model = build_model(arch["name"], int(arch["n_inputs"]),
                                {k: int(v) for k, v in arch["head_sizes"].items()},
                                **arch["hyperparameters"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"cannot build the {arch['name']} network: {exc}", path=mpath,
                                  column="arch.hyperparameters", hint="retrain the bundle"
                                  ) from None
        try:
            tensors = load_file(str(wpath))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read the weights ({exc})", path=wpath,
                                  hint="restore the original bundle files") from None
        expected = model.state_dict()
        missing = sorted(set(expected) - set(tensors))
        extra = sorted(set(tensors) - set(expected))
        if missing or extra:
            name = (missing or extra)[0]
            raise CheckpointError(f"tensor {name!r} is {'missing' if missing else 'unexpected'}"
                                  f" for the {arch['name']} architecture in the metadata",
                                  path=wpath, column=_field_of_tensor(name),
                                  hint="the weights belong to another architecture; retrain")
        for name, t in expected.items():
            if tuple(tensors[name].shape) != tuple(t.shape):
                raise CheckpointError(f"tensor {name!r} has shape {tuple(tensors[name].shape)},"
                                      f" the architecture in the metadata needs "
                                      f"{tuple(t.shape)}", path=wpath,
                                      column=_field_of_tensor(name),
                                      hint="the weights belong to another configuration; "
                                           "retrain")
            if tensors[name].dtype != t.dtype:
                raise CheckpointError(f"tensor {name!r} has dtype {tensors[name].dtype}, "
                                      f"expected {t.dtype}", path=wpath,
                                      column=_field_of_tensor(name), hint="retrain the bundle")
        model.load_state_dict(tensors, strict=True)
        return cls(model, meta, path=d)

    def save(self, directory: str | Path, card: str | None = None) -> Path:
        """Write this bundle (see :func:`save_bundle`)."""
        keep = {k: v for k, v in self.metadata.items()
                if k not in ("arch", "format", "format_version", "integrity")}
        return save_bundle(directory, self.model, keep, card)

    # ---------------------------------------------------------------- description
    @property
    def name(self) -> str:
        return str(self.metadata.get("name", self.path.name if self.path else "unsaved"))

    @property
    def arch(self) -> str:
        return str(self.metadata["arch"]["name"])

    @property
    def scheme(self) -> str:
        return str(self.metadata["scheme"])

    @property
    def input_coordinates(self) -> list[str]:
        """Coordinates the kinematics must contain."""
        return list(self.metadata["inputs"]["coordinates"])

    @property
    def optional_coordinates(self) -> list[str]:
        """Coordinates used when present (else filled with the training mean)."""
        return list(self.metadata["inputs"].get("optional_coordinates", []))

    @property
    def moment_names(self) -> list[str]:
        return list(self.metadata["outputs"]["moments"]["names"])

    @property
    def muscle_names(self) -> list[str]:
        return list(self.metadata["outputs"]["forces"]["names"])

    @property
    def model_family(self) -> str:
        return str(self.metadata.get("model_family", ""))

    @property
    def sample_rate(self) -> float:
        return float(self.metadata.get("sample_rate", 100.0))

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.metadata.get("metrics") or {})

    def check_compatible(self, model_family: str, muscle_names: Sequence[str] | None = None
                         ) -> None:
        """Raise :class:`CheckpointError` unless this bundle fits a model of that family."""
        if model_family != self.model_family:
            raise CheckpointError(f"bundle {self.name!r} is for model family "
                                  f"{self.model_family!r}, not {model_family!r}",
                                  path=self.path, column="model_family",
                                  hint="use a bundle trained for this model family")
        if muscle_names is not None:
            missing = sorted(set(self.muscle_names) - set(muscle_names))
            extra = sorted(set(muscle_names) - set(self.muscle_names))
            if missing or extra:
                raise CheckpointError(f"muscle set differs from the bundle's (model lacks "
                                      f"{missing[:5]}, has extra {extra[:5]})", path=self.path,
                                      column="muscle_names",
                                      hint="use a bundle trained for this muscle set")

    # ---------------------------------------------------------------- low level
    def _forward(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        self.model.eval()
        with torch.no_grad():
            out = self.model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        return {k: v.numpy().astype(np.float64) for k, v in out.items()}

    def _forward_mc(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Deterministic outputs ``{head}`` plus MC-dropout std ``{head + ':std'}``."""
        from .models.base import mc_dropout

        torch = self._torch
        res = self._forward(batch)
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        mc = mc_dropout(self.model, x, MC_SAMPLES, seed=0)
        for k, (_, std) in mc.items():
            res[f"{k}:std"] = std.numpy().astype(np.float64)
        return res

    def _denorm(self, head: str, z: np.ndarray) -> np.ndarray:
        y = self._out_norm[head].inverse(z)
        return np.maximum(y, 0.0) if head == "forces" else y

    @staticmethod
    def _as_frame(kinematics: pd.DataFrame) -> pd.DataFrame:
        if not isinstance(kinematics, pd.DataFrame):
            raise InputError(f"kinematics must be a pandas DataFrame, got "
                             f"{type(kinematics).__name__}", hint="one column per coordinate")
        if "time" in kinematics.columns and isinstance(kinematics.index, pd.RangeIndex):
            kinematics = kinematics.set_index("time")
        return kinematics

    def features(self, kinematics: pd.DataFrame, height_m: float | None = None,
                 mass_kg: float | None = None) -> np.ndarray:
        """Normalised per-frame input features (T, n_inputs) of one trial (window scheme)
        or of its paper angles (cycle scheme)."""
        from .train.features import PAPER_ANGLES, check_sample_rate, window_features

        kin = self._as_frame(kinematics)
        if self.scheme == "window":
            raw = window_features(kin, self.spec, height_m, mass_kg)
        else:
            missing = [c for c in PAPER_ANGLES if c not in kin.columns]
            if missing:
                raise InputError(f"kinematics lack the joint angle(s) {missing}",
                                 column=missing[0], hint="give hip/knee/ankle angles (radians)")
            check_sample_rate(kin.index, self.sample_rate)
            raw = np.rad2deg(kin[PAPER_ANGLES].to_numpy(dtype=float))
        return self._in_norm.transform(raw)

    def predict_per_kg(self, kinematics: Sequence[pd.DataFrame],
                       heights: Sequence[float | None] | None = None,
                       masses: Sequence[float | None] | None = None,
                       uncertainty: bool = False,
                       features: Sequence[np.ndarray] | None = None
                       ) -> list[dict[str, np.ndarray]]:
        """Mass-normalised predictions of many trials: ``[{head: (T, C)}]`` (and
        ``head + ":std"`` when ``uncertainty``). Window scheme: all windows in one pass
        (``features``: the trials' :meth:`features`, when already computed).
        Cycle scheme: each input is one right-leg gait cycle."""
        from .train.features import predict_sequences

        kins = [self._as_frame(k) for k in kinematics]
        heights = list(heights) if heights is not None else [None] * len(kins)
        masses = list(masses) if masses is not None else [None] * len(kins)
        if len(heights) != len(kins) or len(masses) != len(kins):
            raise InputError(f"{len(kins)} trials but {len(heights)} heights and "
                             f"{len(masses)} masses")
        fwd = self._forward_mc if uncertainty else self._forward
        if self.scheme == "window":
            feats = (list(features) if features is not None else
                     [self.features(k, h, m) for k, h, m in zip(kins, heights, masses)])
            meta_in = self.metadata["inputs"]
            max_batch = _MAX_WINDOWS // (MC_SAMPLES if uncertainty else 1)
            raw = predict_sequences(fwd, feats, int(meta_in["window"]), int(meta_in["stride"]),
                                    max_batch=max(max_batch, 1))
        else:
            raw = [self._predict_cycle_z(k, fwd) for k in kins]
        out = []
        for r in raw:
            d = {}
            for head in self._out_norm:
                d[head] = self._denorm(head, r[head])
                if f"{head}:std" in r:
                    d[f"{head}:std"] = r[f"{head}:std"] * self._out_norm[head].std
            out.append(d)
        return out

    def _predict_cycle_z(self, kin: pd.DataFrame, fwd: Any, leg: str = "r",
                         start: float | None = None, end: float | None = None
                         ) -> dict[str, np.ndarray]:
        """Normalised outputs of one gait cycle, on the frames of ``kin`` within the cycle."""
        from .train.features import (CYCLE_SAMPLES, PAPER_ANGLES, cycle_inputs, resample_table,
                                     swap_permutation)

        t = np.asarray(kin.index, dtype=float)
        start = t[0] if start is None else start
        end = t[-1] if end is None else end
        x = cycle_inputs(kin, start, end, CYCLE_SAMPLES)
        if leg == "l":
            x = x[:, swap_permutation(PAPER_ANGLES)]
        z = self._in_norm.transform(x)[None].astype(np.float32)
        res = fwd(z)
        sel = (t >= start - 1e-9) & (t <= end + 1e-9)
        out = {}
        tc = np.linspace(start, end, CYCLE_SAMPLES)
        for k, v in res.items():
            v = v[0]
            if leg == "l":
                head = k.split(":")[0]
                perm = swap_permutation(self.metadata["outputs"][head]["names"])
                v = v[:, perm]
            full = np.full((len(t), v.shape[1]), np.nan)
            full[sel] = resample_table(tc, v, t[sel])[0]
            out[k] = full
        return out

    def predict_cycles_per_kg(self, kinematics: pd.DataFrame, cycles: Sequence[dict[str, Any]]
                              ) -> dict[str, np.ndarray]:
        """Cycle scheme on a whole trial: every listed cycle (``leg`` ``r`` or ``l``, ``start``,
        ``end``) predicted, mapped back to the trial's frames and averaged where cycles
        overlap; NaN on frames outside every cycle. Mass-normalised."""
        if self.scheme != "cycle":
            raise InputError("predict_cycles_per_kg is for cycle-scheme bundles")
        kin = self._as_frame(kinematics)
        n = len(kin)
        acc = {h: np.zeros((n, len(self.metadata["outputs"][h]["names"])))
               for h in self._out_norm}
        cnt = np.zeros((n, 1))
        for c in cycles:
            r = self._predict_cycle_z(kin, self._forward, c["leg"], c["start"], c["end"])
            cover = np.isfinite(r[next(iter(r))][:, :1])
            for h in acc:
                acc[h] += np.where(np.isfinite(r[h]), r[h], 0.0)
            cnt += cover
        out = {}
        for h in acc:
            with np.errstate(invalid="ignore", divide="ignore"):
                z = np.where(cnt > 0, acc[h] / np.maximum(cnt, 1), np.nan)
            out[h] = np.where(np.isfinite(z), self._denorm(h, np.nan_to_num(z)), np.nan)
        return out

    # ---------------------------------------------------------------- public API
    def predict(self, kinematics: pd.DataFrame, mass_kg: float, height_m: float | None = None,
                uncertainty: bool = False) -> Prediction:
        """Joint moments (N·m) and muscle forces (N) of one trial.

        Parameters
        ----------
        kinematics
            Time index in seconds at :attr:`sample_rate` Hz; one column per coordinate
            (canonical Rajagopal names, radians for rotations, metres for translations); at
            least 0.3 s. Must contain :attr:`input_coordinates`. (Cycle-scheme bundles: the
            input is ONE right-leg gait cycle, heel strike to heel strike.)
        mass_kg
            Body mass; outputs are predicted per kg and multiplied by it.
        height_m
            Body height (m); None uses the training mean.
        uncertainty
            Also return Monte-Carlo-dropout standard deviations.
        """
        return self.predict_many([kinematics], [mass_kg], [height_m], uncertainty)[0]

    def predict_many(self, kinematics: Sequence[pd.DataFrame], masses: Sequence[float],
                     heights: Sequence[float | None] | None = None,
                     uncertainty: bool = False) -> list[Prediction]:
        """:meth:`predict` for many trials in one batched forward pass."""
        kins = [self._as_frame(k) for k in kinematics]
        masses = list(masses)
        if len(masses) != len(kins):
            raise InputError(f"{len(kins)} trials but {len(masses)} masses")
        for m in masses:
            if not (isinstance(m, (int, float, np.floating)) and np.isfinite(m) and 10 <= m <= 300):
                raise InputError(f"body mass {m!r} kg is not plausible",
                                 hint="give the subject's mass in kg (10-300)")
        heights = list(heights) if heights is not None else [None] * len(kins)
        feats = None
        if self.scheme == "window":  # shared by the network and the OOD check
            feats = [self.features(k, h, m) for k, h, m in zip(kins, heights, masses)]
        per_kg = self.predict_per_kg(kins, heights, masses, uncertainty, features=feats)
        out = []
        for i, (kin, mass, r) in enumerate(zip(kins, masses, per_kg)):
            idx = kin.index
            mk = lambda a, cols: pd.DataFrame(a * float(mass), index=idx, columns=cols)  # noqa
            p = Prediction(moments=mk(r["moments"], self.moment_names),
                           forces=mk(r["forces"], self.muscle_names))
            if uncertainty:
                p.moments_std = mk(r["moments:std"], self.moment_names)
                p.forces_std = mk(r["forces:std"], self.muscle_names)
            if feats is not None:
                p.ood = self._ood_result(kin.index, feats[i])
            out.append(p)
        return out

    def ood(self, kinematics: pd.DataFrame, height_m: float | None = None,
            mass_kg: float | None = None) -> OODResult:
        """Per-frame distance of the input features to the training distribution."""
        kin = self._as_frame(kinematics)
        return self._ood_result(kin.index, self.features(kin, height_m, mass_kg))

    def _ood_result(self, index: pd.Index, features: np.ndarray) -> OODResult:
        stats = self.metadata["ood"]
        d = ood_distance(features, stats)
        thr = float(stats["threshold"])
        dist = pd.Series(d, index=index, name="ood_distance")
        over = dist > thr
        return OODResult(distance=dist, threshold=thr, over=over,
                         fraction_over=float(over.mean()) if len(over) else 0.0)

    def __repr__(self) -> str:
        return (f"Bundle({self.name!r}, arch={self.arch}, scheme={self.scheme}, "
                f"family={self.model_family}, {len(self.moment_names)} moments, "
                f"{len(self.muscle_names)} muscles)")


def find_bundle(model_family: str, muscle_names: Sequence[str] | None = None) -> Bundle:
    """The first bundle under ``BUNDLES_DIR`` (sorted by name) for this model family.

    Raises :class:`BundleNotFoundError` if none matches (family and, if given, muscle set).
    """
    from .paths import BUNDLES_DIR

    seen = []
    for d in sorted(p for p in BUNDLES_DIR.glob("*") if (p / METADATA_FILE).is_file()):
        try:
            meta = json.loads((d / METADATA_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        seen.append(f"{d.name} ({meta.get('model_family')})")
        if meta.get("model_family") != model_family:
            continue
        if muscle_names is not None:
            names = meta.get("outputs", {}).get("forces", {}).get("names", [])
            if set(names) != set(muscle_names):
                continue
        return Bundle.load(d)
    raise BundleNotFoundError(f"no trained surrogate for model family {model_family!r}"
                              + (" with this muscle set" if muscle_names is not None else ""),
                              path=BUNDLES_DIR, hint=f"available: {seen or 'none'}; train one "
                              f"with `opensim-surrogate train`")
