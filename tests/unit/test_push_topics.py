"""The pure side of push: parsing a subscription's topic, matching trades
and events to filters, and the CLI client's WebSocket framing."""

from __future__ import annotations

import os

import pytest

from powernode.core.errors import InvalidParams
from powernode.node.push_topics import (
    EventsTopic,
    MempoolTopic,
    TipsTopic,
    TradesTopic,
    TxTopic,
    parse_topic,
    trade_matches,
)
from powernode.ws_client import OP_TEXT, accept_key, encode_frame, mask

TXID = "ab" * 32
ADDR = "cd" * 20


def test_topics_parse_by_name_and_position() -> None:
    assert parse_topic({"topic": "tips"}) == TipsTopic()
    assert parse_topic({"topic": "mempool"}) == parse_topic({"_args": ["mempool"]})
    assert isinstance(parse_topic({"topic": "mempool"}), MempoolTopic)
    assert parse_topic({"_args": ["tips"]}) == TipsTopic()
    assert parse_topic({"topic": "tx", "id": "0x" + TXID}) == TxTopic(bytes.fromhex(TXID))
    assert parse_topic({"_args": ["tx", TXID]}) == TxTopic(bytes.fromhex(TXID))
    assert parse_topic({"topic": "trades", "product": "spot", "participant": ADDR.upper()}) == (
        TradesTopic("spot", ADDR)
    )
    assert parse_topic({"topic": "events", "engine": "metering", "event": "cert.issued"}) == (
        EventsTopic("metering", frozenset({"cert.issued"}))
    )
    assert parse_topic({"topic": "events", "event": ["a.b", "c"]}) == EventsTopic(
        None, frozenset({"a.b", "c"})
    )


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({}, "'topic' must be one of"),
        ({"topic": "blocks"}, "'topic' must be one of"),
        ({"topic": "tips", "id": TXID}, "unknown params for topic 'tips': id"),
        ({"topic": "mempool", "id": TXID}, "unknown params for topic 'mempool': id"),
        ({"topic": "tx"}, "'id' must be a tx id"),
        ({"topic": "tx", "id": "ab" * 31}, "'id' must be a tx id"),
        ({"topic": "tx", "id": "zz" * 32}, "'id' must be a tx id"),
        ({"topic": "trades", "product": "futures"}, "'product' must be one of"),
        ({"topic": "trades", "participant": "12"}, "'participant'"),
        ({"topic": "trades", "buyer": ADDR}, "unknown params"),
        ({"topic": "events", "engine": "weather"}, "'engine' must be one of"),
        ({"topic": "events", "event": []}, "'event' must be"),
        ({"topic": "events", "event": [1]}, "'event' must be"),
        ({"_args": []}, "positional params"),
        ({"_args": ["tx", TXID, 3]}, "positional params"),
    ],
)
def test_bad_topics_are_invalid_params(params: dict[str, object], needle: str) -> None:
    with pytest.raises(InvalidParams) as info:
        parse_topic(params)
    assert needle in info.value.message


def test_trade_filters() -> None:
    trade = {"product": "spot", "buyer": ADDR, "seller": "ef" * 20}
    assert trade_matches(trade, TradesTopic(None, None))
    assert trade_matches(trade, TradesTopic("spot", "ef" * 20))
    assert not trade_matches(trade, TradesTopic("forward", None))
    assert not trade_matches(trade, TradesTopic(None, "00" * 20))


def test_client_frames_are_masked_and_sized() -> None:
    key = os.urandom(4)
    for n in (0, 1, 125, 126, 65535, 65536):
        payload = os.urandom(n)
        frame = encode_frame(OP_TEXT, payload, key)
        assert frame[0] == 0x80 | OP_TEXT and frame[1] & 0x80  # final, masked
        head = {125: 2, 126: 4, 65535: 4, 65536: 10}.get(n, 2)
        assert frame[head : head + 4] == key
        assert mask(frame[head + 4 :], key) == payload and len(frame) == head + 4 + n
    # RFC 6455 section 1.3's example handshake.
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_settlements_are_read_from_a_blocks_state_changes() -> None:
    from types import SimpleNamespace

    from powernode.chain.chain import ChainUpdate
    from powernode.engines.settlement.records import SLOT_NS, SlotSettlement, slot_key
    from powernode.node.push_topics import SettlementsTopic, settlement_matches, settlements_made

    seller = bytes.fromhex(ADDR)
    record = SlotSettlement(*range(1, len(SlotSettlement._fields) + 1))
    changed = {
        ("acct", b"x" * 20): object(),  # another engine's change: not a settlement
        (SLOT_NS, slot_key(900, seller)): record,
        (SLOT_NS, slot_key(1800, seller)): None,  # a deleted record tells nothing
    }
    update = ChainUpdate(connected=[(SimpleNamespace(), SimpleNamespace(changed=changed))])  # type: ignore[list-item]
    made = settlements_made(update)
    assert made == [record.to_json(900, seller)]
    assert made[0]["slot"] == 900 and made[0]["seller"] == ADDR
    assert parse_topic({"topic": "settlements", "seller": ADDR}) == SettlementsTopic(ADDR)
    assert settlement_matches(made[0], SettlementsTopic(ADDR))
    assert settlement_matches(made[0], SettlementsTopic(None))
    assert not settlement_matches(made[0], SettlementsTopic("00" * 20))
