"""The uniform-price call auction a ``uniform`` market runs at gate closure.

Every crossing order clears at one price (pay-as-clear). The rule for the
price and its tie-breaks is in ``clearing_price``; who trades with whom is
``plan``: bids best first take asks best first, skipping pairs that cannot
trade (a named source, the same owner). The pairing is greedy in priority
order, not a maximum matching: an ``any`` bid may take the only solar
supply a later solar bid wanted; priority decides, as in continuous trading.
"""

from __future__ import annotations

from powernode.engines.market.book import ANY_SOURCE, BUY, SELL, OrderBook, Resting

# At most this many prices are tried (those with the highest bound), so a
# book that cannot trade costs a bounded amount of work at its gate.
MAX_TRIED = 64


def curve(book: OrderBook) -> list[tuple[int, int, int]]:
    """(price, bound, |demand - supply|) at every limit price. Demand = bids
    at or above the price, supply = asks at or below it; bound = an upper
    bound of what can execute there: min(demand, supply), and per source s
    at most min(supply of s, demand for s + demand for any)."""
    bid_vol: dict[int, dict[str, int]] = {}
    ask_vol: dict[int, dict[str, int]] = {}
    for side, vols, px in ((BUY, bid_vol, book.head.bid_px), (SELL, ask_vol, book.head.ask_px)):
        for p in px:
            v = vols[p] = {}
            for r in book.level_orders(side, p):
                v[r.source] = v.get(r.source, 0) + r.remaining
    demand: dict[str, int] = {}  # per source, bids at or above the price: all at first
    for v in bid_vol.values():
        for s, e in v.items():
            demand[s] = demand.get(s, 0) + e
    supply: dict[str, int] = {}
    out = []
    for p in sorted(set(bid_vol) | set(ask_vol)):
        for s, e in ask_vol.get(p, {}).items():
            supply[s] = supply.get(s, 0) + e
        total_d, total_s = sum(demand.values()), sum(supply.values())
        any_d = demand.get(ANY_SOURCE, 0)
        by_source = sum(min(e, demand.get(s, 0) + any_d) for s, e in supply.items())
        out.append((p, min(total_d, total_s, by_source), abs(total_d - total_s)))
        for s, e in bid_vol.get(p, {}).items():
            demand[s] -= e  # bids at exactly p drop out above p
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
    Prices are tried in falling order of their bound (``curve``), lowest
    price first among equal bounds, stopping when the bound falls below the
    best found or after MAX_TRIED prices."""
    best, cands = 0, []
    ranked = sorted(curve(book), key=lambda c: (-c[1], c[0]))
    for p, bound, imbalance in ranked[:MAX_TRIED]:
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
