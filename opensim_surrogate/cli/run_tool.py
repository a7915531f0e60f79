"""``opensim-surrogate run-tool SETUP.xml``: like ``opensim-cmd run-tool``, with the surrogate."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "run-tool"
HELP = "run an OpenSim ID or AnalyzeTool (StaticOptimization) setup file with the surrogate"
DESCRIPTION = (
    "Run an OpenSim setup file like `opensim-cmd run-tool SETUP.xml`, with the surrogate in\n"
    "place of the real tool:\n"
    "  <InverseDynamicsTool>  -> results_directory/output_gen_force_file\n"
    "  <AnalyzeTool> with a StaticOptimization analysis\n"
    "                         -> results_directory/<name>_StaticOptimization_force.sto\n"
    "Relative paths in the setup are relative to the setup file's folder. Ground reactions\n"
    "(external_loads_file) are not needed and are ignored. Exit status 2 on a bad setup or input."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("setup", type=Path, metavar="SETUP.xml", help="OpenSim setup file")
    p.add_argument("--bundle", metavar="NAME", help="surrogate bundle (default: from the model)")
    p.add_argument("--mass-kg", type=float, metavar="M",
                   help="override the model's total mass (kg)")


def run(args: argparse.Namespace) -> int:
    from ..surrogate.tools import tool_for_setup
    from .demo import quiet_library_warnings

    quiet_library_warnings(getattr(args, "verbose", 0))
    tool = tool_for_setup(args.setup, bundle=args.bundle, mass_kg=args.mass_kg)
    tool.run()
    res = tool.result
    for p in tool.output_files:
        sys.stdout.write(f"{type(tool).__name__} ({res.summary() if res else ''}) -> {p}\n")
    if res is not None:
        for w in res.warnings:
            sys.stdout.write(f"  warning: {w}\n")
    return 0
