"""scripts/demo.py against a real 3-node testnet started with scripts/testnet.py,
as scripts/quickstart runs it: mining on, default difficulty."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from powernode.client import RpcClient, read_key
from powernode.state.certproof import verify_proof
from powernode.state.genesis import parse_genesis_json
from tests.e2e.test_testnet import run_testnet

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def demo(d: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(d), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def net3(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "tn"
    run_testnet("up", "--nodes", "3", d=d)
    try:
        yield d
    finally:
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "testnet.py"), "down", "--dir", str(d)],
            capture_output=True,
            timeout=120,
        )


def test_demo_trades_and_every_node_agrees(net3: Path) -> None:
    d = net3
    genesis = json.loads((d / "genesis.json").read_text())
    assert all((m["open_hour"], m["close_hour"]) == (0, 24) for m in genesis["markets"].values()), (
        genesis["markets"]
    )
    r = demo(d, timeout=600)  # the trade's settlement waits for its slot and window
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
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
    assert "cannot prove:" in out and "that no tx after the tip" in out
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
