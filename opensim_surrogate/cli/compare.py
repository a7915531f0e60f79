"""``opensim-surrogate compare``: 3 architectures x 2 input schemes + 2 baselines."""
from __future__ import annotations

import argparse
from pathlib import Path

from .train import add_training_options, config_overrides, quiet_threads

NAME = "compare"
HELP = "train LSTM/Transformer/Mamba on both input schemes + baselines; write the comparison"
DESCRIPTION = """\
Replicates the Gait2Hip-60 comparison on a reference dataset: every architecture (lstm,
transformer, mamba) with both input schemes (cycle: the paper's 10 angles over a 180-sample
gait cycle; window: the runtime's time-domain windows), plus the mean gait-cycle template and
ridge regression, all on the same held-out subjects and folds. Writes comparison.md,
overall.csv, per_condition.csv, per_channel.csv, per_subject.csv, cv.csv and results.json.

example:
  opensim-surrogate compare --dataset datasets/schreiber2019 --out validation/compare
  opensim-surrogate compare --dataset DIR --quick --archs transformer   # smoke test
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_training_options(p)
    p.add_argument("--out", type=Path, default=Path("validation/compare"),
                   help="output directory (default: validation/compare)")
    p.add_argument("--archs", nargs="+", choices=["lstm", "transformer", "mamba"],
                   default=["transformer", "lstm", "mamba"], help="architectures to train")
    p.add_argument("--schemes", nargs="+", choices=["cycle", "window"],
                   default=["window", "cycle"], help="input schemes to train")
    p.add_argument("--no-resume", action="store_true",
                   help="retrain every network even if OUT/cache holds its finished result")
    p.add_argument("--save-bundles", type=Path,
                   help="also save every network's bundle under this directory")


def run(args: argparse.Namespace) -> int:
    quiet_threads()
    from ..train.compare import run_comparison

    preset = "quick" if args.quick else args.preset
    ov = config_overrides(args)
    res = run_comparison(args.dataset, args.out, preset=preset, archs=args.archs,
                         schemes=args.schemes, mirror=ov.get("mirror", True), overrides=ov,
                         resume=not args.no_resume, save_bundles=args.save_bundles)
    print(res.markdown)
    print(f"written to {args.out}")
    return 0
