"""Read and write OpenSim tables (``.mot``, ``.sto``, ``.trc``) as pandas DataFrames.

The reader is a plain-text parser built on the pandas C parser (no per-cell Python), more
lenient than OpenSim in layout and stricter in content:

* Layout accepted: OpenSim 4 headers (``version=1``, ``nRows``, ``nColumns``, ``inDegrees``),
  old SIMM headers (``name``, ``datacolumns``, ``datarows``, ``range``, ``otherdata``), a first
  line that is the table name, free-text comment lines, CRLF / CR line ends, trailing tabs or
  spaces, data columns separated by any run of tabs and/or spaces, blank lines.
* Content refused: a missing ``endheader``, a row with the wrong number of values, a
  non-numeric / NaN / infinite cell, duplicated or empty labels, a time column that does not
  strictly increase. Every error names the file, line and (where relevant) column label.

Rules that differ from a naive reader (all logged, never silent):

* **Path-style labels** (OpenSim 4 states / coordinate tables) are renamed to plain names when
  ``rename_paths=True``: ``/jointset/hip_r/hip_flexion_r/value`` -> ``hip_flexion_r``,
  ``/jointset/hip_r/hip_flexion_r/speed`` -> ``hip_flexion_r_u``,
  ``/forceset/soleus_r`` -> ``soleus_r`` and ``/forceset/soleus_r/activation`` ->
  ``soleus_r.activation`` (OpenSim 3 state names). The mapping is kept in
  ``TableHeader.renamed``. A path whose plain name would collide with another label keeps its
  path (WARNING).
* **More labels than data columns** (reported for static-optimization force files): OpenSim
  4.6's ``TimeSeriesTable`` refuses such files ("Unexpected number of columns"), while
  ``opensim.Storage`` keeps every label and fills the values *positionally*: the N values of a
  row belong to the *first* N labels (``time`` included); the surplus trailing labels return
  uninitialised memory from ``Storage.getDataColumn`` and make ``Storage.exportToTable`` throw.
  We match ``Storage``: keep the first N labels, drop the trailing surplus ones and list them in
  ``TableHeader.metadata["dropped_labels"]`` (tab-separated; WARNING). The rule applies only
  when the first and the last data rows agree on N; fewer labels than values is an error.
  (Six ``AnalyzeTool`` + ``StaticOptimization`` runs with OpenSim 4.6 on the Rajagopal model —
  with external loads, residual/reserve actuators, a disabled muscle, a disabled actuator, a
  ``CoordinateLimitForce``, a ``SpringGeneralizedForce`` — all wrote matching counts.)
* **Lenient layout vs OpenSim**: ``TimeSeriesTable`` splits rows on tabs only, so it refuses
  space-separated rows and a trailing "tab + space"; we accept both. A capitalised ``Time``
  label is accepted (INFO). Doubled tabs in the label line are collapsed (as OpenSim does,
  WARNING) only if the data rows agree; otherwise the empty label is a :class:`LabelError`.
* ``.trc`` marker files become flattened columns ``<marker>_X``, ``<marker>_Y``,
  ``<marker>_Z`` (index = ``Time``; the ``Frame#`` column is dropped); the units, data rate and
  marker names are kept in the header. Missing markers (empty cells) are NaN — the only place
  where NaN is allowed.

The writer produces what OpenSim 4.6 reads back exactly (``TimeSeriesTable`` and ``Storage``):
``name``, ``version=1``, ``nRows``, ``nColumns`` (time included), ``inDegrees``, ``endheader``,
then tab-separated rows with shortest round-trip float text (``repr``), so values read back
bit-identical.
"""
from __future__ import annotations

import copy
import io
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import pandas as pd

from ..errors import (
    LabelError,
    MissingFileError,
    TableFormatError,
    TableValueError,
    TimeColumnError,
)

log = logging.getLogger(__name__)

__all__ = [
    "TableHeader",
    "read_table",
    "write_table",
    "to_radians",
    "to_degrees",
    "rotational_columns",
    "header_of",
    "plain_label",
    "HEADER_ATTR",
]

#: Key of ``DataFrame.attrs`` under which :func:`read_table` stores the :class:`TableHeader`.
HEADER_ATTR = "opensim_header"

Kind = Literal["mot", "sto", "trc"]

_SIMM_KEYS = {"name", "datacolumns", "datarows", "range", "otherdata", "wrapped"}
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_TRC_AXES = ("X", "Y", "Z")
#: Bytes sniffed to decide whether a file is binary (PNG, zip, ...).
_SNIFF = 4096


@dataclass
class TableHeader:
    """Everything in an OpenSim table besides the numbers.

    Attributes
    ----------
    name
        Table name (first header line, or the SIMM ``name`` line, or the file stem).
    version
        ``version=`` value, None if absent.
    in_degrees
        ``inDegrees=yes|no``; None if the file does not say (e.g. old SIMM ``.mot`` files, which
        OpenSim's ``Storage`` *assumes* to be in degrees).
    kind
        ``"mot"``, ``"sto"`` or ``"trc"``.
    metadata
        Other ``key=value`` (and SIMM ``key value``) header lines, values as text. For ``.trc``
        the keys of header lines 2-3 (``DataRate``, ``NumFrames``, ...).
    comments
        Free-text header lines, in order.
    renamed
        ``original label -> new label`` for path-style labels renamed by :func:`read_table`.
    data_rate
        ``.trc`` only: ``DataRate`` in Hz.
    units
        ``.trc`` only: marker units (e.g. ``"mm"``).
    markers
        ``.trc`` only: marker names in column order.
    """

    name: str = ""
    version: int | None = None
    in_degrees: bool | None = None
    kind: Kind = "sto"
    metadata: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    data_rate: float | None = None
    units: str | None = None
    markers: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def header_of(df: pd.DataFrame) -> TableHeader | None:
    """The :class:`TableHeader` attached to ``df`` by :func:`read_table`, or None."""
    h = df.attrs.get(HEADER_ATTR)
    return h if isinstance(h, TableHeader) else None


def plain_label(label: str) -> str | None:
    """Plain name of a path-style label, or None if ``label`` is not path-style.

    ``/jointset/<joint>/<coord>/value`` -> ``<coord>``; ``.../<coord>/speed`` -> ``<coord>_u``;
    ``/<set>/<component>`` -> ``<component>``; ``/<...>/<component>/<state>`` ->
    ``<component>.<state>`` (OpenSim 3 state-variable names, e.g. ``soleus_r.activation``).
    """
    if not label.startswith("/"):
        return None
    parts = [p for p in label.split("/") if p]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    last, owner = parts[-1], parts[-2]
    if len(parts) == 2:
        return last
    if last == "value":
        return owner
    if last == "speed":
        return f"{owner}_u"
    return f"{owner}.{last}"


def _read_text(path: Path) -> str:
    """File content as text with ``\\n`` line ends; refuses binary files."""
    if not path.exists():
        raise MissingFileError("file not found", path=path,
                               hint="check the path (OpenSim tables end in .mot, .sto or .trc)")
    if path.is_dir():
        raise TableFormatError("is a directory, not an OpenSim table", path=path)
    raw = path.read_bytes()
    if b"\x00" in raw[:_SNIFF]:
        raise TableFormatError("binary file, not an OpenSim table", path=path, line=1,
                               hint="expected a text .mot/.sto/.trc file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        if exc.start < _SNIFF and raw[:8].startswith((b"\x89PNG", b"PK\x03\x04", b"%PDF", b"\xff\xd8")):
            raise TableFormatError("binary file, not an OpenSim table", path=path, line=1,
                                   hint="expected a text .mot/.sto/.trc file") from None
        log.warning("%s:%d: not valid UTF-8; decoding as latin-1", path, line)
        text = raw.decode("latin-1")
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _next_line(text: str, pos: int) -> tuple[str, int]:
    """The line starting at ``pos`` (without ``\\n``) and the position after it."""
    end = text.find("\n", pos)
    if end < 0:
        return text[pos:], len(text)
    return text[pos:end], end + 1


def _kind_for(path: Path) -> Kind:
    suf = path.suffix.lower()
    if suf == ".mot":
        return "mot"
    if suf == ".trc":
        return "trc"
    return "sto"


# --------------------------------------------------------------------------------------
# reading .mot / .sto
# --------------------------------------------------------------------------------------
def _parse_header(path: Path, text: str) -> tuple[TableHeader, int, int]:
    """Parse the header block. Returns (header, position after endheader, next line number)."""
    header = TableHeader(kind=_kind_for(path))
    pos, lineno = 0, 0
    seen_content = False
    while pos < len(text):
        raw, pos = _next_line(text, pos)
        lineno += 1
        line = raw.strip()
        if line == "endheader":
            return header, pos, lineno + 1
        if not line:
            continue
        first_line = not seen_content
        seen_content = True
        if line.startswith("#"):
            header.comments.append(line)
            continue
        if "=" in line:
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip()
            if not key:
                header.comments.append(line)
            elif key == "version":
                try:
                    header.version = int(value)
                except ValueError:
                    raise TableFormatError(f"version={value!r} is not an integer", path=path,
                                           line=lineno, hint="write e.g. version=1") from None
            elif key == "inDegrees":
                v = value.lower()
                if v in {"yes", "true", "1"}:
                    header.in_degrees = True
                elif v in {"no", "false", "0"}:
                    header.in_degrees = False
                else:
                    raise TableFormatError(f"inDegrees={value!r} is neither yes nor no",
                                           path=path, line=lineno, hint="write inDegrees=yes or no")
            elif key in {"nRows", "nColumns"}:
                try:
                    int(value)
                except ValueError:
                    raise TableFormatError(f"{key}={value!r} is not an integer", path=path,
                                           line=lineno) from None
                header.metadata[key] = value
            else:
                header.metadata[key] = value
            continue
        word, _, rest = line.partition(" ")
        if word in _SIMM_KEYS and (rest.strip() or word == "name"):
            rest = rest.strip()
            if word == "name":
                if not header.name:
                    header.name = rest
                elif rest != header.name:
                    header.metadata["name"] = rest
            else:
                header.metadata[word] = rest
            continue
        if first_line:
            header.name = line
        else:
            header.comments.append(line)
    raise TableFormatError(
        "not an OpenSim table: no 'endheader' line" if lineno > 0 else "empty file",
        path=path, line=max(lineno, 1),
        hint="an OpenSim .mot/.sto has header lines, 'endheader', then a tab-separated "
             "'time ...' label line and numeric rows")


def _split_labels(raw: str) -> list[str]:
    """Labels of the label line: tab-separated (labels may contain spaces, as in OpenSim's
    TimeSeriesTable), or whitespace-separated if the line has no tab."""
    line = raw.strip()
    if "\t" in line:
        return [t.strip() for t in line.split("\t")]
    return line.split()


def _data_line_numbers(text: str, pos: int, first_lineno: int) -> list[int]:
    """Line numbers of the non-blank lines from ``pos`` on (slow path, errors only)."""
    out = []
    for i, line in enumerate(text[pos:].split("\n")):
        if line.strip():
            out.append(first_lineno + i)
    return out


def _diagnose_rows(path: Path, text: str, pos: int, first_lineno: int, labels: list[str],
                   fallback: Exception | None) -> TableFormatError:
    """Find the first bad row/cell (slow path, only after the fast parser failed)."""
    n = len(labels)
    for i, line in enumerate(text[pos:].split("\n")):
        toks = line.split()
        if not toks:
            continue
        lineno = first_lineno + i
        if len(toks) != n:
            return TableFormatError(
                f"row has {len(toks)} values but the label line has {n} labels",
                path=path, line=lineno,
                hint="every row needs one value per label (time included)")
        for j, tok in enumerate(toks):
            if not _NUMBER_RE.match(tok):
                low = tok.lower().lstrip("+-")
                if low in {"nan", "inf", "infinity", "1.#inf", "1.#qnan", "-nan(ind)"}:
                    what = f"non-finite value {tok!r}"
                else:
                    what = f"non-numeric value {tok!r}"
                return TableValueError(what, path=path, line=lineno, column=labels[j],
                                       hint="every cell must be a finite number")
            if not math.isfinite(float(tok)):
                return TableValueError(f"value {tok!r} overflows to infinity", path=path,
                                       line=lineno, column=labels[j],
                                       hint="every cell must be a finite number")
    return TableFormatError(f"cannot parse the data rows: {fallback}", path=path,
                            line=first_lineno)


def _parse_numbers(path: Path, text: str, pos: int, first_lineno: int,
                   labels: list[str], sep: str = r"\s+") -> np.ndarray:
    """Parse the data block with the pandas C parser; on any problem, diagnose slowly."""
    body = text[pos:]
    if not body.strip():
        return np.empty((0, len(labels)), dtype=np.float64)
    try:
        arr = pd.read_csv(io.StringIO(body), sep=sep, header=None, dtype=np.float64,
                          engine="c", na_filter=False, skip_blank_lines=True).to_numpy()
    except (ValueError, pd.errors.ParserError) as exc:
        raise _diagnose_rows(path, text, pos, first_lineno, labels, exc) from None
    if arr.shape[1] != len(labels) or not np.isfinite(arr).all():
        raise _diagnose_rows(path, text, pos, first_lineno, labels, None)
    return arr


def _check_labels(path: Path, labels: list[str], lineno: int) -> None:
    seen: dict[str, int] = {}
    for j, lab in enumerate(labels):
        if not lab:
            raise LabelError(f"empty label (column {j + 1})", path=path, line=lineno,
                             hint="every column needs a name; check for doubled tabs")
        if lab in seen:
            raise LabelError(f"duplicated label {lab!r} (columns {seen[lab] + 1} and {j + 1})",
                             path=path, line=lineno, column=lab,
                             hint="labels must be unique")
        seen[lab] = j


def _check_time(path: Path, time: np.ndarray, text: str, pos: int, first_lineno: int,
                row_offset: int = 0) -> None:
    if time.size < 2:
        return
    bad = np.flatnonzero(np.diff(time) <= 0)
    if bad.size:
        k = int(bad[0]) + 1
        lines = _data_line_numbers(text, pos, first_lineno)
        lineno = lines[k + row_offset] if k + row_offset < len(lines) else None
        raise TimeColumnError(
            f"time {time[k]!r} does not increase (previous row has {time[k - 1]!r})",
            path=path, line=lineno, column="time",
            hint="rows must be sorted by strictly increasing time, without duplicates")


def _rename_paths(path: Path, labels: list[str], header: TableHeader) -> list[str]:
    new = {lab: plain_label(lab) for lab in labels}
    wanted = {lab: p for lab, p in new.items() if p is not None}
    if not wanted:
        return labels
    counts: dict[str, int] = {}
    for lab in labels:
        target = wanted.get(lab, lab)
        counts[target] = counts.get(target, 0) + 1
    out = []
    clashes = []
    for lab in labels:
        target = wanted.get(lab)
        if target is None:
            out.append(lab)
        elif counts[target] > 1:
            clashes.append(lab)
            out.append(lab)
        else:
            header.renamed[lab] = target
            out.append(target)
    if header.renamed:
        first = next(iter(header.renamed.items()))
        log.info("%s: renamed %d path-style labels to plain names (e.g. %s -> %s); "
                 "see header.renamed", path, len(header.renamed), *first)
    if clashes:
        log.warning("%s: kept %d path-style labels unrenamed because their plain names "
                    "collide: %s", path, len(clashes), ", ".join(clashes[:5]))
    return out


def _read_sto(path: Path, text: str, rename_paths: bool) -> pd.DataFrame:
    header, pos, lineno = _parse_header(path, text)
    # label line: first non-blank line after endheader
    while True:
        if pos >= len(text):
            raise TableFormatError("no column-label line after 'endheader'", path=path,
                                   line=lineno, hint="the line after endheader must be 'time\\t...'")
        raw, pos = _next_line(text, pos)
        if raw.strip():
            break
        lineno += 1
    label_line = lineno
    first_data_line = lineno + 1
    labels = _split_labels(raw)
    if labels[0] != "time" and labels[0].lower() == "time":
        log.info("%s:%d: first label %r taken as 'time' (OpenSim requires lower case)",
                 path, label_line, labels[0])
    if labels[0].lower() != "time":
        if _NUMBER_RE.match(labels[0]):
            raise TableFormatError("numbers where the column-label line should be", path=path,
                                   line=label_line, hint="add a 'time\\t<label>...' line after endheader")
        raise TableFormatError(f"first column is {labels[0]!r}, not 'time'", path=path,
                               line=label_line, column=labels[0],
                               hint="OpenSim tables start with a 'time' column")
    # value counts of the first and last data rows (cheap; decides the two lenient rules below)
    first_row, probe = "", pos
    while probe < len(text) and not first_row.strip():
        first_row, probe = _next_line(text, probe)
    tail = text[pos:].rstrip()
    n_first = len(first_row.split())
    n_last = len(tail[tail.rfind("\n") + 1:].split())
    if "" in labels:
        # OpenSim collapses doubled tabs; accept that only if the data agree with it.
        collapsed = [lab for lab in labels if lab]
        if n_first and n_first == n_last == len(collapsed):
            log.warning("%s:%d: empty labels between doubled tabs ignored (as OpenSim does)",
                        path, label_line)
            labels = collapsed
    _check_labels(path, labels, label_line)

    # More labels than values (SO force files): keep the first N labels, as Storage does.
    if 1 < n_first < len(labels) and n_last == n_first:
        dropped = labels[n_first:]
        labels = labels[:n_first]
        header.metadata["dropped_labels"] = "\t".join(dropped)
        log.warning("%s:%d: the label line lists %d labels but rows have %d values; keeping "
                    "the first %d labels (as opensim.Storage does) and dropping %d: %s",
                    path, label_line, len(labels) + len(dropped), n_first, n_first,
                    len(dropped), ", ".join(dropped[:5]) + (" ..." if len(dropped) > 5 else ""))

    arr = _parse_numbers(path, text, pos, first_data_line, labels)
    time = arr[:, 0]
    _check_time(path, time, text, pos, first_data_line)

    for key in ("nRows", "datarows"):
        declared = header.metadata.get(key, "").split()
        if declared and declared[0].isdigit() and int(declared[0]) != arr.shape[0]:
            log.warning("%s: header says %s=%s but the file has %d rows", path, key,
                        declared[0], arr.shape[0])

    columns = labels[1:]
    if rename_paths:
        columns = _rename_paths(path, columns, header)
    if not header.name:
        header.name = path.stem
    df = pd.DataFrame(arr[:, 1:], index=pd.Index(time, name="time"), columns=columns, copy=False)
    df.attrs[HEADER_ATTR] = header
    return df


# --------------------------------------------------------------------------------------
# reading .trc
# --------------------------------------------------------------------------------------
def _read_trc(path: Path, text: str) -> pd.DataFrame:
    lines = []
    pos = 0
    for _ in range(5):
        if pos >= len(text):
            raise TableFormatError("truncated .trc header (needs 5 lines)", path=path,
                                   line=len(lines) + 1)
        raw, pos = _next_line(text, pos)
        lines.append(raw)
    if not lines[0].startswith("PathFileType"):
        raise TableFormatError("not a .trc file: first line does not start with 'PathFileType'",
                               path=path, line=1, hint="a .trc starts with 'PathFileType\\t4\\t(X/Y/Z)'")
    first = lines[0].rstrip().split("\t")
    keys = [k.strip() for k in lines[1].rstrip().split("\t")]
    vals = [v.strip() for v in lines[2].rstrip().split("\t")]
    if len(vals) < len(keys):
        raise TableFormatError(f"{len(keys)} header keys but {len(vals)} values", path=path, line=3)
    header = TableHeader(kind="trc", name=path.stem)
    header.metadata = dict(zip(keys, vals))
    header.metadata["PathFileType"] = "\t".join(t.strip() for t in first[1:3])
    if len(first) > 3 and first[3].strip():
        header.metadata["PathFileName"] = first[3].strip()
    try:
        header.data_rate = float(header.metadata["DataRate"]) if "DataRate" in header.metadata else None
    except ValueError:
        raise TableFormatError(f"DataRate {header.metadata['DataRate']!r} is not a number",
                               path=path, line=3, column="DataRate") from None
    header.units = header.metadata.get("Units")
    labels4 = [t.strip() for t in lines[3].rstrip("\n").split("\t")]
    if len(labels4) < 2 or labels4[0] != "Frame#" or labels4[1].lower() != "time":
        raise TableFormatError("line 4 of a .trc must start with 'Frame#\\tTime'", path=path, line=4)
    markers = [m for m in labels4[2:] if m]
    _check_labels(path, markers, 4)
    header.markers = markers
    n_declared = header.metadata.get("NumMarkers")
    if n_declared is not None and n_declared.isdigit() and int(n_declared) != len(markers):
        log.warning("%s: NumMarkers=%s but line 4 names %d markers", path, n_declared, len(markers))
    first_data_line = 6
    columns = [f"{m}_{a}" for m in markers for a in _TRC_AXES]
    ncol = 2 + len(columns)
    body = text[pos:]
    if not body.strip():
        arr = np.empty((0, ncol))
    else:
        try:
            df = pd.read_csv(io.StringIO(body), sep="\t", header=None, dtype=np.float64,
                             engine="c", skip_blank_lines=True, na_values=[""],
                             keep_default_na=False)
        except (ValueError, pd.errors.ParserError) as exc:
            raise _diagnose_trc(path, text, pos, first_data_line, ["Frame#", "Time", *columns], exc) from None
        # trailing tabs give extra all-empty columns
        while df.shape[1] > ncol and df.iloc[:, -1].isna().all():
            df = df.iloc[:, :-1]
        arr = df.to_numpy()
        if arr.shape[1] != ncol or np.isinf(arr).any() or np.isnan(arr[:, :2]).any():
            raise _diagnose_trc(path, text, pos, first_data_line, ["Frame#", "Time", *columns], None)
    time = arr[:, 1]
    _check_time(path, time, text, pos, first_data_line)
    n_missing = int(np.isnan(arr[:, 2:]).sum())
    if n_missing:
        log.info("%s: %d missing marker coordinates (NaN)", path, n_missing)
    out = pd.DataFrame(arr[:, 2:], index=pd.Index(time, name="time"), columns=columns, copy=False)
    out.attrs[HEADER_ATTR] = header
    return out


def _diagnose_trc(path: Path, text: str, pos: int, first_lineno: int, labels: list[str],
                  fallback: Exception | None) -> TableFormatError:
    n = len(labels)
    for i, line in enumerate(text[pos:].split("\n")):
        if not line.strip():
            continue
        lineno = first_lineno + i
        toks = [t.strip() for t in line.rstrip().split("\t")]
        if len(toks) > n and not any(toks[n:]):
            toks = toks[:n]
        if len(toks) != n:
            return TableFormatError(f"row has {len(toks)} fields but the header implies {n}",
                                    path=path, line=lineno,
                                    hint="Frame#, Time and three values per marker")
        for j, tok in enumerate(toks):
            if tok == "" and j >= 2:
                continue
            if not _NUMBER_RE.match(tok):
                return TableValueError(f"non-numeric or non-finite value {tok!r}", path=path,
                                       line=lineno, column=labels[j],
                                       hint="cells must be finite numbers (empty = missing marker)")
    return TableFormatError(f"cannot parse the data rows: {fallback}", path=path,
                            line=first_lineno)


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
def read_table(path: str | os.PathLike[str], *, rename_paths: bool = True) -> pd.DataFrame:
    """Read an OpenSim ``.mot`` / ``.sto`` / ``.trc`` table.

    Parameters
    ----------
    path
        The file. ``.trc`` is recognised by its suffix; anything else is parsed as ``.mot``/``.sto``.
    rename_paths
        Rename path-style labels to plain names (see the module docstring); the mapping is in
        ``header.renamed``.

    Returns
    -------
    pandas.DataFrame
        Index: time (float, named ``"time"``); columns: labels (``.trc``: ``<marker>_X/Y/Z``).
        ``df.attrs["opensim_header"]`` is the :class:`TableHeader`.

    Raises
    ------
    MissingFileError, TableFormatError, TableValueError, LabelError, TimeColumnError
        Each names the file and line (and column label where relevant).
    """
    p = Path(path)
    text = _read_text(p)
    if _kind_for(p) == "trc" or text.startswith("PathFileType"):
        return _read_trc(p, text)
    return _read_sto(p, text, rename_paths)


def _format_block(values: np.ndarray) -> str:
    """Tab-separated rows of shortest round-trip float text (bit-exact on read-back)."""
    if values.size == 0:
        return ""
    # repr(float) is the shortest text that round-trips exactly (and the fastest formatter)
    return "\n".join("\t".join(map(repr, row)) for row in values.tolist()) + "\n"


def write_table(df: pd.DataFrame, path: str | os.PathLike[str], *, name: str | None = None,
                in_degrees: bool | None = None, kind: Kind | None = None) -> Path:
    """Write ``df`` as an OpenSim ``.mot``/``.sto`` that OpenSim 4.6 reads back exactly.

    Parameters
    ----------
    df
        Index = time (strictly increasing, finite); columns = labels (non-empty, unique, no
        whitespace); finite numeric values.
    path
        Output file; parent folders are created. Written atomically (temp file + rename).
    name
        Table name (first header line). Default: the header's name, else the file stem.
    in_degrees
        Written as ``inDegrees=yes|no``. Default: the header's value, else ``no``.
    kind
        ``"mot"`` or ``"sto"`` (only affects defaults; both have the same layout). Default:
        from the suffix, else the header.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    p = Path(path)
    hdr = header_of(df)
    if kind is None:
        suf = p.suffix.lower()
        kind = "mot" if suf == ".mot" else "sto" if suf == ".sto" else (hdr.kind if hdr else "sto")
    if kind == "trc" or p.suffix.lower() == ".trc":
        raise TableFormatError("writing .trc files is not supported", path=p,
                               hint="write a .mot/.sto, or use opensim.TRCFileAdapter")
    if kind not in ("mot", "sto"):
        raise TableFormatError(f"unknown table kind {kind!r}", path=p, hint="use 'mot' or 'sto'")
    if isinstance(df.columns, pd.MultiIndex):
        raise LabelError("MultiIndex columns cannot be written to a .mot/.sto", path=p,
                         hint="flatten the columns to single labels first")
    labels = [str(c) for c in df.columns]
    seen: set[str] = set()
    for lab in labels:
        if not lab or any(ch.isspace() for ch in lab):
            raise LabelError(f"label {lab!r} is empty or contains whitespace", path=p, column=lab,
                             hint="OpenSim splits labels on whitespace")
        if lab == "time" or lab in seen:
            raise LabelError(f"duplicated label {lab!r}", path=p, column=lab,
                             hint="labels must be unique and 'time' is the index")
        seen.add(lab)
    try:
        time = np.asarray(df.index, dtype=np.float64)
        values = df.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TableValueError(f"non-numeric data: {exc}", path=p) from None
    if not np.isfinite(time).all():
        k = int(np.flatnonzero(~np.isfinite(time))[0])
        raise TimeColumnError(f"time at row {k + 1} is {time[k]!r}", path=p, column="time")
    if time.size > 1 and (np.diff(time) <= 0).any():
        k = int(np.flatnonzero(np.diff(time) <= 0)[0]) + 1
        raise TimeColumnError(f"time at row {k + 1} ({time[k]!r}) does not increase "
                              f"(previous {time[k - 1]!r})", path=p, column="time",
                              hint="sort by time and drop duplicated times")
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = (int(x[0]) for x in np.nonzero(bad))
        raise TableValueError(f"value {values[r, c]!r} at row {r + 1} (time {time[r]!r}) is not finite",
                              path=p, column=labels[c], hint="OpenSim tables need finite numbers")
    if name is None:
        name = hdr.name if hdr is not None and hdr.name else p.stem
    name = " ".join(str(name).split()).replace("=", "-") or p.stem  # '=' would make it metadata
    if in_degrees is None:
        in_degrees = hdr.in_degrees if hdr is not None else None
        if in_degrees is None:
            log.info("%s: unit of rotations unknown; writing inDegrees=no", p)
            in_degrees = False
    lines = [name, "version=1", f"nRows={values.shape[0]}", f"nColumns={values.shape[1] + 1}",
             f"inDegrees={'yes' if in_degrees else 'no'}", "endheader",
             "\t".join(["time", *labels])]
    block = _format_block(np.column_stack([time, values]) if values.size or time.size
                          else np.empty((0, len(labels) + 1)))
    text = "\n".join(lines) + "\n" + block
    return atomic_write_text(p, text)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` via a temporary file and a rename,
    so a reader never sees half a file; parent folders are created."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


# --------------------------------------------------------------------------------------
# units
# --------------------------------------------------------------------------------------
def rotational_columns(df: pd.DataFrame, rotational: Iterable[str]) -> list[str]:
    """Columns of ``df`` holding rotational coordinates (or their speeds).

    A column matches a rotational coordinate ``c`` if it is ``c``, ``c + "_u"`` (speed), or a
    path-style label ``/.../c/value`` or ``/.../c/speed``. Columns are returned in ``df`` order.
    """
    rot = set(rotational)
    out = []
    for col in df.columns:
        lab = str(col)
        if lab in rot or (lab.endswith("_u") and lab[:-2] in rot):
            out.append(col)
            continue
        if lab.startswith("/"):
            parts = [x for x in lab.split("/") if x]
            if len(parts) >= 2 and parts[-1] in ("value", "speed") and parts[-2] in rot:
                out.append(col)
    return out


def _convert(df: pd.DataFrame, rotational: Iterable[str], to_deg: bool) -> pd.DataFrame:
    hdr = header_of(df)
    target = "degrees" if to_deg else "radians"
    if hdr is not None and hdr.in_degrees is to_deg:
        raise TableFormatError(f"table is already in {target} (inDegrees="
                               f"{'yes' if to_deg else 'no'})",
                               hint=f"do not convert to {target} twice")
    cols = rotational_columns(df, rotational)
    out = df.copy()
    if cols:
        factor = 180.0 / math.pi if to_deg else math.pi / 180.0
        out[cols] = out[cols].to_numpy(dtype=np.float64) * factor
    new_hdr = copy.deepcopy(hdr) if hdr is not None else TableHeader()
    if hdr is None or hdr.in_degrees is None:
        log.info("converting %d rotational columns to %s; source unit was not recorded",
                 len(cols), target)
    new_hdr.in_degrees = to_deg
    out.attrs[HEADER_ATTR] = new_hdr
    return out


def to_radians(df: pd.DataFrame, rotational: Iterable[str]) -> pd.DataFrame:
    """Copy of ``df`` with rotational coordinate columns converted from degrees to radians.

    Parameters
    ----------
    df
        A table from :func:`read_table` (or any DataFrame).
    rotational
        Names of the rotational coordinates (e.g. from the .osim); see :func:`rotational_columns`.

    Raises
    ------
    TableFormatError
        If the header already says ``inDegrees=no``.
    """
    return _convert(df, rotational, to_deg=False)


def to_degrees(df: pd.DataFrame, rotational: Iterable[str]) -> pd.DataFrame:
    """Copy of ``df`` with rotational coordinate columns converted from radians to degrees.

    Raises
    ------
    TableFormatError
        If the header already says ``inDegrees=yes``.
    """
    return _convert(df, rotational, to_deg=True)
