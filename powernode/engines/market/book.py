"""One order book (a product's delivery slot): the matching engine proper.

Pure: price levels as FIFO queues, best prices in sorted lists. It knows
nothing of money; the market session (``session.py``) settles the fills it
returns. Storage is split so a block pays for what it touches, not for the
depth of the book: a small ``BookHead`` (price lists, counts, statistics)
and one ``Level`` per price are separate state values, each copied on its
first write in a block (so the parent state, a block template and a reorg's
undo never see a half-applied book). ``OrderBook`` is the engine over a
head and a ``LevelStore``: in memory (``MemoryLevels``) for the engine on its
own, the state view for the chain.

Priority: price, then time (``seq``, the order's position in the chain),
and as sequence numbers are unique, never the order id in practice.
"""

from __future__ import annotations

from bisect import insort
from typing import Any, Protocol

from powernode.engines.market.level import (
    ANY_SOURCE,
    BUY,
    SELL,
    Level,
    Resting,
    compatible,
)

MIDPOINT = 0
MAKER = 1
_U64_MAX = 2**64 - 1

# (resting order, energy, price)
Fill = tuple[Resting, int, int]


class BookHead:
    """What a book is apart from its levels: its prices, size, statistics and
    whether its gate has closed. Small, whatever the depth."""

    __slots__ = (
        "ask_px", "bid_px", "closed", "count", "max_price", "min_price", "owner",
        "trades", "value", "volume",
    )  # fmt: skip

    def __init__(self) -> None:
        self.bid_px: list[int] = []  # ascending: the best bid is last
        self.ask_px: list[int] = []  # ascending: the best ask is first
        self.count = 0  # resting orders
        self.closed = False  # the gate has closed
        self.trades = 0
        self.volume = 0
        self.value = 0
        self.min_price = 0
        self.max_price = 0
        self.owner: Any = None  # who may write it in place (see session.py)

    def copy(self) -> BookHead:
        new = BookHead()
        new.bid_px = self.bid_px.copy()
        new.ask_px = self.ask_px.copy()
        new.count, new.closed = self.count, self.closed
        new.trades, new.volume, new.value = self.trades, self.volume, self.value
        new.min_price, new.max_price = self.min_price, self.max_price
        return new

    def to_obj(self) -> list[Any]:
        return [
            self.closed,
            [self.trades, self.volume, self.value, self.min_price, self.max_price],
            self.count,
            self.bid_px,
            self.ask_px,
        ]

    @classmethod
    def from_obj(cls, obj: Any) -> BookHead:
        closed, stats, count, bid_px, ask_px = obj
        new = cls()
        new.closed = bool(closed)
        new.trades, new.volume, new.value, new.min_price, new.max_price = stats
        new.count = count
        new.bid_px = list(bid_px)
        new.ask_px = list(ask_px)
        return new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BookHead):
            return NotImplemented
        return self.to_obj() == other.to_obj()

    __hash__ = None  # type: ignore[assignment]


class LevelStore(Protocol):
    def get(self, side: int, price: int) -> Level | None:
        """The level to read, or None."""
        ...

    def get_w(self, side: int, price: int) -> Level:
        """The level to change in place (made if missing)."""
        ...

    def drop(self, side: int, price: int) -> None: ...


class MemoryLevels:
    """Levels in a dict: the engine on its own (benchmarks, tests)."""

    __slots__ = ("levels",)

    def __init__(self) -> None:
        self.levels: dict[tuple[int, int], Level] = {}

    def get(self, side: int, price: int) -> Level | None:
        return self.levels.get((side, price))

    def get_w(self, side: int, price: int) -> Level:
        lvl = self.levels.get((side, price))
        if lvl is None:
            lvl = self.levels[(side, price)] = Level()
        return lvl

    def drop(self, side: int, price: int) -> None:
        del self.levels[(side, price)]


class OrderBook:
    __slots__ = ("head", "levels")

    def __init__(self, head: BookHead | None = None, levels: LevelStore | None = None) -> None:
        self.head = BookHead() if head is None else head
        self.levels: LevelStore = MemoryLevels() if levels is None else levels

    @property
    def closed(self) -> bool:
        return self.head.closed

    def __len__(self) -> int:
        return self.head.count

    # --- resting orders --------------------------------------------------------

    def add(self, r: Resting) -> None:
        """Rest ``r`` behind every order at its price."""
        head = self.head
        lvl = self.levels.get(r.side, r.price)
        if lvl is None:
            insort(head.bid_px if r.side == BUY else head.ask_px, r.price)
        self.levels.get_w(r.side, r.price).append(r)
        head.count += 1

    def remove(self, side: int, price: int, oid: bytes) -> Resting:
        """Take an order out (a cancel or an expiry); KeyError if not here."""
        lvl = self.levels.get(side, price)
        if lvl is None or oid not in lvl.ids:
            raise KeyError(oid)
        lvl = self.levels.get_w(side, price)
        r = lvl.ids[oid]
        lvl.leave(r)
        self.head.count -= 1
        if lvl.live == 0:
            self.levels.drop(side, price)
            (self.head.bid_px if side == BUY else self.head.ask_px).remove(price)
        else:
            lvl.drop_dead_head()
        return r

    def get(self, side: int, price: int, oid: bytes) -> Resting | None:
        lvl = self.levels.get(side, price)
        return None if lvl is None else lvl.ids.get(oid)

    # --- continuous matching ---------------------------------------------------

    def match(self, inc: Resting, rule: int) -> list[Fill]:
        """Fill ``inc`` against the other side while prices cross. Both sides'
        ``remaining`` are reduced; resting orders filled completely leave the
        book (and come back in the fills with remaining 0). Trade price:
        MAKER = the resting order's limit; MIDPOINT = (bid + ask) // 2,
        rounded down, so the buyer is never charged above the midpoint."""
        buy = inc.side == BUY
        opp = SELL if buy else BUY
        px = self.head.ask_px if buy else self.head.bid_px
        fills: list[Fill] = []
        limit = inc.price
        owner = inc.owner
        source = inc.source
        levels = self.levels
        # Walk the other side best first, by position: asks up from the
        # front, bids down from the back; an emptied level is deleted in place.
        i = 0 if buy else len(px) - 1
        while 0 <= i < len(px):
            price = px[i]
            if (price > limit) if buy else (price < limit):
                break
            seen = levels.get(opp, price)
            if seen is not None and not seen.could_trade(inc):
                i += 1 if buy else -1
                continue
            lvl = levels.get_w(opp, price)
            tp = price if rule == MAKER else (limit + price) // 2
            filled = 0
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
                    lvl.leave(r)
                    filled += 1
                if inc.remaining == 0:
                    break
            self.head.count -= filled
            if lvl.live == 0:
                levels.drop(opp, price)
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
        opp = SELL if buy else BUY
        px = self.head.ask_px if buy else self.head.bid_px[::-1]
        got = 0
        for price in px:
            if (price > inc.price) if buy else (price < inc.price):
                break
            lvl = self.levels.get(opp, price)
            assert lvl is not None
            for r in lvl.q:
                if not r.dead and compatible(inc, r):
                    got += r.remaining
                    if got >= inc.remaining:
                        return inc.remaining
        return got

    # --- views -------------------------------------------------------------------

    def level_orders(self, side: int, price: int) -> list[Resting]:
        lvl = self.levels.get(side, price)
        return [] if lvl is None else lvl.orders()

    def orders(self) -> list[Resting]:
        """Every resting order in priority order: bids best first, then asks."""
        out = [r for p in reversed(self.head.bid_px) for r in self.level_orders(BUY, p)]
        out.extend(r for p in self.head.ask_px for r in self.level_orders(SELL, p))
        return out

    def depth(self, side: int, levels: int | None = None) -> list[tuple[int, int, int]]:
        """(price, energy, order count) per level, best first."""
        px = self.head.bid_px[::-1] if side == BUY else list(self.head.ask_px)
        if levels is not None:
            px = px[:levels]
        out = []
        for p in px:
            lvl = self.levels.get(side, p)
            assert lvl is not None
            out.append((p, lvl.energy(), lvl.live))
        return out

    def own_all(self) -> None:
        """Make every level writable before changing orders read through
        ``orders`` (a gate closure changes them all)."""
        for side, px in ((BUY, self.head.bid_px), (SELL, self.head.ask_px)):
            for p in px:
                self.levels.get_w(side, p)

    def drain(self) -> list[Resting]:
        """Empty the book: every resting order, bids best first then asks."""
        self.own_all()
        out = self.orders()
        for r in out:
            r.dead = True
        head = self.head
        for side, px in ((BUY, head.bid_px), (SELL, head.ask_px)):
            for p in px:
                self.levels.drop(side, p)
            px.clear()
        head.count = 0
        return out

    def record_trade(self, energy: int, price: int, value: int) -> None:
        h = self.head
        h.min_price = price if h.trades == 0 else min(h.min_price, price)
        h.max_price = max(h.max_price, price)
        # saturating: statistics must never make the state unencodable
        h.trades = min(h.trades + 1, _U64_MAX)
        h.volume = min(h.volume + energy, _U64_MAX)
        h.value = min(h.value + value, _U64_MAX)
