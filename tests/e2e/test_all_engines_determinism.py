"""Four real node processes, all mining, agree on every engine at once:
transfers, market orders and their settlement against meter readings,
devices and readings (production in a ``meter.batch``), certificates (issued, bundled to a buyer, moved by a
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
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction
from powernode.devnet import workload
from powernode.devnet.devchain import TESTNET_MARKETS, dev_genesis
from powernode.devnet.wait import wait_until
from powernode.devnet.workload import KWH, Parties, Signer
from tests.e2e.test_cert_determinism import send
from tests.e2e.test_market_determinism import TARGET, confirmed, converge, height
from tests.harness.procnet import ProcessNetwork

# Minutes of waiting on the chain's clock: handed out first (tests/conftest.py).
pytestmark = [pytest.mark.e2e, pytest.mark.minutes]

CHAIN_ID = "powernode-all-e2e"
SLOT = 60
INTERVAL = 60
WINDOW = 60
FUNDS = 10_000 * 1_000_000
AUTHORITY = KeyPair.from_seed(sha256(b"all-e2e-authority"))
PRODUCERS = [KeyPair.from_seed(sha256(b"all-e2e-producer-%d" % i)) for i in range(2)]
CONSUMERS = [KeyPair.from_seed(sha256(b"all-e2e-consumer-%d" % i)) for i in range(2)]
METERS = [KeyPair.from_seed(sha256(b"all-e2e-meter-%d" % i)) for i in range(2)]
CMETERS = [KeyPair.from_seed(sha256(b"all-e2e-cmeter-%d" % i)) for i in range(2)]
PARTIES = Parties(
    authority=AUTHORITY, producers=PRODUCERS, consumers=CONSUMERS, meters=METERS, cmeters=CMETERS
)


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
    w = Signer(CHAIN_ID)
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
        devs = workload.register(w, PARTIES)
        phase(0)

        # 2. approvals, PPAs (device-bound, 30% of production), contracts
        ppas, contracts = workload.agree(w, PARTIES, devs, chain_now(cs[0]))
        phase(1)

        # 3. PPAs accepted, orders for the next slot that is still open
        # (its gate, the slot's start, leaves 20 s for the orders)
        slot = workload.next_slot(chain_now(cs[0]), 20, SLOT)
        workload.accept_and_order(w, PARTIES, ppas, slot)
        phase(2)

        # 4. readings of the slot's interval once it has ended (production for
        # the PPA share and the trades, in one meter.batch a consumer relays;
        # consumption, one meter.report each), then the contracts run
        # (on every node: the readings go to all of them, and a node whose
        # tip is older would refuse them as interval_not_ended)
        wait_until(
            lambda: min(chain_now(c) for c in cs) >= slot + INTERVAL,
            timeout=240,
            what="the slot ends",
        )
        workload.report(w, PARTIES, devs, slot, contracts, CONSUMERS[0], batched=True)
        phase(3)

        # 5. the slot settles (by block time, once its reading window has passed)
        def settled() -> bool:
            trades = cs[0].call("market.trades", {"limit": 1000})
            return bool(trades) and all(t["status"] != "confirmed" for t in trades)

        wait_until(settled, timeout=240, what="the slot's trades settled")
        # certificate moves on what is left with the producers
        for i, p in enumerate(PRODUCERS):
            cert = cs[0].call(
                "cert.get", {"cert": workload.root_cert_id(devs.production[i], slot).hex()}
            )
            if cert["remaining_wh"] > KWH and cert["owner"] == p.address.hex():
                workload.retire(w, p, bytes.fromhex(cert["id"]), KWH, f"p{i}", slot)
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

        ids = {"ppas": ppas, "contracts": contracts, "devices": devs.all()}
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
        # one tx (the batch) carried every production reading
        carriers = {
            r["txid"] for d in devs.production for r in v[("meter.readings", ("device", d.hex()))]
        }
        assert len(carriers) == 1, carriers
        kinds = {s["kind"] for key, t in v.items() if key[0] == "cert.trace" for s in t["steps"]}
        assert {"reading", "bundle", "ppa"} <= kinds, kinds
        reorgs = sum(node.log_text().count("chain.reorg") for node in net.nodes)
        print(f"height {height(cs[0])}, {reorgs} reorgs, {len(all_txs)} txs, {len(trades)} trades")
    finally:
        for c in cs:
            c.close()
