"""Market state access for one tx or one block's clearing work.

A ``Session`` reads and writes the market's records through the journaled
state view, keeps the market-wide counters in a ``Counters`` record until
``flush`` writes them once as ``Meta``, and owns the money rules: every movement of funds
between balances, escrow and fees is here.

Books are state values that are mutated in place, so a session copies a
book on its first write in a view (copy-on-write, owner checked through a
weak reference to the view). The parent state's book is never touched: a
template, a failed block and a reorg's undo all see it as it was. Handlers
do every check that can fail before they write a book, so reverting a failed
tx never has to undo an in-place change.

Rounding, in integers throughout:
- trade value = price (micro/kWh) x energy (Wh) // 1000, rounded down; the
  buyer pays exactly what the seller is credited before fees, so the sub-micro
  remainder is never charged to anyone and no money is created;
- fees = value x bps // 10000, rounded down;
- a buy order escrows cost(limit, energy) + fee on it. Because each fill is at
  a price <= the limit and floor(a) + floor(b) <= floor(a + b), the fills of an
  order can never need more than its escrow; what is left is refunded.
- a fill moves its value and buyer fee from the order's escrow to the
  settlement escrow; the seller is paid (and the fees charged) only when the
  slot settles against meter readings (engines/settlement).
"""

from __future__ import annotations

import weakref
from bisect import bisect_left, insort
from collections.abc import Callable
from functools import partial
from typing import Any

from powernode.core.errors import InsufficientFunds
from powernode.core.execution import Event, ExecContext, StateAccess, StateRead
from powernode.engines.accounts import credit, debit
from powernode.engines.market.book import BookHead, Level, OrderBook, Resting
from powernode.engines.market.params import MarketParams, markets
from powernode.engines.market.records import (
    BOOK_NS,
    CAP_NS,
    DUE_NS,
    DUEIDX_NS,
    FILLED,
    LVL_NS,
    META_NS,
    ORDER_NS,
    PART_NS,
    POS_NS,
    SIDE_BYTE,
    STLQ_NS,
    STLS_NS,
    STLT_NS,
    TRADE_NS,
    Counters,
    Ids,
    Ints,
    Meta,
    Order,
    Participant,
    Position,
    Trade,
    level_key,
    u64,
)

META_KEY = (META_NS, b"")
U64_MAX = 2**64 - 1
_DUEIDX_KEY = (DUEIDX_NS, b"")
STLQ_KEY = (STLQ_NS, b"")
_new_pos = partial(tuple.__new__, Position)
_ZERO_POS = Position()


def position(view: StateRead, addr: bytes) -> Position:
    p: Position | None = view.get((POS_NS, addr))
    return _ZERO_POS if p is None else p


def put_position(view: StateAccess, addr: bytes, p: Position) -> None:
    view.put((POS_NS, addr), None if p == _ZERO_POS else p)


def add_order_escrow(view: StateAccess, addr: bytes, delta: int) -> None:
    p = position(view, addr)
    put_position(view, addr, _new_pos((*p[:6], p[6] + delta, p[7])))


def unsettled_key(slot: int, seller: bytes) -> bytes:
    return u64(slot) + seller


def pending_slots(view: StateRead) -> Ints:
    q: Ints | None = view.get(STLQ_KEY)
    return Ints() if q is None else q


def pending_sellers(view: StateRead, slot: int) -> Ids:
    s: Ids | None = view.get((STLS_NS, u64(slot)))
    return Ids() if s is None else s


def unsettled(view: StateRead, slot: int, seller: bytes) -> Ints:
    t: Ints | None = view.get((STLT_NS, unsettled_key(slot, seller)))
    return Ints() if t is None else t


def _add_unsettled(view: StateAccess, slot: int, seller: bytes, seq: int) -> None:
    """Index a new trade for the settlement of (seller, slot): trade seqs
    grow, so appending keeps each list ascending."""
    key = (STLT_NS, unsettled_key(slot, seller))
    seqs: Ints | None = view.get(key)
    if seqs is not None:
        view.put(key, Ints((*seqs, seq)))
        return
    view.put(key, Ints((seq,)))
    skey = (STLS_NS, u64(slot))
    sellers: Ids | None = view.get(skey)
    if sellers is None:
        q = list(pending_slots(view))
        insort(q, slot)
        view.put(STLQ_KEY, Ints(q))
        view.put(skey, Ids((seller,)))
        return
    lst = list(sellers)
    insort(lst, seller)
    view.put(skey, Ids(lst))


def owned(view: StateAccess, key: tuple[str, bytes], new: Callable[[], Any]) -> Any:
    """The value at ``key``, private to ``view``: copied (or made) on the
    view's first write. The owner is the view, not a session, so every tx of
    a block shares the one copy; a weak reference, so the copy does not keep
    the view alive once it is in the chain's state."""
    v = view.get(key)
    if v is not None and v.owner is not None and v.owner() is view:
        return v
    v = new() if v is None else v.copy()
    v.owner = weakref.ref(view)
    view.put(key, v)
    return v


class StateLevels:
    """A book's levels as state values (``mkt.lvl``), for ``OrderBook``."""

    __slots__ = ("bk", "view")

    def __init__(self, view: Any, bk: bytes) -> None:
        self.view = view  # a StateAccess, or any state with ``get`` for reads
        self.bk = bk

    def get(self, side: int, price: int) -> Level | None:
        lvl: Level | None = self.view.get((LVL_NS, level_key(self.bk, side, price)))
        return lvl

    def get_w(self, side: int, price: int) -> Level:
        lvl: Level = owned(self.view, (LVL_NS, level_key(self.bk, side, price)), Level)
        return lvl

    def drop(self, side: int, price: int) -> None:
        self.view.put((LVL_NS, level_key(self.bk, side, price)), None)


def trade_value(price: int, energy: int) -> int:
    return price * energy // 1000


def fee_on(value: int, bps: int) -> int:
    return value * bps // 10_000


def buy_escrow(mp: MarketParams, price: int, energy: int) -> int:
    """Everything a buy order can ever pay: its cost at the limit plus the fee."""
    value = trade_value(price, energy)
    return value + fee_on(value, mp.buyer_fee_bps)


class Session:
    __slots__ = ("c", "ctx", "events", "markets", "meta", "view")

    def __init__(self, view: StateAccess, ctx: ExecContext) -> None:
        self.view = view
        self.ctx = ctx
        self.markets = markets(ctx.params)
        meta: Meta | None = view.get(META_KEY)
        self.meta = Meta() if meta is None else meta
        self.c = Counters(self.meta)  # edited by name until flush
        self.events: list[Event] = []

    @property
    def now(self) -> int:
        """Market time: block timestamps may step back (median-time-past rule),
        the market's clock never does."""
        clock = self.c.clock
        return clock if clock > self.ctx.timestamp else self.ctx.timestamp

    def flush(self) -> None:
        # Any write of the meta also moves the clock to this block's time,
        # so the first order's block already fixes the market time.
        self.c.clock = self.now
        meta = self.c.freeze()
        if meta != self.meta:
            self.view.put(META_KEY, meta)

    # --- records -------------------------------------------------------------

    def participant(self, addr: bytes) -> Participant | None:
        p: Participant | None = self.view.get((PART_NS, addr))
        return p

    def order(self, order_id: bytes) -> Order | None:
        o: Order | None = self.view.get((ORDER_NS, order_id))
        return o

    def put_order(self, order_id: bytes, order: Order) -> None:
        self.view.put((ORDER_NS, order_id), order)

    def book(self, bk: bytes) -> OrderBook | None:
        """The book to read (never write) or None if no order ever came."""
        head: BookHead | None = self.view.get((BOOK_NS, bk))
        return None if head is None else OrderBook(head, StateLevels(self.view, bk))

    def book_for_write(self, bk: bytes) -> OrderBook:
        """The book with a head private to this view; its levels become
        private as the book writes them (``StateLevels.get_w``)."""
        head = owned(self.view, (BOOK_NS, bk), BookHead)
        return OrderBook(head, StateLevels(self.view, bk))

    # --- capacity ------------------------------------------------------------

    def committed(self, addr: bytes, side: str, slot: int) -> int:
        c: Ints | None = self.view.get((CAP_NS, addr + SIDE_BYTE[side] + u64(slot)))
        return 0 if c is None else c[0]

    def set_committed(self, addr: bytes, side: str, slot: int, total: int) -> None:
        key = (CAP_NS, addr + SIDE_BYTE[side] + u64(slot))
        self.view.put(key, Ints((total,)) if total else None)

    def commit(self, addr: bytes, side: str, slot: int, delta: int) -> None:
        key = (CAP_NS, addr + SIDE_BYTE[side] + u64(slot))
        c: Ints | None = self.view.get(key)
        total = (0 if c is None else c[0]) + delta
        self.view.put(key, Ints((total,)) if total else None)

    # --- money ---------------------------------------------------------------

    def take_escrow(self, addr: bytes, amount: int) -> None:
        if amount:
            debit(self.view, addr, amount)
            add_order_escrow(self.view, addr, amount)
            self.c.escrow += amount

    def release_escrow(self, addr: bytes, amount: int) -> None:
        if amount:
            credit(self.view, addr, amount)
            add_order_escrow(self.view, addr, -amount)
            self.c.escrow -= amount

    def settle(
        self,
        mp: MarketParams,
        book: OrderBook,
        slot: int,
        buy: Resting,
        sell: Resting,
        energy: int,
        price: int,
    ) -> None:
        """Record the trade of ``energy`` at ``price`` as ``confirmed``: its
        value and buyer fee move from the buy order's escrow to the
        settlement escrow, and it joins the (seller, slot) index the
        settlement works from. Nobody is paid yet. The book already took the
        energy off both orders."""
        value = trade_value(price, energy)
        bfee = fee_on(value, mp.buyer_fee_bps)
        sfee = fee_on(value, mp.seller_fee_bps)
        held = value + bfee
        if buy.escrow < held:  # unreachable by the escrow rule above
            raise InsufficientFunds("market: escrow short of a fill")
        buy.escrow -= held
        view = self.view
        c = self.c
        seq = c.trade_seq
        view.put(
            (TRADE_NS, u64(seq)),
            Trade(
                seq, self.ctx.height, self.now, mp.product, slot, buy.oid, sell.oid,
                buy.owner, sell.owner, energy, price, value, bfee, sfee,
            ),
        )  # fmt: skip
        _add_unsettled(view, slot, sell.owner, seq)
        p = position(view, buy.owner)
        put_position(
            view,
            buy.owner,
            _new_pos((p[0] + energy, *p[1:6], p[6] - held, p[7] + held)),
        )
        p = position(view, sell.owner)
        put_position(view, sell.owner, _new_pos((p[0], p[1] + energy, *p[2:])))
        c.trade_seq = seq + 1
        c.escrow -= held
        c.settle_escrow += held
        if c.trades == 0 or price < c.min_price:
            c.min_price = price
        if price > c.max_price:
            c.max_price = price
        # Running totals saturate at the encoding's 64-bit limit rather than
        # make every later block unencodable (reached only after ~10^7 trades
        # of the whole money supply; statistics, not balances).
        c.trades = min(c.trades + 1, U64_MAX)
        c.volume_wh = min(c.volume_wh + energy, U64_MAX)
        c.value = min(c.value + value, U64_MAX)
        book.record_trade(energy, price, value)
        self.events.append(
            {"event": "trade", "trade": seq, "buy": buy.oid, "sell": sell.oid,
             "energy": energy, "price": price, "value": value}
        )  # fmt: skip

    def close(self, r: Resting, status: str, *, resting: bool) -> None:
        """Finish an order: refund its escrow, give back the capacity it did
        not use, and rewrite its record with the final state. The caller has
        taken it out of its book (or never put it there)."""
        rec = self.order(r.oid)
        assert rec is not None, "an order in a book has a record"
        if r.escrow:
            self.release_escrow(r.owner, r.escrow)
        if r.remaining:
            self.commit(r.owner, rec.side, rec.slot, -r.remaining)
        if resting:
            self.c.open_orders -= 1
        self.put_order(
            r.oid, rec._replace(filled=rec.energy - r.remaining, escrow=0, status=status)
        )
        if r.escrow or status != FILLED:
            self.events.append({"event": "order_" + status, "order": r.oid, "refund": r.escrow})
        r.escrow = 0

    # --- scheduled work ------------------------------------------------------

    def schedule(self, when: int, entry: bytes) -> None:
        key = (DUE_NS, u64(when))
        due: Ids | None = self.view.get(key)
        if due is None:
            idx: Ints | None = self.view.get(_DUEIDX_KEY)
            times = list(idx or ())
            times.insert(bisect_left(times, when), when)
            self.view.put(_DUEIDX_KEY, Ints(times))
            due = Ids()
        self.view.put(key, Ids((*due, entry)))

    def due_times(self) -> Ints:
        idx: Ints | None = self.view.get(_DUEIDX_KEY)
        return Ints() if idx is None else idx

    def take_due(self, when: int) -> Ids:
        """The work due at ``when``, removed from the schedule."""
        key = (DUE_NS, u64(when))
        due: Ids | None = self.view.get(key)
        self.view.put(key, None)
        times = [t for t in self.due_times() if t != when]
        self.view.put(_DUEIDX_KEY, Ints(times) if times else None)
        return Ids() if due is None else due
