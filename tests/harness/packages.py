"""Installing a distribution package a test needs (Chromium, iproute2) when
it is missing and we are root, as CI is on a fresh machine.

The suite runs in parallel workers (``scripts/test``), and two of them may
want a package at the same moment: apt refuses a second ``apt-get`` while
one holds its lock. An exclusive lock on one file serialises the installs,
and whoever gets it second finds the package there and installs nothing.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

LOCK = Path(tempfile.gettempdir()) / "powernode-tests-apt.lock"


def apt_install(package: str, present: Callable[[], bool], *, timeout: float = 900) -> None:
    """Install ``package`` with apt-get unless ``present()`` (checked again
    once the lock is held); AssertionError with apt's stderr if it fails."""
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if present():
            return
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
            r = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env
            )
            assert r.returncode == 0, f"{' '.join(cmd)} failed: {r.stderr[-2000:]}"
