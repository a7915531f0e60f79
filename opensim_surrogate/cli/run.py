"""``opensim-surrogate run TRIAL.mot [MORE.mot ...]``: surrogate ID + SO for many trials."""
from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

NAME = "run"
HELP = "surrogate inverse dynamics + static optimization of IK .mot files"
DESCRIPTION = (
    "Predict joint moments and muscle forces of one or more IK coordinate files (.mot/.sto)\n"
    "with a trained surrogate, and write for each TRIAL\n"
    "  OUT/<trial>_id.sto                          (OpenSim InverseDynamicsTool layout)\n"
    "  OUT/<trial>_StaticOptimization_force.sto    (OpenSim AnalyzeTool SO layout)\n\n"
    "Files may be given as shell globs (quoted patterns are expanded too). All trials are\n"
    "predicted in one batch; one summary line is printed per file, followed by its warnings.\n"
    "Exit status 2 (one line on stderr per bad file, no traceback) on bad input; the other\n"
    "files are still processed."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("trials", nargs="+", metavar="TRIAL", help="IK .mot/.sto files or globs")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--model", type=Path, metavar="X.osim",
                     help="the subject's OpenSim model (mass, conventions, muscles, bundle)")
    who.add_argument("--mass-kg", type=float, metavar="M", help="body mass (kg) without a model")
    p.add_argument("--height-m", type=float, metavar="H", help="subject height (m), optional")
    p.add_argument("--bundle", metavar="NAME", help="surrogate bundle name or folder "
                   "(default: chosen from the model)")
    p.add_argument("--out", type=Path, default=Path("surrogate_results"), metavar="DIR",
                   help="output folder (default: ./surrogate_results)")
    p.add_argument("--no-uncertainty", action="store_true",
                   help="skip the per-frame uncertainty (slightly faster)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def expand(patterns: list[str]) -> tuple[list[Path], list[str]]:
    """Files named by ``patterns`` (globs expanded, order kept, duplicates dropped), and the
    patterns that matched nothing."""
    files: list[Path] = []
    unmatched: list[str] = []
    for pat in patterns:
        if any(ch in pat for ch in "*?["):
            hits = sorted(glob.glob(pat, recursive=True))
            if not hits:
                unmatched.append(pat)
            files += [Path(h) for h in hits]
        else:
            files.append(Path(pat))
    seen: set[Path] = set()
    out = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out, unmatched


def run(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from ..errors import InputError, SurrogateError
    from ..surrogate.api import Surrogate
    from .demo import quiet_library_warnings

    quiet_library_warnings(getattr(args, "verbose", 0))
    files, unmatched = expand(list(args.trials))
    if unmatched and not files:
        raise InputError(f"no file matches {', '.join(unmatched)}",
                         hint="check the path or the glob pattern")
    if args.model is None and args.mass_kg is None:
        raise InputError("give --model X.osim or --mass-kg M", column="--model",
                         hint="the surrogate needs the body mass")
    t_start = time.perf_counter()
    s = Surrogate(args.model, mass_kg=args.mass_kg, height_m=args.height_m, bundle=args.bundle,
                  uncertainty=not args.no_uncertainty)
    failed = 0
    for pat in unmatched:
        sys.stderr.write(f"opensim-surrogate run: error: no file matches {pat}\n")
        failed += 1
    from ..surrogate.inputs import unique_names

    names = dict(zip(files, unique_names(files)))
    prepared, secs = [], []
    bar = tqdm(files, desc="reading", unit="file", disable=args.no_progress or len(files) < 2,
               file=sys.stderr)
    for f in bar:
        t0 = time.perf_counter()
        try:
            prepared.append(s.prepare(f, name=names[f]))
            secs.append(time.perf_counter() - t0)
        except SurrogateError as exc:
            failed += 1
            tqdm.write(f"opensim-surrogate run: error: {exc}", file=sys.stderr)
    results = s.predict(prepared, secs) if prepared else []
    out = args.out
    bar = tqdm(results, desc="writing", unit="file", disable=args.no_progress or len(results) < 2,
               file=sys.stderr)
    for res in bar:
        written = res.write(out)
        paths = ", ".join(str(p) for p in written.paths())
        tqdm.write(f"{res.source or res.name}: {res.n_frames} frames, {res.duration_s:.2f} s, "
                   f"{len(res.warnings)} warning{'s' if len(res.warnings) != 1 else ''} -> {paths}",
                   file=sys.stdout)
        for w in res.warnings:
            tqdm.write(f"  warning: {w}", file=sys.stdout)
    if results:
        total = time.perf_counter() - t_start
        sys.stdout.write(f"{len(results)} trial{'s' if len(results) != 1 else ''} with bundle "
                         f"{s.bundle_name!r} in {total:.2f} s"
                         + (f"; {failed} failed" if failed else "") + "\n")
    return 2 if failed else 0
