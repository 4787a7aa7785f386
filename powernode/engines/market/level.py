"""What rests in a book: an order's live part (``Resting``) and the queue of
orders at one price (``Level``), which is also a state value of its own
(``mkt.lvl``), copied on its first write in a block like the book's head.
"""

from __future__ import annotations

from collections import deque
from typing import Any

BUY = 0
SELL = 1
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
        return Resting(*self.to_obj())


class Level:
    """The orders at one price, oldest first. Orders leave lazily: a cancel
    marks the entry dead (O(1)) and matching drops dead entries as it meets
    them, so neither a cancel nor a fill shifts the queue; ``live`` counts
    the orders really there, ``ids`` finds them. Counts per source and per
    owner let matching pass over a level none of whose orders it could
    trade with, instead of walking it order by order."""

    __slots__ = ("by_owner", "by_source", "ids", "live", "owner", "q")

    def __init__(self) -> None:
        self.q: deque[Resting] = deque()
        self.ids: dict[bytes, Resting] = {}
        self.live = 0
        self.by_source: dict[str, int] = {}
        self.by_owner: dict[bytes, int] = {}
        self.owner: Any = None  # who may write it in place (see session.py)

    def append(self, r: Resting) -> None:
        self.q.append(r)
        self.ids[r.oid] = r
        self.live += 1
        self.by_source[r.source] = self.by_source.get(r.source, 0) + 1
        self.by_owner[r.owner] = self.by_owner.get(r.owner, 0) + 1

    def leave(self, r: Resting) -> None:
        """``r`` is no longer in the level (cancelled, expired or filled)."""
        r.dead = True
        del self.ids[r.oid]
        self.live -= 1
        n = self.by_source[r.source] - 1
        if n:
            self.by_source[r.source] = n
        else:
            del self.by_source[r.source]
        n = self.by_owner[r.owner] - 1
        if n:
            self.by_owner[r.owner] = n
        else:
            del self.by_owner[r.owner]

    def could_trade(self, inc: Resting) -> bool:
        """False if no order here can trade with ``inc`` (all its own, or
        none of a source it can take)."""
        if self.by_owner.get(inc.owner, 0) == self.live:
            return False
        if inc.side == BUY:
            return inc.source == ANY_SOURCE or inc.source in self.by_source
        return inc.source in self.by_source or ANY_SOURCE in self.by_source

    def copy(self) -> Level:
        new = Level()
        for r in self.q:
            if not r.dead:
                new.append(r.copy())
        return new

    def to_obj(self) -> list[Any]:
        return [r.to_obj() for r in self.q if not r.dead]

    @classmethod
    def from_obj(cls, obj: Any) -> Level:
        new = cls()
        for o in obj:
            new.append(Resting(*o))
        return new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.to_obj() == other.to_obj()

    __hash__ = None  # type: ignore[assignment]

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
