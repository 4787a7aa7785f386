"""The metering clock: when a reading's interval has ended, when it is too
late, and when a certificate expires.

``now`` is the highest block timestamp seen so far, so a block whose
timestamp steps back (the median-time-past rule allows it) cannot reopen an
interval, its reading window, or an expired certificate. Metering keeps its
own record of it from the first device registration on (``begin_block``
moves it every block), and takes the market's clock too when that is later,
so a reading is never judged by an earlier time than the market's gates.
"""

from __future__ import annotations

from powernode.core.execution import ExecContext, StateAccess, StateRead
from powernode.engines.market.records import META_NS, Meta
from powernode.engines.metering.records import CLOCK_KEY, Clock

_MARKET_META = (META_NS, b"")


def now(view: StateRead, ctx: ExecContext) -> int:
    return at(view, ctx.timestamp)


def at(view: StateRead, timestamp: int) -> int:
    """The clock for a block of ``timestamp`` on ``view`` (RPC answers judge
    expiry and days remaining with the tip's, as the next block would)."""
    # The market's meta record read directly (market.queries.market_time
    # wants a scannable state; a tx has only its view).
    meta: Meta | None = view.get(_MARKET_META)
    own: Clock | None = view.get(CLOCK_KEY)
    # int(): the stored Clock must not leak into records that use the time.
    return max(0 if meta is None else meta.clock, 0 if own is None else int(own), timestamp)


def start(view: StateAccess, ctx: ExecContext) -> None:
    """Start the clock (at the first device registration)."""
    if view.get(CLOCK_KEY) is None:
        view.put(CLOCK_KEY, Clock(now(view, ctx)))


def begin_block(view: StateAccess, ctx: ExecContext) -> None:
    """Move the clock to this block's time when it is later. Nothing until a
    device exists, so chains without metering keep their state roots."""
    own: Clock | None = view.get(CLOCK_KEY)
    if own is not None and ctx.timestamp > own:
        view.put(CLOCK_KEY, Clock(ctx.timestamp))
