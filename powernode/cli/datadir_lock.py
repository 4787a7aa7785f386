"""The data dir's lock: one writer of ``chain.db`` at a time.

``node.json`` names a running node only once its RPC port is bound, after
the chain has loaded (and after a whole ``--reindex``). Until then a second
``run`` or a ``restore --force`` would see no node and write the same store.
So ``run`` takes an exclusive ``flock`` on ``DATADIR/node.lock`` before it
reads the config and keeps it until the process ends, and ``restore`` holds
it while it replaces ``chain.db``. The kernel drops the lock with the
process, so a killed node leaves no stale lock behind; the file stays, and
holds the pid and kind (``node`` or ``restore``) of the last process that
took it, for the refusal's message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LOCK_NAME", "DatadirLocked", "lock_datadir", "node_json_pid", "wait_unlocked"]

LOCK_NAME = "node.lock"
HOLDERS = ("node", "restore")


class DatadirLocked(Exception):
    """Another process holds the data dir's lock; ``pid`` and ``holder``
    are what it wrote (None where nothing that reads back was written)."""

    def __init__(self, pid: int | None, holder: str | None = None) -> None:
        super().__init__(pid, holder)
        self.pid = pid
        self.holder = holder or "node"

    @property
    def node(self) -> str:
        """ "a node (pid N)" (or "a restore (pid N)"), as the refusals name it."""
        return f"a {self.holder} (pid {self.pid})" if self.pid is not None else f"a {self.holder}"


@dataclass(frozen=True)
class _Written:
    pid: int | None
    holder: str | None


def lock_datadir(datadir: Path, holder: str = "node") -> int | None:
    """Take the data dir's lock for this process: the open descriptor
    (keep it open for as long as the lock is needed), or None where the
    lock file cannot be made at all (a read-only or full data dir: the
    store's own checks then tell that fault in its words). Raise
    DatadirLocked if another process holds it."""
    assert holder in HOLDERS
    try:
        # O_NOFOLLOW: a node.lock planted as a symlink must not have its
        # target truncated.
        fd = os.open(
            datadir / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
        )
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        written = _read(fd)
        os.close(fd)
        raise DatadirLocked(written.pid, written.holder) from None
    except OSError:
        os.close(fd)  # a file system without flock: nothing to hold
        return None
    # Only for the message another process shows; a full disk may refuse it.
    # Written before the old text is cut off, so a reader never finds the
    # file empty while it is held.
    text = f"{os.getpid()} {holder}\n".encode()
    with contextlib.suppress(OSError):
        os.pwrite(fd, text, 0)
        os.ftruncate(fd, len(text))
    return fd


def wait_unlocked(datadir: Path, timeout: float) -> bool:
    """Wait until no process holds the data dir's lock (a stopping node
    still closes its store); whether it was let go within ``timeout`` s."""
    # A probe, not a holder: opened read-only, never made, never written.
    try:
        fd = os.open(datadir / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return True  # no lock file: no node ever held this data dir
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
                continue
            except OSError:
                return True  # a file system without flock: nothing to wait for
            return True
    finally:
        os.close(fd)


def _read(fd: int) -> _Written:
    try:
        words = os.pread(fd, 64, 0).decode("ascii").split()
    except (OSError, UnicodeDecodeError):
        return _Written(None, None)
    pid = int(words[0]) if words and words[0].isdigit() and int(words[0]) > 0 else None
    holder = words[1] if len(words) > 1 and words[1] in HOLDERS else None
    return _Written(pid, holder)


def node_json_pid(datadir: Path, *, locked: bool) -> int | None:
    """The pid ``DATADIR/node.json`` names, if that process is alive and
    not this one; None for a stale file. With the lock held (``locked``),
    only a process running ``powernode run`` counts: the file a killed node
    left may name a pid another program has by now, while a node of an
    earlier version (which took no lock) still counts."""
    try:
        pid = json.loads((datadir / "node.json").read_text())["pid"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # os.kill(0 or a negative pid, 0) would ask about a process group.
    if type(pid) is not int or pid <= 0 or pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, OverflowError):
        return None  # no such process, or another user's: not our node
    if locked and not _runs_a_node(pid):
        return None
    return pid


def _runs_a_node(pid: int) -> bool:
    """Whether process ``pid`` is a ``powernode run`` (its command line, as
    /proc has it); True where that cannot be read: better refuse than
    write a store a node may hold."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    words = [w.decode("utf-8", "replace") for w in argv if w]
    powernode = "powernode.cli" in words or any(Path(w).name == "powernode" for w in words[:2])
    return powernode and "run" in words
