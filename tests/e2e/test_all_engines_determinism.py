"""Four real node processes, all mining, agree on every engine at once:
transfers, market orders and their settlement against meter readings,
devices and readings, certificates (issued, bundled to a buyer, moved by a
PPA), power purchase agreements and declarative contracts.

The chain trades one-minute slots (gate at the slot's start) and meters
one-minute intervals with a one-minute reading window, as the local testnet
does, so a trade settles two to three minutes after it matches. The txs go
to the four nodes in turn while every node mines (forks and reorgs happen),
in phases where admission needs an earlier phase at the tip. When the slot
has settled and the miners have stopped, the nodes must hold one tip and one
state root, and the same answers from every query of every engine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from powernode.client import RpcClient, RpcError
from powernode.core import encoding
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction, sign_tx
from powernode.devnet.devchain import TESTNET_MARKETS, dev_genesis
from powernode.devnet.wait import wait_until
from tests.e2e.test_cert_determinism import FEE, root_cert_id, send
from tests.e2e.test_market_determinism import TARGET, confirmed, converge, height
from tests.harness.procnet import ProcessNetwork

pytestmark = pytest.mark.e2e

CHAIN_ID = "powernode-all-e2e"
SLOT = 60
INTERVAL = 60
WINDOW = 60
KWH = 1000
FUNDS = 10_000 * 1_000_000
CAPACITY_W = 6_000_000  # 100 kWh a minute
AUTHORITY = KeyPair.from_seed(sha256(b"all-e2e-authority"))
PRODUCERS = [KeyPair.from_seed(sha256(b"all-e2e-producer-%d" % i)) for i in range(2)]
CONSUMERS = [KeyPair.from_seed(sha256(b"all-e2e-consumer-%d" % i)) for i in range(2)]
METERS = [KeyPair.from_seed(sha256(b"all-e2e-meter-%d" % i)) for i in range(2)]
CMETERS = [KeyPair.from_seed(sha256(b"all-e2e-cmeter-%d" % i)) for i in range(2)]
PRICE = 500_000  # 0.50 per kWh
CONTRACT_FEE = 10_000  # above the contracts' minimum for one condition and one action


class Txs:
    """Signed txs per phase, each sender's nonces in order across phases."""

    def __init__(self) -> None:
        self.nonces: dict[bytes, int] = {}
        self.phase: list[Transaction] = []

    def add(self, key: KeyPair, tx_type: str, payload: list[Any], *, fee: int = FEE) -> Transaction:
        nonce = self.nonces.get(key.address, 0)
        tx = sign_tx(key, chain_id=CHAIN_ID, tx_type=tx_type, nonce=nonce, fee=fee, payload=payload)
        self.nonces[key.address] = nonce + 1
        self.phase.append(tx)
        return tx

    def take(self) -> list[Transaction]:
        txs, self.phase = self.phase, []
        return txs


def reading(device: bytes, meter: KeyPair, start: int, produced: int, consumed: int) -> list[Any]:
    msg = encoding.encode(["powernode-reading", CHAIN_ID, device, start, produced, consumed])
    return [device, start, produced, consumed, meter.pubkey, meter.sign(msg)]


@pytest.fixture
def net(tmp_path: Path) -> Iterator[ProcessNetwork]:
    doc = dev_genesis(
        {k.address: FUNDS for k in [AUTHORITY, *PRODUCERS, *CONSUMERS]},
        target=TARGET,
        chain_id=CHAIN_ID,
        block_time=1,
        timestamp=int(time.time()) - 600,
        markets=TESTNET_MARKETS,
    )
    doc["certificates"] = {
        "authorities": [AUTHORITY.address.hex()],
        "interval_seconds": INTERVAL,
        "reading_window": WINDOW,
        "validity": 7 * 86_400,
    }
    with ProcessNetwork(tmp_path, doc, 4) as network:
        network.start()
        yield network


def chain_now(c: RpcClient) -> int:
    return int(c.call("cert.params")["now"])


def view(c: RpcClient, ids: dict[str, list[bytes]]) -> dict[Any, Any]:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("market.trades", {"limit": 1000}),
        ("market.settlement", {}),
        ("market.stats", {}),
        ("device.list", {}),
        ("cert.list", {}),
        ("ppa.list", {}),
        ("contract.list", {}),
    ]
    calls += [("ppa.get", {"id": p.hex()}) for p in ids["ppas"]]
    calls += [("contract.get", {"id": x.hex()}) for x in ids["contracts"]]
    calls += [("meter.readings", {"device": d.hex()}) for d in ids["devices"]]
    for k in [*PRODUCERS, *CONSUMERS]:
        addr = k.address.hex()
        calls += [
            ("account.get", {"address": addr}),
            ("market.position", {"participant": addr}),
            ("cert.list", {"owner": addr}),
        ]
    results = c.batch(calls)
    errors = [
        (m, p, r) for (m, p), r in zip(calls, results, strict=True) if isinstance(r, RpcError)
    ]
    assert not errors, errors
    out = {(m, *sorted(p.items())): r for (m, p), r in zip(calls, results, strict=True)}
    for cert in out[("cert.list",)]:
        out[("cert.trace", cert["id"])] = c.call("cert.trace", {"cert": cert["id"]})
    return out


def test_four_mining_nodes_agree_on_every_engine(net: ProcessNetwork) -> None:
    w = Txs()
    cs = net.clients()
    all_txs: list[Transaction] = []

    def phase(offset: int) -> None:
        txs = w.take()
        send(net, cs, txs, offset)
        all_txs.extend(txs)

    try:
        for c in cs:
            c.call("miner.start")
        # 1. participants, devices, a transfer
        devices, cdevices = [], []
        for i, (p, k) in enumerate(zip(PRODUCERS, CONSUMERS, strict=True)):
            w.add(p, "participant.register", ["producer", f"zone-{i}", CAPACITY_W])
            w.add(k, "participant.register", ["consumer", f"zone-{i}", CAPACITY_W])
            d = w.add(
                p,
                "device.register",
                ["generation", "solar", CAPACITY_W, f"zone-{i}", 40, METERS[i].pubkey],
            )
            cd = w.add(
                k,
                "device.register",
                ["consumption", "none", CAPACITY_W, f"zone-{i}", 0, CMETERS[i].pubkey],
            )
            devices.append(d.txid)
            cdevices.append(cd.txid)
            w.add(p, "transfer", [k.address, 1_000_000])
        phase(0)

        # 2. approvals, PPAs (device-bound, 30% of production), contracts
        for dev_id in devices + cdevices:
            w.add(AUTHORITY, "device.approve", [dev_id])
        now = chain_now(cs[0])
        ppas, contracts = [], []
        for i, (p, k) in enumerate(zip(PRODUCERS, CONSUMERS, strict=True)):
            tx = w.add(
                p,
                "ppa.propose",
                [k.address, devices[i], 3000, 1000 * KWH, PRICE, now, 30, 86_400, now + 900],
            )
            ppas.append(tx.txid)
            # A demand-response style reward: pays the consumer once a time has passed.
            terms = [[k.address, p.address], 5_000_000, now + 3600]
            terms += [[["after", now + 30]], [["pay", k.address, 2_000_000]]]
            ctx = w.add(p, "contract.create", terms, fee=CONTRACT_FEE)
            contracts.append(ctx.txid)
        phase(1)

        # 3. PPAs accepted, orders for the next slot that is still open
        for k, ppa in zip(CONSUMERS, ppas, strict=True):
            w.add(k, "ppa.accept", [ppa])
        now = chain_now(cs[0])
        # The next slot whose gate (its start) leaves 20 s for the orders.
        slot = -(-(now + 20) // SLOT) * SLOT
        for i, (p, k) in enumerate(zip(PRODUCERS, CONSUMERS, strict=True)):
            w.add(p, "order.place", ["spot", "sell", slot, 20 * KWH, 400_000, "solar", 0, "GTC"])
            w.add(
                k,
                "order.place",
                ["spot", "buy", slot, (10 + 5 * i) * KWH, 600_000, "any", 0, "GTC"],
            )
        phase(2)

        # 4. readings of the slot's interval once it has ended (production for
        # the PPA share and the trades; consumption), then the contracts run
        wait_until(lambda: chain_now(cs[0]) >= slot + INTERVAL, timeout=240, what="the slot ends")
        for i, (p, k) in enumerate(zip(PRODUCERS, CONSUMERS, strict=True)):
            w.add(p, "meter.report", reading(devices[i], METERS[i], slot, (20 + 10 * i) * KWH, 0))
            w.add(k, "meter.report", reading(cdevices[i], CMETERS[i], slot, 0, 15 * KWH))
        for x in contracts:
            w.add(CONSUMERS[0], "contract.execute", [x], fee=CONTRACT_FEE)
        phase(3)

        # 5. the slot settles (by block time, once its reading window has passed)
        def settled() -> bool:
            trades = cs[0].call("market.trades", {"limit": 1000})
            return bool(trades) and all(t["status"] != "confirmed" for t in trades)

        wait_until(settled, timeout=240, what="the slot's trades settled")
        # certificate moves on what is left with the producers
        for i, p in enumerate(PRODUCERS):
            cert = cs[0].call("cert.get", {"cert": root_cert_id(devices[i], slot).hex()})
            if cert["remaining_wh"] > KWH and cert["owner"] == p.address.hex():
                w.add(
                    p, "cert.retire", [bytes.fromhex(cert["id"]), KWH, f"p{i}", "", slot, slot + 60]
                )
        phase(0)

        for c in cs:
            c.call("miner.stop")
        converge(net, cs[0])
        tips = net.tips()
        assert len(set(tips)) == 1, tips
        txids = [tx.txid.hex() for tx in all_txs]
        receipts = [confirmed(c, txids) for c in cs]
        assert receipts[0] is not None
        assert all(r == receipts[0] for r in receipts), "nodes disagree on blocks or receipts"
        failed = [
            (r["tx"]["type"], r["receipt"]) for r in receipts[0] if r["receipt"]["status"] != "ok"
        ]
        assert not failed, failed

        ids = {"ppas": ppas, "contracts": contracts, "devices": devices + cdevices}
        views = [view(c, ids) for c in cs]
        for i, v in enumerate(views[1:], 1):
            diff = sorted(str(k) for k in v if v[k] != views[0][k])
            assert not diff, f"node{i} differs from node0 in {diff}"

        v = views[0]
        trades = v[("market.trades", ("limit", 1000))]
        assert trades and {t["status"] for t in trades} <= {"completed", "partial", "undelivered"}
        assert sum(t["bundled_wh"] for t in trades) > 0  # certificates went with the energy
        for ppa in ppas:
            got = v[("ppa.get", ("id", ppa.hex()))]
            assert got["status"] == "active" and got["delivered_wh"] > 0, got
        for x in contracts:
            assert v[("contract.get", ("id", x.hex()))]["status"] == "executed"
        kinds = {s["kind"] for key, t in v.items() if key[0] == "cert.trace" for s in t["steps"]}
        assert {"reading", "bundle", "ppa"} <= kinds, kinds
        reorgs = sum(node.log_text().count("chain.reorg") for node in net.nodes)
        print(f"height {height(cs[0])}, {reorgs} reorgs, {len(all_txs)} txs, {len(trades)} trades")
    finally:
        for c in cs:
            c.close()
