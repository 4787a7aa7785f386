"""The market's slice of state: record types and the keys they live under.

Namespaces (key bytes after the namespace):

    mkt.meta   b""                          Meta: market clock, counters, totals
    mkt.part   address                      Participant
    mkt.order  order id (the placing txid)  Order as placed, rewritten when it closes;
                                            while open, its live part is in the book
    mkt.book   book key                     BookHead: price levels, size, trade totals
    mkt.lvl    book key + side + price      Level: the resting orders at one price
    mkt.cap    address + side + slot        Ints((committed Wh,))
    mkt.trade  trade seq                    Trade (its settlement fields filled in when
                                            the settlement engine settles it)
    mkt.pos    address                      Position: a participant's energy and escrow
                                            counters (``market.position``)
    mkt.stlq   b""                          Ints: slots with trades pending settlement,
                                            ascending
    mkt.stls   u64(slot)                    Ids: sellers with unsettled trades in the
                                            slot, in address order
    mkt.stlt   u64(slot) + seller           Ints: that seller's unsettled trade seqs in
                                            the slot, ascending
    mkt.dueidx b""                          Ints: times with work due, ascending
    mkt.due    time                         Ids: b"x"+order id (expiry), b"g"+book key (gate)

book key = product index (1 byte) + slot start (8 bytes, big-endian), so keys
sort by product, then delivery time. Every record encodes as a msgpack array.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

from powernode.core import encoding
from powernode.engines.market import book
from powernode.engines.market.book import BookHead, Level
from powernode.engines.market.params import PRODUCTS

META_NS = "mkt.meta"
PART_NS = "mkt.part"
ORDER_NS = "mkt.order"
BOOK_NS = "mkt.book"
CAP_NS = "mkt.cap"
TRADE_NS = "mkt.trade"
POS_NS = "mkt.pos"
STLQ_NS = "mkt.stlq"
STLS_NS = "mkt.stls"
STLT_NS = "mkt.stlt"
LVL_NS = "mkt.lvl"
DUEIDX_NS = "mkt.dueidx"
DUE_NS = "mkt.due"

BUY = "buy"
SELL = "sell"
SIDES = (BUY, SELL)
SIDE_BYTE = {BUY: b"\x00", SELL: b"\x01"}
SIDE_CODE = {BUY: book.BUY, SELL: book.SELL}
ROLES = ("producer", "consumer", "prosumer")
SOURCES = ("solar", "wind", "hydro", "thermal")
TIFS = ("GTC", "IOC", "FOK")
# Order states: open rests in its book; the others are final.
OPEN, FILLED, CANCELLED, EXPIRED, KILLED = "open", "filled", "cancelled", "expired", "killed"
ORDER_STATUSES = (OPEN, FILLED, CANCELLED, EXPIRED, KILLED)
# Trade states: confirmed from the match until its slot settles, then final.
CONFIRMED, COMPLETED, PARTIAL, UNDELIVERED = "confirmed", "completed", "partial", "undelivered"
TRADE_STATUSES = (CONFIRMED, COMPLETED, PARTIAL, UNDELIVERED)


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def book_key(product: str, slot: int) -> bytes:
    return bytes((PRODUCTS.index(product),)) + u64(slot)


def level_key(bk: bytes, side: int, price: int) -> bytes:
    return bk + bytes((side,)) + u64(price)


def split_book_key(bk: bytes) -> tuple[str, int]:
    return PRODUCTS[bk[0]], int.from_bytes(bk[1:9], "big")


class Ints(tuple[int, ...]):
    """A tuple of integers stored as an array (price levels, due times, a count)."""

    __slots__ = ()

    def to_obj(self) -> list[int]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Ints:
        return cls(encoding.as_uint(x, "int") for x in encoding.as_list(obj, None, "ints"))


class Ids(tuple[bytes, ...]):
    """A tuple of byte strings stored as an array (order ids in a level, due work)."""

    __slots__ = ()

    def to_obj(self) -> list[bytes]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Ids:
        return cls(
            encoding.as_bytes(x, "id", max_size=64) for x in encoding.as_list(obj, None, "ids")
        )


class Participant(NamedTuple):
    role: str
    location: str
    capacity_w: int
    registered_height: int

    def to_obj(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Participant:
        f = encoding.as_list(obj, 4, "participant")
        return cls(f[0], f[1], f[2], f[3])

    @property
    def can_sell(self) -> bool:
        return self.role != "consumer"

    @property
    def can_buy(self) -> bool:
        return self.role != "producer"


class Order(NamedTuple):
    owner: bytes
    product: str
    side: str
    slot: int
    energy: int  # Wh ordered
    price: int  # limit, micro-units per kWh
    source: str
    expiry: int  # unix seconds, 0 = none
    tif: str
    seq: int  # position in the chain: the time priority
    height: int
    filled: int  # Wh traded so far
    escrow: int  # micro-units still held for a buy order
    status: str

    @property
    def remaining(self) -> int:
        return self.energy - self.filled

    def to_obj(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Order:
        return cls(*encoding.as_list(obj, 14, "order"))

    def to_json(self, order_id: bytes) -> dict[str, Any]:
        out = {"id": order_id.hex(), **self._asdict()}
        out["owner"] = self.owner.hex()
        out["remaining"] = self.remaining
        return out


class Trade(NamedTuple):
    seq: int
    height: int
    time: int  # market time of the block that made it
    product: str
    slot: int
    buy_id: bytes
    sell_id: bytes
    buyer: bytes
    seller: bytes
    energy: int
    price: int
    value: int  # price x energy // 1000: what the buyer pays if all is delivered
    # Fees: until settled, those due on full delivery (the buyer's is in the
    # settlement escrow); once settled, those charged (on the delivered part).
    buyer_fee: int
    seller_fee: int
    status: str = CONFIRMED
    delivered_wh: int = 0  # metered energy allocated to it at settlement
    paid: int = 0  # to the seller for the delivered energy, before its fee
    refunded: int = 0  # back to the buyer from the settlement escrow
    penalty: int = 0  # moved from the seller to the buyer (shortfall rule)
    bundled_wh: int = 0  # certificate energy moved to the buyer with it
    settled_height: int = 0  # 0 until settled

    @property
    def escrow(self) -> int:
        """What the settlement escrow holds for it: value and buyer fee until
        it settles, nothing after."""
        return self.value + self.buyer_fee if self.status == CONFIRMED else 0

    def to_obj(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Trade:
        return cls(*encoding.as_list(obj, 21, "trade"))

    def to_json(self) -> dict[str, Any]:
        out = {k: v.hex() if isinstance(v, bytes) else v for k, v in self._asdict().items()}
        out["escrow"] = self.escrow
        return out


class Position(NamedTuple):
    """A participant's energy and escrow counters, kept as trades match and
    settle (``market.position``): Wh bought and sold when matched; of what it
    bought, Wh received and not received; of what it sold, Wh delivered and
    not delivered (both at settlement); money held for its open buy orders
    and for its confirmed trades (as buyer)."""

    bought_wh: int = 0
    sold_wh: int = 0
    received_wh: int = 0
    not_received_wh: int = 0
    delivered_wh: int = 0
    undelivered_wh: int = 0
    order_escrow: int = 0
    settlement_escrow: int = 0

    def to_obj(self) -> list[int]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Position:
        return cls(*(encoding.as_uint(x, "position") for x in encoding.as_list(obj, 8, "position")))


class Meta(NamedTuple):
    """Market-wide counters and totals; one record, written once per tx."""

    clock: int = 0  # market time: the highest block timestamp seen
    order_seq: int = 0
    trade_seq: int = 0
    escrow: int = 0  # sum of every open buy order's escrow
    open_orders: int = 0
    trades: int = 0
    volume_wh: int = 0
    value: int = 0
    min_price: int = 0  # 0 until the first trade
    max_price: int = 0
    settle_escrow: int = 0  # value + buyer fee of every confirmed (unsettled) trade

    def to_obj(self) -> list[int]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Meta:
        return cls(*encoding.as_list(obj, 11, "market meta"))


class Counters:
    """``Meta``'s fields as a mutable record: a session edits them by name
    while it works and freezes them into a ``Meta`` when it flushes. (Plain
    slots filled by unpacking: a session is made for every market tx, and
    this builds in a third of a dataclass's time.)"""

    __slots__ = Meta._fields
    clock: int
    order_seq: int
    trade_seq: int
    escrow: int
    open_orders: int
    trades: int
    volume_wh: int
    value: int
    min_price: int
    max_price: int
    settle_escrow: int

    def __init__(self, meta: Meta) -> None:
        (
            self.clock, self.order_seq, self.trade_seq, self.escrow, self.open_orders,
            self.trades, self.volume_wh, self.value, self.min_price, self.max_price,
            self.settle_escrow,
        ) = meta  # fmt: skip

    def freeze(self) -> Meta:
        return _new_meta((
            self.clock, self.order_seq, self.trade_seq, self.escrow, self.open_orders,
            self.trades, self.volume_wh, self.value, self.min_price, self.max_price,
            self.settle_escrow,
        ))  # fmt: skip


# Meta(...) without the NamedTuple's Python __new__ (as accounts.new_account).
_new_meta = partial(tuple.__new__, Meta)


STATE_CODECS = {
    META_NS: Meta.from_obj,
    PART_NS: Participant.from_obj,
    ORDER_NS: Order.from_obj,
    BOOK_NS: BookHead.from_obj,
    LVL_NS: Level.from_obj,
    CAP_NS: Ints.from_obj,
    TRADE_NS: Trade.from_obj,
    POS_NS: Position.from_obj,
    STLQ_NS: Ints.from_obj,
    STLS_NS: Ids.from_obj,
    STLT_NS: Ints.from_obj,
    DUEIDX_NS: Ints.from_obj,
    DUE_NS: Ids.from_obj,
}
