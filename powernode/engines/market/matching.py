"""Matching: continuous (midpoint or maker price) and the uniform-price call
auction at gate closure. Priority everywhere: price, then time (the order's
sequence number, i.e. its position in the chain), then order id (sequence
numbers are unique, so the id never decides in practice).
"""

from __future__ import annotations

from collections import defaultdict

from powernode.engines.market.params import MarketParams
from powernode.engines.market.records import (
    BUY,
    EXPIRED,
    FILLED,
    LVL_NS,
    PX_NS,
    SELL,
    SIDE_BYTE,
    Ids,
    Order,
    u64,
)
from powernode.engines.market.session import Session, counterparty_ok, crosses, opposite


def continuous_price(mp: MarketParams, incoming: Order, resting: Order) -> int:
    """``maker``: the resting order's limit. ``midpoint``: (bid + ask) // 2,
    rounded down, so an odd sum leaves at most 1 micro-unit per kWh with the
    buyer, who is never charged above the midpoint."""
    if mp.price_rule == "maker":
        return resting.price
    return (incoming.price + resting.price) // 2


def fillable(s: Session, bk: bytes, incoming: Order) -> int:
    """How much of ``incoming`` the book could fill now (for fill-or-kill)."""
    need = incoming.remaining
    got = 0
    opp = opposite(incoming.side)
    for price in s.prices(bk, opp):
        if not crosses(incoming, price):
            break
        for rid in s.level(bk, opp, price):
            r = s.order(rid)
            if r is not None and counterparty_ok(incoming, r):
                got += r.remaining
                if got >= need:
                    return need
    return got


def match(s: Session, mp: MarketParams, bk: bytes, incoming: Order, inc_id: bytes) -> Order:
    """Fill ``incoming`` against the opposite side while prices cross; returns
    it updated (not written). Resting orders are updated or closed here."""
    opp = opposite(incoming.side)
    for price in tuple(s.prices(bk, opp)):
        if incoming.energy == incoming.filled or not crosses(incoming, price):
            break
        ids = s.level(bk, opp, price)
        keep: list[bytes] = []
        for i, rid in enumerate(ids):
            if incoming.energy == incoming.filled:
                keep.extend(ids[i:])
                break
            r = s.order(rid)
            assert r is not None, "a level names an order that does not exist"
            if not counterparty_ok(incoming, r):
                keep.append(rid)
                continue
            qty = min(incoming.remaining, r.remaining)
            p = continuous_price(mp, incoming, r)
            if incoming.side == BUY:
                incoming, r = s.settle(mp, bk, incoming, inc_id, r, rid, qty, p)
            else:
                r, incoming = s.settle(mp, bk, r, rid, incoming, inc_id, qty, p)
            if r.remaining == 0:
                s.close(bk, r, rid, FILLED, resting=True)
            else:
                s.put_order(rid, r)
                keep.append(rid)
        if len(keep) != len(ids):
            s.set_level(bk, opp, price, Ids(keep))
    return incoming


def _side_orders(s: Session, bk: bytes, side: str) -> list[tuple[bytes, Order]]:
    out = []
    for price in s.prices(bk, side):
        for oid in s.level(bk, side, price):
            o = s.order(oid)
            assert o is not None, "a level names an order that does not exist"
            out.append((oid, o))
    return out


def clearing_price(bids: list[tuple[bytes, Order]], asks: list[tuple[bytes, Order]]) -> int | None:
    """The uniform price: among all limit prices, the one that maximises the
    executable volume min(demand, supply); ties go to the smallest imbalance
    |demand - supply|; remaining ties to the midpoint (rounded down) of the
    lowest and highest tied prices, which executes the same volume (demand
    is non-increasing and supply non-decreasing in price). None if no bid
    meets an ask."""
    bid_vol: dict[int, int] = defaultdict(int)
    ask_vol: dict[int, int] = defaultdict(int)
    for _, o in bids:
        bid_vol[o.price] += o.remaining
    for _, o in asks:
        ask_vol[o.price] += o.remaining
    prices = sorted(set(bid_vol) | set(ask_vol))
    demand = sum(bid_vol.values())  # bids at or above the lowest price: all of them
    supply = 0
    best: tuple[int, int] | None = None
    tied: list[int] = []
    for p in prices:
        supply += ask_vol.get(p, 0)  # asks at or below p
        volume = min(demand, supply)
        if volume > 0:
            score = (volume, -abs(demand - supply))
            if best is None or score > best:
                best, tied = score, [p]
            elif score == best:
                tied.append(p)
        demand -= bid_vol.get(p, 0)  # bids at exactly p drop out above p
    if not tied:
        return None
    return (tied[0] + tied[-1]) // 2


def auction(s: Session, mp: MarketParams, bk: bytes) -> None:
    """Clear every crossing order of the book at one price (pay-as-clear).
    Bids take asks in priority order, skipping self-trades and source
    mismatches; orders with a limit worse than the price do not trade."""
    bids = _side_orders(s, bk, BUY)
    asks = _side_orders(s, bk, SELL)
    if not bids or not asks:
        return
    price = clearing_price(bids, asks)
    if price is None:
        return
    live = [(aid, a) for aid, a in asks if a.price <= price]
    for bid_id, bid in bids:
        if bid.price < price:
            break
        for j, (aid, ask) in enumerate(live):
            if ask.remaining == 0 or not counterparty_ok(bid, ask):
                continue
            qty = min(bid.remaining, ask.remaining)
            bid, ask = s.settle(mp, bk, bid, bid_id, ask, aid, qty, price)
            live[j] = (aid, ask)
            if bid.remaining == 0:
                break
        s.put_order(bid_id, bid)
    for aid, ask in live:
        s.put_order(aid, ask)


def close_book(s: Session, bk: bytes) -> None:
    """Gate closure: every order still in the book is done; the unfilled part
    expires and its escrow and capacity come back."""
    for side in (BUY, SELL):
        sb = SIDE_BYTE[side]
        for price in s.prices(bk, side):
            for oid in s.level(bk, side, price):
                o = s.order(oid)
                assert o is not None
                s.close(bk, o, oid, EXPIRED if o.remaining else FILLED, resting=True)
            s.view.put((LVL_NS, bk + sb + u64(price)), None)
        s.view.put((PX_NS, bk + sb), None)
    s.put_book(bk, s.book(bk)._replace(closed=True))
