"""``opensim-surrogate train``: train one surrogate network and save it as a bundle."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

NAME = "train"
HELP = "train a surrogate network (protocol: split, CV, retrain) and save a bundle"
DESCRIPTION = """\
Train one network on a reference dataset with the Gait2Hip-60 protocol: 20 % of the subjects
held out (seeded), 5-fold GroupKFold by subject on the rest with early stopping, retraining on
the pool for the median best epoch, one evaluation on the held-out subjects. The bundle
(weights.safetensors + metadata.json + README.md model card) is written to --out.

Presets: `small` (default; lr 1e-3, <= 150 epochs, patience 20, batch 32, per-channel target
scaling — what our small dataset needs), `paper` (Gait2Hip-60's exact settings), `quick`
(a few epochs, 2 folds: for smoke tests). Explicit options override the preset.

example:
  opensim-surrogate train --dataset datasets/schreiber2019 --arch transformer \\
      --scheme window --out osim_models/rajagopal_walking
"""


def add_training_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``train`` and ``compare``."""
    p.add_argument("--dataset", required=True, type=Path, help="reference dataset directory")
    p.add_argument("--preset", choices=["small", "paper", "quick"], default="small",
                   help="training settings (default: small)")
    p.add_argument("--quick", action="store_true", help="same as --preset quick")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--max-epochs", type=int, help="early-stopping epoch limit")
    p.add_argument("--patience", type=int, help="early-stopping patience (epochs)")
    p.add_argument("--batch-size", type=int, help="batch size")
    p.add_argument("--window", type=int, help="window length in frames (window scheme)")
    p.add_argument("--stride", type=int, help="inference stride in frames (window scheme)")
    p.add_argument("--crops", type=int, dest="crops_per_trial",
                   help="random crops per trial and epoch (window scheme)")
    p.add_argument("--folds", type=int, dest="n_folds", help="GroupKFold folds")
    p.add_argument("--seed", type=int, help="training seed")
    p.add_argument("--split-seed", type=int, help="seed of the subject split and folds")
    p.add_argument("--threads", type=int, help="CPU threads (default 2)")
    p.add_argument("--no-mirror", action="store_true", help="no left/right mirrored copies")
    p.add_argument("--no-height", action="store_true", help="no height input channel")
    p.add_argument("--mass-input", action="store_true", help="body mass as an input channel")


def config_overrides(args: argparse.Namespace) -> dict:
    keys = ("lr", "max_epochs", "patience", "batch_size", "window", "stride", "crops_per_trial",
            "n_folds", "seed", "split_seed", "threads")
    ov = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if args.no_mirror:
        ov["mirror"] = False
    if args.no_height:
        ov["use_height"] = False
    if args.mass_input:
        ov["use_mass"] = True
    return ov


def quiet_threads() -> None:
    """Idle OpenMP threads sleep instead of spinning (spinning threads stall badly on a
    shared 2-core machine). Must run before torch is imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_training_options(p)
    p.add_argument("--arch", choices=["lstm", "transformer", "mamba"], default="transformer",
                   help="network architecture (default: transformer)")
    p.add_argument("--scheme", choices=["cycle", "window"], default="window",
                   help="input scheme (default: window, the one surrogate.run uses)")
    p.add_argument("--out", required=True, type=Path, help="bundle directory to write")
    p.add_argument("--name", help="bundle name (default: the --out folder name)")
    p.add_argument("--epochs", type=int,
                   help="skip cross-validation and retrain for exactly this many epochs")
    p.add_argument("--card-notes", type=Path,
                   help="Markdown file inserted into the model card (choices, justification)")


def run(args: argparse.Namespace) -> int:
    quiet_threads()
    import json

    from ..bundle import default_card, save_bundle
    from ..errors import MissingFileError
    from ..train.protocol import make_config, prepare_data, run_protocol

    preset = "quick" if args.quick else args.preset
    ov = config_overrides(args)
    cfg = make_config(preset, arch=args.arch, scheme=args.scheme, **ov)
    notes = None
    if args.card_notes is not None:
        if not args.card_notes.is_file():
            raise MissingFileError("card notes file not found", path=args.card_notes)
        notes = args.card_notes.read_text()
    prepared = prepare_data(args.dataset, mirror=cfg.mirror)
    name = args.name or args.out.name
    res = run_protocol(cfg, prepared, name=name, final_epochs=args.epochs)
    meta = {k: v for k, v in res.bundle.metadata.items()
            if k not in ("arch", "format", "format_version", "integrity")}
    save_bundle(args.out, res.bundle.model, meta, card=None)
    # the card is generated from the saved metadata (it includes arch and integrity)
    saved = json.loads((args.out / "metadata.json").read_text())
    (args.out / "README.md").write_text(default_card(saved, notes))
    ev = res.evaluation
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"bundle {args.out} ({size:.1f} MB), {cfg.arch}/{cfg.scheme}, "
          f"{res.seconds / 60:.1f} min; held-out subjects {', '.join(res.test)}")
    for g in ("moments", "forces", "hip_moments", "hip_groups"):
        if g in ev:
            o = ev[g].overall
            print(f"  {g:12s} RMSE {o['rmse']:.3f}  MAE {o['mae']:.3f}  R2 per channel "
                  f"{o['r2_channel']:.3f}  R2 paper {o['r2_paper']:.3f}")
    return 0
