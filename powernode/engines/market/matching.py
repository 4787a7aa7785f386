"""Matching inside block execution: an incoming order against its book
(continuous markets), and the gate closure of a book (with the uniform-price
call auction first in a ``uniform`` market). The book (``book.py``) decides
who trades with whom at what price; this module settles each fill through
the session and closes what is done.
"""

from __future__ import annotations

from powernode.engines.market.auction import auction
from powernode.engines.market.book import BUY, MAKER, MIDPOINT, OrderBook, Resting
from powernode.engines.market.params import MarketParams
from powernode.engines.market.records import CANCELLED, EXPIRED, FILLED
from powernode.engines.market.session import Session


def match_incoming(
    s: Session, mp: MarketParams, book: OrderBook, slot: int, inc: Resting, tif: str
) -> bool:
    """Match ``inc`` (already escrowed and recorded) and settle every fill;
    returns True if what is left of it should rest in the book."""
    if mp.price_rule != "uniform":
        fills = book.match(inc, MAKER if mp.price_rule == "maker" else MIDPOINT)
        for r, qty, price in fills:
            if inc.side == BUY:
                s.settle(mp, book, slot, inc, r, qty, price)
            else:
                s.settle(mp, book, slot, r, inc, qty, price)
            if r.remaining == 0:
                s.close(r, FILLED, resting=True)
    if inc.remaining == 0:
        s.close(inc, FILLED, resting=False)
        return False
    if tif == "IOC":
        s.close(inc, CANCELLED, resting=False)
        return False
    return True


def close_gate(s: Session, mp: MarketParams, book: OrderBook, slot: int) -> None:
    """Gate closure: run the call auction in a uniform market, then every
    order still in the book is done; the unfilled part expires and its
    escrow and capacity come back."""
    if mp.price_rule == "uniform":
        price, fills = auction(book)
        for bid, ask, qty in fills:
            s.settle(mp, book, slot, bid, ask, qty, price)
    for r in book.drain():
        s.close(r, EXPIRED if r.remaining else FILLED, resting=True)
    book.head.closed = True
