"""Four real node processes, all mining, agree on devices, readings and
certificates under a mixed workload.

Transfers, market registrations and orders, device registrations and
approvals, signed meter readings (each relayed to a different node than its
owner's other txs; half of them in ``meter.batch`` txs of every device's
reading of an interval, relayed by a consumer as a data hub), certificate splits, transfers and retirements go over RPC
to the four nodes in turn while every node mines (forks and reorgs happen).
When every tx is confirmed and the miners have stopped, the nodes must hold
one tip and one state root, and the same answers from every device, reading
and certificate query, traces included.

The workload runs in phases, because admission checks a device's status and
a certificate's owner at the tip: registrations, then approvals, then
readings with orders and transfers, then certificate moves on what the
readings issued. Every tx is chosen to succeed whatever block it lands in.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from powernode.client import RpcClient, RpcError
from powernode.core import encoding
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction, sign_tx
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.wait import wait_until
from powernode.devnet.workload import root_cert_id
from tests.e2e.test_market_determinism import (
    MARKETS,
    TARGET,
    buried,
    confirmed,
    converge,
    height,
)
from tests.harness.procnet import ProcessNetwork

pytestmark = pytest.mark.e2e

CHAIN_ID = "powernode-cert-e2e"
INTERVAL = 900
FUNDS = 10_000 * 1_000_000
FEE = 1000
KWH = 1000
AUTHORITY = KeyPair.from_seed(sha256(b"cert-e2e-authority"))
PRODUCERS = [KeyPair.from_seed(sha256(b"cert-e2e-producer-%d" % i)) for i in range(3)]
CONSUMERS = [KeyPair.from_seed(sha256(b"cert-e2e-consumer-%d" % i)) for i in range(3)]
METERS = [KeyPair.from_seed(sha256(b"cert-e2e-meter-%d" % i)) for i in range(len(PRODUCERS))]
# A device on the consumption side for each consumer, so cert.cfe has data.
CONSUMER_METERS = [KeyPair.from_seed(sha256(b"cert-e2e-cmeter-%d" % i)) for i in range(3)]
SOURCES = ["solar", "wind", "hydro"]
CAPACITY_W = 1_000_000  # 250 kWh per 15-minute interval
READINGS_PER_DEVICE = 4
BATCHED = 2  # intervals whose readings all go in one meter.batch
WAVE = 12


def reading_message(device: bytes, interval: int, produced: int, consumed: int) -> bytes:
    return encoding.encode(["powernode-reading", CHAIN_ID, device, interval, produced, consumed])


def child_cert_id(parent: bytes, txid: bytes) -> bytes:
    return sha256(b"powernode-cert-split" + parent + txid)


class Workload:
    """Signed txs per phase, each sender's nonces in order across phases."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.nonces: dict[bytes, int] = {}
        self.phase: list[Transaction] = []

    def add(self, key: KeyPair, tx_type: str, payload: list[Any]) -> Transaction:
        nonce = self.nonces.get(key.address, 0)
        tx = sign_tx(key, chain_id=CHAIN_ID, tx_type=tx_type, nonce=nonce, fee=FEE, payload=payload)
        self.nonces[key.address] = nonce + 1
        self.phase.append(tx)
        return tx

    def take(self) -> list[Transaction]:
        txs, self.phase = self.phase, []
        return txs


@pytest.fixture
def net(tmp_path: Path) -> Iterator[ProcessNetwork]:
    everyone = [AUTHORITY, *PRODUCERS, *CONSUMERS]
    doc = dev_genesis(
        {k.address: FUNDS for k in everyone},
        target=TARGET,
        chain_id=CHAIN_ID,
        block_time=1,
        # Intervals before now have ended: readings for the last hours are
        # inside the window.
        timestamp=int(time.time()) - 4 * 3600,
        markets=MARKETS,
    )
    doc["certificates"] = {
        "authorities": [AUTHORITY.address.hex()],
        "interval_seconds": INTERVAL,
        "reading_window": 86_400,
        "validity": 30 * 86_400,
    }
    with ProcessNetwork(tmp_path, doc, 4) as network:
        network.start()
        yield network


def send(net: ProcessNetwork, cs: list[RpcClient], txs: list[Transaction], offset: int) -> None:
    """Round robin over the nodes in waves with blocks between them; wait
    until every node has every tx under a block (the next phase may go to
    any node and need these txs)."""
    for start in range(0, len(txs), WAVE):
        target = height(cs[0]) + 1
        for i in range(start, min(start + WAVE, len(txs))):
            c = cs[(i + offset) % len(cs)]
            assert c.submit(txs[i]) == txs[i].txid.hex()
        wait_until(lambda: height(cs[0]) >= target, timeout=30, what="a block between waves")  # noqa: B023
    ids = [tx.txid.hex() for tx in txs]
    wait_until(lambda: buried(cs, ids), timeout=90, what="every tx of the phase on every node")


def cert_view(
    c: RpcClient, devices: list[bytes], certs: list[bytes], span: tuple[int, int]
) -> dict[Any, Any]:
    calls: list[tuple[str, dict[str, Any]]] = [
        ("device.list", {}),
        ("cert.list", {}),
        ("market.stats", {}),
    ]
    calls += [("device.get", {"device": d.hex()}) for d in devices]
    calls += [("meter.readings", {"device": d.hex()}) for d in devices]
    for cid in certs:
        calls += [
            ("cert.get", {"cert": cid.hex()}),
            ("cert.trace", {"cert": cid.hex()}),
            ("cert.verify", {"cert": cid.hex()}),
        ]
    for k in [*PRODUCERS, *CONSUMERS]:
        calls += [
            ("cert.list", {"owner": k.address.hex()}),
            ("account.get", {"address": k.address.hex()}),
            ("cert.cfe", {"participant": k.address.hex(), "start": span[0], "end": span[1]}),
        ]
    results = c.batch(calls)
    errors = [
        (m, p, r) for (m, p), r in zip(calls, results, strict=True) if isinstance(r, RpcError)
    ]
    assert not errors, errors
    return {(m, *sorted(p.items())): r for (m, p), r in zip(calls, results, strict=True)}


def test_four_mining_nodes_agree_on_devices_readings_and_certificates(
    net: ProcessNetwork,
) -> None:
    seed = int(os.environ.get("POWERNODE_TEST_SEED", random.randrange(1 << 30)))
    print(f"random seed {seed}")
    rng = random.Random(seed)
    w = Workload(rng)
    cs = net.clients()
    all_txs: list[Transaction] = []
    try:
        for c in cs:
            c.call("miner.start")

        # 1. participants and devices (pending)
        devices: list[bytes] = []
        for i, p in enumerate(PRODUCERS):
            w.add(p, "participant.register", ["producer", f"zone-{i}", CAPACITY_W])
            tx = w.add(
                p,
                "device.register",
                ["generation", SOURCES[i], CAPACITY_W, f"zone-{i}", 20 + 60 * i, METERS[i].pubkey],
            )
            devices.append(tx.txid)
        consumer_devices: list[bytes] = []
        for i, k in enumerate(CONSUMERS):
            w.add(k, "participant.register", ["consumer", f"zone-{i}", CAPACITY_W])
            tx = w.add(
                k,
                "device.register",
                ["consumption", "none", CAPACITY_W, f"zone-{i}", 0, CONSUMER_METERS[i].pubkey],
            )
            consumer_devices.append(tx.txid)
        phase = w.take()
        send(net, cs, phase, 0)
        all_txs += phase

        # 2. approvals
        for d in devices + consumer_devices:
            w.add(AUTHORITY, "device.approve", [d])
        phase = w.take()
        send(net, cs, phase, 1)
        all_txs += phase

        # 3. readings (relayed by their owners to rotating nodes), orders, transfers
        now = int(time.time())
        last_ended = (now // INTERVAL - 1) * INTERVAL
        intervals = [last_ended - INTERVAL * j for j in range(READINGS_PER_DEVICE)]
        # The older half of the intervals go as meter.report txs; each
        # interval of the newer half as one meter.batch of every device's
        # reading, relayed by a consumer acting as a data hub.
        reported, batched = intervals[BATCHED:], intervals[:BATCHED]
        roots: list[tuple[int, bytes, int]] = []  # (producer, cert id, wh)
        entries: dict[int, list[list[Any]]] = {t: [] for t in batched}
        for i, (p, d) in enumerate(zip(PRODUCERS, devices, strict=True)):
            for t in intervals:
                produced = rng.randint(1, 250) * KWH
                msg = reading_message(d, t, produced, 0)
                entry = [d, produced, 0, METERS[i].pubkey, METERS[i].sign(msg)]
                if t in entries:
                    entries[t].append(entry)
                else:
                    w.add(p, "meter.report", [entry[0], t, *entry[1:]])
                roots.append((i, root_cert_id(d, t), produced))
            w.add(p, "transfer", [CONSUMERS[i].address, rng.randint(1, 5) * 1_000_000])
        for i, (k, d) in enumerate(zip(CONSUMERS, consumer_devices, strict=True)):
            for t in intervals:
                consumed = rng.randint(0, 200) * KWH
                msg = reading_message(d, t, 0, consumed)
                meter = CONSUMER_METERS[i]
                entry = [d, 0, consumed, meter.pubkey, meter.sign(msg)]
                if t in entries:
                    entries[t].append(entry)
                else:
                    w.add(k, "meter.report", [entry[0], t, *entry[1:]])
        batches = [
            w.add(CONSUMERS[j % len(CONSUMERS)], "meter.batch", [t, sorted(entries[t])])
            for j, t in enumerate(batched)
        ]
        assert len(reported) + len(batches) == READINGS_PER_DEVICE
        slot = -(-(now + 900 + 300) // 900) * 900
        for i, p in enumerate(PRODUCERS):
            w.add(p, "order.place", ["spot", "sell", slot, 5 * KWH, 100_000, SOURCES[i], 0, "GTC"])
        for k in CONSUMERS:
            w.add(k, "order.place", ["spot", "buy", slot, 5 * KWH, 300_000, "any", 0, "GTC"])
        phase = w.take()
        send(net, cs, phase, 2)
        all_txs += phase

        # 4. certificate moves by the producers: a split to a consumer, a
        # retirement of the whole, or a whole transfer
        certs = [cid for _, cid, _ in roots]
        received: list[tuple[int, bytes, int]] = []  # (consumer, child id, wh)
        for i, cid, wh in roots:
            producer, consumer = PRODUCERS[i], CONSUMERS[i]
            choice = rng.random()
            if choice < 0.5 and wh > 2 * KWH:
                part = rng.randint(2, wh // KWH - 1) * KWH
                tx = w.add(producer, "cert.transfer", [cid, consumer.address, part])
                child = child_cert_id(cid, tx.txid)
                certs.append(child)
                received.append((i, child, part))
            elif choice < 0.8:
                w.add(producer, "cert.retire", [cid, wh, f"producer-{i}", "", intervals[-1], now])
            else:
                w.add(producer, "cert.transfer", [cid, consumer.address, wh])
        phase = w.take()
        send(net, cs, phase, 3)
        all_txs += phase

        # 5. the consumers retire part of what they received (a second split);
        # a separate phase, as admission needs the child at the tip
        for i, child, part in received:
            share = rng.randint(1, part // KWH - 1) * KWH
            rt = w.add(
                CONSUMERS[i],
                "cert.retire",
                [child, share, f"beneficiary-{i}", "scope 2", intervals[-1], now],
            )
            certs.append(child_cert_id(child, rt.txid))
        phase = w.take()
        if phase:
            send(net, cs, phase, 0)
            all_txs += phase

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

        all_devices = devices + consumer_devices
        span = (intervals[-1], last_ended + INTERVAL)
        views = [cert_view(c, all_devices, certs, span) for c in cs]
        for i, v in enumerate(views[1:], 1):
            diff = sorted(str(k) for k in v if v[k] != views[0][k])
            assert not diff, f"node{i} differs from node0 in {diff}"

        v = views[0]
        # Every production reading issued its certificate, and the
        # certified energy of each root lineage is exactly what was metered.
        for _, cid, wh in roots:
            cert = v[("cert.get", ("cert", cid.hex()))]
            assert cert["wh"] == wh, cert
        issued = sum(c["wh"] for c in v[("cert.list",)] if not c.get("parent"))
        assert issued == sum(wh for _, _, wh in roots)
        assert len(v[("cert.list",)]) == len(certs)
        for cid in certs:
            trace = v[("cert.trace", ("cert", cid.hex()))]
            assert trace["steps"][0]["kind"] == "reading", trace
        for d in all_devices:
            assert len(v[("meter.readings", ("device", d.hex()))]) == READINGS_PER_DEVICE
        # every entry of every batch became a reading (none skipped)
        batch_txids = {b.txid.hex() for b in batches}
        in_batches = [
            r for d in all_devices for r in v[("meter.readings", ("device", d.hex()))]
            if r["txid"] in batch_txids
        ]  # fmt: skip
        assert len(in_batches) == BATCHED * len(all_devices)
        # Consumers retired certificate energy of the intervals they consumed in.
        cfe = [
            v[("cert.cfe", ("end", span[1]), ("participant", k.address.hex()), ("start", span[0]))]
            for k in CONSUMERS
        ]
        assert any(x["retired_wh"] > 0 for x in cfe) == bool(received), cfe
        reorgs = sum(node.log_text().count("chain.reorg") for node in net.nodes)
        print(f"height {height(cs[0])}, {reorgs} reorgs, {len(all_txs)} txs, {len(certs)} certs")
    finally:
        for c in cs:
            c.close()
