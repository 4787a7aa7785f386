"""The data dir's lock: one writer of ``chain.db`` at a time.

``node.json`` names a running node only once its RPC port is bound, after
the chain has loaded (and after a whole ``--reindex``). Until then a second
``run`` or a ``restore --force`` would see no node and write the same store.
So ``run`` takes an exclusive ``flock`` on ``DATADIR/node.lock`` before it
reads the config and keeps it until the process ends, and ``restore`` holds
it while it replaces ``chain.db``. The kernel drops the lock with the
process, so a killed node leaves no stale lock behind; the file stays, and
holds the pid of the last process that took it (for the refusal's message).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

__all__ = ["LOCK_NAME", "DatadirLocked", "lock_datadir"]

LOCK_NAME = "node.lock"


class DatadirLocked(Exception):
    """Another process holds the data dir's lock; ``pid`` is the one it
    wrote, or None if it wrote none that reads back."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(pid)
        self.pid = pid

    @property
    def node(self) -> str:
        """ "a node (pid N)", as the refusals name it."""
        return f"a node (pid {self.pid})" if self.pid is not None else "a node"


def lock_datadir(datadir: Path) -> int | None:
    """Take the data dir's lock for this process: the open descriptor
    (keep it open for as long as the lock is needed), or None where the
    lock file cannot be made at all (a read-only or full data dir: the
    store's own checks then tell that fault in its words). Raise
    DatadirLocked if another process holds it."""
    try:
        fd = os.open(datadir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        raise DatadirLocked(pid) from None
    except OSError:
        os.close(fd)  # a file system without flock: nothing to hold
        return None
    # Only for the message another process shows; a full disk may refuse it.
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None
