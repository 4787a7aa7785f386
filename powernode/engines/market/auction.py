"""The uniform-price call auction a ``uniform`` market runs at gate closure.

Every crossing order clears at one price (pay-as-clear). The rule for the
price and its tie-breaks is in ``clearing_price``; who trades with whom is
``plan``: bids best first take asks best first, skipping pairs that cannot
trade (a named source, the same owner).
"""

from __future__ import annotations

from powernode.engines.market.book import ANY_SOURCE, BUY, SELL, OrderBook, Resting


def curve(book: OrderBook) -> list[tuple[int, int, int]]:
    """(price, min(demand, supply), |demand - supply|) at every limit
    price, from the aggregate curves: demand = bids at or above the
    price, supply = asks at or below it."""
    bid_vol = {p: sum(r.remaining for r in book.level_orders(BUY, p)) for p in book.head.bid_px}
    ask_vol = {p: sum(r.remaining for r in book.level_orders(SELL, p)) for p in book.head.ask_px}
    demand = sum(bid_vol.values())  # bids at or above the lowest price: all
    supply = 0
    out = []
    for p in sorted(set(bid_vol) | set(ask_vol)):
        supply += ask_vol.get(p, 0)
        out.append((p, min(demand, supply), abs(demand - supply)))
        demand -= bid_vol.get(p, 0)  # bids at exactly p drop out above p
    return out


def plan(book: OrderBook, price: int) -> list[tuple[Resting, Resting, int]]:
    """Who trades with whom at ``price``, without changing the book: bids
    with a limit at or above it, best first, each take the asks at or
    below it in priority order, skipping its own and other sources."""
    h = book.head
    bids = [r for p in reversed(h.bid_px) if p >= price for r in book.level_orders(BUY, p)]
    asks = [r for p in h.ask_px if p <= price for r in book.level_orders(SELL, p)]
    by_source: dict[str, list[Resting]] = {}
    for a in asks:
        by_source.setdefault(a.source, []).append(a)
    left = {a.oid: a.remaining for a in asks}
    first: dict[str, int] = {}  # per list, where asks with energy left start
    fills: list[tuple[Resting, Resting, int]] = []
    for bid in bids:
        lst = asks if bid.source == ANY_SOURCE else by_source.get(bid.source, [])
        i = first.get(bid.source, 0)
        while i < len(lst) and left[lst[i].oid] == 0:
            i += 1
        first[bid.source] = i
        need = bid.remaining
        while need and i < len(lst):
            a = lst[i]
            i += 1
            have = left[a.oid]
            if have == 0 or a.owner == bid.owner:
                continue
            qty = need if need < have else have
            left[a.oid] = have - qty
            need -= qty
            fills.append((bid, a, qty))
    return fills


def clearing_price(book: OrderBook) -> int | None:
    """The uniform price, or None if nothing can trade. Rule:
    1. the price that executes the most energy, counting only pairs that
       can trade (sources, no self-trades) among the orders whose limit
       the price meets;
    2. ties: the smallest imbalance |demand - supply| of the aggregate
       curves at that price;
    3. still tied: the midpoint (rounded down) of the lowest and highest
       tied prices if it executes as much, else the lowest tied price.
    Prices are tried in falling order of aggregate volume, which bounds
    what can execute, so the search stops early."""
    best, cands = 0, []
    for p, bound, imbalance in sorted(curve(book), key=lambda c: (-c[1], c[0])):
        if bound == 0 or bound < best:
            break
        volume = sum(q for _, _, q in plan(book, p))
        if volume > best:
            best, cands = volume, [(p, imbalance)]
        elif volume == best and volume:
            cands.append((p, imbalance))
    if best == 0:
        return None
    least = min(imbalance for _, imbalance in cands)
    tied = sorted(p for p, imbalance in cands if imbalance == least)
    mid = (tied[0] + tied[-1]) // 2
    if mid != tied[0] and sum(q for _, _, q in plan(book, mid)) == best:
        return mid
    return tied[0]


def auction(book: OrderBook) -> tuple[int, list[tuple[Resting, Resting, int]]]:
    """Clear every crossing order at one price (pay-as-clear), as
    ``plan`` pairs them; orders with a limit worse than the price do not
    trade. Returns the price and the (bid, ask, energy) fills; the orders
    stay in the book (the gate closure that runs this drains it next)."""
    price = clearing_price(book)
    if price is None:
        return 0, []
    book.own_all()
    fills = plan(book, price)
    for bid, ask, qty in fills:
        bid.remaining -= qty
        ask.remaining -= qty
    return price, fills
