"""Market state access for one tx or one block's clearing work.

A ``Session`` reads and writes the market's records through the journaled
state view (so a failed tx, a template and a reorg undo all come for free),
keeps the market meta record in hand until ``flush``, and owns the money
rules: every movement of funds between balances, escrow and fees is here.

Rounding, in integers throughout:
- trade value = price (micro/kWh) x energy (Wh) // 1000, rounded down; the
  buyer pays exactly what the seller is credited before fees, so the sub-micro
  remainder is never charged to anyone and no money is created;
- fees = value x bps // 10000, rounded down, paid to the block's miner;
- a buy order escrows cost(limit, energy) + fee on it. Because each fill is at
  a price <= the limit and floor(a) + floor(b) <= floor(a + b), the fills of an
  order can never need more than its escrow; what is left is refunded.
"""

from __future__ import annotations

from bisect import bisect_left

from powernode.core.errors import InsufficientFunds
from powernode.core.execution import Event, ExecContext, StateAccess
from powernode.engines.accounts import credit, debit
from powernode.engines.market.params import MarketParams, parse_markets
from powernode.engines.market.records import (
    BOOK_NS,
    BUY,
    CAP_NS,
    DUE_NS,
    DUEIDX_NS,
    FILLED,
    LVL_NS,
    META_NS,
    ORDER_NS,
    PART_NS,
    PX_NS,
    SELL,
    SIDE_BYTE,
    TRADE_NS,
    Book,
    Ids,
    Ints,
    Meta,
    Order,
    Participant,
    Trade,
    u64,
)

META_KEY = (META_NS, b"")
_DUEIDX_KEY = (DUEIDX_NS, b"")
_EMPTY_BOOK = Book()


def trade_value(price: int, energy: int) -> int:
    return price * energy // 1000


def fee_on(value: int, bps: int) -> int:
    return value * bps // 10_000


def buy_escrow(mp: MarketParams, price: int, energy: int) -> int:
    """Everything a buy order can ever pay: its cost at the limit plus the fee."""
    value = trade_value(price, energy)
    return value + fee_on(value, mp.buyer_fee_bps)


class Session:
    __slots__ = ("_meta0", "ctx", "events", "markets", "meta", "view")

    def __init__(self, view: StateAccess, ctx: ExecContext) -> None:
        self.view = view
        self.ctx = ctx
        self.markets = parse_markets(ctx.params.markets)
        meta = view.get(META_KEY)
        self.meta: Meta = Meta() if meta is None else meta
        self._meta0 = self.meta
        self.events: list[Event] = []

    @property
    def now(self) -> int:
        """Market time: block timestamps may step back (median-time-past rule),
        the market's clock never does."""
        return max(self.meta.clock, self.ctx.timestamp)

    def flush(self) -> None:
        if self.meta is not self._meta0:
            self.view.put(META_KEY, self.meta)

    # --- records -------------------------------------------------------------

    def participant(self, addr: bytes) -> Participant | None:
        p: Participant | None = self.view.get((PART_NS, addr))
        return p

    def order(self, order_id: bytes) -> Order | None:
        o: Order | None = self.view.get((ORDER_NS, order_id))
        return o

    def put_order(self, order_id: bytes, order: Order) -> None:
        self.view.put((ORDER_NS, order_id), order)

    def book(self, bk: bytes) -> Book:
        b: Book | None = self.view.get((BOOK_NS, bk))
        return _EMPTY_BOOK if b is None else b

    def put_book(self, bk: bytes, book: Book) -> None:
        self.view.put((BOOK_NS, bk), book)

    def add_open(self, bk: bytes, delta: int) -> None:
        b = self.book(bk)
        self.put_book(bk, b._replace(totals=b.totals.with_open(delta)))
        self.meta = self.meta._replace(totals=self.meta.totals.with_open(delta))

    # --- price levels --------------------------------------------------------

    def prices(self, bk: bytes, side: str) -> Ints:
        """Price levels of one side, best first (bids high to low, asks low to high)."""
        px: Ints | None = self.view.get((PX_NS, bk + SIDE_BYTE[side]))
        return Ints() if px is None else px

    def level(self, bk: bytes, side: str, price: int) -> Ids:
        ids: Ids | None = self.view.get((LVL_NS, bk + SIDE_BYTE[side] + u64(price)))
        return Ids() if ids is None else ids

    def set_level(self, bk: bytes, side: str, price: int, ids: Ids) -> None:
        """Write a level; an emptied level also leaves the side's price list."""
        sb = SIDE_BYTE[side]
        self.view.put((LVL_NS, bk + sb + u64(price)), ids or None)
        if not ids:
            px = list(self.prices(bk, side))
            px.remove(price)
            self.view.put((PX_NS, bk + sb), Ints(px) if px else None)

    def rest(self, bk: bytes, side: str, price: int, order_id: bytes) -> None:
        """Append an order to its level, behind everything already there."""
        sb = SIDE_BYTE[side]
        key = (LVL_NS, bk + sb + u64(price))
        ids: Ids | None = self.view.get(key)
        if ids:
            self.view.put(key, Ids((*ids, order_id)))
            return
        self.view.put(key, Ids((order_id,)))
        px = list(self.prices(bk, side))
        # bids sort high to low: bisect on the negated price
        pos = bisect_left(px, -price, key=lambda p: -p) if side == BUY else bisect_left(px, price)
        px.insert(pos, price)
        self.view.put((PX_NS, bk + sb), Ints(px))

    def unrest(self, bk: bytes, order: Order, order_id: bytes) -> None:
        ids = self.level(bk, order.side, order.price)
        self.set_level(bk, order.side, order.price, Ids(i for i in ids if i != order_id))

    # --- capacity ------------------------------------------------------------

    def committed(self, addr: bytes, side: str, slot: int) -> int:
        c: Ints | None = self.view.get((CAP_NS, addr + SIDE_BYTE[side] + u64(slot)))
        return 0 if c is None else c[0]

    def commit(self, addr: bytes, side: str, slot: int, delta: int) -> None:
        total = self.committed(addr, side, slot) + delta
        self.view.put(
            (CAP_NS, addr + SIDE_BYTE[side] + u64(slot)), Ints((total,)) if total else None
        )

    # --- money ---------------------------------------------------------------

    def take_escrow(self, addr: bytes, amount: int) -> None:
        if amount:
            debit(self.view, addr, amount)
            self.meta = self.meta._replace(escrow=self.meta.escrow + amount)

    def release_escrow(self, addr: bytes, amount: int) -> None:
        if amount:
            credit(self.view, addr, amount)
            self.meta = self.meta._replace(escrow=self.meta.escrow - amount)

    def settle(
        self,
        mp: MarketParams,
        bk: bytes,
        buy: Order,
        buy_id: bytes,
        sell: Order,
        sell_id: bytes,
        energy: int,
        price: int,
    ) -> tuple[Order, Order]:
        """Trade ``energy`` at ``price`` from escrow; returns both orders updated
        (not yet written) and records the trade."""
        value = trade_value(price, energy)
        bfee = fee_on(value, mp.buyer_fee_bps)
        sfee = fee_on(value, mp.seller_fee_bps)
        if buy.escrow < value + bfee:  # unreachable by the escrow rule above
            raise InsufficientFunds("market: escrow short of a fill")
        credit(self.view, sell.owner, value - sfee)
        if bfee + sfee:
            credit(self.view, self.ctx.miner, bfee + sfee)
        m = self.meta
        trade = Trade(
            m.trade_seq,
            self.ctx.height,
            self.now,
            mp.product,
            buy.slot,
            buy_id,
            sell_id,
            buy.owner,
            sell.owner,
            energy,
            price,
            value,
            bfee,
            sfee,
        )
        self.view.put((TRADE_NS, u64(m.trade_seq)), trade)
        self.meta = m._replace(
            trade_seq=m.trade_seq + 1,
            escrow=m.escrow - value - bfee,
            totals=m.totals.with_trade(energy, price, value),
        )
        b = self.book(bk)
        self.put_book(bk, b._replace(totals=b.totals.with_trade(energy, price, value)))
        self.events.append(
            {
                "event": "trade",
                "trade": m.trade_seq,
                "buy": buy_id,
                "sell": sell_id,
                "energy": energy,
                "price": price,
                "value": value,
            }
        )
        buy = buy._replace(filled=buy.filled + energy, escrow=buy.escrow - value - bfee)
        sell = sell._replace(filled=sell.filled + energy)
        return buy, sell

    def close(
        self, bk: bytes, order: Order, order_id: bytes, status: str, *, resting: bool
    ) -> Order:
        """Finish an order: refund its escrow, give back the capacity it did
        not use, and write it with its final status. The caller takes a
        resting order out of its level."""
        if order.escrow:
            self.release_escrow(order.owner, order.escrow)
        if order.remaining:
            self.commit(order.owner, order.side, order.slot, -order.remaining)
        if resting:
            self.add_open(bk, -1)
        done = order._replace(escrow=0, status=status)
        self.put_order(order_id, done)
        if order.escrow or status != FILLED:
            self.events.append(
                {"event": "order_" + status, "order": order_id, "refund": order.escrow}
            )
        return done

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


def counterparty_ok(incoming: Order, resting: Order) -> bool:
    """Self-trades are skipped; a buy for a named source only meets sells of it."""
    if incoming.owner == resting.owner:
        return False
    buy, sell = (incoming, resting) if incoming.side == BUY else (resting, incoming)
    return buy.source == "any" or buy.source == sell.source


def crosses(incoming: Order, level_price: int) -> bool:
    if incoming.side == BUY:
        return level_price <= incoming.price
    return level_price >= incoming.price


def opposite(side: str) -> str:
    return SELL if side == BUY else BUY
