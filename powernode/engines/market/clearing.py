"""Work the market does at the start of every block, before its txs: advance
the market clock to the block's time, expire orders whose expiry has come, and
close the gate of every book whose gate closure has come (running the call
auction first in a ``uniform`` market). Due work is kept in a time-ordered
schedule, so a block with nothing due costs one read.
"""

from __future__ import annotations

from powernode.core.execution import ExecContext, StateAccess
from powernode.engines.market.matching import close_gate
from powernode.engines.market.records import (
    EXPIRED,
    OPEN,
    SIDE_CODE,
    book_key,
    split_book_key,
)
from powernode.engines.market.session import META_KEY, Session


def begin_block(view: StateAccess, ctx: ExecContext) -> None:
    if view.get(META_KEY) is None:
        return  # no market tx yet: nothing to do, and no state to change
    s = Session(view, ctx)
    now = s.now
    s.c.clock = now
    for when in s.due_times():
        if when > now:
            break
        due = s.take_due(when)
        # Expiries first: an order that expires at the gate does not take
        # part in its auction. Within each kind, the order work was scheduled.
        for entry in due:
            if entry[:1] == b"x":
                oid = entry[1:]
                o = s.order(oid)
                if o is not None and o.status == OPEN:
                    book = s.book_for_write(book_key(o.product, o.slot))
                    removed = book.remove(SIDE_CODE[o.side], o.price, oid)
                    s.close(removed, EXPIRED, resting=True)
        for entry in due:
            if entry[:1] == b"g":
                bk = entry[1:]
                product, slot = split_book_key(bk)
                close_gate(s, s.markets[product], s.book_for_write(bk), slot)
    s.flush()
