"""What a failed read or write in the data dir means to the operator.

SQLite and the OS report a fault by their own codes; the operator needs the
file, what is wrong with it and what to do. ``from_sqlite`` and
``from_os_error`` turn one into a typed ``StorageError`` (core/errors.py)
carrying both. SQLite reports a write refused by a read-only file system
as a bare I/O error (and Python's sqlite3 does not pass the errno on), so
then the file system itself is asked: its flags (``statvfs``), and if they
say nothing (ext4's emergency read-only state after a disk error is not
among them), a small test write beside the file, whose errno tells.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from pathlib import Path

from powernode.core.errors import (
    DiskFull,
    ReadOnlyStorage,
    StorageError,
    StoreCorrupt,
    StoreUnusable,
)

# SQLite's primary result codes (the low byte of an extended code).
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

AGAIN = "then start the node again: it continues at its last connected block"
FIX_FULL = f"free space on its file system, {AGAIN}"
FIX_READ_ONLY = f"make the data dir writable (remount its file system read-write), {AGAIN}"
FIX_IO = f"check the disk (the kernel log, dmesg), {AGAIN}"


def fix_store(path: Path) -> str:
    """What to do with a store this node cannot use: set it aside whole (a
    WAL file left beside a new store would be replayed into it)."""
    return (
        f"move {path.name}, {path.name}-wal and {path.name}-shm out of the data dir "
        "(keep them for diagnosis) and start the node again: it starts from genesis "
        "and syncs the chain from its peers"
    )


def _statvfs(path: Path) -> os.statvfs_result | None:
    """The file system holding ``path`` (or its nearest existing parent)."""
    for p in (path, *path.parents):
        try:
            return os.statvfs(p)
        except OSError:
            continue
    return None


def fs_read_only(path: Path) -> bool:
    st = _statvfs(path)
    return st is not None and bool(st.f_flag & os.ST_RDONLY)


def fs_full(path: Path) -> bool:
    st = _statvfs(path)
    return st is not None and st.f_bavail == 0


def probe_write(directory: Path) -> OSError | None:
    """Write, sync and remove a small file in ``directory``; the OSError
    that stopped it, if any."""
    probe = directory / f".write-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(bytes(4096))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        return exc
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


def from_os_error(exc: OSError, path: Path) -> StorageError:
    """The fault of an OS call on ``path`` (node.log, mempool.dat, the cookie)."""
    name = str(path)
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"cannot write: {reason}", path=name, fix=FIX_FULL)
    if exc.errno == errno.EROFS or fs_read_only(path):
        return ReadOnlyStorage(f"cannot write: {reason}", path=name, fix=FIX_READ_ONLY)
    if exc.errno in (errno.EISDIR, errno.ENOTDIR):
        return StorageError(
            f"cannot write: {reason}", path=name, fix=f"move what is there out of the way, {AGAIN}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StorageError(
            f"cannot open: {reason}",
            path=name,
            fix=f"give the node's user read and write access to the data dir, {AGAIN}",
        )
    return StorageError(f"I/O error: {reason}", path=name, fix=FIX_IO)


def from_sqlite(exc: sqlite3.Error, path: Path) -> StorageError:
    """The fault of an SQLite call on the store at ``path``."""
    name = str(path)
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    if primary == _SQLITE_FULL or (primary == _SQLITE_IOERR and fs_full(path)):
        return DiskFull(f"cannot write: the disk is full ({exc})", path=name, fix=FIX_FULL)
    if primary in (_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN, _SQLITE_PERM):
        refused = None if fs_read_only(path) else probe_write(path.parent)
        if refused is not None and refused.errno in (errno.ENOSPC, errno.EDQUOT):
            return DiskFull(f"cannot write: the disk is full ({exc})", path=name, fix=FIX_FULL)
        if fs_read_only(path) or (refused is not None and refused.errno == errno.EROFS):
            return ReadOnlyStorage(
                f"cannot write: read-only file system ({exc})", path=name, fix=FIX_READ_ONLY
            )
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StoreCorrupt(f"damaged ({exc})", path=name, fix=fix_store(path))
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreUnusable(
            f"locked by another program ({exc})",
            path=name,
            fix=f"stop the other program or node using it, {AGAIN}",
        )
    if path.is_dir():
        return StoreUnusable("is a directory, not a store", path=name, fix=fix_store(path))
    for companion in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        # SQLite cannot open the store when its log or index is a directory,
        # and says only "unable to open database file": name the culprit.
        if companion.is_dir() and not companion.is_symlink():
            return StorageError(
                f"cannot open: {companion.name} is a directory ({exc})",
                path=str(companion),
                fix=f"move {companion} out of the way, {AGAIN}",
            )
    if primary in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_CANTOPEN):
        return StorageError(
            f"cannot open or write ({exc})",
            path=name,
            fix=f"give the node's user read and write access to it and its directory, {AGAIN}",
        )
    return StorageError(f"I/O error ({exc})", path=name, fix=FIX_IO)
