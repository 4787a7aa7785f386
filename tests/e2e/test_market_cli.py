"""The ``powernode`` market commands as a user runs them, against a real node."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from powernode.client import next_slot
from powernode.devnet.datadir import free_port
from powernode.devnet.process import ProcessNode
from powernode.devnet.wait import wait_until
from tests.e2e.test_cli import assert_user_error, pn

pytestmark = pytest.mark.e2e


def pj(*args: str) -> Any:
    return json.loads(pn(*args, "--json").stdout)


@pytest.fixture
def mining_node(tmp_path: Path) -> Iterator[tuple[Path, ProcessNode]]:
    d = tmp_path / "node"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    node = ProcessNode(d, extra_args=("--mine",))
    node.start()
    try:
        yield d, node
    finally:
        node.stop()


def fund_consumer(d: Path, tmp_path: Path) -> tuple[str, str]:
    key = str(tmp_path / "consumer.key")
    addr = pj("keygen", "--out", key)["address"]
    sent = pj("transfer", "--datadir", str(d), "--to", addr, "--amount", "100", "--wait", "30")
    assert sent["status"] == "confirmed"
    return key, addr


def test_register_trade_query_cancel(mining_node: tuple[Path, ProcessNode], tmp_path: Path) -> None:
    d, _ = mining_node
    dd = ("--datadir", str(d))
    wait = ("--wait", "30")
    consumer_key, consumer = fund_consumer(d, tmp_path)
    producer = pj("balance", *dd)["address"]

    reg = pj(
        "register",
        *dd,
        "--role",
        "producer",
        "--location",
        "Beijing",
        "--capacity-kw",
        "1000",
        *wait,
    )
    assert reg["status"] == "confirmed" and reg["receipt"]["status"] == "ok"
    assert reg["address"] == producer
    assert reg["receipt"]["events"][0]["capacity_w"] == 1_000_000
    text = pn(
        "register", *dd, "--key", consumer_key, "--role", "consumer",
        "--location", "Shanghai", "--capacity-kw", "500", *wait,
    ).stdout  # fmt: skip
    assert "registered as consumer in Shanghai, 500 kW" in text
    who = pj("participant", *dd, consumer)
    assert who == {**who, "role": "consumer", "location": "Shanghai", "capacity_w": 500_000}
    # The text shows capacity in kW, as register took it (the JSON keeps W),
    # and --participant names the same account as the positional address.
    shown = pn("participant", *dd, "--participant", consumer).stdout
    assert "capacity 500 kW" in shown and "500000" not in shown

    # A dev node mining flat out pushes block times ahead of the clock (each
    # block must beat the median of the last 11), up to max_future (2 h): a
    # slot past that keeps its gate open however long the test takes.
    slot = next_slot(int(time.time()) + 7200, slot_seconds=900, gate_closure_seconds=300)
    sell = pj(
        "order", *dd, "--side", "sell", "--energy-kwh", "100", "--price", "0.50",
        "--source", "solar", "--slot", str(slot), *wait,
    )  # fmt: skip
    assert sell["status"] == "confirmed" and sell["receipt"]["status"] == "ok"
    assert (sell["slot"], sell["product"]) == (slot, "spot")
    placed = sell["receipt"]["events"][0]
    assert placed == {**placed, "event": "order_placed", "energy": 100_000, "price": 500_000}

    buy_text = pn(
        "order", *dd, "--key", consumer_key, "--side", "buy", "--energy-kwh", "50",
        "--price", "0.60", "--slot", str(slot), *wait,
    ).stdout  # fmt: skip
    assert f"buy 50 kWh at 0.60/kWh, spot slot {slot}" in buy_text
    assert "placed buy 50 kWh at 0.60/kWh, escrow 30.00" in buy_text
    assert "trade 50 kWh at 0.55/kWh = 27.50" in buy_text
    assert "filled, refund 2.50" in buy_text

    book = pj("book", *dd, "--slot", str(slot))
    assert book["asks"] == [{"price": 500_000, "energy": 50_000, "orders": 1}]
    assert book["bids"] == [] and book["gate"] == slot - 300
    book_text = pn("book", *dd, "--slot", str(slot)).stdout
    assert "0.50/kWh" in book_text and "50 kWh  1 order" in book_text and "(none)" in book_text

    trades = pj("trades", *dd)
    assert len(trades) == 1
    t = trades[0]
    assert (t["energy"], t["price"], t["value"]) == (50_000, 550_000, 27_500_000)
    assert (t["buyer"], t["seller"], t["sell_id"]) == (consumer, producer, sell["order"])
    assert pj("trades", *dd, "--participant", consumer) == trades
    assert pj("trades", *dd, "--product", "spot", "--slot", str(slot)) == trades
    assert pj("trades", *dd, "--from-height", str(t["height"] + 1)) == []
    assert pn("trades", *dd, "--product", "forward").stdout.strip() == "no trades"
    assert "50 kWh at 0.55/kWh = 27.50" in pn("trades", *dd).stdout

    mine = pj("orders", *dd)
    assert [(o["id"], o["status"], o["filled"]) for o in mine] == [(sell["order"], "open", 50_000)]
    assert pj("orders", *dd, "--participant", consumer, "--status", "filled")[0]["energy"] == 50_000
    assert pj("orders", *dd, "--status", "filled") == []

    stats = pj("stats", *dd)
    assert stats == {
        "trades": 1,
        "volume_wh": 50_000,
        "value": 27_500_000,
        "avg_price": 550_000,
        "min_price": 550_000,
        "max_price": 550_000,
        "open_orders": 1,
    }
    assert pj("stats", *dd, "--product", "spot", "--slot", str(slot)) == stats
    stats_text = pn("stats", *dd).stdout
    assert "volume 50 kWh  value 27.50" in stats_text and "avg 0.55" in stats_text

    cancel = pj("cancel", *dd, sell["order"], *wait)
    assert cancel["receipt"]["status"] == "ok"
    assert cancel["receipt"]["events"][0]["event"] == "order_cancelled"
    assert pj("book", *dd, "--slot", str(slot))["asks"] == []
    assert [o["status"] for o in pj("orders", *dd)] == ["cancelled"]
    # A second cancel is refused at the door: the order is no longer open.
    assert_user_error(pn("cancel", *dd, sell["order"], check=False), "order_not_open")


def test_bad_input_gets_one_clear_line(mining_node: tuple[Path, ProcessNode]) -> None:
    d, _ = mining_node
    dd = ("--datadir", str(d))

    def err(needle: str, *args: str) -> None:
        assert_user_error(pn(*args, *dd, check=False), needle)

    sell = ("order", "--side", "sell", "--source", "solar")
    err("at most 3 decimal places", *sell, "--energy-kwh", "0.0001", "--price", "0.5")
    err("not a non-negative decimal", *sell, "--energy-kwh", "10", "--price", "cheap")
    err("not a multiple of the tick 0.01", *sell, "--energy-kwh", "10", "--price", "0.505")
    err("outside 1..10000 kWh", *sell, "--energy-kwh", "0.5", "--price", "0.5")
    err("outside 0.01..10.00 per kWh", *sell, "--energy-kwh", "1", "--price", "11")
    err(
        "not a multiple of the 900 s slot",
        *sell,
        "--energy-kwh",
        "1",
        "--price",
        "1",
        "--slot",
        "901",
    )
    err("unix time or 'next'", *sell, "--energy-kwh", "1", "--price", "1", "--slot", "soon")
    err("needs --source", "order", "--side", "sell", "--energy-kwh", "1", "--price", "1")
    err("whole-minute", *sell, "--energy-kwh", "1", "--price", "1", "--expiry", "100")
    err("not_registered", *sell, "--energy-kwh", "1", "--price", "1")
    reg = ("register", *dd, "--role", "producer", "--location", "X", "--capacity-kw", "1")
    assert pj(*reg, "--wait", "30")["receipt"]["status"] == "ok"
    err("gate_closed", *sell, "--energy-kwh", "1", "--price", "1", "--slot", "900")
    err("capacity_exceeded", *sell, "--energy-kwh", "1", "--price", "1")  # 1 kW: 0.25 kWh a slot
    err("64-hex-digit", "cancel", "1234")
    err("order_not_found", "cancel", "00" * 32)
    err("--capacity-kw", "register", "--role", "producer", "--location", "X", "--capacity-kw", "-3")
    err(
        "--capacity-kw must be 0.001..",
        "register",
        "--role",
        "producer",
        "--location",
        "X",
        "--capacity-kw",
        "0",
    )
    err("--slot needs --product", "stats", "--slot", "next")
    err("not_found", "participant", "00" * 20)
    err("address must be 20 bytes", "orders", "--participant", "abcd")
    # argparse rejects unknown choices itself (exit 2, usage on stderr)
    r = pn("order", *dd, "--side", "hold", "--energy-kwh", "1", "--price", "1", check=False)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_order_dropped_unmined_exits_1(tmp_path: Path) -> None:
    """Two sells pass admission together (the second's checks on the sender's
    own records wait for the block) but exceed the capacity together: the
    block template leaves the second out and the mempool drops it, and the
    command waiting on it says so."""
    d = tmp_path / "node"
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port()))
    node = ProcessNode(d)  # no miner: blocks only on 'powernode mine'
    node.start()
    dd = ("--datadir", str(d))
    try:
        reg = ("register", *dd, "--role", "producer", "--location", "Oslo", "--capacity-kw", "1000")
        pn(*reg)
        pn("mine", *dd)
        slot = pj(
            "order",
            *dd,
            "--side",
            "sell",
            "--energy-kwh",
            "200",
            "--price",
            "0.5",
            "--source",
            "wind",
        )["slot"]
        second = subprocess.Popen(
            [
                sys.executable, "-m", "powernode.cli", "order", *dd, "--side", "sell",
                "--energy-kwh", "200", "--price", "0.5", "--source", "wind",
                "--slot", str(slot), "--wait", "60",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            wait_until(lambda: node.call("mempool.info")["size"] == 2, timeout=30, what="2 pending")
            pn("mine", *dd)
            out, err = second.communicate(timeout=60)
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        assert second.returncode == 1, (out, err)
        assert " dropped" in out.splitlines()[1], out
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "was dropped unmined: capacity_exceeded" in lines[0], err
        assert [o["status"] for o in pj("orders", *dd)] == ["open"]
    finally:
        node.stop()
