"""scripts/demo.py against a real 3-node testnet started with scripts/testnet.py,
as scripts/quickstart runs it: mining on, default difficulty."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from powernode.client import RpcClient, build_cancel, build_order, next_slot, read_key
from powernode.core.crypto import KeyPair
from powernode.core.params import ChainParams
from powernode.devnet.wait import wait_until
from powernode.state.certproof import verify_proof
from powernode.state.genesis import parse_genesis_json
from tests.e2e.test_testnet import run_testnet
from tests.harness.browser import Browser, ensure_chromium
from tests.harness.explorer import Explorer

# Minutes of waiting on the chain's clock: handed out first (tests/conftest.py).
pytestmark = [pytest.mark.e2e, pytest.mark.minutes]

ROOT = Path(__file__).resolve().parents[2]


def demo(d: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(d), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass(frozen=True)
class DemoRun:
    """A 3-node testnet (``d``) the demo has run on once; ``out`` is what
    that first run printed."""

    d: Path
    out: str


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    # One testnet and one demo for the module: the demo takes minutes (its
    # settlement waits for a slot and a window), and the explorer test reads
    # what it left.
    d = tmp_path_factory.mktemp("demo") / "tn"
    run_testnet("up", "--nodes", "3", d=d)
    try:
        r = demo(d, timeout=600)  # the trade's settlement waits for its slot and window
        assert r.returncode == 0, r.stdout + r.stderr
        yield DemoRun(d, r.stdout)
    finally:
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "testnet.py"), "down", "--dir", str(d)],
            capture_output=True,
            timeout=120,
        )


def test_demo_trades_and_every_node_agrees(demo_run: DemoRun) -> None:
    d = demo_run.d
    genesis = json.loads((d / "genesis.json").read_text())
    assert all((m["open_hour"], m["close_hour"]) == (0, 24) for m in genesis["markets"].values()), (
        genesis["markets"]
    )
    out = demo_run.out
    # one-minute testnet slots: the seed's capacities scaled to fit its energies
    assert "the seed's 1000 kW and 500 kW scaled to 6000 kW and 3000 kW" in out
    assert "producer_001: producer, Beijing, 6000 kW" in out
    assert "consumer_001: consumer, Shanghai, 3000 kW" in out
    assert "trade 50 kWh at 0.55/kWh = 27.50" in out
    assert "fetched from every node (node0, node1, node2)" in out
    assert re.search(r"trade #0 in block \d+: 50 kWh at 0\.55/kWh \(midpoint rule\)", out), out
    book = out.split("spot book, slot ")[1]
    assert re.search(
        r"asks \(sell\)\n +0\.50/kWh +50 kWh  1 order\n  bids \(buy\)\n +\(none\)", book
    )
    assert "trades 1  volume 50 kWh  value 27.50  open orders 1" in out
    assert "price avg 0.55  min 0.55  max 0.55 per kWh" in out
    slot = int(out.split("delivery slot ")[1].split()[0])

    # What the demo printed is what each node holds, read here independently.
    state = json.loads((d / "testnet.json").read_text())
    producer = read_key(d / "keys" / "demo1.key").address.hex()
    consumer = read_key(d / "keys" / "demo2.key").address.hex()
    for n in state["nodes"]:
        with RpcClient.from_datadir(d / n["name"]) as c:
            (t,) = c.call("market.trades", {"product": "spot", "slot": slot})
            assert (t["seller"], t["buyer"], t["energy"], t["price"]) == (
                producer,
                consumer,
                50_000,
                550_000,
            )
            # the demo waited for the settlement: the slot's gate has closed
            # since, and the ask's unsold 50 kWh expired there
            book_json = c.call("market.book", {"product": "spot", "slot": slot})
            assert book_json["closed"] and book_json["asks"] == []
            (sell,) = [
                o for o in c.call("market.orders", {"participant": producer}) if o["slot"] == slot
            ]
            assert (sell["status"], sell["filled"], sell["energy"]) == ("expired", 50_000, 100_000)
            assert c.call("market.participant", {"address": producer})["location"] == "Beijing"

    # The data hub: three meter-signed readings relayed as one meter.batch,
    # each certified; read back here from a node.
    assert "data hub: three meters sign their readings, one meter.batch relays them" in out
    hub = re.search(
        r"producer_001 relays them: tx ([0-9a-f]{64}) confirmed in block \d+: interval \d+, "
        r"3 readings, 3 applied, 0 skipped, 3 certificates issued \(22\.5 kWh\)",
        out,
    )
    assert hub, out
    hub_certs = re.findall(r"(wind|hydro|solar) +device [0-9a-f]{16}\.\. ([\d.]+) kWh, green", out)
    assert hub_certs == [("wind", "5"), ("hydro", "7.5"), ("solar", "10")], out
    with RpcClient.from_datadir(d / "node1") as c:
        hub_tx = c.call("tx.get", {"id": hub.group(1)})
        assert hub_tx["tx"]["type"] == "meter.batch"
        assert [e["event"] for e in hub_tx["receipt"]["events"]].count("cert.issued") == 3

    # The certificate continuation: device, approval, reading, certificate,
    # a 40 kWh split transferred and retired, the trace; read back here from
    # every node.
    assert "certificates: producer_001 meters solar power in Beijing" in out
    device = re.search(
        r"producer_001 registers device ([0-9a-f]{64}): solar, 12000 kW, Beijing, 50 gCO2/kWh", out
    )
    assert device, out
    meter_file = re.search(r"meter key (keys/meter-[0-9a-f]{16}\.key)", out)
    assert meter_file, out
    assert re.search(r"authority demo0 \([0-9a-f]{40}\) approves it", out), out
    root = re.search(r"certificate ([0-9a-f]{64}) issued: 100 kWh", out)
    assert root, out
    assert "valid yes  status active  type green  source solar" in out
    assert "location Beijing  carbon intensity 50 gCO2/kWh" in out
    child = re.search(
        r"transfers 40 kWh to consumer_001: split off as certificate ([0-9a-f]{64})", out
    )
    assert child, out
    assert "consumer_001 retires them for consumer_001 in Shanghai" in out
    assert (
        "fetched from every node (node0, node1, node2): the same device, reading, "
        "certificates, traces and verifications"
    ) in out
    assert "trace: issue(reading), split, transfer, retire" in out
    # The proof: every node's, written to DIR/proofs/ and verified offline.
    assert (
        "every node's proof proves the same certificate: 40 kWh, retired for consumer_001"
    ) in out
    assert "--genesis genesis.json\n  valid proof\n  proved:" in out
    assert "cannot prove:" in out and "that no other tx touched the certificate after" in out
    params = parse_genesis_json((d / "genesis.json").read_bytes())
    for n in state["nodes"]:
        raw = (d / "proofs" / f"cert-{child.group(1)[:16]}-{n['name']}.proof").read_bytes()
        proven = verify_proof(raw, params)
        assert (proven.cert.owner.hex(), proven.cert.wh, proven.cert.status) == (
            consumer,
            40_000,
            "retired",
        )
    meter = read_key(d / meter_file.group(1))
    for n in state["nodes"]:
        with RpcClient.from_datadir(d / n["name"]) as c:
            dev = c.call("device.get", {"device": device.group(1)})
            assert (dev["owner"], dev["status"], dev["meter_pubkey"]) == (
                producer,
                "active",
                meter.pubkey.hex(),
            )
            r = c.call("cert.get", {"cert": root.group(1)})
            assert (r["owner"], r["wh"], r["remaining_wh"], r["type"]) == (
                producer,
                100_000,
                60_000,
                "green",
            )
            ch = c.call("cert.get", {"cert": child.group(1)})
            assert (ch["owner"], ch["wh"], ch["status"], ch["claim"]["beneficiary"]) == (
                consumer,
                40_000,
                "retired",
                "consumer_001",
            )
            kinds = [s["kind"] for s in c.call("cert.trace", {"cert": child.group(1)})["steps"]]
            assert kinds == ["reading", "split", "transfer", "retire"]

    # The settlement: the device's reading for the trade's slot, the trade
    # completed with 50 kWh of certificate bundled to the buyer; read back
    # here from every node.
    assert re.search(r"the meter reports 80 kWh produced in interval \d+", out), out
    assert "trade #0 completed in block" in out
    assert "delivered 50 kWh, paid 27.50, refunded 0.00, certificates 50 kWh" in out
    assert "trace: issue(reading), split, bundle" in out
    bundled = re.search(r"certificate ([0-9a-f]{64}) bundled to consumer_001: 50 kWh", out)
    assert bundled, out
    for n in state["nodes"]:
        with RpcClient.from_datadir(d / n["name"]) as c:
            (t,) = c.call("market.trades", {"product": "spot", "slot": slot})
            assert (t["status"], t["delivered_wh"], t["paid"], t["bundled_wh"]) == (
                "completed",
                50_000,
                27_500_000,
                50_000,
            )
            bc = c.call("cert.get", {"cert": bundled.group(1)})
            assert (bc["owner"], bc["wh"]) == (consumer, 50_000)
            pos = c.call("market.position", {"participant": consumer})
            assert (pos["bought_wh"], pos["received_wh"], pos["settlement_escrow"]) == (
                50_000,
                50_000,
                0,
            )

    # The PPA: contract_001 bound to the solar device, delivered from its
    # reading and paid in the same tx; then the two contract templates.
    assert (
        "PPA contract_001: producer_001 -> consumer_001, 1,000 kWh at 0.50/kWh over 30 days" in out
    )
    # Half of a 200 kWh reading, or all of a 100 kWh one where the device
    # cannot meter 200 kWh in one interval (the testnet's one-minute ones).
    ppa = re.search(r"producer_001 proposes PPA ([0-9a-f]{64}): (50|100)\.0% of device", out)
    assert ppa, out
    assert "consumer_001 funds it with 50.00" in out
    assert re.search(
        r"the meter reports (200|100) kWh produced in interval \d+ .*: the PPA takes (50|100)\.0%",
        out,
    ), out
    assert "ppa.delivered  seq 0  wh 100 kWh  interval" in out
    assert "paid 50.00  owed 0.00  cert_wh 100 kWh  status active" in out
    assert (
        "fetched from every node (node0, node1, node2): the same PPA, and 100 kWh of the "
        "reading's solar certificates now consumer_001's"
    ) in out
    assert f"$ powernode ppa show {ppa.group(1)[:16]}.." in out
    assert f"PPA {ppa.group(1)}  active" in out
    assert "delivered 100 of 1000 kWh (10.0%), paid 50.00" in out
    assert re.search(r"    days remaining (29|30)\n", out), out
    dr = re.search(
        r"demand response: demo0 \(grid operator\) escrows 5\.00 in contract ([0-9a-f]{64})", out
    )
    gp = re.search(r"green premium: consumer_001 escrows 2\.00 in contract ([0-9a-f]{64})", out)
    assert dr and gp, out
    assert (
        "fetched from every node (node0, node1, node2): the same two contracts, both executed"
        in out
    )
    assert "demand response: consumer_001 paid 5.00; green premium: producer_001 paid 2.00" in out
    for n in state["nodes"]:
        with RpcClient.from_datadir(d / n["name"]) as c:
            p = c.call("ppa.get", {"id": ppa.group(1)})
            assert (p["seller"], p["buyer"], p["device"], p["share_bps"]) == (
                producer,
                consumer,
                device.group(1),
                int(ppa.group(2)) * 100,
            )
            assert (p["total_wh"], p["delivered_wh"], p["progress_bps"], p["price"]) == (
                1_000_000,
                100_000,
                1_000,
                500_000,
            )
            assert (p["paid"], p["status"], p["duration_days"]) == (50_000_000, "active", 30)
            assert 0 < p["days_remaining"] <= 30
            (delivery,) = p["deliveries"]
            assert (delivery["kind"], delivery["wh"], delivery["cert_wh"]) == (
                "metered",
                100_000,
                100_000,
            )
            moved = c.call("cert.get", {"cert": delivery["cert"]})
            # Retired for consumer_001 by the green-premium part.
            assert (moved["owner"], moved["wh"], moved["status"]) == (consumer, 100_000, "retired")
            assert [s["kind"] for s in c.call("cert.trace", {"cert": delivery["cert"]})["steps"]][
                -1
            ] == "retire"
            for contract in (dr.group(1), gp.group(1)):
                assert c.call("contract.get", {"id": contract})["status"] == "executed"


def test_explorer_shows_the_demo(demo_run: DemoRun, tmp_path: Path) -> None:
    """node0's explorer, in a real headless Chromium, shows what the demo did
    with the values RPC answers; no console error, no request elsewhere."""
    ensure_chromium()
    check_explorer(demo_run.d, demo_run.out, tmp_path / "screenshots")


def test_bench_explorer_runs_on_the_demo_testnet(demo_run: DemoRun) -> None:
    """scripts/bench_explorer.py, two rounds on the demo's testnet, so the
    benchmark cannot rot (its figures are not checked: timings vary)."""
    ensure_chromium()
    r = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_explorer.py"),
            "--dir",
            str(demo_run.d),
            "--loads",
            "2",
            "--wait-quiet",
            "0",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "front page: load event" in r.stdout
    fig = json.loads(r.stdout[r.stdout.index("\n{") + 1 :])
    assert fig["testnet"] == {"started": False, "dir": str(demo_run.d)}
    assert fig["front_page"]["ready"]["median"] >= fig["front_page"]["response_end"]["median"] > 0
    assert fig["requests_elsewhere"] == [] and fig["console_errors"] == []


@dataclass(frozen=True)
class Seen:
    """What the explorer checks need: node0's explorer and RPC, and what the
    demo made (parsed from its output)."""

    x: Explorer
    c: RpcClient
    genesis: ChainParams
    slot: int
    producer: str
    consumer: str
    seller: KeyPair  # producer_001's key (demo1), for the resting asks
    buyer: KeyPair  # consumer_001's key (demo2), for the resting bids
    child: str  # the 40 kWh certificate consumer_001 retired
    ppa: str
    device: str


def check_explorer(d: Path, out: str, shots: Path, pages: Sequence[str] = ()) -> None:
    """The explorer checks, apart from the fixture, so a developer can run
    them (or only the ``pages`` named) against a testnet the demo ran on
    (``d``; ``out`` is what it printed)."""
    state = json.loads((d / "testnet.json").read_text())
    node0 = state["nodes"][0]
    host = f"{node0['host']}:{node0['rpc_port']}"
    child = re.search(
        r"transfers 40 kWh to consumer_001: split off as certificate ([0-9a-f]{64})", out
    )
    ppa = re.search(r"producer_001 proposes PPA ([0-9a-f]{64})", out)
    device = re.search(r"producer_001 registers device ([0-9a-f]{64})", out)
    assert child and ppa and device, out
    with RpcClient.from_datadir(d / "node0") as c, Browser() as b:
        b.allow_downloads(shots / "downloads")
        seen = Seen(
            x=Explorer(b, f"http://{host}/", shots),
            c=c,
            genesis=parse_genesis_json((d / "genesis.json").read_bytes()),
            slot=int(out.split("delivery slot ")[1].split()[0]),
            producer=read_key(d / "keys" / "demo1.key").address.hex(),
            consumer=read_key(d / "keys" / "demo2.key").address.hex(),
            seller=read_key(d / "keys" / "demo1.key"),
            buyer=read_key(d / "keys" / "demo2.key"),
            child=child.group(1),
            ppa=ppa.group(1),
            device=device.group(1),
        )
        try:
            seen.x.open()
            for name, check in EXPLORER_PAGES.items():
                if not pages or name in pages:
                    check(seen)
        except BaseException:
            with contextlib.suppress(Exception):
                seen.x.screenshot("failed")
            raise
        assert [str(e) for e in b.errors()] == []
        # the page talks to node0 only (its page, scripts, RPC and WebSocket)
        elsewhere = [
            u for u in b.requests if not u.startswith((f"http://{host}/", f"ws://{host}/"))
        ]
        assert elsewhere == [], elsewhere


def explorer_home(s: Seen) -> None:
    # The tip, recent blocks (their hashes as RPC has them at those heights),
    # the mempool; live over the WebSocket.
    x, c = s.x, s.c
    x.show("", "home")
    timing = x.browser.navigation_timing()
    print(f"explorer home: load event {timing.load_event:.0f} ms")  # a figure, not a check
    blocks = x.table("blocks")
    assert blocks, "no recent blocks"
    heights = [int(r.value("height")) for r in blocks]
    assert heights == list(range(heights[0], heights[0] - len(heights), -1))
    for r in blocks[-3:]:  # deep enough not to be reorganised meanwhile
        want = c.call("chain.block", {"height": int(r.value("height"))})["hash"]
        assert r.id == r.value("hash") == want
    x.table("mempool")
    # live: subscribed over a WebSocket to the node's /rpc, the next block
    # appears without a reload (the miners are on)
    assert x.base.replace("http://", "ws://", 1) + "rpc" in x.browser.requests
    top = 'document.querySelector(\'#main table[data-table="blocks"] td[data-col="height"]\')'
    x.browser.wait_for(
        f"Number({top}.dataset.value) > {heights[0]}", timeout=120, what="a new block shown live"
    )
    x.screenshot("explorer-home")


def explorer_market(s: Seen) -> None:
    # The seed trade's slot: 50 kWh at 0.55, in the trades table, the trades
    # chart and the statistics; the book as market.book has it (closed at
    # its gate since, where the ask's unsold 50 kWh expired).
    x, c, slot = s.x, s.c, s.slot
    (trade,) = c.call("market.trades", {"product": "spot", "slot": slot})
    stats = c.call("market.stats", {"product": "spot", "slot": slot})
    book = c.call("market.book", {"product": "spot", "slot": slot})
    x.show(f"market/spot/{slot}", "market-slot")
    (row,) = x.table("trades")
    assert row.id == str(trade["seq"])
    assert (row.value("energy"), row.text("energy")) == ("50000", "50 kWh")
    assert row.value("price") == "550000" and row.text("price").startswith("0.55")
    assert (row.value("buyer"), row.value("seller")) == (s.consumer, s.producer)
    for name in (
        "trades",
        "volume_wh",
        "value",
        "avg_price",
        "min_price",
        "max_price",
        "open_orders",
    ):
        assert x.field(name).value == str(stats[name]), name
    assert x.field("volume_wh").text == "50 kWh"
    assert x.field("avg_price").text.startswith("0.55")
    assert x.field("value").text.startswith("27.50")
    # The demo waited for the slot's settlement: the seller's record, as
    # market.settlement gives it.
    settled = c.call("market.settlement", {"slot": slot})
    assert x.field("settlement_pending").value == "false"
    shown = {r.id: r for r in x.table("settlements")}
    assert sorted(shown) == sorted(r["seller"] for r in settled["settlements"]) == [s.producer]
    for rec in settled["settlements"]:
        for col in ("height", "delivered_wh", "paid", "refunded", "penalty", "bundled_wh"):
            assert shown[rec["seller"]].value(col) == str(rec[col]), col
    assert shown[s.producer].text("delivered_wh") == "50 kWh"
    marks, labels = x.chart("trades")
    assert [(m.price, m.energy) for m in marks] == [("550000", "50000")]
    assert labels, "the trades chart has no axis labels"
    depth, depth_labels = x.chart("depth")
    assert depth_labels, "the depth chart has no axis labels"
    for side in ("bids", "asks"):
        levels = [(r.value("price"), r.value("energy")) for r in x.table(side)]
        assert levels == [(str(lv["price"]), str(lv["energy"])) for lv in book[side]], side
    assert sorted((m.price, m.energy) for m in depth) == sorted(
        (str(lv["price"]), str(lv["energy"])) for lv in book["bids"] + book["asks"]
    )
    assert x.field("closed").value == str(book["closed"]).lower()
    x.screenshot("explorer-market-slot")  # the README's trades picture

    x.show("market", "market")
    slots = {r.id: r for r in x.table("slots")}
    assert slots[f"spot/{slot}"].value("trades") == "1"
    assert slots[f"spot/{slot}"].value("volume_wh") == "50000"


def explorer_accounts(s: Seen) -> None:
    # The seller's account: its ask at 0.50 for 100 kWh, 50 sold, the other
    # 50 left (expired at the gate); the buyer's balance, nonces, position
    # and trade as RPC has them.
    x, c = s.x, s.c
    (sell,) = [
        o for o in c.call("market.orders", {"participant": s.producer}) if o["slot"] == s.slot
    ]
    x.show(f"account/{s.producer}", "account")
    ask = {r.id: r for r in x.table("orders")}[sell["id"]]
    assert ask.value("price") == "500000" and ask.text("price").startswith("0.50")
    assert (ask.value("energy"), ask.value("filled")) == ("100000", "50000")
    assert (ask.value("remaining"), ask.value("status")) == (str(sell["remaining"]), sell["status"])

    (trade,) = c.call("market.trades", {"product": "spot", "slot": s.slot})
    x.show(f"account/{s.consumer}", "account")
    account = c.call("account.get", {"address": s.consumer})
    for name in ("balance", "nonce", "next_nonce"):
        assert x.field(name).value == str(account[name]), name
    position = c.call("market.position", {"participant": s.consumer})
    for name in ("bought_wh", "received_wh", "settlement_escrow"):
        assert x.field(name).value == str(position[name]), name
    assert str(trade["seq"]) in [r.id for r in x.table("trades")]
    x.screenshot("explorer-account")


def explorer_block(s: Seen) -> None:
    # The block of the trade: its txs are chain.block's, in order; one of
    # them on its tx page, with its events and raw bytes.
    x, c = s.x, s.c
    (trade,) = c.call("market.trades", {"product": "spot", "slot": s.slot})
    block = c.call("chain.block", {"height": trade["height"]})
    x.show(f"block/{trade['height']}", "block")
    assert (x.field("height").value, x.field("hash").value) == (str(trade["height"]), block["hash"])
    txids = [t if isinstance(t, str) else t["id"] for t in block["txs"]]
    assert [r.id for r in x.table("txs")] == txids
    x.screenshot("explorer-block")

    tx = c.call("tx.get", {"id": trade["buy_id"]})
    x.show(f"tx/{trade['buy_id']}", "tx")
    assert x.field("id").value == trade["buy_id"]
    assert x.field("status").value == tx["status"]
    events = (tx.get("receipt") or {}).get("events", [])
    assert [r.value("event") for r in x.table("events")] == [e["event"] for e in events]
    assert x.field("raw").value == tx["raw"]  # the signed tx, hex


def explorer_cert(s: Seen) -> None:
    # The certificate consumer_001 retired: the whole lineage as cert.tree
    # has it (reading/issue, split, transfer, retire, with cert.trace's
    # energies); its verification; the proof the page saves is a proof of it.
    x, c = s.x, s.c
    tree = c.call("cert.tree", {"cert": s.child})
    verify = c.call("cert.verify", {"cert": s.child})
    x.show(f"cert/{s.child}", "cert")
    shown = x.lineage()
    assert [n.id for n in shown] == [n["id"] for n in tree["nodes"]]
    assert shown[0].parent is None and shown[0].id == tree["root"]
    for n, want in zip(shown, tree["nodes"], strict=True):
        assert n.parent == (want["parent"] or None), n.id
        assert n.wh == str(want["wh"]), n.id
        assert [(st.kind, st.wh) for st in n.steps] == [
            (st["kind"], str(st["wh"])) for st in want["steps"]
        ], n.id
        assert n.current == (n.id == s.child), n.id
    kinds = {st.kind for n in shown for st in n.steps}
    assert {"split", "transfer", "retire"} <= kinds and kinds & {"reading", "issue"}, kinds
    trace = c.call("cert.trace", {"cert": s.child})["steps"]
    (mine,) = [n for n in shown if n.id == s.child]
    assert [(st.kind, st.wh) for st in mine.steps] == [
        (st["kind"], str(st["wh"])) for st in trace if st["cert"] == s.child
    ]
    for name in ("valid", "source", "carbon_intensity", "type", "status", "remaining_wh"):
        want = verify[name]
        assert x.field(name).value == (str(want).lower() if isinstance(want, bool) else str(want))
    assert x.field("valid").text == "yes"
    assert x.field("problems").value in ("", "[]")
    x.screenshot("explorer-cert")

    link = "document.querySelector('[data-action=\"download-proof\"]')"
    saved = x.browser.download(f"{link}.click()")
    assert saved.name == f"cert-{s.child}.proof"
    raw = saved.read_bytes()
    shown_link = x.evaluate(
        f"(() => {{ const a = {link};"
        " return {text: a.textContent, bytes: a.dataset.bytes, height: a.dataset.height}; })()"
    )
    assert shown_link["bytes"] == str(len(raw)), shown_link
    assert shown_link["height"] in shown_link["text"], shown_link
    # what a third party checks offline, as the demo's proofs
    proven = verify_proof(raw, s.genesis)
    assert (proven.cert.owner.hex(), proven.cert.wh, proven.cert.status) == (
        s.consumer,
        40_000,
        "retired",
    )


def explorer_ppa(s: Seen) -> None:
    # The PPA at 10.0%, with the values ppa.get gives.
    x = s.x
    p = s.c.call("ppa.get", {"id": s.ppa})
    x.show(f"ppa/{s.ppa}", "ppa")
    progress = x.field("progress_bps")
    assert (progress.text, progress.value) == ("10.0%", "1000")
    for name in ("delivered_wh", "total_wh", "paid", "status", "days_remaining"):
        assert x.field(name).value == str(p[name]), name
    assert x.evaluate("document.querySelector('#main [data-bar=\"progress\"]') !== null")
    assert [r.id for r in x.table("deliveries")] == [str(dl["seq"]) for dl in p["deliveries"]]
    x.screenshot("explorer-ppa")


def explorer_lists(s: Seen) -> None:
    # The device's readings, the contracts, the peers: as RPC lists them.
    x, c = s.x, s.c
    x.show(f"device/{s.device}", "device")
    readings = c.call("meter.readings", {"device": s.device})
    assert sorted(r.value("produced_wh") for r in x.table("readings")) == sorted(
        str(r["produced_wh"]) for r in readings
    )
    x.show("contracts", "contracts")
    contracts = {r.id: r.value("status") for r in x.table("contracts")}
    assert contracts == {k["id"]: k["status"] for k in c.call("contract.list", {})}
    x.show("peers", "peers")
    peers = [p["node_id"] for p in c.call("peer.list") if p.get("direction") != "banned"]
    assert len(peers) == 2
    assert sorted(r.value("node_id") for r in x.table("peers")) == sorted(peers)
    x.screenshot("explorer-peers")


def explorer_search(s: Seen) -> None:
    # A height, a tx id, an address and a certificate id each land on their
    # page (several matches: a list of them, as search answers); an unknown
    # id finds nothing.
    x, c = s.x, s.c
    (trade,) = c.call("market.trades", {"product": "spot", "slot": s.slot})
    block = c.call("chain.block", {"height": trade["height"]})
    for q, route, name, want in (
        (str(trade["height"]), "block", "hash", block["hash"]),  # its match: the hash
        (trade["sell_id"], "tx", "id", trade["sell_id"]),
        (s.consumer, "account", "address", s.consumer),
        (s.child, "cert", "id", s.child),
    ):
        matches = c.call("search", {"q": q})["matches"]
        assert f"{route}:{want}" in [f"{m['kind']}:{m['id']}" for m in matches], (q, matches)
        # where all matches lead to one page, the page opens it
        if x.search(q, route, "search") == route:
            assert x.field(name).value == want, (q, route)
        else:
            shown = [r.id for r in x.table("matches")]
            assert sorted(shown) == sorted(f"{m['kind']}:{m['id']}" for m in matches), q
    x.search("0x" + "00" * 32, "search")
    assert x.evaluate("document.querySelector('#main [data-field=\"nothing\"]') !== null")


# Resting orders for a book to show (slot chosen in explorer_book): two asks
# of producer_001 at one price and one at another, two bids of consumer_001;
# none crosses. (side, energy Wh, price per kWh in micro-units) each; within
# the two accounts' capacity in a one-minute slot (100 and 50 kWh).
BOOK_ORDERS = (
    ("sell", 20_000, 700_000),
    ("sell", 15_000, 800_000),
    ("sell", 10_000, 800_000),
    ("buy", 20_000, 450_000),
    ("buy", 10_000, 400_000),
)


def confirmed(c: RpcClient, txids: list[str], what: str) -> None:
    """Wait until node0 has every tx in a block, each run ok."""

    def all_in() -> bool:
        st = [c.call("tx.get", {"id": t}) for t in txids]
        assert not [t for t in st if t["status"] == "dropped"], st
        return all(t["status"] == "confirmed" for t in st)

    wait_until(all_in, timeout=180, interval=0.5, what=what)
    for t in txids:
        receipt = c.call("tx.get", {"id": t})["receipt"]
        assert receipt["status"] == "ok", (what, receipt)


def explorer_book(s: Seen) -> None:
    # By now the demo's slot is closed and its book empty: a book to look at
    # is placed here, in a slot several ahead so its gate stays open while
    # the page is read; the orders are cancelled after (the demo's rerun
    # expects no open order of its accounts).
    x, c = s.x, s.c
    chain_id = c.call("node.info")["chain_id"]
    r = c.call("market.params", {"product": "spot"})
    mp = r["products"]["spot"]
    used = {
        o["slot"]
        for who in (s.producer, s.consumer)
        for o in c.call("market.orders", {"participant": who})
    }
    slot = next_slot(
        max(int(time.time()), r["time"]),
        slot_seconds=mp["slot_seconds"],
        gate_closure_seconds=mp["gate_closure_seconds"],
        min_lead_seconds=mp["min_lead_seconds"],
        margin=5 * 60,  # five one-minute testnet slots: room to place, read and cancel
    )
    while slot in used:
        slot += mp["slot_seconds"]
    nonces = {
        key.address: c.call("account.get", {"address": key.address.hex()})["next_nonce"]
        for key in (s.seller, s.buyer)
    }
    placed: list[tuple[KeyPair, str]] = []
    for side, energy, price in BOOK_ORDERS:
        key = s.seller if side == "sell" else s.buyer
        tx = build_order(
            key,
            chain_id=chain_id,
            nonce=nonces[key.address],
            product="spot",
            side=side,
            slot=slot,
            energy_wh=energy,
            price=price,
            source="solar" if side == "sell" else "any",
        )
        nonces[key.address] += 1
        placed.append((key, c.submit(tx)))
    confirmed(c, [t for _, t in placed], "the resting orders confirmed")

    book = c.call("market.book", {"product": "spot", "slot": slot})
    assert not book["closed"], book  # the gate is still ahead
    # what was placed rests there, nothing matched: best price first
    assert [(lv["price"], lv["energy"], lv["orders"]) for lv in book["asks"]] == [
        (700_000, 20_000, 1),
        (800_000, 25_000, 2),
    ], book
    assert [(lv["price"], lv["energy"], lv["orders"]) for lv in book["bids"]] == [
        (450_000, 20_000, 1),
        (400_000, 10_000, 1),
    ], book
    x.show(f"market/spot/{slot}", "market-slot")
    assert x.field("closed").value == "false"
    assert x.field("open_orders").value == str(book["open_orders"]) == str(len(BOOK_ORDERS))
    for side in ("bids", "asks"):
        rows = [(r.value("price"), r.value("energy"), r.value("orders")) for r in x.table(side)]
        assert rows == [
            (str(lv["price"]), str(lv["energy"]), str(lv["orders"])) for lv in book[side]
        ], side
    asks = {r.value("price"): r for r in x.table("asks")}
    assert asks["800000"].text("price").startswith("0.80")
    assert asks["800000"].text("energy") == "25 kWh"
    # The depth chart: a mark per level, each side's energy summed from the
    # best price outwards, the level's order count in its tooltip.
    depth, labels = x.chart("depth")
    assert labels, "the depth chart has no axis labels"
    for side, levels in (("bid", book["bids"]), ("ask", book["asks"])):
        marks = [m for m in depth if m.side == side]
        total, want = 0, []
        for lv in levels:
            total += lv["energy"]
            want.append((str(lv["price"]), str(lv["energy"]), str(total)))
        assert [(m.price, m.energy, m.cumulative) for m in marks] == want, side
        for m, lv in zip(marks, levels, strict=True):
            assert f"({lv['orders']} order" in m.title, (m, lv)
    assert len(depth) == len(book["bids"]) + len(book["asks"])
    x.screenshot("explorer")  # the README's screenshot: a book with both sides

    nonces = {
        key.address: c.call("account.get", {"address": key.address.hex()})["next_nonce"]
        for key in (s.seller, s.buyer)
    }
    cancels = []
    for key, order in placed:
        tx = build_cancel(
            key, chain_id=chain_id, nonce=nonces[key.address], order_id=bytes.fromhex(order)
        )
        nonces[key.address] += 1
        cancels.append(c.submit(tx))
    confirmed(c, cancels, "the resting orders cancelled")
    assert c.call("market.book", {"product": "spot", "slot": slot})["asks"] == []


EXPLORER_PAGES: dict[str, Callable[[Seen], None]] = {
    "home": explorer_home,
    "market": explorer_market,
    "book": explorer_book,
    "accounts": explorer_accounts,
    "block": explorer_block,
    "cert": explorer_cert,
    "ppa": explorer_ppa,
    "lists": explorer_lists,
    "search": explorer_search,
}


# Defined (so run) after the tests that read what the first demo left: this
# one runs the demo again and then stops the miners.
def test_demo_runs_again_then_says_when_nothing_confirms(demo_run: DemoRun) -> None:
    d, out = demo_run.d, demo_run.out
    slot = int(out.split("delivery slot ")[1].split()[0])
    device = re.search(r"producer_001 registers device ([0-9a-f]{64})", out)
    assert device, out
    state = json.loads((d / "testnet.json").read_text())
    # Again on the same testnet (without waiting for a second settlement): a
    # later slot. The first run's leftover ask expired at its gate (one-minute
    # slots), so there is nothing to cancel this time.
    again = demo(d, "--no-settlement", timeout=600)  # the PPA and contracts wait for intervals
    assert again.returncode == 0, again.stdout + again.stderr
    assert "cancelling" not in again.stdout
    assert int(again.stdout.split("delivery slot ")[1].split()[0]) > slot
    assert "trade #1 in block" in again.stdout
    # A new device and meter key each run; the same certificate story.
    assert "trace: issue(reading), split, transfer, retire" in again.stdout
    assert "delivered 100 of 1000 kWh (10.0%), paid 50.00" in again.stdout
    assert device.group(1) not in again.stdout

    # Nothing confirms without miners: a clear message and exit status 1.
    for n in state["nodes"]:
        with RpcClient.from_datadir(d / n["name"]) as c:
            c.call("miner.stop")
    stuck = demo(d, "--timeout", "3")
    assert stuck.returncode == 1
    assert "not confirmed on node0 after 3s" in stuck.stderr, stuck.stderr
    assert "Traceback" not in stuck.stderr


def test_demo_without_a_testnet_says_so(tmp_path: Path) -> None:
    r = demo(tmp_path / "nowhere")
    assert r.returncode == 1
    assert (
        r.stderr.strip()
        == f"demo: no testnet in {tmp_path / 'nowhere'} (start one: scripts/testnet.py up)"
    )
