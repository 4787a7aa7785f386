"""Structured log events: one event per line, a name and key=value fields.

Layers below node/ call ``emit(logger, "block.connected", height=5, ...)``; the
node's formatter (node/logging_setup.py) renders the event as text or JSON.
This module has no dependencies so any layer may use it.
"""

from __future__ import annotations

import logging
from typing import Any


def emit(
    logger: logging.Logger,
    event: str,
    level: int = logging.INFO,
    *,
    exc_info: bool = False,
    **fields: Any,
) -> None:
    """Log ``event`` with ``fields``; ``exc_info`` (from an ``except`` block)
    adds the exception's traceback, which the formatter renders as one
    more field, ``exc``, still on the event's one line."""
    if logger.isEnabledFor(level):
        logger.log(level, event, exc_info=exc_info, extra={"fields": fields})


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(c: str) -> str:
    if c in _ESCAPES:
        return _ESCAPES[c]
    if c.isprintable():
        return c
    # Control characters and Unicode's line and paragraph separators: a
    # value must never start a new line (or look as if it did).
    n = ord(c)
    return f"\\u{n:04x}" if n <= 0xFFFF else f"\\U{n:08x}"


def render_value(v: Any) -> str:
    """A field's value in a text log line: as is when it is non-empty and
    holds no space, quote, ``=`` or unprintable character; else in double
    quotes with backslash escapes (``\\"``, ``\\\\``, ``\\n``, ``\\r``,
    ``\\t``, ``\\uXXXX``), so nothing a peer or a user sends can break
    the line. Bytes as hex, floats with 3 decimals, booleans as JSON's, and
    None as empty."""
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.3f}"
    s = "" if v is None else str(v)
    if s and all(c.isprintable() and c not in ' "=' for c in s):
        return s
    return '"' + "".join(_escape(c) for c in s) + '"'


def render_fields(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={render_value(v)}" for k, v in fields.items())
