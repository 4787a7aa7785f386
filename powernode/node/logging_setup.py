"""Operator logs: one event per line to stderr and to ``node.log``.

Text: ``2026-11-23T18:31:36.123Z INFO chain block.connected height=5 hash=.. ms=1.2``
JSON: ``{"ts": "...", "level": "info", "logger": "chain", "event": "block.connected", "height": 5, ...}``

When ``node.log`` cannot be written (a full disk, a read-only mount), its
handler stops writing it and tells the node once (``watch_log_file``), which
stops with one line; logging's own "--- Logging error ---" report, a
traceback on stderr for every later line, never appears.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
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

LogFailure = Callable[[OSError, Path], None]


class LogFile(logging.FileHandler):
    """``node.log``: at its first failed write it closes the file, stops
    writing it and calls ``on_failure`` (set by ``watch_log_file``) with
    the OSError, instead of logging's report on stderr."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, encoding="utf-8")
        self.path = path
        self.failed: OSError | None = None
        self.on_failure: LogFailure | None = None
        self._failing = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if self.failed is None:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)  # a bug in a formatter: logging's report
            return
        with self._failing:
            if self.failed is not None:
                return
            self.failed = exc
        # The buffered rest would fail again at close.
        stream, self.stream = self.stream, None
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
        if self.on_failure is not None:
            self.on_failure(exc, self.path)


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
        fh = LogFile(file)
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


def watch_log_file(on_failure: LogFailure) -> None:
    """Call ``on_failure(exc, path)`` when ``node.log`` fails a write (at
    once if it already has); from whichever thread was logging."""
    for handler in logging.getLogger("powernode").handlers:
        if isinstance(handler, LogFile):
            handler.on_failure = on_failure
            if handler.failed is not None:
                on_failure(handler.failed, handler.path)
