"""Write surrogate results in the exact text layout of OpenSim 4.6's own output files.

Two layouts are reproduced, byte for byte in everything but the numbers' provenance:

* **Inverse dynamics** (``InverseDynamicsTool``, ``<output_gen_force_file>``, e.g.
  ``<trial>_id.sto``)::

      Inverse Dynamics Generalized Forces
      version=1
      nRows=<rows>
      nColumns=<columns incl. time>
      inDegrees=no
      endheader
      time<TAB>pelvis_tilt_moment<TAB>...

  Columns are ``<coordinate>_moment`` for rotational coordinates and ``<coordinate>_force``
  for the others (translational, coupled such as ``knee_angle_r_beta``), in the model's
  *multibody-tree order* (:func:`multibody_tree_order`), which is the order OpenSim's ID
  writes (not the CoordinateSet order).
* **Static optimization forces** (``AnalyzeTool`` with a ``StaticOptimization`` analysis,
  ``<tool name>_<analysis name>_force.sto``): the ``ModelForces`` header with OpenSim's
  explanatory lines, then one column per muscle in the model's ForceSet order.

Numbers are written like OpenSim's ``Storage``: ``%{8+p}.{p}f`` (``p`` = output precision, 8 by
default, e.g. ``      1.00000000``) joined by tabs, no trailing tab. Both files are read back
by ``opensim.Storage`` and ``opensim.TimeSeriesTable`` (tested).

Only the columns the surrogate predicts are written (e.g. hip/knee/ankle moments, not the
pelvis residuals): downstream scripts that select columns by label keep working.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError, LabelError, TableValueError
from ..io.tables import atomic_write_text

log = logging.getLogger(__name__)

__all__ = [
    "ID_TABLE_NAME", "SO_FORCE_TABLE_NAME", "SO_FORCE_HEADER_TEXT", "DEFAULT_PRECISION",
    "write_id_sto", "write_so_force_sto", "format_rows", "multibody_tree_order",
    "generalized_force_label", "id_column_order", "so_column_order",
]

#: First header line of OpenSim's inverse-dynamics output.
ID_TABLE_NAME = "Inverse Dynamics Generalized Forces"
#: First header line of OpenSim's static-optimization force output.
SO_FORCE_TABLE_NAME = "ModelForces"
#: Free-text lines OpenSim 4.6 writes between ``inDegrees=no`` and ``endheader`` in the SO
#: force file (copied from a file written by ``AnalyzeTool`` + ``StaticOptimization``).
SO_FORCE_HEADER_TEXT = (
    "\n"
    "This file contains the forces exerted on a model during a simulation.\n"
    "\n"
    "A force is a generalized force, meaning that it can be either a force (N) or a torque (Nm).\n"
    "\n"
    "Units are S.I. units (second, meters, Newtons, ...)\n"
    "If the header above contains a line with 'inDegrees', this indicates whether rotational "
    "values are in degrees (yes) or radians (no).\n"
    "\n"
)
#: OpenSim's default output precision (digits after the decimal point).
DEFAULT_PRECISION = 8


def format_rows(time: np.ndarray, values: np.ndarray, precision: int = DEFAULT_PRECISION) -> str:
    """Rows as OpenSim's ``Storage`` prints them: ``%{8+p}.{p}f`` cells joined by tabs.

    Parameters
    ----------
    time
        (n,) times in seconds.
    values
        (n, c) values.
    precision
        Digits after the decimal point (OpenSim ``output_precision``).
    """
    width = 8 + int(precision)
    fmt = f"%{width}.{int(precision)}f"
    block = np.column_stack([np.asarray(time, dtype=float), np.asarray(values, dtype=float)])
    if block.size == 0:
        return ""
    lines = ["\t".join(fmt % v for v in row) for row in block.tolist()]
    return "\n".join(lines) + "\n"


def _check_frame(df: pd.DataFrame, path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    labels = [str(c) for c in df.columns]
    for lab in labels:
        if not lab or any(ch.isspace() for ch in lab) or lab == "time":
            raise LabelError(f"label {lab!r} cannot be written", path=path, column=lab,
                             hint="labels must be non-empty, without whitespace, not 'time'")
    if len(set(labels)) != len(labels):
        raise LabelError("duplicated labels", path=path, hint="labels must be unique")
    time = np.asarray(df.index, dtype=float)
    values = df.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        r, c = (int(x[0]) for x in np.nonzero(bad))
        raise TableValueError(f"value at time {time[r]!r} is not finite", path=path,
                              column=labels[c], hint="OpenSim tables need finite numbers")
    if time.size > 1 and (np.diff(time) <= 0).any():
        raise InputError("time does not strictly increase", path=path, column="time")
    return time, values, labels


def write_id_sto(moments: pd.DataFrame, path: str | os.PathLike[str], *,
                 precision: int = DEFAULT_PRECISION) -> Path:
    """Write generalized forces in OpenSim's inverse-dynamics output layout.

    Parameters
    ----------
    moments
        Index = time (s); columns ``<coordinate>_moment`` (N·m) / ``<coordinate>_force`` (N),
        already in the order to write (see :func:`id_column_order`).
    path
        Output file (parent folders are created; written atomically).
    precision
        Digits after the decimal point (OpenSim writes 8).

    Returns
    -------
    pathlib.Path
    """
    p = Path(path)
    time, values, labels = _check_frame(moments, p)
    head = (f"{ID_TABLE_NAME}\nversion=1\nnRows={values.shape[0]}\n"
            f"nColumns={values.shape[1] + 1}\ninDegrees=no\nendheader\n")
    text = head + "\t".join(["time", *labels]) + "\n" + format_rows(time, values, precision)
    return atomic_write_text(p, text)


def write_so_force_sto(forces: pd.DataFrame, path: str | os.PathLike[str], *,
                       precision: int = DEFAULT_PRECISION) -> Path:
    """Write muscle forces in OpenSim's static-optimization force-file layout.

    Parameters
    ----------
    forces
        Index = time (s); one column per muscle (N), in the order to write (ForceSet order,
        see :func:`so_column_order`).
    path
        Output file, e.g. ``<name>_StaticOptimization_force.sto``.
    precision
        Digits after the decimal point (AnalyzeTool ``output_precision``, 8 by default).

    Returns
    -------
    pathlib.Path
    """
    p = Path(path)
    time, values, labels = _check_frame(forces, p)
    head = (f"{SO_FORCE_TABLE_NAME}\nversion=1\nnRows={values.shape[0]}\n"
            f"nColumns={values.shape[1] + 1}\ninDegrees=no\n{SO_FORCE_HEADER_TEXT}endheader\n")
    text = head + "\t".join(["time", *labels]) + "\n" + format_rows(time, values, precision)
    return atomic_write_text(p, text)


# --------------------------------------------------------------------------------------
# column orders
# --------------------------------------------------------------------------------------
def multibody_tree_order(model) -> list[str]:
    """Coordinates in OpenSim's multibody-tree order (the column order of ID output).

    OpenSim numbers mobilities level by level from ground (breadth first), siblings in
    JointSet order; each joint contributes its coordinates in order. Checked against the
    columns of real ``InverseDynamicsTool`` output for the shared Rajagopal-family and
    gait2392-family models.

    Parameters
    ----------
    model
        A :class:`~opensim_surrogate.osim.model.ModelInfo`.
    """
    children: dict[str, list] = {}
    for j in model.joints:
        children.setdefault(j.parent_body, []).append(j)
    order: list[str] = []
    seen: set[str] = set()
    level = ["ground"]
    while level:
        nxt = []
        for body in level:
            for j in children.get(body, []):
                for c in j.coordinates:
                    if c not in seen:
                        order.append(c)
                        seen.add(c)
                if j.child_body not in nxt:
                    nxt.append(j.child_body)
        level = nxt
    # coordinates of joints not reachable from ground (malformed models): keep model order
    for c in model.coordinates:
        if c.name not in seen:
            order.append(c.name)
    return order


def generalized_force_label(coordinate: str, motion_type: str) -> str:
    """``<coordinate>_moment`` for rotational coordinates, ``<coordinate>_force`` otherwise."""
    return f"{coordinate}_moment" if motion_type == "rotational" else f"{coordinate}_force"


def id_column_order(columns: Iterable[str], model=None) -> list[str]:
    """Order generalized-force columns like OpenSim's ID output for ``model``.

    Columns of coordinates the model has come first in multibody-tree order; any others keep
    their given order after them. Without a model the given order is kept.
    """
    cols = list(columns)
    if model is None:
        return cols
    rank: dict[str, int] = {}
    for i, c in enumerate(multibody_tree_order(model)):
        rank[f"{c}_moment"] = i
        rank[f"{c}_force"] = i
    known = sorted((c for c in cols if c in rank), key=lambda c: rank[c])
    return known + [c for c in cols if c not in rank]


def so_column_order(columns: Sequence[str], model=None) -> list[str]:
    """Order muscle columns like OpenSim's SO output (the model's ForceSet order)."""
    cols = list(columns)
    if model is None:
        return cols
    rank = {m: i for i, m in enumerate(model.muscle_names())}
    known = sorted((c for c in cols if c in rank), key=lambda c: rank[c])
    return known + [c for c in cols if c not in rank]
