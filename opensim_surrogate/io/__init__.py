"""Input/output of OpenSim files (tables: ``.mot``, ``.sto``, ``.trc``)."""
from __future__ import annotations

from .tables import (
    HEADER_ATTR,
    TableHeader,
    header_of,
    plain_label,
    read_table,
    rotational_columns,
    to_degrees,
    to_radians,
    write_table,
)

__all__ = [
    "HEADER_ATTR",
    "TableHeader",
    "header_of",
    "plain_label",
    "read_table",
    "rotational_columns",
    "to_degrees",
    "to_radians",
    "write_table",
]
