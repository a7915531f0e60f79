"""The ``opensim-surrogate`` console script.

Each subcommand lives in its own module in this package and defines

* ``NAME``: the subcommand name (e.g. ``"build-dataset"``),
* ``HELP``: a one-line summary,
* ``add_arguments(parser)``: its argparse options,
* ``run(args) -> int``: the work (heavy imports go inside, so ``--help`` stays fast).

Modules are discovered automatically. A :class:`~opensim_surrogate.errors.SurrogateError`
(a user mistake) is printed as one line on stderr and gives exit status 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from types import ModuleType

from .._version import __version__
from ..errors import SurrogateError

log = logging.getLogger(__name__)

EXIT_USAGE = 2


def command_modules() -> list[ModuleType]:
    """All subcommand modules of this package, sorted by subcommand name."""
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "NAME") and hasattr(mod, "run"):
            mods.append(mod)
    return sorted(mods, key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opensim-surrogate",
        description="Neural surrogates of OpenSim inverse dynamics and static optimization.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args._run(args) or 0)
    except SurrogateError as exc:
        sys.stderr.write(f"opensim-surrogate {args.command}: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
