"""The market's tx types: ``participant.register``, ``order.place``, ``order.cancel``.

Payloads (msgpack arrays, in this order):

    participant.register  [role, location, capacity_w]
    order.place           [product, side, slot, energy_wh, price, source, expiry, tif]
    order.cancel          [order_id]

role: producer | consumer | prosumer; product: spot | forward | reserve;
side: buy | sell; source: solar | wind | hydro | thermal, or any (buys only);
slot: unix start of the delivery slot; price: micro-units per kWh; expiry: 0
for none, else a whole minute (unix seconds); tif: GTC | IOC | FOK. An order's
id is the txid that placed it.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from powernode.core.errors import (
    BadExpiry,
    BadPayload,
    CapacityExceeded,
    GateClosed,
    MarketClosed,
    NotOrderOwner,
    NotRegistered,
    OrderAboveMax,
    OrderBelowMin,
    OrderNotFound,
    OrderNotOpen,
    PriceOffTick,
    PriceOutOfRange,
    SlotNotAligned,
    SlotOutOfRange,
    TifNotSupported,
    UnknownMarket,
    WrongRole,
)
from powernode.core.execution import Event, ExecContext, StateAccess
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.engines.accounts import ACCOUNT_NS
from powernode.engines.market.book import OrderBook, Resting
from powernode.engines.market.level import ANY_SOURCE
from powernode.engines.market.matching import match_incoming
from powernode.engines.market.params import PRODUCTS, MarketParams, markets
from powernode.engines.market.records import (
    BUY,
    CANCELLED,
    KILLED,
    OPEN,
    PART_NS,
    ROLES,
    SELL,
    SIDE_CODE,
    SIDES,
    SOURCES,
    TIFS,
    Order,
    Participant,
    book_key,
)
from powernode.engines.market.session import Session, buy_escrow

_MAX_U64 = 2**64 - 1
MAX_CAPACITY_W = 10**12  # 1 TW: far above any single participant


def _uint(v: Any, what: str) -> int:
    if type(v) is not int or not 0 <= v <= _MAX_U64:
        raise BadPayload(f"{what}: expected an unsigned integer")
    return v


def _choice(v: Any, what: str, allowed: tuple[str, ...]) -> str:
    if type(v) is not str or v not in allowed:
        raise BadPayload(f"{what}: expected one of {list(allowed)}, got {v!r}")
    return v


class RegisterPayload(NamedTuple):
    role: str
    location: str
    capacity_w: int


class RegisterHandler:
    tx_type = "participant.register"

    def decode(self, payload: list[Any]) -> RegisterPayload:
        if len(payload) != 3:
            raise BadPayload("participant.register payload is [role, location, capacity_w]")
        role, location, capacity = payload
        _choice(role, "role", ROLES)
        if type(location) is not str or not 1 <= len(location) <= 64:
            raise BadPayload("location: expected 1..64 characters")
        if type(capacity) is not int or not 1 <= capacity <= MAX_CAPACITY_W:
            raise BadPayload(f"capacity_w: expected an integer in 1..{MAX_CAPACITY_W}")
        return RegisterPayload(role, location, capacity)

    precheck = None  # registration has no admission rule beyond its payload

    def max_debit(self, payload: RegisterPayload, params: ChainParams) -> int:
        return 0

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: RegisterPayload
    ) -> list[Event]:
        # Re-registration updates role, location and capacity; orders already
        # resting keep what they committed, new orders see the new capacity.
        s = Session(view, ctx)
        old = s.participant(tx.sender_address)
        since = ctx.height if old is None else old.registered_height
        view.put(
            (PART_NS, tx.sender_address),
            Participant(payload.role, payload.location, payload.capacity_w, since),
        )
        return [
            {
                "event": "registered" if old is None else "reregistered",
                "participant": tx.sender_address,
                "role": payload.role,
                "location": payload.location,
                "capacity_w": payload.capacity_w,
            }
        ]


class PlacePayload(NamedTuple):
    product: str
    side: str
    slot: int
    energy: int
    price: int
    source: str
    expiry: int
    tif: str


def settled(view: StateAccess, tx: Transaction) -> bool:
    """True if no earlier tx of the sender can still be pending: then the
    sender's own market records (registration, capacity, orders) at the tip
    are what the tx will meet, and admission can judge them. Otherwise an
    earlier pending tx (say a registration) may change them, and only the
    block decides (a failed receipt, fee charged)."""
    acct = view.get((ACCOUNT_NS, tx.sender_address))
    return tx.nonce == (0 if acct is None else acct.nonce)


class OrderCheck(NamedTuple):
    """What checking an order looked up, so placing it does not again."""

    mp: MarketParams
    bk: bytes
    book: OrderBook | None
    committed: int  # Wh the owner already has on this side of the slot


def check_order(
    s: Session, owner: bytes, p: PlacePayload, *, own_records: bool = True
) -> OrderCheck:
    """Every rule an order must meet before it touches the book, in the order
    of the codes' documentation; funds are checked when escrow is taken.
    ``own_records=False`` skips the rules on the owner's registration and
    capacity (see ``settled``)."""
    mp = s.markets[p.product]
    part = s.participant(owner)
    if own_records:
        if part is None:
            raise NotRegistered("register as a participant before trading")
        if p.side == SELL and not part.can_sell:
            raise WrongRole(f"a {part.role} may not sell")
        if p.side == BUY and not part.can_buy:
            raise WrongRole(f"a {part.role} may not buy")
    if p.energy < mp.min_order_wh:
        raise OrderBelowMin(f"order of {p.energy} Wh is below the minimum {mp.min_order_wh} Wh")
    if p.energy > mp.max_order_wh:
        raise OrderAboveMax(f"order of {p.energy} Wh is above the maximum {mp.max_order_wh} Wh")
    if p.price % mp.price_tick:
        raise PriceOffTick(f"price {p.price} is not a multiple of the tick {mp.price_tick}")
    if not mp.min_price <= p.price <= mp.max_price:
        raise PriceOutOfRange(f"price {p.price} outside {mp.min_price}..{mp.max_price}")
    if p.slot % mp.slot_seconds:
        raise SlotNotAligned(f"slot {p.slot} is not aligned to {mp.slot_seconds} s")
    now = s.now
    gate = mp.gate_time(p.slot)
    bk = book_key(p.product, p.slot)
    book = s.book(bk)
    if now >= gate or (book is not None and book.closed):
        raise GateClosed(f"gate for slot {p.slot} closed at {gate} (market time {now})")
    lead = p.slot - now
    if not mp.min_lead_seconds <= lead <= mp.max_lead_seconds:
        raise SlotOutOfRange(
            f"{p.product} trades slots {mp.min_lead_seconds}..{mp.max_lead_seconds} s ahead; "
            f"slot {p.slot} is {lead} s ahead"
        )
    if not mp.is_open(now):
        raise MarketClosed(
            f"{p.product} trades {mp.open_hour}:00-{mp.close_hour}:00 (UTC{mp.utc_offset_seconds:+d} s)"
        )
    if p.tif != "GTC" and not mp.continuous:
        raise TifNotSupported(f"{p.tif} needs continuous matching; {p.product} clears by auction")
    if p.expiry and (p.expiry % 60 or p.expiry <= now):
        raise BadExpiry("expiry must be a whole minute (unix seconds) after the market time")
    if part is None or not own_records:
        return OrderCheck(mp, bk, book, 0)
    cap = mp.slot_capacity_wh(part.capacity_w)
    committed = s.committed(owner, p.side, p.slot)
    if committed + p.energy > cap:
        raise CapacityExceeded(
            f"{p.side} of {p.energy} Wh would take slot {p.slot} to {committed + p.energy} Wh; "
            f"capacity {part.capacity_w} W x {mp.slot_seconds} s = {cap} Wh"
        )
    return OrderCheck(mp, bk, book, committed)


class PlaceHandler:
    tx_type = "order.place"

    def decode(self, payload: list[Any]) -> PlacePayload:
        if len(payload) != 8:
            raise BadPayload(
                "order.place payload is [product, side, slot, energy_wh, price, source, expiry, tif]"
            )
        product, side, slot, energy, price, source, expiry, tif = payload
        if type(product) is not str or product not in PRODUCTS:
            raise UnknownMarket(f"unknown product {product!r}, known {list(PRODUCTS)}")
        _choice(side, "side", SIDES)
        _choice(source, "source", (*SOURCES, ANY_SOURCE) if side == BUY else SOURCES)
        _choice(tif, "tif", TIFS)
        return PlacePayload(
            product,
            side,
            _uint(slot, "slot"),
            _uint(energy, "energy_wh"),
            _uint(price, "price"),
            source,
            _uint(expiry, "expiry"),
            tif,
        )

    def max_debit(self, payload: PlacePayload, params: ChainParams) -> int:
        if payload.side != BUY:
            return 0
        mp = markets(params)[payload.product]
        return buy_escrow(mp, payload.price, payload.energy)

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: PlacePayload
    ) -> None:
        s = Session(view, ctx)
        check_order(s, tx.sender_address, payload, own_records=settled(view, tx))

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: PlacePayload
    ) -> list[Event]:
        s = Session(view, ctx)
        owner = tx.sender_address
        mp, bk, book, committed = check_order(s, owner, p)
        oid = tx.txid
        escrow = buy_escrow(mp, p.price, p.energy) if p.side == BUY else 0
        seq = s.c.order_seq
        s.c.order_seq = seq + 1
        inc = Resting(oid, owner, SIDE_CODE[p.side], p.price, p.energy, p.source, seq, escrow)
        s.events.append(
            {"event": "order_placed", "order": oid, "side": p.side, "energy": p.energy,
             "price": p.price, "escrow": escrow}
        )  # fmt: skip
        record = Order(
            owner, p.product, p.side, p.slot, p.energy, p.price, p.source, p.expiry, p.tif,
            seq, ctx.height, 0, escrow, OPEN,
        )  # fmt: skip
        if p.tif == "FOK" and (book is None or book.fillable(inc) < p.energy):
            s.put_order(oid, record._replace(escrow=0, status=KILLED))
            s.events.append({"event": "order_killed", "order": oid, "refund": 0})
            s.flush()
            return s.events
        # The last check that can fail; the book is written only after it.
        s.take_escrow(owner, escrow)
        s.set_committed(owner, p.side, p.slot, committed + p.energy)
        s.put_order(oid, record)
        if book is None:
            s.schedule(mp.gate_time(p.slot), b"g" + bk)
        book = s.book_for_write(bk)
        if match_incoming(s, mp, book, p.slot, inc, p.tif):
            book.add(inc)
            s.c.open_orders += 1
            if inc.remaining != p.energy:
                s.put_order(oid, record._replace(filled=p.energy - inc.remaining))
            # An expiry at the gate is scheduled too: due work runs expiries
            # first, so such an order stays out of the gate's auction.
            if p.expiry and p.expiry <= mp.gate_time(p.slot):
                s.schedule(p.expiry, b"x" + oid)
        s.flush()
        return s.events


class CancelPayload(NamedTuple):
    order_id: bytes


def _check_cancel(
    s: Session, owner: bytes, order_id: bytes, *, own_records: bool = True
) -> Order | None:
    order = s.order(order_id)
    if order is None and not own_records:
        return None  # may be placed by an earlier tx still pending
    if order is None:
        raise OrderNotFound(f"no order {order_id.hex()}")
    if order.owner != owner:
        raise NotOrderOwner("only the order's owner may cancel it")
    if order.status != OPEN:
        raise OrderNotOpen(f"order is {order.status}")
    return order


class CancelHandler:
    tx_type = "order.cancel"

    def decode(self, payload: list[Any]) -> CancelPayload:
        if len(payload) != 1 or type(payload[0]) is not bytes or len(payload[0]) != 32:
            raise BadPayload("order.cancel payload is [order_id (32 bytes)]")
        return CancelPayload(payload[0])

    def max_debit(self, payload: CancelPayload, params: ChainParams) -> int:
        return 0

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: CancelPayload
    ) -> None:
        s = Session(view, ctx)
        _check_cancel(s, tx.sender_address, payload.order_id, own_records=settled(view, tx))

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: CancelPayload
    ) -> list[Event]:
        s = Session(view, ctx)
        oid = payload.order_id
        order = _check_cancel(s, tx.sender_address, oid)
        assert order is not None
        book = s.book_for_write(book_key(order.product, order.slot))
        s.close(book.remove(SIDE_CODE[order.side], order.price, oid), CANCELLED, resting=True)
        s.flush()
        return s.events
