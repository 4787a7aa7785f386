"""What a push subscription asks for, and what a chain update tells it.

Pure: a topic is parsed from ``subscribe``'s params into a frozen filter,
and the notices of one chain update are built from the update itself (and,
for trades, the tip state), with no I/O and no clock. The WebSocket side
(rpc_ws.py) only routes these to its clients. README, "RPC", "Push
subscriptions", is the contract for every shape here.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from dataclasses import dataclass
from typing import Any

from powernode.chain.chain import ChainUpdate
from powernode.chain.index import IndexEntry
from powernode.core.block import Block
from powernode.core.crypto import parse_address
from powernode.core.errors import DecodeError, InvalidParams
from powernode.core.hextext import from_hex
from powernode.core.tx import Transaction
from powernode.engines.market import queries as market_queries
from powernode.engines.market.params import PRODUCTS
from powernode.engines.market.queries import ScanState
from powernode.engines.settlement.records import SLOT_NS as SETTLEMENT_NS
from powernode.state.apply import Receipt
from powernode.state.registry import ENGINES

TOPICS = ("tips", "tx", "trades", "events", "settlements", "mempool")
# The engine whose tx made a receipt (a meter reading's ``cert.issued`` is
# on ``metering``, as in the engine.block log lines).
ENGINE_OF: dict[str, str] = {h.tx_type: e.name for e in ENGINES for h in e.handlers}
ENGINE_NAMES = tuple(e.name for e in ENGINES if e.handlers)
# The longest list of event names one ``events`` subscription may give.
MAX_EVENT_NAMES = 64


@dataclass(frozen=True, slots=True)
class TipsTopic:
    """Every block that joins the main chain, and a reorg notice first when
    the chain switched branch."""


@dataclass(frozen=True, slots=True)
class TxTopic:
    """One tx's status as it changes."""

    txid: bytes


@dataclass(frozen=True, slots=True)
class TradesTopic:
    """Trades made by connected blocks; None matches any."""

    product: str | None
    participant: str | None  # lowercase hex address: the buyer or the seller


@dataclass(frozen=True, slots=True)
class EventsTopic:
    """Receipt events of connected blocks' txs; None matches any."""

    engine: str | None
    events: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class SettlementsTopic:
    """(slot, seller) settlements written by connected blocks; None: any seller."""

    seller: str | None  # lowercase hex address


@dataclass(frozen=True, slots=True)
class MempoolTopic:
    """Txs entering and leaving this node's mempool (the explorer's live list)."""


Topic = TipsTopic | TxTopic | TradesTopic | EventsTopic | SettlementsTopic | MempoolTopic

# The params each topic takes besides ``topic``: a name outside its set is
# refused, so a typo does not widen a filter to everything.
TOPIC_PARAMS: dict[str, frozenset[str]] = {
    "tips": frozenset(),
    "tx": frozenset({"id"}),
    "trades": frozenset({"product", "participant"}),
    "events": frozenset({"engine", "event"}),
    "settlements": frozenset({"seller"}),
    "mempool": frozenset(),
}


def parse_topic(params: dict[str, Any]) -> Topic:
    """``subscribe``'s params (by name; by position only ``[topic]`` or
    ``["tx", id]``) as a topic, or ``InvalidParams`` naming what is wrong."""
    args = params.get("_args")
    if args is not None:
        if not args or len(args) > 2:
            raise InvalidParams("positional params are [topic] or ['tx', id]")
        params = {"topic": args[0]}
        if len(args) == 2:
            params["id"] = args[1]
    topic = params.get("topic")
    if not isinstance(topic, str) or topic not in TOPICS:
        raise InvalidParams(f"'topic' must be one of {', '.join(TOPICS)}")
    extra = set(params) - {"topic"} - TOPIC_PARAMS[topic]
    if extra:
        raise InvalidParams(f"unknown params for topic {topic!r}: {', '.join(sorted(extra))}")
    if topic == "tips":
        return TipsTopic()
    if topic == "mempool":
        return MempoolTopic()
    if topic == "tx":
        return TxTopic(_txid(params.get("id")))
    if topic == "trades":
        product = params.get("product")
        if product is not None and product not in PRODUCTS:
            raise InvalidParams(f"'product' must be one of {', '.join(PRODUCTS)}")
        participant = params.get("participant")
        if participant is not None:
            participant = _address(participant, "participant")
        return TradesTopic(product, participant)
    if topic == "settlements":
        seller = params.get("seller")
        return SettlementsTopic(None if seller is None else _address(seller, "seller"))
    engine = params.get("engine")
    if engine is not None and engine not in ENGINE_NAMES:
        raise InvalidParams(f"'engine' must be one of {', '.join(ENGINE_NAMES)}")
    return EventsTopic(engine, _event_names(params.get("event")))


def _txid(v: Any) -> bytes:
    if isinstance(v, str):
        try:
            raw = from_hex(v.removeprefix("0x"))
        except ValueError:
            raw = b""
        if len(raw) == 32:
            return raw
    raise InvalidParams("'id' must be a tx id, 64 hex digits")


def _address(v: Any, name: str) -> str:
    if not isinstance(v, str):
        raise InvalidParams(f"'{name}' must be an address, 40 hex digits")
    try:
        return parse_address(v, strict=True).hex()
    except DecodeError as exc:
        raise InvalidParams(f"'{name}': {exc.message}") from None


def _event_names(v: Any) -> frozenset[str] | None:
    """``event``: one name or a list of names (``cert.issued``, ``trade``)."""
    if v is None:
        return None
    names = [v] if isinstance(v, str) else v
    if (
        not isinstance(names, list)
        or not 1 <= len(names) <= MAX_EVENT_NAMES
        or not all(isinstance(n, str) and 0 < len(n) <= 64 for n in names)
    ):
        raise InvalidParams(
            f"'event' must be an event name or a list of 1..{MAX_EVENT_NAMES} of them"
        )
    return frozenset(names)


# --- notices ------------------------------------------------------------------


def _point(height: int, hash_: bytes) -> dict[str, Any]:
    return {"height": height, "hash": hash_.hex()}


def tip_notice(block: Block) -> dict[str, Any]:
    """A block that joined the main chain (its header, as ``chain.block``
    names the fields)."""
    h = block.header
    return {
        "type": "tip",
        "height": h.height,
        "hash": block.hash.hex(),
        "prev_hash": h.prev_hash.hex(),
        "timestamp": h.timestamp,
        "state_root": h.state_root.hex(),
        "txs": len(block.txs),
    }


def reorg_notice(update: ChainUpdate, old_tip: IndexEntry, new_tip: IndexEntry) -> dict[str, Any]:
    """The branch switch of ``update`` (which undid blocks): the fork point
    is the parent of the oldest block it undid."""
    oldest_undone = update.disconnected[-1]
    return {
        "type": "reorg",
        "old_tip": _point(old_tip.height, old_tip.hash),
        "new_tip": _point(new_tip.height, new_tip.hash),
        "fork_point": _point(oldest_undone.height - 1, oldest_undone.header.prev_hash),
        # Newest first, the order they were undone in.
        "disconnected": [_point(b.height, b.hash) for b in update.disconnected],
        "connected": [_point(b.height, b.hash) for b, _ in update.connected],
    }


def added_notice(tx: Transaction) -> dict[str, Any]:
    """A tx that entered the mempool."""
    return {
        "type": "added",
        "id": tx.txid.hex(),
        "fee": tx.fee,
        "size": tx.size,
        "sender": tx.sender_address.hex(),
        "tx_type": tx.type,
    }


def removed_notice(txids: list[bytes], reason: str) -> dict[str, Any]:
    """Txs that left the mempool: ``confirmed`` (mined in a block that
    connected), or the code of why the node let go of them unmined."""
    return {"type": "removed", "ids": [t.hex() for t in txids], "reason": reason}


def confirmed_from_pool(
    update: ChainUpdate, left: Container[bytes], pending: Container[bytes]
) -> list[bytes]:
    """The txs of ``update``'s connected blocks that left the pool during it
    (``left``) and are not back in it (``pending``), in chain order."""
    return [
        tx.txid
        for block, _ in update.connected
        for tx in block.txs
        if tx.txid in left and tx.txid not in pending
    ]


def tip_notices(
    update: ChainUpdate, old_tip: IndexEntry, new_tip: IndexEntry
) -> list[dict[str, Any]]:
    """What ``tips`` subscribers get for one update, in order."""
    out = [reorg_notice(update, old_tip, new_tip)] if update.disconnected else []
    out += [tip_notice(block) for block, _ in update.connected]
    return out


@dataclass(frozen=True, slots=True)
class ReceiptEvent:
    """One event of a connected block's receipt, with where it happened."""

    block: Block
    index: int  # the tx's position in the block
    tx_type: str
    receipt: Receipt
    event: dict[str, Any]

    def matches(self, topic: EventsTopic) -> bool:
        if topic.engine is not None and ENGINE_OF.get(self.tx_type) != topic.engine:
            return False
        return topic.events is None or str(self.event.get("event")) in topic.events

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.block.height,
            "block": self.block.hash.hex(),
            "txid": self.receipt.txid.hex(),
            "index": self.index,
            "tx_type": self.tx_type,
            "engine": ENGINE_OF.get(self.tx_type, ""),
            "event": {k: v.hex() if isinstance(v, bytes) else v for k, v in self.event.items()},
        }


def receipt_events(update: ChainUpdate) -> Iterator[ReceiptEvent]:
    """Every receipt event of the blocks ``update`` connected, in chain order."""
    for block, result in update.connected:
        for i, (tx, receipt) in enumerate(zip(block.txs, result.receipts, strict=True)):
            for event in receipt.events:
                yield ReceiptEvent(block, i, tx.type, receipt, event)


def trades_made(update: ChainUpdate, state: ScanState) -> list[dict[str, Any]]:
    """The trades ``update`` connected, as ``market.trades`` gives them (read
    from ``state``, the tip after the update), in the order they were made."""
    out = []
    for ev in receipt_events(update):
        if ev.event.get("event") != "trade":
            continue
        seq = ev.event.get("trade")
        found = market_queries.trade(state, seq) if isinstance(seq, int) else None
        if found is not None:
            out.append(found)
    return out


def trade_matches(trade: dict[str, Any], topic: TradesTopic) -> bool:
    if topic.product is not None and trade.get("product") != topic.product:
        return False
    return topic.participant is None or topic.participant in (
        trade.get("buyer"),
        trade.get("seller"),
    )


def settlements_made(update: ChainUpdate) -> list[dict[str, Any]]:
    """The (slot, seller) settlements the blocks ``update`` connected wrote,
    as ``market.settlement`` gives them. Settlement runs at the start of a
    block, in no tx, so it is read from the block's state changes, not
    from receipts."""
    out = []
    for _, result in update.connected:
        for (ns, key), value in result.changed.items():
            if ns == SETTLEMENT_NS and value is not None:
                out.append(value.to_json(int.from_bytes(key[:8], "big"), key[8:]))
    return out


def settlement_matches(settlement: dict[str, Any], topic: SettlementsTopic) -> bool:
    return topic.seller is None or settlement.get("seller") == topic.seller
