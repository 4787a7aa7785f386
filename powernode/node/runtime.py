"""Interpreter settings for a node process: GC and GIL switching.

The node holds its whole state and mempool as Python objects. With the
default thresholds the cyclic GC runs a full pass over all of them every few
hundred thousand allocations, which lands in the middle of block connects
(measured: a 5,000-tx connect went from ~130 ms to ~230 ms). Our objects form
no cycles in the hot paths, so collect rarely, and move what start-up loaded
out of the collector's sight with ``gc.freeze``.
"""

from __future__ import annotations

import gc
import sys

GC_THRESHOLDS = (50_000, 50, 100)
# Signature checks run on worker threads that drop the GIL inside OpenSSL and
# need it back for a few microseconds between signatures. With the default
# 5 ms switch interval a busy event loop makes them wait up to 5 ms each
# time, and the parallel verification stalls; a shorter interval hands the
# GIL back sooner.
SWITCH_INTERVAL_S = 0.0005


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def freeze_loaded_objects() -> None:
    gc.collect()
    gc.freeze()
