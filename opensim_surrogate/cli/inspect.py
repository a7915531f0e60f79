"""``opensim-surrogate inspect FILE``: a short summary of an OpenSim file.

Dispatch is by suffix (:data:`INSPECTORS`): ``.mot`` / ``.sto`` / ``.trc`` tables are summarised
here; ``.osim`` models use :func:`opensim_surrogate.osim.model.read_model` when that module
exists. To support another kind of file, add a ``_inspect_<kind>(path) -> list[str]`` function
and register its suffix in :data:`INSPECTORS`.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Callable

NAME = "inspect"
HELP = "print a short summary of an OpenSim table (.mot/.sto/.trc) or model (.osim)"
DESCRIPTION = (
    "Print a short summary of an OpenSim file.\n\n"
    "Tables (.mot, .sto, .trc): rows, columns, time range, sampling rate, inDegrees,\n"
    "labels renamed from path-style names. Models (.osim): when model reading is available.\n"
    "Exit status 2 (one line on stderr) if the file is missing or malformed."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=Path, help="a .mot, .sto, .trc (or .osim) file")
    p.add_argument("--labels", action="store_true", help="also list every column label")


def _fmt_num(x: float) -> str:
    return f"{x:.6g}"


def _inspect_table(path: Path, show_labels: bool = False) -> list[str]:
    import numpy as np

    from ..io.tables import header_of, read_table

    df = read_table(path)
    h = header_of(df)
    assert h is not None
    time = df.index.to_numpy(dtype=float)
    out = [f"file:       {path}", f"kind:       .{h.kind}   name: {h.name!r}"
           + (f"   version: {h.version}" if h.version is not None else "")]
    if h.kind == "trc":
        out.append(f"markers:    {len(h.markers)} ({len(df.columns)} columns)   units: {h.units}")
    else:
        out.append(f"columns:    {len(df.columns)} (+ time)")
    out.append(f"rows:       {len(df)}")
    if len(df):
        out.append(f"time:       {_fmt_num(time[0])} .. {_fmt_num(time[-1])} s "
                   f"(duration {_fmt_num(time[-1] - time[0])} s)")
    if len(df) > 1:
        dt = np.diff(time)
        rate = 1.0 / float(np.median(dt))
        uniform = bool(np.allclose(dt, dt[0], rtol=1e-6, atol=1e-9))
        out.append(f"rate:       {_fmt_num(rate)} Hz" + ("" if uniform else " (median; non-uniform steps)")
                   + (f"   declared DataRate: {_fmt_num(h.data_rate)} Hz" if h.data_rate else ""))
    if h.kind != "trc":
        deg = {True: "yes", False: "no", None: "not stated"}[h.in_degrees]
        out.append(f"inDegrees:  {deg}")
    if h.kind == "trc":
        n_missing = int(df.isna().to_numpy().sum())
        if n_missing:
            out.append(f"missing:    {n_missing} marker coordinates (NaN)")
    if h.renamed:
        out.append(f"renamed:    {len(h.renamed)} path-style labels")
        shown = list(h.renamed.items())
        for old, new in shown[:8]:
            out.append(f"  {old} -> {new}")
        if len(shown) > 8:
            out.append(f"  ... and {len(shown) - 8} more")
    if "dropped_labels" in h.metadata:
        dropped = h.metadata["dropped_labels"].split("\t")
        out.append(f"dropped:    {len(dropped)} labels without data: {', '.join(dropped[:8])}"
                   + (" ..." if len(dropped) > 8 else ""))
    if show_labels:
        out.append("labels:     " + " ".join(str(c) for c in df.columns))
    return out


def _inspect_osim(path: Path, show_labels: bool = False) -> list[str]:
    from ..errors import MissingFileError, SurrogateError

    try:
        mod = importlib.import_module("opensim_surrogate.osim.model")
        read_model = getattr(mod, "read_model")
    except (ImportError, AttributeError):
        raise SurrogateError(".osim files are not yet supported by 'inspect'", path=path,
                             hint="inspect a .mot, .sto or .trc table") from None
    if not path.exists():
        raise MissingFileError("file not found", path=path)
    info = read_model(path)
    version = getattr(info, "version", None) or getattr(info, "document_version", None)
    out = [f"file:        {path}", f"model:       {getattr(info, 'name', '?')!s}"
           + (f"   version: {version}" if version is not None else "")]
    family = getattr(info, "family", None)
    if family:
        out.append(f"family:      {family}")
    bodies = getattr(info, "bodies", None)
    if bodies is not None:
        out.append(f"bodies:      {len(bodies)}")
    mass = getattr(info, "total_mass", None)
    if mass is not None:
        out.append(f"total mass:  {_fmt_num(float(mass))} kg")
    coords = getattr(info, "coordinates", None)
    if coords is not None:
        out.append(f"coordinates: {len(coords)}")
    muscles = getattr(info, "muscles", None)
    if muscles is not None:
        out.append(f"muscles:     {len(muscles)}")
    return out


#: Suffix -> inspector. Each returns the summary lines.
INSPECTORS: dict[str, Callable[..., list[str]]] = {
    ".mot": _inspect_table,
    ".sto": _inspect_table,
    ".trc": _inspect_table,
    ".osim": _inspect_osim,
}


def run(args: argparse.Namespace) -> int:
    from ..errors import MissingFileError, SurrogateError

    path: Path = args.file
    inspector = INSPECTORS.get(path.suffix.lower())
    if inspector is None:
        if not path.exists():
            raise MissingFileError("file not found", path=path)
        raise SurrogateError(f"cannot inspect {path.suffix or 'suffix-less'} files", path=path,
                             hint="supported: " + ", ".join(sorted(INSPECTORS)))
    lines = inspector(path, show_labels=getattr(args, "labels", False))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
