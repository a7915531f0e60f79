"""``opensim-surrogate build-dataset``: build (or resume) a dataset of OpenSim reference labels."""
from __future__ import annotations

import argparse
import sys

NAME = "build-dataset"
HELP = "compute OpenSim reference labels for a corpus into a dataset directory (resumable)"
DESCRIPTION = """\
Build a dataset of OpenSim reference results (IK coordinates, ID moments, SO muscle forces)
from a corpus. CORPUS is one of

  schreiber2019   overground walking, 18 subjects x 2 speeds (full pipeline: scale, IK, ID, SO)
  hamner2013      treadmill running, 10 subjects x 4 speeds (given IK and scaled models)
  PATH            a folder of your own OpenSim results (*_ik.mot, *_id.sto,
                  *_StaticOptimization_force.sto + subjects.csv), used as labels as they are;
                  see docs/dataset.md for the layout

Finished trials are skipped when the command is run again, so an interrupted build resumes;
failed trials are recorded in DIR/failures/ and retried. Exit status: 0, or 1 if no trial of
the corpus could be built; 2 for a usage error (unknown corpus, missing files).
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("corpus", metavar="CORPUS",
                   help="schreiber2019, hamner2013, or the path of a results folder")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset directory")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="parallel worker processes (default 1; 0 = in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="run on a Dask distributed scheduler (e.g. tcp://host:8786) instead "
                        "of local processes; DIR must be shared with the workers")
    p.add_argument("--limit", type=int, default=None, metavar="K",
                   help="only the first K trials (sorted by trial id)")
    p.add_argument("--data", metavar="DIR", default=None,
                   help="shared data folder (default $OPENSIM_SURROGATE_DATA or ../shared/data)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a ReferenceConfig field (repeatable), e.g. --set so_max_reserve=10")


#: Per-corpus changes to the default ReferenceConfig. The hamner2013 running models are too
#: weak for static optimization at speed (ankle reserves up to ~80 N·m): frames whose reserve
#: actuators exceed 10 N·m are masked (so_valid False) instead of kept as muscle labels.
CORPUS_CONFIG: dict[str, dict[str, object]] = {"hamner2013": {"so_max_reserve": 10.0}}


def corpus_config(corpus: str, assignments: list[str]):
    """ReferenceConfig for ``corpus`` with ``KEY=VALUE`` overrides (values parsed as JSON)."""
    import dataclasses
    import json

    from ..errors import InputError
    from ..reference.config import ReferenceConfig

    values = dict(CORPUS_CONFIG.get(corpus, {}))
    fields = {f.name for f in dataclasses.fields(ReferenceConfig)}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or key not in fields:
            raise InputError(f"--set {item!r}: expected KEY=VALUE with KEY one of "
                             f"{', '.join(sorted(fields))}")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            values[key] = raw
    return ReferenceConfig.from_dict({**ReferenceConfig().to_dict(), **values})


def run(args: argparse.Namespace) -> int:
    from ..errors import DatasetError
    from ..reference.build import build_dataset
    from ..reference.corpora import CORPORA

    corpus = args.corpus
    if corpus not in CORPORA:
        from pathlib import Path

        p = Path(corpus).expanduser()
        if not p.is_dir():
            what = "no such folder" if not p.exists() else "not a folder"
            raise DatasetError(f"unknown corpus {corpus!r} ({what})",
                               hint=f"use {', '.join(sorted(CORPORA))} or the path of a "
                                    "folder of OpenSim results")
    if args.jobs < 0:
        raise DatasetError(f"--jobs must be >= 0, not {args.jobs}")
    if args.limit is not None and args.limit < 0:
        raise DatasetError(f"--limit must be >= 0, not {args.limit}")
    config = corpus_config(corpus, args.set or [])
    summary = build_dataset(corpus, args.out, config=config, jobs=args.jobs,
                            scheduler=args.scheduler, limit=args.limit, progress=not args.no_progress,
                            data_root=args.data)
    sys.stdout.write(summary.to_markdown())
    if summary.trials and summary.complete == 0:
        sys.stderr.write(f"no trial could be built; see {args.out}/failures/\n")
        return 1
    return 0
