"""Exceptions for user mistakes and bad input.

Every error a user can cause derives from :class:`SurrogateError`. It names the file
(and line/column when known) at fault and says how to fix it. The CLI prints
``str(error)`` on one line and exits with status 2; library callers can catch the
specific subclass.
"""
from __future__ import annotations

from pathlib import Path


class SurrogateError(Exception):
    """Base class of every user-facing error of opensim-surrogate.

    Parameters
    ----------
    message
        What is wrong.
    path
        File at fault, if any.
    line, column
        1-based line number and column (index or label) at fault, if known.
    hint
        How to fix it.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: int | str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = str(self.path)
            if self.line is not None:
                where += f":{self.line}"
            if self.column is not None:
                where += f" (column {self.column})"
            where += ": "
        elif self.column is not None:
            where = f"column {self.column}: "
        text = f"{where}{self.message}"
        if self.hint:
            text += f" — {self.hint}"
        return text


class MissingFileError(SurrogateError, FileNotFoundError):
    """A file or directory the user named does not exist."""


class DataNotFoundError(MissingFileError):
    """The shared data directory ($OPENSIM_SURROGATE_DATA) cannot be found."""


class TableFormatError(SurrogateError):
    """Not an OpenSim table, or a malformed header / row layout."""


class TableValueError(TableFormatError):
    """A cell is not a finite number (non-numeric, NaN, inf)."""


class LabelError(TableFormatError):
    """Column labels are empty or duplicated."""


class TimeColumnError(TableFormatError):
    """The time column does not strictly increase."""


class ModelFileError(SurrogateError):
    """A .osim (or setup XML) is not well-formed XML, is unsafe, or lacks what we need."""


class ConventionError(SurrogateError):
    """A coordinate's sign/range convention cannot be determined from the model."""


class InputError(SurrogateError):
    """Input kinematics unusable: missing coordinates, too short, bad mass, ..."""


class DatasetError(SurrogateError):
    """A dataset directory is missing, incomplete or of an unknown schema version."""


class CheckpointError(SurrogateError):
    """A surrogate bundle is missing, tampered with, or incompatible."""


class BundleNotFoundError(CheckpointError):
    """No trained bundle matches the model (family / muscle set) asked for."""


class SimulationError(SurrogateError):
    """A real OpenSim tool failed (or silently produced unusable output)."""
