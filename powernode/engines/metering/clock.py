"""The metering clock: when a reading's interval has ended, and when it is too late.

``now`` is the market's clock (the highest block timestamp so far; it never
goes back), or the block's own timestamp when that is later, so a block
whose timestamp steps back cannot reopen an interval, and a reading is
judged against the same time the market judges its gates by.
"""

from __future__ import annotations

from powernode.core.execution import ExecContext, StateRead
from powernode.engines.market.records import META_NS, Meta

_MARKET_META = (META_NS, b"")


def now(view: StateRead, ctx: ExecContext) -> int:
    # The market's meta record read directly (market.queries.market_time
    # wants a scannable state; a tx has only its view).
    meta: Meta | None = view.get(_MARKET_META)
    clock = 0 if meta is None else meta.clock
    return clock if clock > ctx.timestamp else ctx.timestamp
