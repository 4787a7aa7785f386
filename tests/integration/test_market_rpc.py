"""The market RPC methods on an in-process dev node, over its real socket.

Also the client's market helpers (tx builders, exact decimal parsing), which
the CLI and the demo build on.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from powernode.client import (
    RpcError,
    build_cancel,
    build_order,
    build_register,
    format_kwh,
    format_money,
    format_price,
    next_slot,
    parse_kwh,
    parse_price,
)
from powernode.core.crypto import KeyPair
from powernode.core.errors import DecodeError
from powernode.core.tx import Transaction, decode_tx
from powernode.devnet.devchain import ALWAYS_OPEN_MARKETS, dev_genesis
from tests.harness import TEST_CHAIN
from tests.integration.conftest import FUNDS, DevNode, running_node

INVALID_PARAMS, NOT_FOUND = -32602, -32004


@pytest.fixture
async def market_node(tmp_path: Path, users: list[KeyPair]) -> AsyncIterator[DevNode]:
    """A dev node (miner off) whose markets trade around the clock."""
    doc = dev_genesis(
        {u.address: FUNDS for u in users}, chain_id=TEST_CHAIN, markets=ALWAYS_OPEN_MARKETS
    )
    async with running_node(tmp_path, users, doc) as dev:
        yield dev


async def submit_all(dev: DevNode, txs: list[Transaction]) -> None:
    for tx in txs:
        await dev.rpc.call("tx.submit", {"raw": tx.raw.hex()})
    await dev.rpc.call("dev.mine", {"blocks": 1})
    for tx in txs:
        st = await dev.rpc.call("tx.get", {"id": tx.txid.hex()})
        assert st["status"] == "confirmed" and st["receipt"]["status"] == "ok", st


async def error_of(dev: DevNode, method: str, params: Any) -> tuple[int, str]:
    with pytest.raises(RpcError) as info:
        await dev.rpc.call(method, params)
    return info.value.code, info.value.reason


def slot_for(now: int) -> int:
    return next_slot(now, slot_seconds=900, gate_closure_seconds=300)


class Scenario:
    """The seed scenario: a producer sells 100 kWh at 0.50, a consumer buys
    50 kWh at 0.60, they trade 50 kWh at the midpoint 0.55."""

    def __init__(self, dev: DevNode) -> None:
        self.dev = dev
        self.producer, self.consumer, self.outsider = dev.users[:3]
        self.slot = slot_for(int(time.time()))
        cid = dev.chain_id
        self.register = [
            build_register(key, chain_id=cid, nonce=0, role=role, location=where, capacity_w=w)
            for key, role, where, w in (
                (self.producer, "producer", "Beijing", 1_000_000),
                (self.consumer, "consumer", "Shanghai", 500_000),
            )
        ]
        self.sell = self.order(self.producer, 1, "sell", 100_000, 500_000, "solar")
        self.buy = self.order(self.consumer, 1, "buy", 50_000, 600_000, "any")

    def order(
        self, key: KeyPair, nonce: int, side: str, energy: int, price: int, source: str
    ) -> Transaction:
        return build_order(
            key,
            chain_id=self.dev.chain_id,
            nonce=nonce,
            product="spot",
            side=side,
            slot=self.slot,
            energy_wh=energy,
            price=price,
            source=source,
        )

    async def run(self) -> None:
        await submit_all(self.dev, self.register)
        await submit_all(self.dev, [self.sell])
        await submit_all(self.dev, [self.buy])


async def test_participant_and_order_lookups(market_node: DevNode) -> None:
    dev = market_node
    s = Scenario(dev)
    await s.run()
    rpc = dev.rpc

    p = await rpc.call("market.participant", {"address": s.producer.address.hex()})
    assert p == {
        "address": s.producer.address.hex(),
        "role": "producer",
        "location": "Beijing",
        "capacity_w": 1_000_000,
        "registered_height": 1,
    }
    by_pos = await rpc.call("market.participant", [s.consumer.address.hex()])
    assert by_pos["role"] == "consumer" and by_pos["location"] == "Shanghai"
    assert await error_of(dev, "market.participant", {"address": s.outsider.address.hex()}) == (
        NOT_FOUND,
        "not_found",
    )
    assert await error_of(dev, "market.participant", {"address": "abcd"}) == (
        INVALID_PARAMS,
        "invalid_params",
    )
    assert (await error_of(dev, "market.participant", {}))[0] == INVALID_PARAMS

    sell = await rpc.call("market.order", {"id": s.sell.txid.hex()})
    assert sell["id"] == s.sell.txid.hex() and sell["owner"] == s.producer.address.hex()
    want = {"side": "sell", "product": "spot", "slot": s.slot, "source": "solar", "tif": "GTC"}
    assert sell == {**sell, **want, "energy": 100_000, "price": 500_000, "expiry": 0}
    assert sell == {**sell, "filled": 50_000, "remaining": 50_000, "escrow": 0, "status": "open"}
    buy = await rpc.call("market.order", [s.buy.txid.hex()])
    assert (buy["filled"], buy["remaining"], buy["escrow"], buy["status"]) == (
        50_000,
        0,
        0,
        "filled",
    )
    assert await error_of(dev, "market.order", {"id": "00" * 32}) == (NOT_FOUND, "not_found")
    for bad in ("zz" * 32, "00" * 31, 5, None):
        assert await error_of(dev, "market.order", {"id": bad}) == (
            INVALID_PARAMS,
            "invalid_params",
        ), bad

    mine = await rpc.call("market.orders", {"participant": s.producer.address.hex()})
    assert [o["id"] for o in mine] == [s.sell.txid.hex()]
    assert mine[0] == sell
    opened = await rpc.call(
        "market.orders", {"participant": s.producer.address.hex(), "status": "open"}
    )
    assert [o["id"] for o in opened] == [s.sell.txid.hex()]
    none = await rpc.call(
        "market.orders", {"participant": s.producer.address.hex(), "status": "filled"}
    )
    assert none == []
    filled = await rpc.call("market.orders", [s.consumer.address.hex(), "filled"])
    assert [o["id"] for o in filled] == [s.buy.txid.hex()]
    assert await rpc.call("market.orders", {"participant": s.outsider.address.hex()}) == []
    assert (await error_of(dev, "market.orders", {}))[0] == INVALID_PARAMS
    bad_status = {"participant": s.producer.address.hex(), "status": "done"}
    assert (await error_of(dev, "market.orders", bad_status))[0] == INVALID_PARAMS


async def test_book_trades_stats_and_params(market_node: DevNode) -> None:
    dev = market_node
    s = Scenario(dev)
    await s.run()
    rpc = dev.rpc
    height = (await rpc.call("node.info"))["height"]

    book = await rpc.call("market.book", {"product": "spot", "slot": s.slot})
    assert book["product"] == "spot" and book["slot"] == s.slot
    assert book["gate"] == s.slot - 300 and book["closed"] is False
    assert book["asks"] == [{"price": 500_000, "energy": 50_000, "orders": 1}]
    assert book["bids"] == []
    assert await rpc.call("market.book", ["spot", s.slot, 1]) == book
    empty = await rpc.call("market.book", {"product": "spot", "slot": s.slot + 900})
    assert empty["asks"] == [] and empty["bids"] == [] and empty["closed"] is False
    # A slot that never had an order is closed once the clock reaches its
    # gate, as one that had orders is.
    clock = (await rpc.call("market.params"))["market_time"]
    past = clock // 900 * 900 - 900
    gone = await rpc.call("market.book", {"product": "spot", "slot": past})
    assert gone["gate"] <= clock and gone["closed"] is True and gone["open_orders"] == 0
    cases: list[tuple[dict[str, Any], str]] = [
        ({"product": "candles", "slot": s.slot}, "unknown_market"),
        ({"product": "spot", "slot": s.slot + 1}, "slot_not_aligned"),
        ({"product": "spot"}, "invalid_params"),
        ({"slot": s.slot}, "invalid_params"),
        ({"product": "spot", "slot": "soon"}, "invalid_params"),
        ({"product": "spot", "slot": s.slot, "levels": 0}, "invalid_params"),
        ({"product": "spot", "slot": s.slot, "levels": 1001}, "invalid_params"),
    ]
    for params, code in cases:
        assert await error_of(dev, "market.book", params) == (INVALID_PARAMS, code), params

    trades = await rpc.call("market.trades", {})
    assert len(trades) == 1
    t = trades[0]
    assert t == {
        **t,
        "seq": 0,
        "height": height,
        "product": "spot",
        "slot": s.slot,
        "buy_id": s.buy.txid.hex(),
        "sell_id": s.sell.txid.hex(),
        "buyer": s.consumer.address.hex(),
        "seller": s.producer.address.hex(),
        "energy": 50_000,
        "price": 550_000,
        "value": 27_500_000,
        "buyer_fee": 0,
        "seller_fee": 0,
    }
    hits: dict[str, dict[str, Any]] = {
        "product": {"product": "spot"},
        "slot": {"product": "spot", "slot": s.slot},
        "buyer": {"participant": s.consumer.address.hex()},
        "seller": {"participant": s.producer.address.hex()},
        "heights": {"from_height": height, "to_height": height},
        "limit": {"limit": 1},
    }
    for what, params in hits.items():
        assert await rpc.call("market.trades", params) == trades, what
    misses: dict[str, dict[str, Any]] = {
        "product": {"product": "forward"},
        "slot": {"product": "spot", "slot": s.slot + 900},
        "participant": {"participant": s.outsider.address.hex()},
        "from": {"from_height": height + 1},
        "to": {"to_height": height - 1},
    }
    for what, params in misses.items():
        assert await rpc.call("market.trades", params) == [], what
    bad_trades: list[tuple[dict[str, Any], str]] = [
        ({"limit": 0}, "invalid_params"),
        ({"limit": 1001}, "invalid_params"),
        ({"limit": "10"}, "invalid_params"),
        ({"from_height": 5, "to_height": 4}, "invalid_params"),
        ({"from_height": -1}, "invalid_params"),
        ({"slot": s.slot}, "invalid_params"),
        ({"product": "spot", "slot": s.slot + 60}, "slot_not_aligned"),
        ({"product": "gas"}, "unknown_market"),
        ({"participant": "xyz"}, "invalid_params"),
    ]
    for params, code in bad_trades:
        assert await error_of(dev, "market.trades", params) == (INVALID_PARAMS, code), params

    expect = {
        "trades": 1,
        "volume_wh": 50_000,
        "value": 27_500_000,
        "avg_price": 550_000,
        "min_price": 550_000,
        "max_price": 550_000,
        "open_orders": 1,
    }
    assert await rpc.call("market.stats", {}) == expect
    assert await rpc.call("market.stats", {"product": "spot"}) == expect
    assert await rpc.call("market.stats", {"product": "spot", "slot": s.slot}) == expect
    quiet = await rpc.call("market.stats", {"product": "spot", "slot": s.slot + 900})
    assert quiet["trades"] == 0 and quiet["avg_price"] is None and quiet["min_price"] is None
    assert (await rpc.call("market.stats", {"product": "reserve"}))["trades"] == 0
    assert (await error_of(dev, "market.stats", {"slot": s.slot}))[0] == INVALID_PARAMS
    assert await error_of(dev, "market.stats", {"product": "x"}) == (
        INVALID_PARAMS,
        "unknown_market",
    )

    params = await rpc.call("market.params", {})
    assert set(params["products"]) == {"spot", "forward", "reserve"}
    spot = params["products"]["spot"]
    assert (spot["open_hour"], spot["close_hour"]) == (0, 24)
    assert (spot["slot_seconds"], spot["gate_closure_seconds"]) == (900, 300)
    assert spot["price_rule"] == "midpoint" and spot["price_tick"] == 10_000
    assert params["height"] == height and params["market_time"] >= params["time"] > 0
    only = await rpc.call("market.params", {"product": "forward"})
    assert list(only["products"]) == ["forward"]
    assert only["products"]["forward"]["price_rule"] == "maker"


async def test_trades_limit_keeps_the_latest(market_node: DevNode) -> None:
    """Default limit 100, at most 1000; a limit keeps the newest, oldest first."""
    dev = market_node
    s = Scenario(dev)
    await submit_all(dev, s.register)
    sell = s.order(s.producer, 1, "sell", 110_000, 500_000, "solar")
    buys = [s.order(s.consumer, 1 + i, "buy", 1_000, 500_000, "any") for i in range(101)]
    await submit_all(dev, [sell, *buys])
    latest = await dev.rpc.call("market.trades", {})
    assert [t["seq"] for t in latest] == list(range(1, 101))
    everything = await dev.rpc.call("market.trades", {"limit": 1000})
    assert [t["seq"] for t in everything] == list(range(101))
    assert [t["buy_id"] for t in everything] == [b.txid.hex() for b in buys]
    assert [t["seq"] for t in await dev.rpc.call("market.trades", {"limit": 3})] == [98, 99, 100]
    stats = await dev.rpc.call("market.stats", {})
    assert stats["trades"] == 101 and stats["volume_wh"] == 101_000


async def test_cancel_shows_in_queries(market_node: DevNode) -> None:
    dev = market_node
    s = Scenario(dev)
    await submit_all(dev, s.register)
    await submit_all(dev, [s.sell])
    cancel = build_cancel(s.producer, chain_id=dev.chain_id, nonce=2, order_id=s.sell.txid)
    await submit_all(dev, [cancel])
    o = await dev.rpc.call("market.order", {"id": s.sell.txid.hex()})
    assert o["status"] == "cancelled" and o["filled"] == 0
    book = await dev.rpc.call("market.book", {"product": "spot", "slot": s.slot})
    assert book["asks"] == [] and book["bids"] == []
    assert (await dev.rpc.call("market.stats", {}))["open_orders"] == 0
    gone = await dev.rpc.call(
        "market.orders", {"participant": s.producer.address.hex(), "status": "open"}
    )
    assert gone == []


# --- client helpers -------------------------------------------------------------


def test_builders_make_the_engine_payloads() -> None:
    key = KeyPair.generate()
    reg = build_register(
        key, chain_id="c", nonce=3, role="prosumer", location="Zone A", capacity_w=2500, fee=7
    )
    assert (reg.type, reg.nonce, reg.fee) == ("participant.register", 3, 7)
    assert reg.payload == ["prosumer", "Zone A", 2500]
    fields: list[Any] = [
        "forward",
        "buy",
        1_800_000_000,
        1_500,
        520_000,
        "any",
        1_799_999_940,
        "IOC",
    ]
    names = ("product", "side", "slot", "energy_wh", "price", "source", "expiry", "tif")
    order = build_order(key, chain_id="c", nonce=4, **dict(zip(names, fields, strict=True)))
    assert order.type == "order.place" and order.payload == fields
    cancel = build_cancel(key, chain_id="c", nonce=5, order_id=order.txid)
    assert cancel.type == "order.cancel" and cancel.payload == [order.txid]
    for tx in (reg, order, cancel):
        assert decode_tx(tx.raw) == tx


@pytest.mark.parametrize(
    ("text", "micro"),
    [("0.50", 500_000), ("0.5", 500_000), (".55", 550_000), ("12", 12_000_000), ("0.000001", 1)],
)
def test_parse_price(text: str, micro: int) -> None:
    assert parse_price(text) == micro


@pytest.mark.parametrize(
    ("text", "wh"),
    [("100", 100_000), ("0.5", 500), ("1.234", 1_234), ("0.0010", 1), ("10000", 10_000_000)],
)
def test_parse_kwh(text: str, wh: int) -> None:
    assert parse_kwh(text) == wh


@pytest.mark.parametrize("text", ["", "-1", "1e3", "0.0001", "1.2.3", "abc", " ", "٣", "inf"])
def test_parse_kwh_refuses(text: str) -> None:
    with pytest.raises(DecodeError):
        parse_kwh(text)


@pytest.mark.parametrize("text", ["0.0000001", "-0.5", "0x10", "nan"])
def test_parse_price_refuses(text: str) -> None:
    with pytest.raises(DecodeError):
        parse_price(text)


def test_formatting() -> None:
    assert format_price(550_000) == "0.55" and format_price(10_000_000) == "10.00"
    assert format_price(123_456) == "0.123456"
    assert format_kwh(50_000) == "50" and format_kwh(500) == "0.5" and format_kwh(1) == "0.001"
    assert format_money(27_500_000) == "27.50" and format_money(0) == "0.00"
    for wh in (0, 1, 999, 1_000, 123_456_789):
        assert parse_kwh(format_kwh(wh)) == wh


def test_next_slot_leaves_room_before_the_gate() -> None:
    # 10:00:00 -> the 10:15 slot, whose gate (10:10) is ten minutes away
    assert slot_for(36_000) == 36_900
    # 10:09:00 -> 10:15's gate is exactly the one-minute margin away: still it
    assert slot_for(36_000 + 540) == 36_900
    # 10:09:01 -> too close to 10:15's gate: the 10:30 slot
    assert slot_for(36_000 + 541) == 37_800
    # exactly at a slot start: its own gate is long gone
    assert slot_for(36_900) == 37_800
    day = next_slot(36_000, slot_seconds=900, gate_closure_seconds=300, min_lead_seconds=86_400)
    assert day == 36_000 + 86_400 + 900 and day % 900 == 0


async def test_position_settlement_and_trade_status(market_node: DevNode) -> None:
    """market.position and market.settlement over a confirmed trade (its slot
    settles minutes later: test_settlement.py and the demo cover that)."""
    dev = market_node
    s = Scenario(dev)
    await s.run()
    rpc = dev.rpc
    (t,) = await rpc.call("market.trades", {"status": "confirmed"})
    assert (t["status"], t["delivered_wh"], t["paid"], t["settled_height"]) == (
        "confirmed",
        0,
        0,
        0,
    )
    assert t["escrow"] == 27_500_000
    assert await rpc.call("market.trades", {"status": "completed"}) == []
    buyer = await rpc.call("market.position", {"participant": s.consumer.address.hex()})
    assert (buyer["bought_wh"], buyer["pending_bought_wh"], buyer["settlement_escrow"]) == (
        50_000,
        50_000,
        27_500_000,
    )
    seller = await rpc.call("market.position", [s.producer.address.hex()])
    assert (seller["sold_wh"], seller["pending_sold_wh"], seller["delivered_wh"]) == (
        50_000,
        50_000,
        0,
    )
    assert (
        seller["balance"] == (await rpc.call("account.get", [s.producer.address.hex()]))["balance"]
    )
    nobody = await rpc.call("market.position", {"participant": s.outsider.address.hex()})
    assert nobody["bought_wh"] == nobody["sold_wh"] == nobody["settlement_escrow"] == 0
    assert await rpc.call("market.settlement", {}) == {
        "pending_slots": [s.slot],
        "settlements": [],
    }
    assert (await rpc.call("market.settlement", {"slot": s.slot}))["settlements"] == []
    assert (await error_of(dev, "market.position", {}))[0] == INVALID_PARAMS
    assert await error_of(dev, "market.position", {"participant": "abcd"}) == (
        INVALID_PARAMS,
        "invalid_params",
    )
    assert (await error_of(dev, "market.trades", {"status": "done"}))[0] == INVALID_PARAMS
    assert (await error_of(dev, "market.settlement", {"slot": -1}))[0] == INVALID_PARAMS


async def test_market_time_before_the_first_order_is_the_tips_time(market_node: DevNode) -> None:
    """No order yet: no clock is stored, and the rules take the block's own
    time, so market.params says the tip's time, not 0."""
    await market_node.rpc.call("dev.mine", {"blocks": 2})
    params = await market_node.rpc.call("market.params", {})
    assert params["height"] == 2
    assert params["market_time"] == params["time"] > 0
