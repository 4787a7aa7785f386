"""One order book (a product's delivery slot): the matching engine proper.

Pure and in memory: price levels as FIFO queues, best prices in sorted lists,
an index by order id. It knows nothing of money or state; the market session
(``session.py``) settles the fills it returns and stores the book as one
state value, copied on its first write in a block (so the parent state, a
block template and a reorg's undo never see a half-applied book).

Priority: price, then time (``seq``, the order's position in the chain),
and as sequence numbers are unique, never the order id in practice.
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from typing import Any

BUY = 0
SELL = 1
MIDPOINT = 0
MAKER = 1
ANY_SOURCE = "any"


class Resting:
    """An order's live part while it rests in a book."""

    __slots__ = ("dead", "escrow", "oid", "owner", "price", "remaining", "seq", "side", "source")

    def __init__(
        self,
        oid: bytes,
        owner: bytes,
        side: int,
        price: int,
        remaining: int,
        source: str,
        seq: int,
        escrow: int,
    ) -> None:
        self.oid = oid
        self.owner = owner
        self.side = side
        self.price = price
        self.remaining = remaining
        self.source = source
        self.seq = seq
        self.escrow = escrow  # micro-units still held (buys)
        self.dead = False  # left the book; its queue entry is skipped, then dropped

    def to_obj(self) -> list[Any]:
        return [
            self.oid,
            self.owner,
            self.side,
            self.price,
            self.remaining,
            self.source,
            self.seq,
            self.escrow,
        ]

    def copy(self) -> Resting:
        return Resting(
            self.oid,
            self.owner,
            self.side,
            self.price,
            self.remaining,
            self.source,
            self.seq,
            self.escrow,
        )


# (resting order, energy, price)
Fill = tuple[Resting, int, int]


class Level:
    """The orders at one price, oldest first. Orders leave lazily: a cancel
    marks the entry dead (O(1)) and matching drops dead entries as it meets
    them, so neither a cancel nor a fill shifts the queue; ``live`` counts
    the orders really there."""

    __slots__ = ("live", "q")

    def __init__(self) -> None:
        self.q: deque[Resting] = deque()
        self.live = 0

    def orders(self) -> list[Resting]:
        return [r for r in self.q if not r.dead]

    def energy(self) -> int:
        return sum(r.remaining for r in self.q if not r.dead)

    def drop_dead_head(self) -> None:
        q = self.q
        while q and q[0].dead:
            q.popleft()
        if len(q) > 2 * self.live + 16:  # mostly dead entries: compact
            self.q = deque(r for r in q if not r.dead)


def compatible(a: Resting, b: Resting) -> bool:
    """Self-trades are skipped; a buy for a named source only meets sells of it."""
    if a.owner == b.owner:
        return False
    buy_source = a.source if a.side == BUY else b.source
    return buy_source == ANY_SOURCE or a.source == b.source


class OrderBook:
    __slots__ = (
        "ask_px",
        "asks",
        "bid_px",
        "bids",
        "closed",
        "index",
        "max_price",
        "min_price",
        "owner",
        "trades",
        "value",
        "volume",
    )

    def __init__(self) -> None:
        self.bids: dict[int, Level] = {}
        self.asks: dict[int, Level] = {}
        self.bid_px: list[int] = []  # ascending: the best bid is last
        self.ask_px: list[int] = []  # ascending: the best ask is first
        self.index: dict[bytes, Resting] = {}
        self.closed = False  # the gate has closed
        # statistics of the book's trades
        self.trades = 0
        self.volume = 0
        self.value = 0
        self.min_price = 0
        self.max_price = 0
        self.owner: Any = None  # who may write it in place (see session.py)

    # --- resting orders --------------------------------------------------------

    def add(self, r: Resting) -> None:
        """Rest ``r`` behind every order at its price."""
        levels, px = (self.bids, self.bid_px) if r.side == BUY else (self.asks, self.ask_px)
        lvl = levels.get(r.price)
        if lvl is None:
            lvl = levels[r.price] = Level()
            insort(px, r.price)
        lvl.q.append(r)
        lvl.live += 1
        self.index[r.oid] = r

    def remove(self, oid: bytes) -> Resting:
        """Take an order out (a cancel or an expiry); KeyError if not here."""
        r = self.index.pop(oid)
        r.dead = True
        levels, px = (self.bids, self.bid_px) if r.side == BUY else (self.asks, self.ask_px)
        lvl = levels[r.price]
        lvl.live -= 1
        if lvl.live == 0:
            del levels[r.price]
            px.remove(r.price)
        else:
            lvl.drop_dead_head()
        return r

    def get(self, oid: bytes) -> Resting | None:
        return self.index.get(oid)

    def __len__(self) -> int:
        return len(self.index)

    # --- continuous matching ---------------------------------------------------

    def match(self, inc: Resting, rule: int) -> list[Fill]:
        """Fill ``inc`` against the other side while prices cross. Both sides'
        ``remaining`` are reduced; resting orders filled completely leave the
        book (and come back in the fills with remaining 0). Trade price:
        MAKER = the resting order's limit; MIDPOINT = (bid + ask) // 2,
        rounded down, so the buyer is never charged above the midpoint."""
        buy = inc.side == BUY
        levels, px = (self.asks, self.ask_px) if buy else (self.bids, self.bid_px)
        fills: list[Fill] = []
        limit = inc.price
        owner = inc.owner
        source = inc.source
        index = self.index
        # Walk the other side best first, by position: asks up from the
        # front, bids down from the back; an emptied level is deleted in place.
        i = 0 if buy else len(px) - 1
        while 0 <= i < len(px):
            price = px[i]
            if (price > limit) if buy else (price < limit):
                break
            lvl = levels[price]
            tp = price if rule == MAKER else (limit + price) // 2
            for r in lvl.q:
                if r.dead or r.owner == owner:
                    continue
                if not ((source if buy else r.source) == ANY_SOURCE or r.source == source):
                    continue
                qty = inc.remaining if inc.remaining < r.remaining else r.remaining
                r.remaining -= qty
                inc.remaining -= qty
                fills.append((r, qty, tp))
                if r.remaining == 0:
                    r.dead = True
                    del index[r.oid]
                    lvl.live -= 1
                if inc.remaining == 0:
                    break
            if lvl.live == 0:
                del levels[price]
                del px[i]
                if not buy:
                    i -= 1
            else:
                lvl.drop_dead_head()
                i += 1 if buy else -1
            if inc.remaining == 0:
                break
        return fills

    def fillable(self, inc: Resting) -> int:
        """How much of ``inc`` the book could fill now (fill-or-kill), capped
        at what it asks for."""
        buy = inc.side == BUY
        levels, px = (self.asks, self.ask_px) if buy else (self.bids, self.bid_px[::-1])
        got = 0
        for price in px:
            if (price > inc.price) if buy else (price < inc.price):
                break
            for r in levels[price].q:
                if not r.dead and compatible(inc, r):
                    got += r.remaining
                    if got >= inc.remaining:
                        return inc.remaining
        return got

    # --- call auction ------------------------------------------------------------

    def _curve(self) -> list[tuple[int, int, int]]:
        """(price, min(demand, supply), |demand - supply|) at every limit
        price, from the aggregate curves: demand = bids at or above the
        price, supply = asks at or below it."""
        bid_vol: dict[int, int] = {p: lvl.energy() for p, lvl in self.bids.items()}
        ask_vol: dict[int, int] = {p: lvl.energy() for p, lvl in self.asks.items()}
        demand = sum(bid_vol.values())  # bids at or above the lowest price: all
        supply = 0
        out = []
        for p in sorted(set(bid_vol) | set(ask_vol)):
            supply += ask_vol.get(p, 0)
            out.append((p, min(demand, supply), abs(demand - supply)))
            demand -= bid_vol.get(p, 0)  # bids at exactly p drop out above p
        return out

    def _plan(self, price: int) -> list[tuple[Resting, Resting, int]]:
        """Who trades with whom at ``price``, without changing the book: bids
        with a limit at or above it, best first, each take the asks at or
        below it in priority order, skipping its own and other sources."""
        bids = [r for p in reversed(self.bid_px) if p >= price for r in self.bids[p].orders()]
        asks = [r for p in self.ask_px if p <= price for r in self.asks[p].orders()]
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

    def clearing_price(self) -> int | None:
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
        for p, bound, imbalance in sorted(self._curve(), key=lambda c: (-c[1], c[0])):
            if bound == 0 or bound < best:
                break
            volume = sum(q for _, _, q in self._plan(p))
            if volume > best:
                best, cands = volume, [(p, imbalance)]
            elif volume == best and volume:
                cands.append((p, imbalance))
        if best == 0:
            return None
        least = min(imbalance for _, imbalance in cands)
        tied = sorted(p for p, imbalance in cands if imbalance == least)
        mid = (tied[0] + tied[-1]) // 2
        if mid != tied[0] and sum(q for _, _, q in self._plan(mid)) == best:
            return mid
        return tied[0]

    def auction(self) -> tuple[int, list[tuple[Resting, Resting, int]]]:
        """Clear every crossing order at one price (pay-as-clear), as
        ``_plan`` pairs them; orders with a limit worse than the price do not
        trade. Returns the price and the (bid, ask, energy) fills; the orders
        stay in the book (the gate closure that runs this drains it next)."""
        price = self.clearing_price()
        if price is None:
            return 0, []
        fills = self._plan(price)
        for bid, ask, qty in fills:
            bid.remaining -= qty
            ask.remaining -= qty
        return price, fills

    def drain(self) -> list[Resting]:
        """Empty the book: every resting order, bids best first then asks."""
        out = self.orders()
        for r in out:
            r.dead = True
        self.bids.clear()
        self.asks.clear()
        self.bid_px.clear()
        self.ask_px.clear()
        self.index.clear()
        return out

    # --- views -------------------------------------------------------------------

    def orders(self) -> list[Resting]:
        """Every resting order in priority order: bids best first, then asks."""
        out = [r for p in reversed(self.bid_px) for r in self.bids[p].orders()]
        out.extend(r for p in self.ask_px for r in self.asks[p].orders())
        return out

    def depth(self, side: int, levels: int | None = None) -> list[tuple[int, int, int]]:
        """(price, energy, order count) per level, best first."""
        book, px = (self.bids, self.bid_px[::-1]) if side == BUY else (self.asks, self.ask_px)
        if levels is not None:
            px = px[:levels]
        return [(p, book[p].energy(), book[p].live) for p in px]

    def record_trade(self, energy: int, price: int, value: int) -> None:
        self.min_price = price if self.trades == 0 else min(self.min_price, price)
        self.max_price = max(self.max_price, price)
        self.trades += 1
        self.volume += energy
        self.value += value

    # --- state value -------------------------------------------------------------

    def copy(self) -> OrderBook:
        b = OrderBook.__new__(OrderBook)
        b.index = {}
        b.bids = {}
        b.asks = {}
        for src, dst in ((self.bids, b.bids), (self.asks, b.asks)):
            for p, lvl in src.items():
                new = dst[p] = Level()
                new.q.extend(r.copy() for r in lvl.q if not r.dead)
                new.live = len(new.q)
                for r in new.q:
                    b.index[r.oid] = r
        b.bid_px = self.bid_px.copy()
        b.ask_px = self.ask_px.copy()
        b.closed = self.closed
        b.trades, b.volume, b.value = self.trades, self.volume, self.value
        b.min_price, b.max_price = self.min_price, self.max_price
        b.owner = None
        return b

    def to_obj(self) -> list[Any]:
        return [
            self.closed,
            [self.trades, self.volume, self.value, self.min_price, self.max_price],
            [r.to_obj() for r in self.orders()],
        ]

    @classmethod
    def from_obj(cls, obj: Any) -> OrderBook:
        closed, stats, orders = obj
        b = cls()
        b.closed = bool(closed)
        b.trades, b.volume, b.value, b.min_price, b.max_price = stats
        for o in orders:
            b.add(Resting(*o))
        return b

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OrderBook):
            return NotImplemented
        return self.to_obj() == other.to_obj()

    __hash__ = None  # type: ignore[assignment]
