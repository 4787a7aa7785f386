"""The operator's RPC methods: ``node.backup``.

The copy is made by the node, on the node's host, in a worker thread with a
connection of its own (chain/backup.py): the event loop keeps serving and
connecting blocks while it runs, and the copy is the store at one connected
block (as bitcoind's ``backupwallet``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from powernode.chain.backup import backup_store
from powernode.core.errors import BackupFailed, InvalidParams
from powernode.logkit import emit
from powernode.node.rpc import Method, Params
from powernode.node.rpc_params import arg, flag
from powernode.node.rpc_spec import BOOL, MethodSpec, Param, rejected, shape

log = logging.getLogger("powernode.node")

OPS_SPECS = {
    "node.backup": MethodSpec(
        summary="copy chain.db, consistent at one block, to a file on the node's host "
        "(SQLite's online backup; the node keeps serving)",
        params=(
            Param("path", {"type": "string"}, required=True, description="an absolute path"),
            Param("force", BOOL, description="replace an existing file (default false)"),
        ),
        result=shape("path:str height:int tip:hex bytes:int ms:int"),
        errors=(rejected("backup_failed", "no copy written (data.message says why)"),),
    ),
}


class _Progress:
    """A ``backup.progress`` line at each tenth of the pages copied; a node
    that is stopping ends the copy at the next step (a stop does not wait
    for a large backup: the partial file is removed)."""

    def __init__(self, path: str, stopping: Callable[[], bool]) -> None:
        self.path = path
        self.stopping = stopping
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if self.stopping():
            raise BackupFailed("the node is stopping; no copy was written")
        tenth = done * 10 // total if total else 10
        if tenth > self.shown and done < total:
            self.shown = tenth
            emit(log, "backup.progress", path=self.path, pages=done, of=total)


def ops_methods(db_path: Path, stopping: Callable[[], bool] = lambda: False) -> dict[str, Method]:
    """``node.backup`` of the store at ``db_path``; ``stopping`` says when
    the node stops (read from the copy's thread)."""
    busy = threading.Lock()

    async def node_backup(p: Params) -> Any:
        path = arg(p, "path", 0)
        if not isinstance(path, str) or not path:
            raise InvalidParams("'path' must be a file path (a string)")
        force = flag(p, "force", 1)
        out = Path(path)
        if not busy.acquire(blocking=False):
            exc = BackupFailed("a backup is already running; try again when it is done")
            emit(log, "backup.failed", logging.WARNING, path=out, error=exc.message)
            raise exc
        try:
            t0 = time.perf_counter()
            try:
                result = await asyncio.to_thread(
                    backup_store,
                    db_path,
                    out,
                    force=bool(force),
                    progress=_Progress(str(out), stopping),
                    # Logged from the copy's thread once the target passed
                    # its checks: a refusal is backup.failed alone.
                    started=lambda: emit(log, "backup.started", path=out),
                )
            except BackupFailed as exc:
                emit(log, "backup.failed", logging.WARNING, path=out, error=exc.message)
                raise
            seconds = time.perf_counter() - t0
        finally:
            busy.release()
        emit(
            log,
            "backup.done",
            path=out,
            height=result.height,
            tip=result.tip,
            bytes=result.bytes,
            s=round(seconds, 3),
        )
        return {
            "path": result.path,
            "height": result.height,
            "tip": result.tip.hex(),
            "bytes": result.bytes,
            "ms": int(seconds * 1000),
        }

    return {"node.backup": node_backup}
