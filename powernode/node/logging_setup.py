"""Operator logs: one event per line to stderr and to ``node.log``.

Text: ``2026-11-23T18:31:36.123Z INFO    chain block.connected height=5 hash=.. ms=1.2``
JSON: ``{"ts": "...", "level": "info", "logger": "chain", "event": "block.connected", "height": 5, ...}``

Levels are set per category, as bitcoind's ``-debug=net``: a category names
the loggers whose lines it covers, and its level overrides the base level
for them (``[log] levels`` at start, RPC ``node.loglevel`` while running).
``node.log`` can be reopened (SIGHUP, after logrotate moved it) and rotated
by size.

When ``node.log`` cannot be written (a full disk, a read-only mount), its
handler stops writing it and tells the node once (``watch_log_file``), which
stops with one line; logging's own "--- Logging error ---" report, a
traceback on stderr for every later line, never appears.

The libraries the node runs on (aiohttp, asyncio) log through Python's root
logger, whose default output is a multi-line traceback on stderr, in no
format of ours and not in ``node.log``. ``LibraryLog`` takes those records
(WARNING and up) and writes each as one node event, ``library.message``;
a malformed HTTP request from a client, which aiohttp logs as an error with
a traceback, is the client's fault, not the node's: ``http.bad_request``,
at debug.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from powernode.logkit import emit, render_fields
from powernode.state.registry import ENGINES


def _ts(record: logging.LogRecord) -> str:
    t = time.gmtime(record.created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"


def _short(name: str) -> str:
    return name.removeprefix("powernode.")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        # 7 wide: WARNING is the longest level name, so columns stay aligned.
        line = f"{_ts(record)} {record.levelname:<7} {_short(record.name)} {record.getMessage()}"
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


class LogFile(logging.handlers.RotatingFileHandler):
    """``node.log``. Rotated by size when ``max_bytes`` > 0 (to ``node.log.1``
    .. ``node.log.<backups>``), and reopened by name on ``reopen`` so that
    after logrotate moved the file the node writes a new one instead of the
    moved one. At its first failed write it closes the file, stops writing
    it and calls ``on_failure`` (set by ``watch_log_file``) with the OSError,
    instead of logging's report on stderr."""

    def __init__(self, path: Path, *, max_bytes: int = 0, backups: int = 0) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self.path = path
        self.failed: OSError | None = None
        self.on_failure: LogFailure | None = None
        self._failing = threading.Lock()

    def reopen(self) -> None:
        if self.failed is not None:
            return
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()

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


# An engine's category is its name, but for this shorter one.
_ENGINE_CATEGORY = {"certificates": "certs"}
# Category -> the loggers (the column after the level) whose lines it covers.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "node": ("powernode.node",),
    "chain": ("powernode.chain",),
    "mempool": ("powernode.ledger", "powernode.mempool"),
    "net": ("powernode.p2p", "powernode.sync"),
    "rpc": ("powernode.rpc",),
    "miner": ("powernode.miner",),
    "verify": ("powernode.verify",),
    "metrics": ("powernode.metrics",),
    # The engines: one engine.block line per connected block
    # (node/engine_log.py), under each engine that has tx types, named after
    # it, so a new engine's category comes with its registry line.
    **{
        _ENGINE_CATEGORY.get(e.name, e.name): (f"powernode.{e.name}",)
        for e in ENGINES
        if e.handlers
    },
}
LEVELS = ("debug", "info", "warning", "error")


def setup_logging(
    *,
    fmt: str,
    level: str,
    file: Path | None,
    max_bytes: int = 0,
    backups: int = 0,
    categories: Mapping[str, str] | None = None,
    stderr: bool = True,
) -> None:
    """Log to ``file`` and, with ``stderr``, to stderr too. Without it (``run
    --no-log-stderr``, as a testnet starts its nodes) stderr keeps only what
    is not a log line: the one-line failure and a crash's traceback."""
    formatter: logging.Formatter = JsonFormatter() if fmt.lower() == "json" else TextFormatter()
    root = logging.getLogger("powernode")
    root.handlers.clear()
    root.setLevel(level.upper())
    root.propagate = False
    if stderr or file is None:
        err = logging.StreamHandler(sys.stderr)
        err.set_name(_STDERR)
        err.setFormatter(formatter)
        root.addHandler(err)
    if file is not None:
        fh = LogFile(file, max_bytes=max_bytes, backups=backups)
        fh.setFormatter(formatter)
        root.addHandler(fh)
    for name in CATEGORIES:
        set_category_level(name, (categories or {}).get(name))
    aio = logging.getLogger("aiohttp.access")
    aio.setLevel(logging.WARNING)
    # aiohttp tells a first request that is not HTTP at all (TLS bytes, a
    # bad method) at debug: LibraryLog turns it into http.bad_request and
    # drops its other records below WARNING.
    logging.getLogger("aiohttp.server").setLevel(logging.DEBUG)
    top = logging.getLogger()
    for h in [h for h in top.handlers if isinstance(h, LibraryLog)]:
        top.removeHandler(h)
    top.addHandler(LibraryLog())
    top.setLevel(logging.WARNING)


_RPC_LOG = logging.getLogger("powernode.rpc")
_NODE_LOG = logging.getLogger("powernode.node")


class LibraryLog(logging.Handler):
    """A library's log record (aiohttp, asyncio: Python's root logger) as
    one node event on the node's own handlers."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("powernode"):
            return  # the node's own loggers do not propagate; never twice
        try:
            self._adopt(record)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)  # as every handler: never into the library

    def _adopt(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        # A body that breaks its encoding, met where the node did not read
        # it (aiohttp drains it after the answer): the HTTP error inside.
        if isinstance(exc, RequestPayloadError) and isinstance(exc.__cause__, HttpProcessingError):
            exc = exc.__cause__
        if isinstance(exc, HttpProcessingError) and record.name == "aiohttp.server":
            args = record.args
            peer = args[0] if isinstance(args, tuple) and args and "%s" in str(record.msg) else ""
            emit(
                _RPC_LOG,
                "http.bad_request",
                logging.DEBUG,
                peer=peer,
                status=exc.code,
                reason=" ".join(str(exc.message).split()),
            )
            return
        if record.levelno < logging.WARNING:
            return  # a library's own debug and info lines are not the node's
        fields: dict[str, Any] = {"source": record.name, "msg": record.getMessage()}
        if record.exc_info:
            fields["exc"] = logging.Formatter().formatException(record.exc_info)
        emit(_NODE_LOG, "library.message", record.levelno, **fields)


def set_category_level(category: str, level: str | None) -> None:
    """Give ``category`` its own level, or with None let it follow the base
    level again. Raises KeyError for an unknown category, ValueError for an
    unknown level."""
    if level is not None and level.lower() not in LEVELS:
        raise ValueError(level)
    for name in CATEGORIES[category]:
        logging.getLogger(name).setLevel(level.upper() if level is not None else logging.NOTSET)


def set_base_level(level: str) -> None:
    if level.lower() not in LEVELS:
        raise ValueError(level)
    logging.getLogger("powernode").setLevel(level.upper())


def log_levels() -> dict[str, Any]:
    """The base level and each category's own level (None: it follows the base)."""
    cats: dict[str, str | None] = {}
    for category, names in CATEGORIES.items():
        own = logging.getLogger(names[0]).level
        cats[category] = logging.getLevelName(own).lower() if own else None
    base = logging.getLevelName(logging.getLogger("powernode").level).lower()
    return {"level": base, "categories": cats}


def reopen_log_files() -> int:
    """Reopen ``node.log`` by name (SIGHUP); returns how many files were reopened."""
    n = 0
    for handler in logging.getLogger("powernode").handlers:
        if isinstance(handler, LogFile):
            handler.reopen()
            n += 1
    return n


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
