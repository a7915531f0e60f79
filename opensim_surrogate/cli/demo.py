"""``opensim-surrogate demo``: one shared walking trial through real OpenSim AND the surrogate.

Picks a schreiber2019 walking trial of a subject held OUT of the default bundle's training
split (from the bundle's metadata), computes the reference with the real OpenSim pipeline
(:func:`~opensim_surrogate.reference.pipeline.process_trial`: scale, IK, ID, gait events, SO on
the labelled window), runs the surrogate on the same processed kinematics, prints a
side-by-side table (per output group: R², RMSE, seconds of OpenSim vs the surrogate) and writes
``OUT/comparison.png`` (reference vs surrogate curves), ``OUT/comparison.md``, the surrogate's
OpenSim-layout ``.sto`` files (``OUT/surrogate/``) and the reference work folder
(``OUT/reference/``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "demo"
HELP = "run a held-out walking trial through real OpenSim ID+SO and the surrogate, side by side"
DESCRIPTION = (
    "Run one shared schreiber2019 walking trial (of a subject held out of the bundle's\n"
    "training) through the real OpenSim pipeline (scale, IK, ID, SO) and through the surrogate,\n"
    "print R², RMSE and seconds side by side, and write OUT/comparison.png and\n"
    "OUT/comparison.md. Takes one to two minutes (OpenSim IK and static optimization dominate)."
)

#: Hip muscles shown in the figure (Rajagopal family; parts summed per group).
FIGURE_MUSCLES: dict[str, list[str]] = {
    "gluteus maximus": ["glmax1", "glmax2", "glmax3"],
    "gluteus medius": ["glmed1", "glmed2", "glmed3"],
    "iliopsoas": ["iliacus", "psoas"],
    "rectus femoris": ["recfem"],
    "adductor longus": ["addlong"],
}
FIGURE_MOMENTS = ["hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle"]
_MOMENT_TITLES = {"hip_flexion": "hip flexion moment", "hip_adduction": "hip adduction moment",
                  "hip_rotation": "hip rotation moment", "knee_angle": "knee moment",
                  "ankle_angle": "ankle moment"}
#: Hip-crossing muscles of the Rajagopal family (one side, without suffix).
HIP_MUSCLES = ["addbrev", "addlong", "addmagDist", "addmagIsch", "addmagMid", "addmagProx",
               "bflh", "glmax1", "glmax2", "glmax3", "glmed1", "glmed2", "glmed3", "glmin1",
               "glmin2", "glmin3", "grac", "iliacus", "piri", "psoas", "recfem", "sart",
               "semimem", "semiten", "tfl"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("runs/demo"), metavar="DIR",
                   help="output folder (default: runs/demo)")
    p.add_argument("--trial", metavar="ID", help="schreiber2019 trial id, e.g. 2014001_C4_05 "
                   "(default: the first trial of the first held-out subject)")
    p.add_argument("--bundle", metavar="NAME", help="surrogate bundle (default: rajagopal_walking)")
    p.add_argument("--data", type=Path, metavar="DIR",
                   help="shared data folder (default: $OPENSIM_SURROGATE_DATA or ../shared/data)")


# --------------------------------------------------------------------------------------
# helpers (pure; tested)
# --------------------------------------------------------------------------------------
def held_out_subjects(metadata: dict, all_subjects: list[str]) -> tuple[list[str], str]:
    """Subjects held out of a bundle's training, from its metadata, and where that came from.

    The split is ``metadata["split"]`` or ``metadata["training"]["split"]`` (what
    :func:`~opensim_surrogate.train.protocol.run_protocol` records). Looks for a list under
    (in order) ``split.test_subjects``, ``split.test``,
    ``split.held_out``, ``test_subjects``, ``held_out_subjects``; else the complement of
    ``split.train_subjects`` / ``train_subjects`` (training + validation) in ``all_subjects``.
    """
    split = metadata.get("split") if isinstance(metadata.get("split"), dict) else {}
    training = metadata.get("training") if isinstance(metadata.get("training"), dict) else {}
    if not split and isinstance(training.get("split"), dict):
        split = training["split"]
    for where, d, key in (("split.test_subjects", split, "test_subjects"),
                          ("split.test", split, "test"), ("split.held_out", split, "held_out"),
                          ("test_subjects", metadata, "test_subjects"),
                          ("held_out_subjects", metadata, "held_out_subjects")):
        v = d.get(key)
        if isinstance(v, list) and v:
            return [str(s) for s in v], where
    used: set[str] = set()
    for d in (split, metadata):
        for key in ("train_subjects", "val_subjects", "validation_subjects", "train", "val"):
            v = d.get(key)
            if isinstance(v, list):
                used |= {str(s) for s in v}
    if used:
        return [s for s in all_subjects if s not in used], "not in the training subjects"
    return [], ""


def _r2(y: "np.ndarray", p: "np.ndarray") -> float:
    import numpy as np

    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot <= 0:
        return float("nan")
    return 1.0 - float(np.sum((y - p) ** 2)) / ss_tot


def group_metrics(ref: "pd.DataFrame", sur: "pd.DataFrame", columns: list[str],
                  valid: "np.ndarray") -> tuple[float, float, int]:
    """Per-channel R² averaged over ``columns``, pooled RMSE, and frames used."""
    import numpy as np

    cols = [c for c in columns if c in ref.columns and c in sur.columns]
    r2s, sq, n = [], [], 0
    for c in cols:
        y = ref[c].to_numpy(float)
        p = sur[c].to_numpy(float)
        m = valid & np.isfinite(y) & np.isfinite(p)
        if m.sum() < 3:
            continue
        r2s.append(_r2(y[m], p[m]))
        sq.append((y[m] - p[m]) ** 2)
        n = max(n, int(m.sum()))
    if not sq:
        return float("nan"), float("nan"), 0
    return float(np.nanmean(r2s)), float(np.sqrt(np.mean(np.concatenate(sq)))), n


def summed(df: "pd.DataFrame", parts: list[str], side: str) -> "pd.Series | None":
    cols = [f"{p}_{side}" for p in parts if f"{p}_{side}" in df.columns]
    if not cols:
        return None
    return df[cols].sum(axis=1, min_count=len(cols))


# --------------------------------------------------------------------------------------
def _pick_trial(args, bundle, root: Path):
    from ..errors import InputError
    from ..reference.corpora import schreiber2019

    specs = [s for s in schreiber2019(root) if not s.extra.get("missing")]
    subjects = sorted({s.subject for s in specs})
    held, source = held_out_subjects(getattr(bundle, "metadata", {}) or {}, subjects)
    if args.trial:
        match = [s for s in specs if s.trial_id == args.trial]
        if not match:
            raise InputError(f"no schreiber2019 trial {args.trial!r}", column="--trial",
                             hint="e.g. " + ", ".join(s.trial_id for s in specs[:3]))
        spec = match[0]
        note = ("held out of the bundle's training" if spec.subject in held
                else "WARNING: this subject is not in the bundle's held-out split")
        return spec, note
    cands = [s for s in specs if s.subject in held]
    if not cands:
        raise InputError("the bundle's metadata names no held-out schreiber2019 subject",
                         hint="pass --trial ID explicitly")
    cands.sort(key=lambda s: (s.subject, s.condition != "comfortable", s.trial_id))
    return cands[0], f"subject {cands[0].subject} held out of the bundle's training ({source})"


def run(args: argparse.Namespace) -> int:  # noqa: C901 - a linear script
    import logging
    import time

    from ..paths import data_root
    from ..reference.config import ReferenceConfig
    from ..reference.pipeline import process_trial
    from ..surrogate.select import DEFAULT_BUNDLE, load_bundle

    log = logging.getLogger("opensim_surrogate.demo")
    quiet_library_warnings(getattr(args, "verbose", 0))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    say = lambda s="": (sys.stdout.write(s + "\n"), sys.stdout.flush())  # noqa: E731

    root = args.data or data_root()
    t0 = time.perf_counter()
    bundle = load_bundle(args.bundle or DEFAULT_BUNDLE)
    t_bundle = time.perf_counter() - t0
    spec, note = _pick_trial(args, bundle, root)
    say(f"trial {spec.trial_id} ({spec.condition} walking, {spec.mass_kg:g} kg): {note}")

    # ---------------------------------------------------------------- real OpenSim
    say("running the real OpenSim reference (scale, IK, ID, SO) ...")
    work = out / "reference" / spec.trial_id
    t0 = time.perf_counter()
    rec = process_trial(spec, ReferenceConfig(), work)
    t_ref_total = time.perf_counter() - t0
    secs = dict(rec.extras.get("seconds", {}))
    say(f"  done in {t_ref_total:.1f} s (scale {secs.get('scale', 0):.1f}, IK {secs.get('ik', 0):.1f}, "
        f"ID {secs.get('id', 0):.1f}, SO {secs.get('so', 0):.1f} s on {rec.extras.get('n_so_frames', '?')} frames)")

    report(rec, spec, note, bundle, out, t_bundle=t_bundle, t_ref_total=t_ref_total, say=say)
    log.info("demo finished")
    return 0


def report(rec, spec, note: str, bundle, out: Path, *, t_bundle: float = 0.0,
           t_ref_total: float | None = None, say=None) -> dict:
    """Run the surrogate on a reference record's kinematics and write the comparison.

    Returns the JSON summary (also written to ``out/comparison.json``).
    """
    import json
    import time

    import numpy as np

    from ..surrogate.api import Surrogate

    say = say or (lambda s="": None)
    secs = dict(rec.extras.get("seconds", {}))
    t_id, t_so = float(secs.get("id", float("nan"))), float(secs.get("so", float("nan")))
    model_path = Path(rec.extras["scaled_model"])
    work = Path(str(rec.extras.get("workdir", "")))
    # ---------------------------------------------------------------- surrogate
    say("running the surrogate on the same processed kinematics ...")
    t0 = time.perf_counter()
    sur = Surrogate(model_path, mass_kg=rec.mass_kg, bundle=bundle, lowpass_hz=None)
    res = sur.run(rec.kinematics, in_degrees=False, name=spec.trial_id)
    t_cold = time.perf_counter() - t0 + t_bundle
    t0 = time.perf_counter()
    res = sur.run(rec.kinematics, in_degrees=False, name=spec.trial_id)
    t_warm = time.perf_counter() - t0
    written = res.write(out / "surrogate")

    # ---------------------------------------------------------------- metrics
    id_valid = rec.mask["id_valid"].to_numpy(bool)
    so_valid = rec.mask["so_valid"].to_numpy(bool)
    ref_m, ref_f = rec.moments, rec.forces
    sur_m, sur_f = res.moments.reindex(ref_m.index), res.forces.reindex(ref_f.index)
    legs = ("r", "l")

    def mom(joint_prefixes):
        return [f"{c}_{s}_moment" for s in legs for c in FIGURE_MOMENTS
                if c.startswith(joint_prefixes)]

    groups = [
        ("hip moments", "ID", mom(("hip",)), "N·m", id_valid),
        ("knee moments", "ID", mom(("knee",)), "N·m", id_valid),
        ("ankle moments", "ID", mom(("ankle",)), "N·m", id_valid),
        ("all predicted moments", "ID", list(res.moments.columns), "N·m", id_valid),
        ("main hip muscles", "SO", [f"{m}_{s}" for s in legs for parts in FIGURE_MUSCLES.values()
                                    for m in parts], "N", so_valid),
        ("all hip-crossing muscles", "SO", [f"{m}_{s}" for s in legs for m in HIP_MUSCLES], "N",
         so_valid),
        ("all muscle forces", "SO", list(res.forces.columns), "N", so_valid),
    ]
    rows = []
    for label, tool, cols, unit, valid in groups:
        r2, rmse, n = group_metrics(ref_m if tool == "ID" else ref_f,
                                    sur_m if tool == "ID" else sur_f, cols, valid)
        ncols = len([c for c in cols if c in res.moments.columns or c in res.forces.columns])
        rows.append((label, ncols, r2, rmse, unit, n, t_id if tool == "ID" else t_so))
    t_osim = t_id + t_so
    speedup = t_osim / t_warm if t_warm > 0 else float("inf")

    head = (f"{'output group':<26}{'n':>4}{'R²':>8}{'RMSE':>12}   {'frames':>6}"
            f"{'OpenSim s':>11}{'surrogate s':>13}")
    lines = [head, "-" * len(head)]
    for label, n, r2, rmse, unit, nf, ts in rows:
        lines.append(f"{label:<26}{n:>4}{_fmt_r2(r2):>8}{rmse:>9.1f} {unit:<3}  {nf:>6}"
                     f"{ts:>11.2f}{t_warm:>13.3f}")
    lines.append("-" * len(head))
    lines.append(f"{'OpenSim ID + SO':<26}{'':>4}{'':>8}{'':>12}   {'':>6}{t_osim:>11.2f}"
                 f"{t_warm:>13.3f}   speed-up x{speedup:,.0f}")
    say()
    for ln in lines:
        say(ln)
    say(f"(surrogate seconds: warm call; first call incl. loading the bundle {t_cold:.2f} s. "
        f"OpenSim seconds exclude scaling {secs.get('scale', 0):.1f} s and IK "
        f"{secs.get('ik', 0):.1f} s, which both routes need.)")
    if res.warnings:
        say("surrogate warnings:")
        for w in res.warnings:
            say(f"  - {w}")
    else:
        say("surrogate warnings: none (the input is within the training distribution)")

    # ---------------------------------------------------------------- figure
    leg = _labelled_leg(rec)
    png = out / "comparison.png"
    _figure(png, rec, res, leg, spec, id_valid, so_valid, note)
    md = out / "comparison.md"
    md.write_text(_markdown(spec, note, rows, lines, t_osim, t_warm, t_cold, secs, res, written,
                            leg, work))
    summary = {
        "trial": spec.trial_id, "subject": spec.subject, "note": note,
        "groups": [{"group": g, "n": n, "r2": r2, "rmse": rmse, "unit": u, "frames": nf,
                    "opensim_s": ts, "surrogate_s": t_warm} for g, n, r2, rmse, u, nf, ts in rows],
        "opensim_seconds": secs, "surrogate_seconds": {"warm": t_warm, "cold": t_cold},
        "warnings": res.warnings}
    (out / "comparison.json").write_text(json.dumps(summary, indent=1, default=float))
    say(f"wrote {png}, {md} and {', '.join(str(p) for p in written.paths())}")
    return summary


def _fmt_r2(r2: float) -> str:
    """R² for a table: 3 decimals; very poor fits as ``< -9.9``."""
    if r2 != r2:  # NaN
        return "n/a"
    return f"{r2:.3f}" if r2 > -9.9 else "< -9.9"


def quiet_library_warnings(verbose: int) -> None:
    """The CLI prints each result's warnings itself: do not also log them (unless -v)."""
    import logging

    if not verbose:
        logging.getLogger("opensim_surrogate.surrogate.api").setLevel(logging.ERROR)


def _labelled_leg(rec) -> str:
    best, leg = -1.0, "r"
    for c in rec.cycles or []:
        f = float(c.get("labelled_fraction", 0.0))
        if f > best:
            best, leg = f, str(c.get("leg", "r"))
    return leg


def _figure(path: Path, rec, res, leg: str, spec, id_valid, so_valid, note: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    t = np.asarray(rec.moments.index, float)
    fig, axes = plt.subplots(2, 5, figsize=(19, 7.2), constrained_layout=True)
    side = {"r": "right", "l": "left"}[leg]
    hs = [x for x in rec.events.get(f"heel_strike_{leg}", [])]

    def panel(ax, y_ref, y_sur, y_std, valid, title, unit, floor=None):
        yr = np.where(valid, y_ref, np.nan)
        ax.plot(t, yr, color="black", lw=2.2, label="OpenSim (reference)")
        ax.plot(t, y_sur, color="tab:red", lw=1.6, label="surrogate")
        if y_std is not None:
            lo = y_sur - 2 * y_std if floor is None else np.maximum(y_sur - 2 * y_std, floor)
            ax.fill_between(t, lo, y_sur + 2 * y_std, color="tab:red",
                            alpha=0.18, lw=0, label="surrogate ±2σ")
        m = valid & np.isfinite(y_ref) & np.isfinite(y_sur)
        r2 = _r2(y_ref[m], y_sur[m]) if m.sum() > 2 else float("nan")
        ax.set_title(f"{title}\nR² {r2:.2f}", fontsize=10)
        ax.set_ylabel(unit)
        ax.axhline(0, color="0.7", lw=0.6)
        for x in hs:
            ax.axvline(x, color="0.5", ls=":", lw=0.9)
        # shade frames without reference labels
        inval = ~valid
        if inval.any():
            ax.fill_between(t, 0, 1, where=inval, transform=ax.get_xaxis_transform(),
                            color="0.92", lw=0, zorder=0)
        ax.set_xlabel("time (s)")

    for j, c in enumerate(FIGURE_MOMENTS):
        col = f"{c}_{leg}_moment"
        ax = axes[0, j]
        if col not in rec.moments or col not in res.moments:
            ax.set_visible(False)
            continue
        std = res.moments_std[col].reindex(rec.moments.index).to_numpy(float) \
            if res.moments_std is not None and col in res.moments_std else None
        panel(ax, rec.moments[col].to_numpy(float),
              res.moments[col].reindex(rec.moments.index).to_numpy(float), std, id_valid,
              f"{_MOMENT_TITLES[c]} ({side})", "N·m")
    for j, (title, parts) in enumerate(FIGURE_MUSCLES.items()):
        ax = axes[1, j]
        yr = summed(rec.forces, parts, leg)
        ys = summed(res.forces.reindex(rec.forces.index), parts, leg)
        if yr is None or ys is None:
            ax.set_visible(False)
            continue
        std = None
        if res.forces_std is not None:
            cols = [f"{p}_{leg}" for p in parts if f"{p}_{leg}" in res.forces_std]
            if cols:  # parts treated as independent
                std = np.sqrt((res.forces_std[cols].reindex(rec.forces.index) ** 2).sum(axis=1)
                              ).to_numpy(float)
        panel(ax, yr.to_numpy(float), ys.to_numpy(float), std, so_valid,
              f"{title} ({side}, {'+'.join(parts)})", "N", floor=0.0)
    axes[0, 0].legend(loc="best", fontsize=8)
    held = "held-out subject" if "held out" in note and "not in" not in note else "subject"
    fig.suptitle(f"{spec.trial_id} ({spec.condition} walking, {held}): OpenSim ID/SO vs "
                 f"surrogate ({res.bundle}). Grey: frames without reference labels; dotted: "
                 f"{side} heel strikes", fontsize=12)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _markdown(spec, note, rows, lines, t_osim, t_warm, t_cold, secs, res, written, leg,
              work) -> str:
    out = [f"# Surrogate vs OpenSim: {spec.trial_id}", "",
           f"- trial: schreiber2019 {spec.trial_id}, {spec.condition} walking, "
           f"{spec.mass_kg:g} kg — {note}",
           f"- bundle: `{res.bundle}`; reference: real OpenSim 4.6 (scale, IK, ID, SO with "
           f"residual/reserve actuators), work folder `{work}`",
           f"- metrics on frames with valid reference labels; R² is per channel, averaged over "
           f"the group; RMSE pooled over the group's channels",
           "", "| output group | n | R² | RMSE | frames | OpenSim s | surrogate s |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for label, n, r2, rmse, unit, nf, ts in rows:
        out.append(f"| {label} | {n} | {_fmt_r2(r2)} | {rmse:.1f} {unit} | {nf} | {ts:.2f} | "
                   f"{t_warm:.3f} |")
    out += ["", f"OpenSim ID + SO: {t_osim:.2f} s; surrogate: {t_warm:.3f} s per call "
                f"({t_cold:.2f} s for the first call, loading the bundle) — speed-up "
                f"x{t_osim / t_warm:,.0f}. Scaling ({secs.get('scale', 0):.1f} s) and IK "
                f"({secs.get('ik', 0):.1f} s) are needed by both routes and not counted.", "",
            f"![comparison](comparison.png)", "",
            f"Figure: {'right' if leg == 'r' else 'left'} leg (the one with the labelled gait "
            "cycle). Surrogate outputs: " + ", ".join(f"`{p}`" for p in written.paths()), ""]
    if res.warnings:
        out += ["Surrogate warnings:", ""] + [f"- {w}" for w in res.warnings] + [""]
    else:
        out += ["Surrogate warnings: none.", ""]
    return "\n".join(out)
