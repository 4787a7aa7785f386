"""Operator logs: one event per line to stderr and to ``node.log``.

Text: ``2026-11-23T18:31:36.123Z INFO chain block.connected height=5 hash=.. ms=1.2``
JSON: ``{"ts": "...", "level": "info", "logger": "chain", "event": "block.connected", "height": 5, ...}``
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from powernode.logkit import render_fields


def _ts(record: logging.LogRecord) -> str:
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


def _short(name: str) -> str:
    return name.removeprefix("powernode.")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        line = f"{_ts(record)} {record.levelname:<5} {_short(record.name)} {record.getMessage()}"
        if fields:
            line += " " + render_fields(fields)
        if record.exc_info:
            line += " exc=" + json.dumps(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _ts(record),
            "level": record.levelname.lower(),
            "logger": _short(record.name),
            "event": record.getMessage(),
        }
        for k, v in getattr(record, "fields", {}).items():
            out[k] = v.hex() if isinstance(v, bytes) else v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


# The name of the stderr handler, which ``log_to_file_only`` skips.
_STDERR = "powernode.stderr"


def setup_logging(*, fmt: str, level: str, file: Path | None) -> None:
    formatter: logging.Formatter = JsonFormatter() if fmt == "json" else TextFormatter()
    root = logging.getLogger("powernode")
    root.handlers.clear()
    root.setLevel(level.upper())
    root.propagate = False
    err = logging.StreamHandler(sys.stderr)
    err.set_name(_STDERR)
    err.setFormatter(formatter)
    root.addHandler(err)
    if file is not None:
        fh = logging.FileHandler(file, encoding="utf-8")
        fh.setFormatter(formatter)
        root.addHandler(fh)
    aio = logging.getLogger("aiohttp.access")
    aio.setLevel(logging.WARNING)


def log_to_file_only(event: str, level: int = logging.ERROR, **fields: Any) -> None:
    """An event of the ``node`` logger for ``node.log`` (every handler but
    stderr's): ``powernode run`` prints a failure as its own one line on
    stderr and logs the same text here, so stderr does not show it twice."""
    logger = logging.getLogger("powernode.node")
    if not logger.isEnabledFor(level):
        return
    record = logger.makeRecord(
        logger.name, level, __file__, 0, event, (), None, extra={"fields": fields}
    )
    for handler in logging.getLogger("powernode").handlers:
        if handler.get_name() != _STDERR and level >= handler.level:
            handler.handle(record)
