"""Interpreter settings for a node process: GC, GIL switching, and the
names its threads show to the OS.

The node holds its whole state and mempool as Python objects. With the
default thresholds the cyclic GC runs a full pass over all of them every few
hundred thousand allocations, which lands in the middle of block connects
(measured: a 5,000-tx connect went from ~130 ms to ~230 ms). Our objects form
no cycles in the hot paths, so collect rarely, and move what start-up loaded
out of the collector's sight with ``gc.freeze``.

The young generation's threshold is above what one block connect allocates
(~55,000 objects that live until it ends, for 5,000 txs): at 50,000, one young
collection ran inside every such connect and walked all of them (6-20 ms
measured on 2 cores), while after the connect they are already freed.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import sys

GC_THRESHOLDS = (200_000, 50, 100)
# A thread that needs the GIL while the event loop is busy (the miner between
# PoW hashes) gets it after at most the switch interval. With the default
# 5 ms the miner crawls; a shorter interval hands the GIL over sooner.
SWITCH_INTERVAL_S = 0.0005


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def freeze_loaded_objects() -> None:
    gc.collect()
    gc.freeze()


_PR_SET_NAME = 15  # prctl(2)


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` (15 bytes at most) in the OS, so
    ``top -H``, ``ps -L`` and ``/proc/PID/task/TID/comm`` tell the miner
    from the event loop (Python 3.11 names only its own thread objects).
    Linux only; elsewhere, or if libc refuses, the name stays as it was."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)
