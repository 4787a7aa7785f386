"""A consistent copy of a live ``chain.db``, by SQLite's online backup API.

The copy is read through a connection of its own holding one read
transaction from the first page to the last: in WAL mode that transaction
sees the store as of one commit, and every block connect is one commit
(store.py), so the copy is the store at one connected block, whatever the
node writes meanwhile. The node's writer is never blocked by it. The copy is
written beside its destination and renamed into place once complete, so a
failed or interrupted backup leaves no file that looks like a backup.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from powernode.core.errors import BackupFailed

# Pages copied per step: progress is told between steps (4 MiB of 4 KiB pages).
PAGES_PER_STEP = 1024

# (pages copied, pages in all) after each step; raising stops the copy.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class BackupResult:
    path: str
    height: int
    tip: bytes
    bytes: int


# The data dir's own files beside the store (see the README's "Data dir"):
# a backup written over one (a key, the config, the log) would break the
# node, with or without force.
DATADIR_FILES = frozenset(
    {
        "config.toml",
        "genesis.json",
        "node.key",
        "p2p.key",
        ".cookie",
        "node.json",
        "node.lock",
        "mempool.dat",
        "mempool.dat.corrupt",
        "mempool.tmp",
    }
)


def _own_files(src: Path) -> set[Path]:
    """The store's files, by the path the node opens and by where a
    symlinked ``chain.db`` leads."""
    stores = {src.parent.resolve() / src.name, src.resolve()}
    return {
        store.with_name(store.name + suffix)
        for store in stores
        for suffix in ("", "-wal", "-shm", "-journal", ".new", ".restore")
    }


def _is_datadir_file(src: Path, target: Path) -> bool:
    if target.parent != src.parent.resolve():
        return False
    return (
        target.name in DATADIR_FILES
        or re.fullmatch(r"node\.log(\.[0-9]+)?", target.name) is not None
    )


def _check_target(src: Path, out: Path, force: bool) -> None:
    target = out.resolve()
    if target in _own_files(src):
        # --force would replace the running store (or its log, index, or a
        # restore or new store in the making) under the node.
        raise BackupFailed(f"{out} is the node's own store; give a file outside it")
    if _is_datadir_file(src, target):
        raise BackupFailed(f"{out} is one of the data dir's own files; give another name")
    if out.is_dir():
        raise BackupFailed(f"{out} is a directory; give a file name")
    if out.exists() and not force:
        raise BackupFailed(f"{out} exists; give force (backup --force) to replace it")
    if not out.parent.is_dir():
        raise BackupFailed(f"cannot write {out}: folder {out.parent} does not exist")


def backup_store(
    src: Path,
    out: Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    pages_per_step: int = PAGES_PER_STEP,
    started: Callable[[], None] | None = None,
) -> BackupResult:
    """Copy the store at ``src`` to ``out`` (an absolute path); BackupFailed
    with the reason when no copy was made. ``started`` is called once the
    target has passed its checks, as the copy begins."""
    if not out.is_absolute():
        raise BackupFailed(f"{out}: give an absolute path (the file is written by the node)")
    if "\x00" in str(out):
        raise BackupFailed(f"cannot write {out!r}: a file name holds no NUL character")
    try:
        _check_target(src, out, force)
    except OSError as exc:  # a name too long for the file system
        raise BackupFailed(f"cannot write {out}: {exc.strerror or exc}") from None
    if started is not None:
        started()
    tmp = out.with_name(f".{out.name}.partial")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        height, tip = _copy(src, tmp, progress, pages_per_step)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
        size = out.stat().st_size
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if not isinstance(exc, sqlite3.Error | OSError):
            raise  # the progress callback's own (a stop), or a bug
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BackupFailed(f"cannot write {out}: {why}") from None
    return BackupResult(path=str(out), height=height, tip=tip, bytes=size)


def _copy(
    src: Path, dst_path: Path, progress: Progress | None, pages_per_step: int
) -> tuple[int, bytes]:
    source = sqlite3.connect(src, isolation_level=None)
    try:
        # One read transaction for the whole copy: the snapshot of one commit.
        source.execute("BEGIN")
        row = source.execute(
            "SELECT c.height, c.hash FROM meta m JOIN chain c ON c.hash = m.value"
            " WHERE m.key = 'tip'"
        ).fetchone()
        if row is None:
            raise BackupFailed(f"{src} has no tip to back up")
        height, tip = int(row[0]), bytes(row[1])
        dest = sqlite3.connect(dst_path, isolation_level=None)
        try:
            source.backup(
                dest,
                pages=pages_per_step,
                progress=None
                if progress is None
                else lambda _status, remaining, total: progress(total - remaining, total),
            )
            # A block is stored (its own commit) before it is connected, so
            # the snapshot may hold blocks past its tip that no check has
            # passed yet; a node started from the copy would connect them
            # at once and start past the backup's tip. The copy keeps the
            # chain up to its tip; peers give the rest again.
            dest.execute("BEGIN")
            dest.execute(
                "DELETE FROM bodies WHERE hash IN (SELECT hash FROM blocks WHERE height > ?)",
                (height,),
            )
            dest.execute("DELETE FROM blocks WHERE height > ?", (height,))
            dest.execute("COMMIT")
            # One self-contained file: the copy carries no write-ahead log.
            dest.execute("PRAGMA journal_mode=DELETE")
        finally:
            dest.close()
        source.execute("COMMIT")
    finally:
        source.close()
    return height, tip
