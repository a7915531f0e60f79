"""Secure XML parsing for ``.osim`` models and OpenSim setup files.

Every XML file the package reads (models, ExternalLoads, ID / SO setups) goes through
:func:`parse_xml`. The parser never resolves entities, never loads a DTD and never touches
the network; a document whose DOCTYPE declares entities (internal or external) is refused
outright, so XXE payloads and "billion laughs" expansions cannot do harm. Well-formedness
errors are reported as :class:`~opensim_surrogate.errors.ModelFileError` naming the file,
line and column.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from lxml import etree

from ..errors import MissingFileError, ModelFileError

log = logging.getLogger(__name__)

__all__ = ["parse_xml", "secure_parser"]

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)


def secure_parser() -> etree.XMLParser:
    """A fresh lxml parser that resolves no entities and loads nothing external.

    Returns
    -------
    lxml.etree.XMLParser
        ``resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True``
        (large models with many splines are legitimate), DTD validation off.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,
        remove_blank_text=False,
    )


def parse_xml(path: str | Path) -> etree._ElementTree:
    """Parse an XML file safely.

    Parameters
    ----------
    path
        File to read (``.osim``, setup ``.xml``, ...).

    Returns
    -------
    lxml.etree._ElementTree
        The parsed document (comments kept; ``element.sourceline`` gives line numbers).

    Raises
    ------
    MissingFileError
        If the file does not exist.
    ModelFileError
        If it is a directory, is not well-formed XML (message names line and column), or
        its DOCTYPE declares entities ("entity declarations are not allowed").
    """
    p = Path(path)
    if not p.exists():
        raise MissingFileError("file not found", path=p, hint="check the path and file name")
    if p.is_dir():
        raise ModelFileError("is a directory, not an XML file", path=p,
                             hint="name the .osim / .xml file itself")
    _refuse_entities(p)
    try:
        tree = etree.parse(str(p), secure_parser())
    except etree.XMLSyntaxError as exc:
        line, column = _position(exc)
        msg = exc.msg if getattr(exc, "msg", None) else str(exc)
        # lxml appends ", line L, column C" to msg; keep the bare reason.
        msg = re.sub(r",\s*line \d+,\s*column \d+\s*$", "", msg).strip() or "not well-formed"
        raise ModelFileError(
            f"not well-formed XML: {msg} (line {line}, column {column})",
            path=p, line=line, column=column,
            hint="the file must be an OpenSim XML document (.osim / setup .xml)",
        ) from None
    except OSError as exc:  # unreadable file (permissions, I/O)
        raise ModelFileError(f"cannot read file: {exc}", path=p) from None
    if tree.docinfo.internalDTD is not None and any(True for _ in tree.docinfo.internalDTD.iterentities()):
        raise _entity_error(p, 1)  # belt and braces: the byte scan above should catch it
    return tree


def _position(exc: etree.XMLSyntaxError) -> tuple[int | None, int | None]:
    pos = getattr(exc, "position", None)
    if pos and len(pos) == 2:
        return int(pos[0]), int(pos[1])
    return getattr(exc, "lineno", None), None


def _refuse_entities(path: Path) -> None:
    """Raise if the file has a DOCTYPE that declares any (general or parameter) entity.

    Done on the raw bytes *before* parsing, so that entity tricks are reported as such and
    not as whatever syntax error libxml2 meets first (e.g. "entity amplification factor
    exceeded" for billion laughs, "attribute references external entity" for XXE).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read file: {exc}", path=path) from None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with BOM
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            return  # let the parser report it
    m = _DOCTYPE.search(data)
    if m is None:
        return
    e = _ENTITY_DECL.search(data, m.end())
    if e is not None:
        raise _entity_error(path, data.count(b"\n", 0, e.start()) + 1)


def _entity_error(path: Path, line: int) -> ModelFileError:
    return ModelFileError(
        "entity declarations are not allowed (the DOCTYPE declares <!ENTITY ...>)",
        path=path, line=line,
        hint="OpenSim documents never need entities; remove the DOCTYPE block",
    )
