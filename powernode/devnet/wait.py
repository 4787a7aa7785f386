"""Waiting for a condition: poll it until it holds or a deadline passes.

One behaviour for every wait in the dev tools and tests (the in-process test
harness has an asyncio twin built on the same ``Poll``):

- ``cond()`` is tried at once, then every ``interval`` seconds; the first
  truthy result is returned. The pause before a try is cut short at the
  deadline, so the last try happens at the deadline itself.
- An exception from ``cond()`` counts as "not yet" (a node that is still
  starting refuses connections), and the last one is named in the timeout
  error, except for three kinds that end the wait at once: an
  ``AssertionError`` (a check inside the condition failed), a ``WaitAbort``
  (e.g. the node process exited: waiting longer cannot help) and a
  ``WaitTimeout`` (an inner wait already gave up).
- Past the deadline, ``WaitTimeout`` says what was awaited and for how long.

Synchronous on purpose: only ``powernode/node`` runs an event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 30.0
DEFAULT_INTERVAL = 0.05


class WaitTimeout(Exception):
    """A condition did not hold before its deadline."""

    def __init__(self, what: str, timeout: float, last_error: BaseException | None = None) -> None:
        detail = f" (last error: {last_error!r})" if last_error is not None else ""
        super().__init__(f"timed out after {timeout:g}s waiting for {what}{detail}")
        self.what = what
        self.timeout = timeout
        self.last_error = last_error


class WaitAbort(Exception):
    """Raised by a condition to end the wait at once: waiting cannot help."""


class Deadline:
    """A point in ``time.monotonic()`` time, ``seconds`` from its creation."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.at


class Poll:
    """The polling rule of one wait, without the sleeping: the sync and async
    loops call ``absorb`` with what a try raised and sleep ``pause()``."""

    def __init__(
        self,
        *,
        what: str,
        timeout: float = DEFAULT_TIMEOUT,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.what = what
        self.deadline = Deadline(timeout)
        self.interval = interval
        self.last_error: Exception | None = None

    def absorb(self, exc: Exception) -> bool:
        """True if ``exc`` means "not yet" (it is kept for the timeout error);
        False if it must end the wait (the caller re-raises it)."""
        if isinstance(exc, AssertionError | WaitAbort | WaitTimeout):
            return False
        self.last_error = exc
        return True

    def pause(self) -> float:
        """Seconds to sleep before the next try; raises ``WaitTimeout`` once
        the deadline has passed."""
        if self.deadline.expired():
            raise WaitTimeout(
                self.what, self.deadline.seconds, self.last_error
            ) from self.last_error
        return min(self.interval, self.deadline.remaining())


def wait_until(
    cond: Callable[[], T | None],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    what: str = "condition",
) -> T:
    """Poll ``cond`` until it returns something truthy and return that; raise
    ``WaitTimeout`` naming ``what`` after ``timeout`` seconds (the rule is in
    this module's docstring)."""
    poll = Poll(what=what, timeout=timeout, interval=interval)
    while True:
        try:
            result = cond()
        except Exception as exc:
            if not poll.absorb(exc):
                raise
        else:
            if result:
                return result
        time.sleep(poll.pause())
