"""SIGTERM as an interrupt, for ``powernode run`` before its node handles
the stop signals itself (the console script's entry point and ``run``'s
own start both take it, so the stop is clean from the first moment)."""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ["sigterm_as_interrupt"]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def sigterm_as_interrupt() -> None:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does."""
    signal.signal(signal.SIGTERM, _interrupt)
