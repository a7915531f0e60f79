"""Choose the surrogate bundle for a user's model, and map sign conventions to and from it.

Rules of :func:`choose_bundle` (first that applies):

1. ``bundle=`` given (name in :data:`~opensim_surrogate.paths.BUNDLES_DIR`, folder, or a loaded
   ``Bundle``): use it. Its muscle forces are returned only if it was trained for the model's
   family and the model has (nearly all of) its muscles; otherwise ``forces`` is empty and a
   warning says why.
2. No model (``mass_kg=`` only, or a DataFrame): the default bundle
   (:data:`DEFAULT_BUNDLE`, else the only/first installed one); the input is taken to be in
   that bundle's convention.
3. A model: among the installed bundles trained for the model's family (``detect_family``)
   whose muscles the model has (at least :data:`MIN_MUSCLE_OVERLAP` of them), the default one,
   else the one covering most of the model's muscles -> moments and forces.
4. No bundle for the family: moments from a family-agnostic bundle (``model_family`` ``"any"``
   or a joint-moment-only bundle; else the default bundle) mapped through the model's sign
   conventions; ``forces`` empty and a warning — the run does not fail.
5. Nothing usable (no bundle installed, or the model lacks the coordinates every bundle needs):
   :class:`~opensim_surrogate.errors.BundleNotFoundError` naming the model and what is missing.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from ..errors import BundleNotFoundError, CheckpointError
from .. import paths as _paths

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_BUNDLE", "AGNOSTIC_FAMILIES", "MIN_MUSCLE_OVERLAP", "BundleChoice",
           "ConventionMap", "installed_bundles", "load_bundle", "choose_bundle",
           "convention_map", "bundle_conventions", "bundle_metadata"]

#: Name of the default bundle (Rajagopal-family walking).
DEFAULT_BUNDLE = "rajagopal_walking"
#: ``model_family`` values of bundles that predict moments for any model family.
AGNOSTIC_FAMILIES = frozenset({"any", "agnostic", "generic", "canonical"})
#: Share of a bundle's muscles the user's model must have for forces to be returned.
MIN_MUSCLE_OVERLAP = 0.9

_CACHE: dict[tuple[str, float], Any] = {}


def _bundles_dir() -> Path:
    return Path(os.environ.get("OPENSIM_SURROGATE_BUNDLES", _paths.BUNDLES_DIR))


def installed_bundles(root: str | Path | None = None) -> list[Path]:
    """Folders under ``root`` (default ``BUNDLES_DIR``) holding a ``metadata.json``, sorted."""
    base = Path(root) if root is not None else _bundles_dir()
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if (p / "metadata.json").is_file())


def load_bundle(ref: Any) -> Any:
    """Load (and cache) a bundle by name, folder, or return a loaded one as is.

    Raises
    ------
    BundleNotFoundError
        Unknown name / folder.
    CheckpointError
        A bundle that cannot be loaded (raised by ``Bundle.load``).
    """
    if hasattr(ref, "predict") and hasattr(ref, "input_coordinates"):  # a loaded Bundle
        return ref
    if not isinstance(ref, (str, os.PathLike)):
        raise BundleNotFoundError(f"bundle must be a name or a folder, not {type(ref).__name__}")
    p = Path(ref)
    if not (p / "metadata.json").is_file():
        cand = _bundles_dir() / str(ref)
        if (cand / "metadata.json").is_file():
            p = cand
        else:
            names = [b.name for b in installed_bundles()]
            raise BundleNotFoundError(
                f"no surrogate bundle {str(ref)!r}", path=p if p.exists() else None,
                hint=("installed: " + ", ".join(names)) if names else
                f"no bundle is installed in {_bundles_dir()}")
    p = p.resolve()
    key = (str(p), (p / "metadata.json").stat().st_mtime)
    if key not in _CACHE:
        from ..bundle import Bundle

        _CACHE[key] = Bundle.load(p)
    return _CACHE[key]


def _bundle_name(b: Any) -> str:
    for attr in ("name",):
        v = getattr(b, attr, None)
        if isinstance(v, str) and v:
            return v
    for attr in ("path", "directory", "root"):
        v = getattr(b, attr, None)
        if v:
            return Path(v).name
    md = getattr(b, "metadata", {}) or {}
    return str(md.get("name", "bundle"))


def _is_default(b: Any) -> bool:
    """Whether ``b`` is the default bundle (by folder name, else by its metadata name)."""
    path = getattr(b, "path", None)
    if path:
        return Path(path).name == DEFAULT_BUNDLE
    return _bundle_name(b) == DEFAULT_BUNDLE


def _family(b: Any) -> str:
    return str(getattr(b, "model_family", "") or (getattr(b, "metadata", {}) or {})
               .get("model_family", "unknown"))


# --------------------------------------------------------------------------------------
# conventions
# --------------------------------------------------------------------------------------
def bundle_conventions(b: Any):
    """The bundle's sign conventions (``ModelConventions``) or None (= canonical)."""
    from ..osim.conventions import ModelConventions

    conv = getattr(b, "conventions", None)
    if isinstance(conv, ModelConventions):
        return conv
    md = getattr(b, "metadata", {}) or {}
    d = md.get("conventions")
    if isinstance(d, dict) and d.get("coordinates"):
        return ModelConventions.from_dict(d)
    return None


@dataclass
class ConventionMap:
    """Sign mapping between the user's model and a bundle.

    Attributes
    ----------
    kinematics : callable
        User kinematics DataFrame -> bundle convention.
    moments : callable
        Moments DataFrame in the bundle convention -> user convention.
    flipped : list of str
        Coordinates whose sign differs between the two.
    """

    kinematics: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    moments: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    flipped: list[str] = field(default_factory=list)


def convention_map(model: Any, b: Any) -> ConventionMap:
    """Map between ``model`` (ModelInfo or None) and bundle ``b``.

    Raises
    ------
    ConventionError
        If the model's convention cannot be determined.
    """
    if model is None:
        return ConventionMap()
    from ..osim.conventions import conventions_for

    user = conventions_for(model)
    bconv = bundle_conventions(b)
    if bconv is None:
        flipped = sorted(c for c, s in user.signs().items() if s == -1)
        return ConventionMap(user.to_canonical, user.moments_from_canonical, flipped)
    flipped = sorted(c for c, s in user.signs().items()
                     if c in bconv.conventions and s * bconv.conventions[c].sign == -1)
    return ConventionMap(lambda df: user.to_bundle(df, bconv),
                         lambda df: user.moments_from_bundle(df, bconv), flipped)


# --------------------------------------------------------------------------------------
# choice
# --------------------------------------------------------------------------------------
@dataclass
class BundleChoice:
    """The bundle chosen for a run.

    Attributes
    ----------
    bundle
        The loaded ``Bundle``.
    name : str
        Its name.
    forces : bool
        Whether its muscle forces apply to the user's model.
    muscles : list of str
        Muscles whose forces are returned (bundle muscles the model has; all bundle muscles
        without a model); empty when ``forces`` is False.
    reason : str
        Why this bundle (for logs).
    warnings : list of str
        Warnings for the result.
    """

    bundle: Any
    name: str
    forces: bool
    muscles: list[str]
    reason: str
    warnings: list[str] = field(default_factory=list)


def _overlap(b: Any, model: Any) -> float:
    bm = list(getattr(b, "muscle_names", []) or [])
    if not bm:
        return 0.0
    have = set(model.muscle_names())
    return sum(m in have for m in bm) / len(bm)


def _coordinates_ok(b: Any, model: Any) -> list[str]:
    """Required input coordinates of ``b`` the model lacks."""
    return [c for c in getattr(b, "input_coordinates", []) if not model.has_coordinate(c)]


def _forces_choice(b: Any, model: Any, why: str) -> BundleChoice:
    name = _bundle_name(b)
    bm = list(getattr(b, "muscle_names", []) or [])
    if model is None:
        return BundleChoice(b, name, bool(bm), bm, why)
    fam, bfam = model.family, _family(b)
    ov = _overlap(b, model)
    if bm and fam == bfam and ov >= MIN_MUSCLE_OVERLAP:
        have = set(model.muscle_names())
        muscles = [m for m in bm if m in have]
        warnings = []
        lacking = [m for m in bm if m not in have]
        extra = [m for m in model.muscle_names() if m not in set(bm)]
        if lacking:
            log.info("%s: model lacks %d of bundle %s's muscles: %s", model.path, len(lacking),
                     name, ", ".join(lacking))
        if extra:
            warnings.append(f"model {Path(model.path).name} has {len(extra)} muscle(s) the "
                            f"bundle {name!r} was not trained for (no forces for them): "
                            + ", ".join(extra[:8]) + (" ..." if len(extra) > 8 else ""))
        return BundleChoice(b, name, True, muscles, why, warnings)
    if not bm:
        reason = f"the bundle {name!r} predicts joint moments only"
    elif fam != bfam:
        reason = (f"the bundle {name!r} was trained for the {bfam} model family and "
                  f"{Path(model.path).name} is a {fam} model")
    else:
        reason = (f"{Path(model.path).name} has only {ov:.0%} of the muscles of the bundle "
                  f"{name!r}")
    w = (f"no muscle forces: {reason}; joint moments come from {name!r} mapped to the model's "
         "sign conventions, res.forces is empty (train a bundle for this model family to get "
         "forces)")
    return BundleChoice(b, name, False, [], why, [w])


def choose_bundle(model: Any = None, bundle: Any = None) -> BundleChoice:
    """Pick the bundle for ``model`` (a ModelInfo or None); see the module docstring.

    Raises
    ------
    BundleNotFoundError
        No usable bundle (none installed, unknown name, or the model lacks the coordinates
        every bundle needs).
    """
    if bundle is not None:
        b = load_bundle(bundle)
        if model is not None:
            lack = _coordinates_ok(b, model)
            if lack:
                raise BundleNotFoundError(
                    f"the bundle {_bundle_name(b)!r} needs coordinates the model lacks: "
                    + ", ".join(lack), path=model.path,
                    hint="use a model with pelvis, hip, knee and ankle coordinates")
        return _forces_choice(b, model, "given")
    dirs = installed_bundles()
    if not dirs:
        raise BundleNotFoundError(
            f"no surrogate bundle is installed in {_bundles_dir()}",
            path=getattr(model, "path", None),
            hint="train one (opensim-surrogate train) or set $OPENSIM_SURROGATE_BUNDLES")
    default = next((d for d in dirs if d.name == DEFAULT_BUNDLE), None)
    if model is None:
        return _forces_choice(load_bundle(default or dirs[0]), None, "default bundle")
    loaded = []
    problems = []
    for d in dirs:
        try:
            loaded.append(load_bundle(d))
        except CheckpointError as exc:  # a broken bundle must not hide the others
            problems.append(f"{d.name}: {exc}")
            log.warning("skipping bundle %s: %s", d, exc)
    usable = [b for b in loaded if not _coordinates_ok(b, model)]
    if not usable:
        need = sorted({c for b in loaded for c in _coordinates_ok(b, model)})
        raise BundleNotFoundError(
            f"no surrogate bundle fits this model (family {model.family}): "
            + (f"it lacks {', '.join(need[:12])}" if need else "; ".join(problems)),
            path=model.path,
            hint="the surrogate needs a lower-limb gait model (pelvis, hips, knees, ankles); "
                 "installed bundles: " + ", ".join(d.name for d in dirs))
    fam = model.family
    same = [b for b in usable if _family(b) == fam and _overlap(b, model) >= MIN_MUSCLE_OVERLAP]
    if same:
        best = sorted(same, key=lambda b: (not _is_default(b),
                                           -_overlap(b, model),
                                           -len(getattr(b, "muscle_names", []) or [])))[0]
        return _forces_choice(best, model, f"trained for the {fam} family")
    agn = [b for b in usable if _family(b) in AGNOSTIC_FAMILIES
           or not (getattr(b, "muscle_names", None) or [])]
    fallback = agn or [b for b in usable if _is_default(b)] or usable
    ch = _forces_choice(fallback[0], model, f"no bundle for the {fam} family")
    return ch


def bundle_metadata(path: str | Path) -> dict[str, Any]:
    """``metadata.json`` of a bundle folder (without loading weights)."""
    return json.loads((Path(path) / "metadata.json").read_text())
