"""The Gait2Hip-60 comparison: 3 architectures x 2 input schemes + 2 baselines, one split.

:func:`run_comparison` trains every network with the protocol of :mod:`.protocol` (same
held-out subjects, same folds), fits the baselines of :mod:`.baselines` on the same pool, and
evaluates everything on the held-out subjects. It writes, under ``out_dir``:

``comparison.md``
    The tables (overall, Gait2Hip-60 side by side, per condition, CV, worst channels).
``overall.csv`` / ``per_condition.csv`` / ``per_channel.csv`` / ``per_subject.csv``
    Long-format metrics: method, frame set, channel group, metric columns.
``cv.csv``
    Per method and fold: validation subjects, best epoch, best validation loss, seconds.
``results.json``
    Split, configuration, summary, best window architecture by CV.
``cache/``
    Each finished network's test predictions and CV record, so an interrupted run resumes
    where it stopped (reused only for an identical configuration, dataset and split; safe to
    delete).

Frame sets
----------
``cycle_frames``
    Labelled frames of the held-out trials that lie inside a complete gait cycle (either
    leg). Every method predicts them (the cycle scheme only predicts inside cycles), so this
    is the like-for-like table of all 8 methods.
``all_frames``
    Every labelled frame of the held-out trials (window scheme and baselines only).

Channel groups: ``moments`` (all lower-limb joint moments, N·m/kg), ``forces`` (all muscles,
N/kg), and Gait2Hip-60's ``hip_moments`` (3 right-hip moments) and ``hip_groups`` (14 right-hip
muscle groups, sums of parts) for the side-by-side comparison.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..bundle import _jsonable
from .baselines import RidgeBaseline, TemplateBaseline
from .metrics import Evaluation
from .protocol import (PreparedData, TrialData, evaluate_predictions, group_kfold, make_config,
                       prepare_data, run_protocol, split_subjects)

log = logging.getLogger(__name__)

ARCHS = ("transformer", "lstm", "mamba")
SCHEMES = ("window", "cycle")
BASELINES = ("template", "ridge")
#: Gait2Hip-60's published test results (subject-mean): (RMSE, MAE, R² paper definition).
GAIT2HIP60 = {
    "hip_groups": {"transformer": (1.33, 0.57, 0.819), "mamba": (1.39, 0.60, 0.804),
                   "lstm": (1.51, 0.66, 0.775)},
    "hip_moments": {"transformer": (0.110, 0.074, 0.862), "lstm": (0.117, 0.077, 0.849),
                    "mamba": (0.130, 0.085, 0.815)},
}
TARGETS = {"moments": 0.90, "forces": 0.85}
GROUP_UNITS = {"moments": "N·m/kg", "forces": "N/kg", "hip_moments": "N·m/kg",
               "hip_groups": "N/kg"}


def cycle_frame_mask(trial: TrialData) -> np.ndarray:
    """(T,) True on frames inside any complete gait cycle of the trial."""
    t = trial.time
    m = np.zeros(len(t), dtype=bool)
    for c in trial.cycles:
        if float(c["end"]) - float(c["start"]) < 0.3:
            continue
        m |= (t >= float(c["start"]) - 1e-9) & (t <= float(c["end"]) + 1e-9)
    return m


@dataclass
class MethodResult:
    """Predictions and bookkeeping of one method."""

    name: str
    kind: str                     # "network" or "baseline"
    arch: str | None
    scheme: str | None
    predictions: list[dict[str, np.ndarray]]
    seconds: float
    cv: list[dict[str, Any]] = field(default_factory=list)
    final_epochs: int | None = None
    cv_val_loss: float | None = None
    evals: dict[str, dict[str, Evaluation]] = field(default_factory=dict)
    bundle: Any = None


@dataclass
class ComparisonResult:
    methods: dict[str, MethodResult]
    pool: list[str]
    test: list[str]
    overall: pd.DataFrame
    out_dir: Path | None
    best_window_arch: str | None
    markdown: str


def _covers_all(mr: MethodResult) -> bool:
    return mr.scheme != "cycle"


def run_comparison(dataset: Any, out_dir: str | Path | None = None, preset: str = "small",
                   archs: Sequence[str] = ARCHS, schemes: Sequence[str] = SCHEMES,
                   mirror: Any = True, overrides: dict[str, Any] | None = None,
                   prepared: PreparedData | None = None, resume: bool = True,
                   save_bundles: str | Path | None = None) -> ComparisonResult:
    """Train and evaluate every method on one split; write the tables to ``out_dir``.

    Parameters
    ----------
    dataset
        Dataset directory (or records); ignored when ``prepared`` is given.
    out_dir
        Where the CSV/Markdown/JSON files go (None: nothing written).
    preset, overrides
        Training settings (:func:`~.protocol.make_config`), the same for every network.
    archs, schemes
        Subsets of :data:`ARCHS` / :data:`SCHEMES`.
    mirror
        Mirroring (see :func:`~.protocol.prepare_data`).
    resume
        Keep every finished network's test predictions under ``out_dir/cache`` and reuse them
        when the configuration, data and split are unchanged (a long run can be resumed).
    save_bundles
        Directory to save every network's bundle in (``<arch>_<scheme>``), or None.
    """
    t_start = time.perf_counter()
    overrides = dict(overrides or {})
    base_cfg = make_config(preset, **overrides)
    if prepared is None:
        prepared = prepare_data(dataset, mirror=mirror)
    pool, test = split_subjects(prepared.subjects, base_cfg.test_fraction, base_cfg.split_seed)
    folds = group_kfold(pool, base_cfg.n_folds, base_cfg.split_seed)
    test_trials = prepared.originals(test)
    methods: dict[str, MethodResult] = {}

    cache = Path(out_dir) / "cache" if (out_dir is not None and resume) else None
    for scheme in schemes:
        for arch in archs:
            cfg = make_config(preset, **{**overrides, "arch": arch, "scheme": scheme})
            name = f"{arch}/{scheme}"
            key = _cache_key(cfg, prepared, test)
            mr = _load_cached(cache, name, key, arch, scheme) if cache else None
            if mr is not None:
                log.info("=== %s: reusing the cached result (%s)", name, cache)
                methods[name] = mr
                continue
            log.info("=== %s", name)
            res = run_protocol(cfg, prepared, name=f"{arch}_{scheme}")
            methods[name] = MethodResult(
                name=name, kind="network", arch=arch, scheme=scheme,
                predictions=res.test_predictions, seconds=res.seconds, cv=res.folds,
                final_epochs=res.final_epochs, cv_val_loss=res.cv_val_loss, bundle=res.bundle)
            if save_bundles is not None:
                res.bundle.save(Path(save_bundles) / f"{arch}_{scheme}")
            if cache is not None:
                _save_cached(cache, methods[name], key)
            log.info("%s done in %.0f s", name, res.seconds)

    t0 = time.perf_counter()
    tmpl = TemplateBaseline().fit(prepared.originals(pool), prepared.names)
    methods["template"] = MethodResult("template", "baseline", None, None,
                                       tmpl.predict(test_trials), time.perf_counter() - t0)
    t0 = time.perf_counter()
    ridge = RidgeBaseline().fit(prepared, pool, folds, mirror=base_cfg.mirror)
    methods["ridge"] = MethodResult("ridge", "baseline", None, None,
                                    ridge.predict(test_trials), time.perf_counter() - t0)

    cyc = [cycle_frame_mask(t) for t in test_trials]
    for mr in methods.values():
        mr.evals["cycle_frames"] = evaluate_predictions(test_trials, mr.predictions,
                                                        prepared.names, cyc)
        if _covers_all(mr):
            mr.evals["all_frames"] = evaluate_predictions(test_trials, mr.predictions,
                                                          prepared.names)
    window_nets = [m for m in methods.values() if m.kind == "network" and m.scheme == "window"
                   and m.cv_val_loss is not None and np.isfinite(m.cv_val_loss)]
    best = min(window_nets, key=lambda m: m.cv_val_loss).arch if window_nets else None
    overall = overall_table(methods)
    md = markdown_report(methods, overall, prepared, pool, test, base_cfg, preset, best,
                         time.perf_counter() - t_start)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        write_outputs(out, methods, overall, md, prepared, pool, test, folds, base_cfg, preset,
                      best)
    return ComparisonResult(methods, pool, test, overall, out, best, md)


def _cache_key(cfg: Any, prepared: PreparedData, test: Sequence[str]) -> str:
    import hashlib

    blob = json.dumps({"config": cfg.to_dict(), "data": prepared.fingerprint,
                       "mirror": prepared.mirror_name, "test": list(test),
                       "names": prepared.names}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cache_stem(cache: Path, name: str) -> Path:
    return cache / name.replace("/", "_")


def _save_cached(cache: Path, mr: MethodResult, key: str) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    stem = _cache_stem(cache, mr.name)
    arrays = {f"t{i}__{h}": v for i, p in enumerate(mr.predictions) for h, v in p.items()}
    np.savez_compressed(stem.with_suffix(".npz"), **arrays)
    info = {"key": key, "seconds": mr.seconds, "cv": mr.cv, "final_epochs": mr.final_epochs,
            "cv_val_loss": mr.cv_val_loss, "n_trials": len(mr.predictions)}
    stem.with_suffix(".json").write_text(json.dumps(_jsonable(info), indent=1))


def _load_cached(cache: Path, name: str, key: str, arch: str, scheme: str
                 ) -> MethodResult | None:
    stem = _cache_stem(cache, name)
    js, nz = stem.with_suffix(".json"), stem.with_suffix(".npz")
    if not (js.is_file() and nz.is_file()):
        return None
    info = json.loads(js.read_text())
    if info.get("key") != key:
        return None
    with np.load(nz, allow_pickle=False) as z:
        preds: list[dict[str, np.ndarray]] = [dict() for _ in range(info["n_trials"])]
        for k in z.files:
            i, h = k.split("__")
            preds[int(i[1:])][h] = z[k]
    return MethodResult(name=name, kind="network", arch=arch, scheme=scheme, predictions=preds,
                        seconds=float(info["seconds"]), cv=info["cv"],
                        final_epochs=info["final_epochs"], cv_val_loss=info["cv_val_loss"])


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------
def _beats(row: pd.Series, base: pd.DataFrame) -> bool:
    for _, b in base.iterrows():
        if not (row["r2_channel"] > b["r2_channel"] and row["rmse"] < b["rmse"]):
            return False
    return True


def overall_table(methods: dict[str, MethodResult]) -> pd.DataFrame:
    """One row per method x frame set x channel group, with 'beats the baselines' flags."""
    rows = []
    for mr in methods.values():
        for frames, evs in mr.evals.items():
            for g, ev in evs.items():
                rows.append({"method": mr.name, "kind": mr.kind, "arch": mr.arch,
                             "scheme": mr.scheme, "frames": frames, "group": g,
                             **{k: ev.overall[k] for k in ("rmse", "mae", "r2_paper",
                                                           "r2_channel", "r2_channel_median",
                                                           "n_subjects", "n_entries")},
                             "cv_val_loss": mr.cv_val_loss, "final_epochs": mr.final_epochs,
                             "seconds": round(mr.seconds, 1)})
    df = pd.DataFrame(rows)
    flags = []
    for _, r in df.iterrows():
        if r["kind"] != "network":
            flags.append(None)
            continue
        base = df[(df["kind"] == "baseline") & (df["frames"] == r["frames"]) &
                  (df["group"] == r["group"])]
        flags.append(bool(_beats(r, base)) if len(base) else None)
    df["beats_baselines"] = flags
    return df


def _frame_sets_coincide(overall: pd.DataFrame) -> bool:
    """True when every method scores the same entries on both frame sets."""
    a = overall[overall["frames"] == "all_frames"]
    for _, r in a.iterrows():
        b = overall[(overall["method"] == r["method"]) & (overall["group"] == r["group"]) &
                    (overall["frames"] == "cycle_frames")]
        if not len(b) or int(b.iloc[0]["n_entries"]) != int(r["n_entries"]):
            return False
    return True


def _fmt(x: Any, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "**no**"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.{nd}f}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def markdown_report(methods: dict[str, MethodResult], overall: pd.DataFrame,
                    prepared: PreparedData, pool: Sequence[str], test: Sequence[str],
                    cfg: Any, preset: str, best: str | None, seconds: float) -> str:
    """The comparison as Markdown."""
    L: list[str] = ["# Surrogate comparison (Gait2Hip-60 protocol on our data)", ""]
    L += [f"- dataset: `{prepared.source}` (fingerprint `{prepared.fingerprint[:16]}…`), "
          f"{len(prepared.trials)} trials of {len(prepared.subjects)} subjects, model family "
          f"`{prepared.model_family}`, {len(prepared.names['moments'])} moments, "
          f"{len(prepared.names['forces'])} muscles",
          f"- held-out test subjects ({len(test)}, split seed {cfg.split_seed}): "
          f"{', '.join(test)}; pool ({len(pool)}): {', '.join(pool)}",
          f"- protocol: {cfg.n_folds}-fold GroupKFold by subject on the pool with early "
          f"stopping (patience {cfg.patience}, ≤ {cfg.max_epochs} epochs), retrain on the pool "
          f"for the median best epoch, one test evaluation; preset `{preset}` (lr {cfg.lr:g}, "
          f"batch {cfg.batch_size}, target scaling `{cfg.target_scaling}`, window "
          f"{cfg.window} frames, mirroring: {prepared.mirror_name or 'none'} for the window "
          f"scheme, side swap for the cycle scheme: {cfg.mirror})",
          "- metrics: subject-mean over held-out subjects; `R² ch` = per-channel R² averaged "
          "over channels (honest), `R² paper` = Gait2Hip-60's definition (SStot around one "
          "grand mean of all channels pooled — flatters); units N·m/kg and N/kg",
          f"- total time {seconds / 60:.1f} min", ""]

    def row(m: str, frames: str, g: str) -> pd.Series | None:
        sel = overall[(overall["method"] == m) & (overall["frames"] == frames) &
                      (overall["group"] == g)]
        return sel.iloc[0] if len(sel) else None

    same = _frame_sets_coincide(overall)
    for frames, title in (("cycle_frames", "All 8 methods on the frames inside complete gait "
                                           "cycles (like for like)"),
                          ("all_frames", "Whole trials (window scheme and baselines)")):
        if frames == "all_frames" and same:
            L += ["(Every labelled frame of the held-out trials lies inside a complete gait "
                  "cycle, so the whole-trial numbers of the window scheme and the baselines are "
                  "those above; `overall.csv` lists both frame sets.)", ""]
            continue
        L += [f"## {title}", ""]
        rows = []
        for m in methods:
            rm, rf = row(m, frames, "moments"), row(m, frames, "forces")
            if rm is None or rf is None:
                continue
            flag = []
            for r, g in ((rm, "moments"), (rf, "forces")):
                if r["beats_baselines"] is False:
                    flag.append(f"does not beat baseline ({g})")
            rows.append([m, _fmt(rm["rmse"]), _fmt(rm["mae"]), _fmt(rm["r2_channel"]),
                         _fmt(rm["r2_paper"]), _fmt(rf["rmse"]), _fmt(rf["mae"]),
                         _fmt(rf["r2_channel"]), _fmt(rf["r2_paper"]),
                         "; ".join(flag) if flag else ("–" if rm["kind"] != "network" else
                                                       "beats both")])
        L += [_md_table(["method", "mom. RMSE", "mom. MAE", "mom. R² ch", "mom. R² paper",
                         "force RMSE", "force MAE", "force R² ch", "force R² paper",
                         "vs baselines"], rows), ""]
        L += [f"Targets: honest R² ≥ {TARGETS['moments']} (moments), ≥ {TARGETS['forces']} "
              "(forces).", ""]

    L += ["## Side by side with Gait2Hip-60 (right hip: 3 moments, 14 muscle groups; "
          "cycle frames)", ""]
    rows = []
    for m, mr in methods.items():
        rm, rf = row(m, "cycle_frames", "hip_moments"), row(m, "cycle_frames", "hip_groups")
        if rm is None or rf is None:
            continue
        pm = GAIT2HIP60["hip_moments"].get(mr.arch or "", (None,) * 3)
        pf = GAIT2HIP60["hip_groups"].get(mr.arch or "", (None,) * 3)
        rows.append([m, _fmt(rm["rmse"]), _fmt(rm["r2_paper"]), _fmt(pm[0]), _fmt(pm[2]),
                     _fmt(rm["r2_channel"]), _fmt(rf["rmse"]), _fmt(rf["r2_paper"]),
                     _fmt(pf[0], 2), _fmt(pf[2]), _fmt(rf["r2_channel"])])
    L += [_md_table(["method", "hip mom. RMSE", "hip mom. R² paper", "G2H60 RMSE",
                     "G2H60 R² paper", "hip mom. R² ch", "hip groups RMSE",
                     "hip groups R² paper", "G2H60 RMSE", "G2H60 R² paper",
                     "hip groups R² ch"], rows), ""]
    L += ["Gait2Hip-60: 60 subjects, 713 cycles, cadence-controlled treadmill-like walking, "
          "gait2392-type muscles; ours: a different dataset, model and reference pipeline — "
          "compare orders of magnitude, not decimals.", ""]

    L += ["## Per condition (honest R², moments / forces; subject-mean)", ""]
    conds = sorted({c for mr in methods.values() for ev in mr.evals.get("cycle_frames", {})
                    .values() for c in ev.conditions.get("condition", [])})
    rows = []
    for m, mr in methods.items():
        for frames in ("cycle_frames", "all_frames"):
            if frames not in mr.evals or (frames == "all_frames" and same):
                continue
            cm = mr.evals[frames]["moments"].conditions.set_index("condition")
            cf = mr.evals[frames]["forces"].conditions.set_index("condition")
            cells = []
            for c in conds:
                a = _fmt(cm.loc[c, "r2_channel"]) if c in cm.index else "–"
                b = _fmt(cf.loc[c, "r2_channel"]) if c in cf.index else "–"
                cells.append(f"{a} / {b}")
            rows.append([m, frames] + cells)
    L += [_md_table(["method", "frames"] + conds, rows), ""]

    L += ["## Cross-validation on the pool", ""]
    rows = []
    for m, mr in methods.items():
        if mr.kind != "network":
            continue
        rows.append([m, _fmt(mr.cv_val_loss, 4), ", ".join(str(f["best_epoch"]) for f in mr.cv),
                     mr.final_epochs, f"{mr.seconds / 60:.1f}"])
    L += [_md_table(["method", "mean best val. loss (z-units)", "best epochs per fold",
                     "final epochs", "minutes (CV + final)"], rows), ""]
    if best:
        L += [f"Best window-scheme architecture by CV on the pool: **{best}**.", ""]

    L += ["## Weakest channels (honest R², all frames, best window model by CV)", ""]
    key = f"{best}/window" if best else None
    if key in methods and "all_frames" in methods[key].evals:
        for g in ("moments", "forces"):
            ch = methods[key].evals["all_frames"][g].channels.sort_values("r2").head(8)
            L += [f"{g}: " + ", ".join(f"{r.channel} {_fmt(r.r2, 2)}" for r in ch.itertuples()),
                  ""]
    return "\n".join(L) + "\n"


def write_outputs(out: Path, methods: dict[str, MethodResult], overall: pd.DataFrame, md: str,
                  prepared: PreparedData, pool: Sequence[str], test: Sequence[str],
                  folds: Sequence[Any], cfg: Any, preset: str, best: str | None) -> None:
    """Write the CSV, Markdown and JSON outputs."""
    out.mkdir(parents=True, exist_ok=True)
    overall.to_csv(out / "overall.csv", index=False, float_format="%.6g")
    cond_rows, ch_rows, subj_rows, cv_rows = [], [], [], []
    for mr in methods.values():
        for frames, evs in mr.evals.items():
            for g, ev in evs.items():
                for r in ev.conditions.to_dict(orient="records"):
                    cond_rows.append({"method": mr.name, "frames": frames, "group": g, **r})
                for r in ev.channels.to_dict(orient="records"):
                    ch_rows.append({"method": mr.name, "frames": frames, "group": g, **r})
                for r in ev.subjects.to_dict(orient="records"):
                    subj_rows.append({"method": mr.name, "frames": frames, "group": g, **r})
        for f in mr.cv:
            cv_rows.append({"method": mr.name, **{k: (";".join(v) if isinstance(v, list) else v)
                                                  for k, v in f.items()}})
    pd.DataFrame(cond_rows).to_csv(out / "per_condition.csv", index=False, float_format="%.6g")
    pd.DataFrame(ch_rows).to_csv(out / "per_channel.csv", index=False, float_format="%.6g")
    pd.DataFrame(subj_rows).to_csv(out / "per_subject.csv", index=False, float_format="%.6g")
    pd.DataFrame(cv_rows).to_csv(out / "cv.csv", index=False, float_format="%.6g")
    (out / "comparison.md").write_text(md)
    summary = {
        "dataset": prepared.source, "fingerprint": prepared.fingerprint,
        "model_family": prepared.model_family, "preset": preset, "config": cfg.to_dict(),
        "split": {"pool": list(pool), "test": list(test),
                  "folds": [{"train": list(a), "val": list(b)} for a, b in folds]},
        "mirroring": prepared.mirror_name, "best_window_arch_by_cv": best,
        "methods": {m: {"seconds": round(mr.seconds, 1), "cv_val_loss": mr.cv_val_loss,
                        "final_epochs": mr.final_epochs,
                        "overall": {fr: {g: ev.overall for g, ev in evs.items()}
                                    for fr, evs in mr.evals.items()}}
                    for m, mr in methods.items()},
    }
    (out / "results.json").write_text(json.dumps(_jsonable(summary), indent=1,
                                                 allow_nan=False))
    log.info("comparison written to %s", out)


