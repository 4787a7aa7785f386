"""Progress output, a runtime budget and small statistics for the benchmark
scripts.

The budget raises ``BenchAborted`` in the main thread (on SIGALRM or SIGTERM)
so that ``finally`` blocks and context managers get to stop any node process
when the benchmark fails or runs out of time.
"""

from __future__ import annotations

import math
import signal
import sys
import time
import traceback
from collections.abc import Callable
from types import FrameType
from typing import Any

_T0 = time.monotonic()


# --- progress ----------------------------------------------------------------


def progress(msg: str) -> None:
    """One progress line on stderr, stamped with the seconds since start."""
    print(f"[{time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --- runtime budget ------------------------------------------------------------


class BenchAborted(Exception):
    """The run hit its time budget or was told to stop (SIGTERM)."""


class BenchRefused(Exception):
    """What the run needs is not there (no testnet, no running node): one
    line for the user to act on, no traceback."""


_aborting = False


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    _abort("time budget exhausted")


def _on_term(signum: int, frame: FrameType | None) -> None:
    _abort(f"stopped by signal {signum}")


def _abort(reason: str) -> None:
    global _aborting
    if _aborting:  # already unwinding: let the cleanup finish
        return
    _aborting = True
    raise BenchAborted(reason)


def install_budget(seconds: float) -> None:
    """Raise BenchAborted in the main thread after ``seconds`` (or on SIGTERM),
    so ``finally`` blocks get to stop any node process."""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def run_guarded(body: Callable[[], None], record: dict[str, Any]) -> int:
    """Run a benchmark body; turn an abort, Ctrl-C or a crash into an exit
    code (0, 2 or 130) and an ``error`` entry in ``record``, and always
    cancel the time budget."""
    try:
        body()
        return 0
    except BenchAborted as exc:
        record["error"] = f"aborted: {exc}"
        return 2
    except BenchRefused as exc:
        progress(str(exc))
        record["error"] = str(exc)
        return 2
    except KeyboardInterrupt:
        record["error"] = "interrupted"
        return 130
    except Exception as exc:
        traceback.print_exc()
        record["error"] = f"{type(exc).__name__}: {exc}"
        return 2
    finally:
        cancel_budget()


def cancel_budget() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)


# --- statistics ----------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(s)))
    return s[rank - 1]


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
