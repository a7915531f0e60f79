"""Validation of a surrogate bundle against a reference dataset: ``report.md`` + ``report.html``.

:func:`run_validation` predicts every selected trial with the bundle, compares with the real
OpenSim outputs (:mod:`.compare`), optionally runs the moment-balance physics check
(:mod:`.physics`) on a few trials, and :func:`write_report` writes::

    OUT/report.md             tables (Markdown) + links to the figures
    OUT/report.html           the same, self-contained (figures embedded as base64 PNG,
                              inline CSS, no scripts, no external resources)
    OUT/figures/*.png         the figures
    OUT/metrics.json          every table at full precision (+ run metadata)
    OUT/*.csv                 per-output / per-subject / per-condition / peaks / physics tables

Which subjects: ``subjects="auto"`` uses the bundle's held-out (test) subjects when the dataset
is the corpus the bundle was trained on, and every subject of any other corpus (an
out-of-distribution check, e.g. the walking bundle on hamner2013 running).
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .._version import __version__
from ..errors import DatasetError, InputError, SurrogateError
from . import compare as C

log = logging.getLogger(__name__)

__all__ = ["ValidationResult", "run_validation", "write_report", "load_bundle",
           "test_subjects", "format_number"]


@dataclass
class ValidationResult:
    """Everything a report is made of.

    Attributes
    ----------
    meta : dict
        Run metadata (dataset, bundle, subjects, counts, versions, date, notes).
    comparisons : list of TrialComparison
    tables : dict of DataFrame
        ``overall``, ``paper``, ``per_output_<head>``, ``per_subject_<head>``,
        ``per_condition_<head>``, ``peaks_hip``, ``bland_altman``, ``ood``, ``physics``.
    figures : dict of bytes
        PNG figures by name.
    """

    meta: dict[str, Any]
    comparisons: list[C.TrialComparison]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, bytes] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# bundle helpers
# --------------------------------------------------------------------------------------------
def load_bundle(name: str | Path) -> Any:
    """``Bundle.load(name)`` (a bundle name under ``osim_models/`` or a directory)."""
    from ..bundle import Bundle

    return Bundle.load(str(name))


def _meta_of(bundle: Any) -> dict[str, Any]:
    m = getattr(bundle, "metadata", None)
    if m is None:
        return {}
    if isinstance(m, dict):
        return m
    if hasattr(m, "to_dict"):
        return dict(m.to_dict())
    return dict(getattr(m, "__dict__", {}))


def test_subjects(bundle: Any) -> list[str] | None:
    """The bundle's held-out subjects (``metadata["training"]["split"]["test_subjects"]``)."""
    meta = _meta_of(bundle)
    split = (meta.get("training") or {}).get("split") or meta.get("split") or {}
    if isinstance(split, dict):
        for key in ("test_subjects", "test"):
            if split.get(key):
                return [str(s) for s in split[key]]
    return None


def trained_on(bundle: Any, dataset: Any) -> tuple[bool | None, str]:
    """Was ``bundle`` trained on ``dataset`` (a :class:`Dataset`)? ``(answer, description)``.

    Same dataset fingerprint, same directory, or the same corpus name; None if the bundle
    does not say what it was trained on.
    """
    training = _meta_of(bundle).get("training") or {}
    src = str(training.get("dataset", "") or "")
    corpus = str(dataset.info.get("corpus", dataset.root.name))
    if not src and not training.get("fingerprint"):
        return None, "unknown"
    if training.get("fingerprint") and training.get("fingerprint") == dataset.fingerprint():
        return True, src or "this dataset (same fingerprint)"
    if src:
        p = Path(src)
        try:
            if p.resolve() == dataset.root.resolve():
                return True, src
        except OSError:
            pass
        if p.name == dataset.root.name or p.name == corpus:
            return True, src
    return False, src or "another dataset"


def _bundle_name(bundle: Any, fallback: str) -> str:
    meta = _meta_of(bundle)
    return str(getattr(bundle, "name", None) or meta.get("name") or fallback)


# --------------------------------------------------------------------------------------------
# running the validation
# --------------------------------------------------------------------------------------------
def run_validation(dataset: str | Path, bundle: Any, *, subjects: str | Sequence[str] = "auto",
                   max_trials: int | None = None, physics_trials: int = 0,
                   physics_every: int = 5, work_dir: str | Path | None = None,
                   bundle_label: str | None = None) -> ValidationResult:
    """Compare a bundle with a dataset's OpenSim reference.

    Parameters
    ----------
    dataset
        Dataset directory (schema of :mod:`opensim_surrogate.dataset.store`).
    bundle
        A loaded bundle (``predict`` / ``ood`` / ``metadata``) or a bundle name.
    subjects
        ``"auto"`` (see module docstring), ``"test"`` (the bundle's held-out subjects),
        ``"all"``, or a list of subject ids.
    max_trials
        Use at most this many trials (the first ones, sorted by id): reduced validation.
    physics_trials
        Run the physics check on this many trials (0: skip).
    physics_every
        Physics check on every n-th valid frame.
    work_dir
        Where scaled subject models for the physics check are cached.
    """
    from ..dataset.store import Dataset

    t_start = time.perf_counter()
    if isinstance(bundle, (str, Path)):
        bundle_label = bundle_label or str(bundle)
        bundle = load_bundle(bundle)
    ds = Dataset(dataset)
    corpus = str(ds.info.get("corpus", Path(dataset).name))
    same, trained_desc = trained_on(bundle, ds)
    held_out = test_subjects(bundle)
    notes: list[str] = []
    all_ids = ds.trial_ids
    if not all_ids:
        raise DatasetError("the dataset has no complete trial", path=ds.root)
    in_distribution = same is not False
    if isinstance(subjects, str) and subjects == "auto":
        if in_distribution and held_out:
            chosen: set[str] | None = set(held_out)
            selection = "held-out (test) subjects of the bundle"
        else:
            chosen = None
            selection = "all subjects (corpus not used for training)" if not in_distribution \
                else "all subjects (the bundle records no test split)"
            if in_distribution and not held_out:
                notes.append("The bundle records no held-out subjects: every subject is "
                             "evaluated, including training subjects (optimistic).")
    elif isinstance(subjects, str) and subjects == "test":
        if not held_out:
            raise InputError("the bundle records no held-out (test) subjects",
                             hint="use --subjects all or a list of subject ids")
        chosen, selection = set(held_out), "held-out (test) subjects of the bundle"
    elif isinstance(subjects, str) and subjects == "all":
        chosen, selection = None, "all subjects"
        if in_distribution and held_out:
            notes.append("Training subjects are included (--subjects all): optimistic.")
    else:
        chosen = {str(s) for s in subjects}
        selection = "subjects given on the command line"
    records_meta = []
    for tid in all_ids:
        meta = json.loads((ds.root / "trials" / tid / "meta.json").read_text())
        if chosen is None or str(meta.get("subject")) in chosen:
            records_meta.append(tid)
    if not records_meta:
        raise InputError(f"no trial of the selected subjects in {ds.root}",
                         hint=f"selected: {sorted(chosen) if chosen else 'all'}")
    if max_trials is not None:
        records_meta = _spread(records_meta, max_trials, ds)
    comps: list[C.TrialComparison] = []
    physics_results = []
    physics_notes: list[str] = []
    family = None
    failed: list[str] = []
    bundle_family = str(_meta_of(bundle).get("model_family", "rajagopal") or "rajagopal")
    for i, tid in enumerate(records_meta):
        rec = ds.load(tid)
        family = family or rec.model_family
        try:
            mom, frc, warns, ood, secs = C.predict_trial(bundle, rec)
        except SurrogateError as exc:
            failed.append(f"{tid}: {exc}")
            log.warning("surrogate failed on %s: %s", tid, exc)
            continue
        # muscle forces are only comparable on the bundle's own model family (same muscles)
        same_family = (rec.model_family or "rajagopal") == bundle_family
        comp = C.compare_trial(rec, mom, frc if same_family else pd.DataFrame(),
                               warnings=warns, ood=ood, seconds=secs)
        comps.append(comp)
        if i < physics_trials:
            pr, note = _physics_for(rec, mom, frc, physics_every, work_dir or Path(dataset))
            if pr is not None:
                physics_results.append(pr)
            if note:
                physics_notes.append(note)
        log.info("validated %s (%d/%d)", tid, i + 1, len(records_meta))
    if failed:
        notes.append(f"The surrogate refused {len(failed)} trial(s) (not scored): "
                     + "; ".join(failed[:5]) + (" ..." if len(failed) > 5 else ""))
    if not comps:
        raise InputError("the surrogate could not predict any selected trial",
                         hint=failed[0] if failed else None)
    if family and family != bundle_family:
        notes.append(f"The dataset's model family ({family}) differs from the bundle's "
                     f"({bundle_family}): kinematics and reference moments were mapped to the "
                     "canonical sign convention; muscle forces are not comparable (different "
                     "muscle sets), so only moments are evaluated.")
    if not any(len(c.channels("forces")) for c in comps) and family == bundle_family:
        notes.append("No muscle is shared by the bundle and the dataset: force metrics omitted.")
    result = ValidationResult(meta={}, comparisons=comps)
    _fill_tables(result)
    if physics_results:
        from .physics import summarize_physics

        result.tables["physics"] = summarize_physics(physics_results)
        rows = []
        for pr in physics_results:
            t = pr.table.copy()
            t.insert(0, "trial_id", pr.trial_id)
            rows.append(t.reset_index())
        result.tables["physics_trials"] = pd.concat(rows, ignore_index=True)
    _fill_figures(result)
    n_frames = {h: int(sum(np.isfinite(c.ref[h].to_numpy(float)).all(axis=1).sum()
                           if c.ref[h].shape[1] else 0 for c in comps)) for h in C.HEADS}
    result.meta = {
        "title": f"Validation of {bundle_label or _bundle_name(bundle, 'bundle')} on {corpus}",
        "dataset": str(Path(dataset)),
        "corpus": corpus,
        "bundle": bundle_label or _bundle_name(bundle, "bundle"),
        "bundle_trained_on": trained_desc,
        "in_distribution": bool(in_distribution),
        "selection": selection,
        "subjects": sorted({c.subject for c in comps}),
        "conditions": sorted({c.condition for c in comps}),
        "n_trials": len(comps),
        "n_trials_failed": len(failed),
        "n_trials_in_dataset": len(all_ids),
        "reduced": max_trials is not None,
        "n_valid_frames": n_frames,
        "n_cycles": int(sum(len(c.cycles) for c in comps)),
        "model_family": family,
        "trials_with_warnings": int(sum(bool(c.warnings) for c in comps)),
        "prediction_seconds_total": float(sum(c.seconds for c in comps)),
        "physics_notes": physics_notes,
        "notes": notes,
        "version": __version__,
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "seconds": time.perf_counter() - t_start,
    }
    return result


def _spread(ids: list[str], k: int, ds: Any) -> list[str]:
    """Up to ``k`` trials spread over subjects (round robin), alternating their conditions."""
    if k >= len(ids):
        return ids
    by: dict[str, dict[str, list[str]]] = {}
    for tid in ids:
        meta = json.loads((ds.root / "trials" / tid / "meta.json").read_text())
        by.setdefault(str(meta.get("subject")), {}).setdefault(
            str(meta.get("condition")), []).append(tid)
    queues = []
    for _, conds in sorted(by.items()):
        order: list[str] = []
        lists = [list(v) for _, v in sorted(conds.items())]
        while any(lists):
            for q in lists:
                if q:
                    order.append(q.pop(0))
        queues.append(order)
    out: list[str] = []
    while len(out) < k and any(queues):
        for q in queues:
            if q and len(out) < k:
                out.append(q.pop(0))
    return sorted(out)


def _physics_for(rec: Any, mom: pd.DataFrame, frc: pd.DataFrame, every: int,
                 work_dir: Path) -> tuple[Any, str]:
    from .physics import physics_check, resolve_subject_model

    if (rec.extras or {}).get("synthetic"):
        return None, f"{rec.trial_id}: synthetic trial, no OpenSim model: physics check skipped"
    try:
        model = resolve_subject_model(rec, Path(work_dir) / "physics_work")
    except SurrogateError as exc:
        return None, f"{rec.trial_id}: physics check skipped ({exc})"
    _, conv = C.canonical_kinematics(rec)
    same_family = conv is None
    pm = conv.moments_from_canonical(mom) if (conv is not None and len(mom)) else mom
    try:
        res = physics_check(rec, model, predicted_forces=frc if same_family else None,
                            predicted_moments=pm if same_family else None, every=every)
    except SurrogateError as exc:
        return None, f"{rec.trial_id}: physics check failed ({exc})"
    note = "" if same_family else (f"{rec.trial_id}: reference only (the bundle's muscles are "
                                   "not this model's)")
    return res, note


def _fill_tables(res: ValidationResult) -> None:
    comps = res.comparisons
    t = res.tables
    for head in C.HEADS:
        if not C.common_channels(comps, head):
            continue
        t[f"per_output_{head}"] = C.channel_table(comps, head)
        t[f"per_subject_{head}"] = C.group_table(comps, head, "subject")
        t[f"per_condition_{head}"] = C.group_table(comps, head, "condition")
    t["overall"] = C.overall_table(comps)
    t["paper"] = C.paper_table(comps)
    peaks = C.hip_peaks(comps)
    res.tables["peaks_hip_flexion"] = peaks["flexion"]
    res.tables["peaks_hip_extension"] = peaks["extension"]
    ba = []
    for kind, df in peaks.items():
        ba.append({"peak": f"hip {kind} moment (N·m/kg)",
                   **C.bland_altman(df["ref_peak"].to_numpy(float),
                                    df["pred_peak"].to_numpy(float)),
                   "mean_abs_timing_err_pct": float((df["pred_time_pct"] -
                                                     df["ref_time_pct"]).abs().mean())
                   if len(df) else float("nan")})
    t["bland_altman"] = pd.DataFrame(ba).set_index("peak").rename(columns={"n": "n_cycles"})
    t["ood"] = _ood_table(comps)


def _ood_table(comps: Sequence[C.TrialComparison]) -> pd.DataFrame:
    rows = []
    for c in comps:
        o = c.ood or {}
        rows.append({"trial_id": c.trial_id, "subject": c.subject, "condition": c.condition,
                     "warnings": len(c.warnings),
                     "ood_fraction": _to_float(o.get("fraction_over")),
                     "ood_flagged": o.get("is_ood"),
                     "max_distance": _to_float(o.get("max_distance")),
                     "threshold": _to_float(o.get("threshold")),
                     "first_warning": c.warnings[0] if c.warnings else ""})
    return pd.DataFrame(rows)


def _to_float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _fill_figures(res: ValidationResult) -> None:
    from . import figures as F

    comps = res.comparisons
    figs: dict[str, bytes | None] = {
        "cycles_moments": F.cycle_figure(comps, "moments", F.MOMENT_PANELS,
                                         "Joint moments, OpenSim ID vs surrogate"),
        "cycles_hip_muscles": F.cycle_figure(comps, "groups", F.HIP_MUSCLE_PANELS,
                                             "Main hip muscles (Gait2Hip-60 groups), OpenSim SO "
                                             "vs surrogate"),
        "r2_muscles": F.r2_bar_figure(res.tables.get("per_output_forces"),
                                      "Per-muscle R² (surrogate vs OpenSim SO)"),
        "bland_altman_hip": F.bland_altman_figure(
            {"flexion": res.tables["peaks_hip_flexion"],
             "extension": res.tables["peaks_hip_extension"]}),
    }
    if "physics" in res.tables:
        figs["physics"] = F.physics_figure(res.tables["physics"])
    res.figures = {k: v for k, v in figs.items() if v is not None}


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------
def format_number(x: Any) -> str:
    """How numbers appear in the reports: 4 significant digits, integers as integers."""
    if x is None:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(float(x)):
            return "–"
        return f"{float(x):.4g}"
    return str(x)


_COLUMN_TITLES = {
    "rmse": "RMSE", "nrmse_pct": "nRMSE (% range)", "mae": "MAE", "r2": "R²",
    "r2_paper": "R² (Gait2Hip-60 def.)", "r2_channel": "R² (per channel, mean)",
    "pearson_r": "Pearson r", "n": "scored entries", "subjects": "subjects", "peak_err": "|peak err|",
    "peak_timing_err_pct": "|peak timing err| (% cycle)", "n_cycles": "cycles",
    "trials": "trials", "n_outputs": "outputs", "bias": "bias", "sd": "SD of diff",
    "loa_low": "LoA low", "loa_high": "LoA high", "mean_abs_timing_err_pct":
    "|timing err| (% cycle)", "ref": "OpenSim SO+reserve", "ref_no_reserve": "OpenSim SO only",
    "sur_vs_pred": "surrogate F vs its M", "sur_vs_id": "surrogate F vs ID",
    "id_rms": "RMS ID moment", "ref_per_kg": "OpenSim SO+reserve /kg",
    "ref_no_reserve_per_kg": "OpenSim SO only /kg", "sur_vs_pred_per_kg":
    "surrogate F vs its M /kg", "sur_vs_id_per_kg": "surrogate F vs ID /kg",
    "id_rms_per_kg": "RMS ID moment /kg", "n_frames": "frames",
    "ood_flagged": "flagged by Bundle.ood", "ood_fraction": "frames beyond threshold",
    "max_distance": "max OOD distance", "threshold": "OOD threshold", "warnings": "warnings",
    "first_warning": "first warning",
}


def _table_rows(df: pd.DataFrame, index: bool = True) -> tuple[list[str], list[list[str]]]:
    cols = ([df.index.name or ""] if index else []) + [_COLUMN_TITLES.get(c, c) for c in df.columns]
    rows = []
    for tup in df.itertuples(index=True, name=None):
        idx, values = tup[0], tup[1:]
        cells = [str(idx)] if index else []
        cells += [format_number(v) for v in values]
        rows.append(cells)
    return cols, rows


def markdown_table(df: pd.DataFrame, index: bool = True) -> str:
    """A GitHub-flavoured Markdown table (numbers via :func:`format_number`)."""
    if df is None or not len(df):
        return "_(no data)_\n"
    cols, rows = _table_rows(df, index)

    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(esc(c) for c in cols) + " |",
           "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def html_table(df: pd.DataFrame, index: bool = True, css_class: str = "") -> str:
    if df is None or not len(df):
        return "<p><em>(no data)</em></p>\n"
    cols, rows = _table_rows(df, index)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                     for r in rows)
    cls = f' class="{css_class}"' if css_class else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>\n"


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1180px;color:#212529;line-height:1.45;padding:0 16px}
h1{font-size:1.6em;border-bottom:2px solid #dee2e6;padding-bottom:6px}
h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #e9ecef}
h3{font-size:1.05em}
table{border-collapse:collapse;margin:8px 0 16px 0;font-size:12.5px}
th,td{border:1px solid #dee2e6;padding:3px 8px;text-align:right}
th{background:#f1f3f5} td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#f8f9fa}
img{max-width:100%;border:1px solid #e9ecef;margin:6px 0}
.note{background:#fff9db;border-left:4px solid #fab005;padding:6px 10px;margin:8px 0}
.meta td{text-align:left}
details summary{cursor:pointer;color:#1c7ed6}
"""


class _Doc:
    """Builds the Markdown and HTML versions of the report side by side."""

    def __init__(self) -> None:
        self.md: list[str] = []
        self.html: list[str] = []

    def h(self, level: int, text: str) -> None:
        self.md.append(f"{'#' * level} {text}\n")
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def p(self, text: str, note: bool = False) -> None:
        self.md.append(("> " if note else "") + text + "\n")
        cls = ' class="note"' if note else ""
        self.html.append(f"<p{cls}>{_inline_html(text)}</p>")

    def bullets(self, items: Sequence[str]) -> None:
        self.md.append("\n".join(f"- {i}" for i in items) + "\n")
        self.html.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in items) + "</ul>")

    def table(self, df: pd.DataFrame, index: bool = True, collapsed: str | None = None) -> None:
        self.md.append(markdown_table(df, index))
        t = html_table(df, index)
        if collapsed:
            t = f"<details><summary>{html.escape(collapsed)}</summary>{t}</details>"
        self.html.append(t)

    def figure(self, name: str, png: bytes, caption: str) -> None:
        self.md.append(f"![{caption}](figures/{name}.png)\n\n*{caption}*\n")
        b64 = base64.b64encode(png).decode("ascii")
        self.html.append(f'<figure><img alt="{html.escape(caption)}" '
                         f'src="data:image/png;base64,{b64}"/>'
                         f"<figcaption><em>{html.escape(caption)}</em></figcaption></figure>")


def _inline_html(text: str) -> str:
    """Markdown ``code`` and **bold** to HTML (the only inline markup used)."""
    import re

    s = html.escape(text)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    s = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", s)
    return s


def write_report(res: ValidationResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html``, figures, ``metrics.json`` and CSV tables.

    Returns ``(report.md, report.html)``.
    """
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for name, png in res.figures.items():
        (out / "figures" / f"{name}.png").write_bytes(png)
    for name, df in res.tables.items():
        if df is not None and len(df):
            df.to_csv(out / f"{name}.csv")
    (out / "metrics.json").write_text(json.dumps(
        {"meta": res.meta, "tables": {k: _json_table(v) for k, v in res.tables.items()}},
        indent=1, default=_json_default))
    doc = _build(res)
    md_path = out / "report.md"
    md_path.write_text("\n".join(doc.md), encoding="utf-8")
    html_text = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                 f"<title>{html.escape(res.meta.get('title', 'Validation report'))}</title>"
                 f"<style>{_CSS}</style></head><body>\n" + "\n".join(doc.html)
                 + "\n</body></html>\n")
    html_path = out / "report.html"
    html_path.write_text(html_text, encoding="utf-8")
    log.info("wrote %s and %s", md_path, html_path)
    return md_path, html_path


def _json_table(df: pd.DataFrame) -> Any:
    if df is None:
        return None
    d = df.reset_index() if df.index.name else df
    return json.loads(d.to_json(orient="records", double_precision=15))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(type(obj).__name__)


def _build(res: ValidationResult) -> _Doc:
    m, t = res.meta, res.tables
    d = _Doc()
    d.h(1, m.get("title", "Validation report"))
    frames = m.get("n_valid_frames", {})
    d.bullets([
        f"Dataset: `{m.get('dataset')}` (corpus **{m.get('corpus')}**, model family "
        f"{m.get('model_family')}); bundle: **{m.get('bundle')}** (trained on: "
        f"`{m.get('bundle_trained_on')}`)",
        f"Evaluated: {m.get('selection')} — {len(m.get('subjects', []))} subjects "
        f"({', '.join(m.get('subjects', []))}), conditions {', '.join(m.get('conditions', []))}, "
        f"{m.get('n_trials')} of {m.get('n_trials_in_dataset')} trials"
        + (" (**reduced validation**)" if m.get("reduced") else ""),
        f"Valid frames (100 Hz): moments {frames.get('moments', 0)}, muscle forces "
        f"{frames.get('forces', 0)}; gait cycles listed: {m.get('n_cycles')}",
        f"opensim-surrogate {m.get('version')}, {m.get('date')}; validation took "
        f"{format_number(m.get('seconds'))} s (surrogate predictions "
        f"{format_number(m.get('prediction_seconds_total'))} s)",
    ])
    d.p("Units: moments N·m/kg, forces N/kg (divided by body mass, as Gait2Hip-60). Only "
        "frames the dataset marks valid count (`id_valid` for moments, `so_valid` for forces). "
        "nRMSE is the RMSE in % of the reference range of the channel; R² per channel uses "
        "the channel's own mean; the Gait2Hip-60 R² uses one grand mean of all channels "
        "pooled, which counts between-channel differences as explained and flatters the score.")
    for n in m.get("notes", []):
        d.p(n, note=True)

    d.h(2, "Beside Gait2Hip-60")
    ours = ("held-out subjects of our walking corpus" if m.get("in_distribution") else
            f"every subject of {m.get('corpus')}, a corpus the bundle was NOT trained on")
    d.p("Subject-mean scores (per subject, then averaged) on Gait2Hip-60's output sets: the 3 "
        "right-hip moments and the 14 right-hip muscle groups (sums of their Rajagopal parts). "
        f"Our numbers are on 100 Hz frames of {ours}; theirs on 180-sample resampled cycles of "
        "their 60-subject corpus (different data, different reference pipeline): the "
        "comparison is indicative, not head-to-head.")
    d.table(t.get("paper"), index=False)

    d.h(2, "Overall (all outputs of each kind, subject-mean)")
    d.table(t.get("overall"))

    for head, title in (("moments", "Joint moments"), ("groups", "Hip muscle groups"),
                        ("forces", "Muscle forces")):
        if f"per_output_{head}" not in t:
            continue
        d.h(2, f"{title} ({C.HEAD_UNITS[head]})")
        d.h(3, "Per output")
        d.table(t[f"per_output_{head}"],
                collapsed=f"{len(t[f'per_output_{head}'])} outputs" if head == "forces" else None)
        d.h(3, "Per subject (last row: subject mean)")
        d.table(t[f"per_subject_{head}"])
        d.h(3, "Per speed condition (last row: condition mean)")
        d.table(t[f"per_condition_{head}"])

    d.h(2, "Peak hip moments (per gait cycle)")
    d.p("Per cycle, the peak hip flexion (maximum) and extension (minimum) moment of the "
        "reference and of the surrogate, taken over the cycle's valid samples (cycles with "
        "at least 50 % valid samples). Bland–Altman: bias = mean (surrogate − OpenSim), "
        "limits of agreement = bias ± 1.96 SD.")
    d.table(t.get("bland_altman"))

    d.h(2, "Out-of-distribution warnings")
    ood = t.get("ood")
    n = len(ood) if ood is not None else 0
    fired = int((ood["warnings"] > 0).sum()) if n else 0
    d.p(f"Warnings fired on {fired} of {n} trials"
        + (" — the input is outside the training distribution and the warnings did their job."
           if not m.get("in_distribution") and n and fired == n else
           " — **some out-of-distribution trials raised no warning**." if
           not m.get("in_distribution") and fired < n else "."),
        note=not m.get("in_distribution"))
    d.table(ood, index=False, collapsed=f"{n} trials")

    if "physics" in t:
        d.h(2, "Physics check: muscle moments vs joint moments")
        d.p("Σ(muscle force × OpenSim moment arm) + SO reserve − moment, RMS per joint "
            "(sides pooled), on every n-th valid frame of the checked trials. With OpenSim SO "
            "forces this balance is exact up to the solver tolerance (passive fibre force is "
            "not part of SO's muscle force); for the surrogate it tells whether its forces are "
            "a muscle distribution of its own moments and of the ID moments.")
        phys = t["physics"]
        d.table(phys[[c for c in phys.columns if c.endswith("_per_kg") or c == "n_frames"]])
        d.p("N·m/kg; the same in N·m is in `physics.csv`, per trial in `physics_trials.csv`.")
    for n_ in m.get("physics_notes", []):
        d.p(n_, note=True)

    d.h(2, "Figures")
    captions = {
        "cycles_moments": "Joint moments over the gait cycle, mean ± SD: OpenSim ID (grey) vs "
                          "surrogate (orange).",
        "cycles_hip_muscles": "Main hip muscles over the gait cycle, mean ± SD: OpenSim SO "
                              "(grey) vs surrogate (orange).",
        "r2_muscles": "Per-muscle R² (per channel, right and left).",
        "bland_altman_hip": "Bland–Altman plots of per-cycle peak hip moments.",
        "physics": "Moment-balance residual per joint.",
    }
    for name, png in res.figures.items():
        d.figure(name, png, captions.get(name, name))
    return d
