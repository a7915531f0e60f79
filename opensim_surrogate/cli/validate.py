"""``opensim-surrogate validate``: surrogate vs real OpenSim on a reference dataset."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

NAME = "validate"
HELP = "compare a surrogate bundle with a dataset's OpenSim ID/SO outputs (report.md/.html)"
DESCRIPTION = (
    "Compare a surrogate bundle with the real OpenSim outputs stored in a dataset.\n\n"
    "On the bundle's held-out subjects (or every subject of another corpus): RMSE, nRMSE,\n"
    "MAE, R² (per channel and Gait2Hip-60's), Pearson r, peak error and timing, per output,\n"
    "subject and speed condition; gait-cycle figures, per-muscle R², Bland-Altman of peak hip\n"
    "moments, out-of-distribution warnings, and a moment-balance physics check on a few\n"
    "trials. Writes REPORT_DIR/report.md, REPORT_DIR/report.html (self-contained),\n"
    "figures/*.png, metrics.json and CSV tables.\n\n"
    "Examples:\n"
    "  opensim-surrogate validate --dataset datasets/schreiber2019 --out runs/validation\n"
    "  opensim-surrogate validate --dataset datasets/hamner2013 --bundle rajagopal_walking \\\n"
    "      --out runs/validation_hamner\n"
)
DEFAULT_BUNDLE = "rajagopal_walking"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", type=Path, required=True, help="dataset directory")
    p.add_argument("--bundle", default=DEFAULT_BUNDLE,
                   help=f"bundle name under osim_models/ or a bundle directory "
                        f"(default: {DEFAULT_BUNDLE})")
    p.add_argument("--out", type=Path, required=True, help="report directory (created)")
    p.add_argument("--subjects", default="auto",
                   help="'auto' (held-out subjects of the training corpus, all subjects of "
                        "another corpus), 'test', 'all', or comma-separated subject ids")
    p.add_argument("--max-trials", type=int, default=None,
                   help="reduced validation: at most this many trials, spread over subjects "
                        "and conditions")
    p.add_argument("--physics", type=int, default=3, metavar="N",
                   help="physics check on the first N trials (0: skip; default 3)")
    p.add_argument("--physics-every", type=int, default=5, metavar="K",
                   help="physics check on every K-th valid frame (default 5)")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError, MissingFileError
    from ..validate.report import load_bundle, run_validation, write_report

    if not args.dataset.is_dir():
        raise MissingFileError("dataset directory not found", path=args.dataset,
                               hint="build one with `opensim-surrogate build-dataset`")
    if args.max_trials is not None and args.max_trials < 1:
        raise InputError("--max-trials must be >= 1", column="--max-trials")
    if args.physics < 0 or args.physics_every < 1:
        raise InputError("--physics must be >= 0 and --physics-every >= 1", column="--physics")
    subjects: str | list[str] = args.subjects
    if subjects not in ("auto", "test", "all"):
        subjects = [s.strip() for s in str(subjects).split(",") if s.strip()]
    bundle = load_bundle(args.bundle)
    res = run_validation(args.dataset, bundle, subjects=subjects, max_trials=args.max_trials,
                         physics_trials=args.physics, physics_every=args.physics_every,
                         work_dir=args.out, bundle_label=str(args.bundle))
    md, html_path = write_report(res, args.out)
    paper = res.tables.get("paper")
    print(f"validated {res.meta['n_trials']} trials of {len(res.meta['subjects'])} subjects "
          f"({res.meta['selection']})")
    overall = res.tables.get("overall")
    if overall is not None and len(overall):
        for name, row in overall.iterrows():
            print(f"  {name}: RMSE {row['rmse']:.4g}  MAE {row['mae']:.4g}  "
                  f"R² per-channel {row['r2_channel']:.3f}  R² Gait2Hip-60 {row['r2_paper']:.3f}")
    if paper is not None and len(paper):
        log.debug("paper table:\n%s", paper)
    print(f"  OOD warnings on {res.meta['trials_with_warnings']} of {res.meta['n_trials']} trials")
    print(f"wrote {md}\nwrote {html_path}")
    return 0
