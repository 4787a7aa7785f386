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


def render_value(v: Any) -> str:
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, float):
        return f"{v:.3f}"
    s = str(v)
    if not s or any(c in s for c in ' "='):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


def render_fields(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={render_value(v)}" for k, v in fields.items())
