"""Read-only market queries over a state (the chain's tip), JSON-ready.

Pure functions: the node's RPC calls them with its tip state. Lookups by key
are direct; listings (a participant's orders, trades by filter) scan the
records of their own namespace only (``StateListing.namespace``), so they
cost what the market holds, not the size of the whole state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from powernode.core.execution import StateListing
from powernode.core.params import ChainParams
from powernode.engines.accounts import get_account
from powernode.engines.market.book import BUY, SELL, BookHead, OrderBook
from powernode.engines.market.params import PRODUCTS, markets
from powernode.engines.market.records import (
    BOOK_NS,
    META_NS,
    OPEN,
    ORDER_NS,
    PART_NS,
    POS_NS,
    SIDE_CODE,
    TRADE_NS,
    Meta,
    Order,
    Participant,
    Position,
    Trade,
    book_key,
    u64,
)
from powernode.engines.market.session import StateLevels

_META_KEY = (META_NS, b"")


# A state that can be read by key and list a namespace (MemoryState).
ScanState = StateListing


def _meta(state: ScanState) -> Meta:
    m: Meta | None = state.get(_META_KEY)
    return Meta() if m is None else m


def market_time(state: ScanState) -> int:
    return _meta(state).clock


def escrow_total(state: ScanState) -> int:
    """Money held in escrow by open buy orders, market-wide."""
    return _meta(state).escrow


def settlement_escrow_total(state: ScanState) -> int:
    """Money held for confirmed trades until their slot settles, market-wide."""
    return _meta(state).settle_escrow


def held_total(state: ScanState) -> int:
    """Every micro-unit the market holds: order escrow plus settlement escrow
    (balances plus this are conserved)."""
    m = _meta(state)
    return m.escrow + m.settle_escrow


def participant(state: ScanState, addr: bytes) -> dict[str, Any] | None:
    p: Participant | None = state.get((PART_NS, addr))
    if p is None:
        return None
    return {"address": addr.hex(), **p._asdict()}


def _live(state: ScanState, oid: bytes, o: Order) -> dict[str, Any]:
    """An order's record, with its live part from the book while it is open."""
    if o.status == OPEN:
        bk = book_key(o.product, o.slot)
        r = OrderBook(BookHead(), StateLevels(state, bk)).get(SIDE_CODE[o.side], o.price, oid)
        if r is not None:
            o = o._replace(filled=o.energy - r.remaining, escrow=r.escrow)
    return o.to_json(oid)


def order(state: ScanState, order_id: bytes) -> dict[str, Any] | None:
    o: Order | None = state.get((ORDER_NS, order_id))
    return None if o is None else _live(state, order_id, o)


def _records(state: ScanState, ns: str) -> Iterator[tuple[bytes, Any]]:
    """The records of one namespace: a listing costs that namespace only."""
    yield from state.namespace(ns).items()


def orders(
    state: ScanState, owner: bytes | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    """Orders (of ``owner``, in ``status``) in chain order."""
    found = [
        (o.seq, oid, o)
        for oid, o in _records(state, ORDER_NS)
        if (owner is None or o.owner == owner) and (status is None or o.status == status)
    ]
    found.sort()
    return [_live(state, oid, o) for _, oid, o in found]


def book(
    state: ScanState,
    product: str,
    slot: int,
    levels: int | None = None,
    *,
    params: ChainParams | None = None,
) -> dict[str, Any]:
    """Depth per price level (the seed's get_market_depth), best first; with
    the chain's ``params``, also the gate closure time."""
    bk = book_key(product, slot)
    head: BookHead | None = state.get((BOOK_NS, bk))
    b = OrderBook(BookHead() if head is None else head, StateLevels(state, bk))

    def side(code: int) -> list[dict[str, int]]:
        return [{"price": p, "energy": e, "orders": n} for p, e, n in b.depth(code, levels)]

    return {
        "product": product,
        "slot": slot,
        "gate": None if params is None else markets(params)[product].gate_time(slot),
        "closed": b.closed,
        "bids": side(BUY),
        "asks": side(SELL),
        "open_orders": len(b),
    }


def trades(
    state: ScanState,
    *,
    product: str | None = None,
    slot: int | None = None,
    participant: bytes | None = None,
    from_height: int | None = None,
    to_height: int | None = None,
    limit: int | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Trades matching every filter given, oldest first (the last ``limit``)."""
    found: list[Trade] = []
    for _, t in _records(state, TRADE_NS):
        if status is not None and t.status != status:
            continue
        if product is not None and t.product != product:
            continue
        if slot is not None and t.slot != slot:
            continue
        if participant is not None and participant not in (t.buyer, t.seller):
            continue
        if from_height is not None and t.height < from_height:
            continue
        if to_height is not None and t.height > to_height:
            continue
        found.append(t)
    found.sort()
    if limit is not None:
        found = found[-limit:] if limit else []
    return [t.to_json() for t in found]


def trade(state: ScanState, seq: int) -> dict[str, Any] | None:
    t: Trade | None = state.get((TRADE_NS, u64(seq)))
    return None if t is None else t.to_json()


def position(state: ScanState, addr: bytes) -> dict[str, Any]:
    """A participant's energy position and money (the seed's get_balance with
    power and money), from state counters, not a scan: Wh bought and sold
    (matched), of those received / not received (as buyer) and delivered /
    undelivered (as seller) once settled, still to settle (confirmed), and
    its balance, order escrow and settlement escrow."""
    p: Position | None = state.get((POS_NS, addr))
    p = Position() if p is None else p
    out: dict[str, Any] = {"address": addr.hex(), "balance": get_account(state, addr).balance}
    out.update(p._asdict())
    out["pending_bought_wh"] = p.bought_wh - p.received_wh - p.not_received_wh
    out["pending_sold_wh"] = p.sold_wh - p.delivered_wh - p.undelivered_wh
    return out


def _stats(
    trades: int, volume: int, value: int, lo: int, hi: int, open_orders: int
) -> dict[str, Any]:
    return {
        "trades": trades,
        "volume_wh": volume,
        "value": value,
        # volume-weighted average in micro-units per kWh, rounded down
        "avg_price": value * 1000 // volume if volume else None,
        "min_price": lo if trades else None,
        "max_price": hi if trades else None,
        "open_orders": open_orders,
    }


def stats(state: ScanState, product: str | None = None, slot: int | None = None) -> dict[str, Any]:
    """The seed's get_market_statistics: market-wide, per product or per book."""
    if product is None and slot is None:
        m = _meta(state)
        return _stats(m.trades, m.volume_wh, m.value, m.min_price, m.max_price, m.open_orders)
    totals = [0, 0, 0, 0, 0, 0]  # trades, volume, value, min, max, open
    for bk, b in _records(state, BOOK_NS):
        if product is not None and bk[0] != PRODUCTS.index(product):
            continue
        if slot is not None and int.from_bytes(bk[1:9], "big") != slot:
            continue
        if b.trades:
            totals[3] = b.min_price if totals[0] == 0 else min(totals[3], b.min_price)
            totals[4] = max(totals[4], b.max_price)
        totals[0] += b.trades
        totals[1] += b.volume
        totals[2] += b.value
        totals[5] += b.count
    return _stats(*totals)


SlotIndex = dict[str, list[int]]


def slot_index(state: ScanState) -> SlotIndex:
    """Each product's slots whose book has resting orders or trades, newest
    first: one pass over the state, which a caller keeps for as long as the
    state does not change (``slots`` then reads ``limit`` books only)."""
    found: SlotIndex = {product: [] for product in PRODUCTS}
    for bk, b in _records(state, BOOK_NS):
        if b.count or b.trades:
            found[PRODUCTS[bk[0]]].append(int.from_bytes(bk[1:9], "big"))
    for listed in found.values():
        listed.sort(reverse=True)
    return found


def slots(
    state: ScanState,
    product: str,
    limit: int,
    *,
    params: ChainParams,
    index: SlotIndex | None = None,
) -> list[dict[str, Any]]:
    """A product's slots whose book has resting orders or trades, newest slot
    first, at most ``limit``: each slot's gate, whether it closed, and its
    statistics (as ``stats`` per slot gives them). ``index``: ``slot_index``
    of this same state, so only ``limit`` books are read."""
    if index is None:
        index = slot_index(state)
    market = markets(params)[product]
    out = []
    for slot in index[product][:limit]:
        b: BookHead | None = state.get((BOOK_NS, book_key(product, slot)))
        if b is None:  # an index of another state: not a slot of this one
            continue
        st = _stats(b.trades, b.volume, b.value, b.min_price, b.max_price, b.count)
        out.append({"slot": slot, "gate": market.gate_time(slot), "closed": b.closed, **st})
    return out
