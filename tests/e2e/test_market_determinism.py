"""Four real node processes, all mining, agree on every market outcome.

A seeded workload of registrations, orders and cancels (two spot slots and
one forward slot) goes over RPC to the four nodes in turn, so a sender's txs
reach different nodes and travel by gossip, while every node mines (forks and
reorgs happen). When every tx is confirmed and the miners have stopped, the
nodes must hold one tip, one state root, and identical books, trades,
statistics, orders and balances through the market RPC methods.

Cancels only target "deep" orders, priced where nothing trades, so every
tx is admitted and succeeds whatever order the blocks put them in; a crossing
buy and sell in each book that are never cancelled make sure trades happen.
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
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction, sign_tx
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.wait import WaitTimeout, wait_until
from tests.harness.procnet import ProcessNetwork

pytestmark = pytest.mark.e2e

CHAIN_ID = "powernode-market-e2e"
# Several blocks a second from four miners sharing two cores: forks happen.
TARGET = format((1 << 256) // 10_000, "064x")
ALWAYS_OPEN = {"open_hour": 0, "close_hour": 24}
MARKETS = {
    "spot": ALWAYS_OPEN | {"buyer_fee_bps": 10, "seller_fee_bps": 5},
    "forward": ALWAYS_OPEN,
    "reserve": ALWAYS_OPEN,
}
KWH = 1000
TICK = 10_000  # 0.01 per kWh
FUNDS = 10_000 * 1_000_000
CAPACITY_W = 4_000_000  # 1,000 kWh per 15-minute slot
ROLES = ["producer", "producer", "producer", "consumer", "consumer", "consumer"]
ROLES += ["prosumer", "prosumer"]
KEYS = [KeyPair.from_seed(sha256(b"market-e2e-%d" % i)) for i in range(len(ROLES))]
ORDERS = 80
WAVE = 12  # txs submitted between blocks
FEE = 1000


def slots(now: int) -> list[tuple[str, int]]:
    """Two spot slots whose gates are minutes away, one forward slot two days out."""
    first = -(-(now + 300 + 600) // 900) * 900
    return [("spot", first), ("spot", first + 900), ("forward", first + 2 * 86_400)]


class Workload:
    """Signed txs in submission order; each sender's nonces in order."""

    def __init__(self, rng: random.Random, keys: list[KeyPair], books: list[tuple[str, int]]):
        self.rng, self.keys, self.books = rng, keys, books
        self.nonces = [0] * len(keys)
        self.txs: list[Transaction] = []
        self.deep: list[tuple[int, bytes]] = []  # (owner, order id) of orders nothing can fill
        self.cancelled = 0

    def add(self, who: int, tx_type: str, payload: list[Any]) -> Transaction:
        key = self.keys[who]
        tx = sign_tx(
            key,
            chain_id=CHAIN_ID,
            tx_type=tx_type,
            nonce=self.nonces[who],
            fee=FEE,
            payload=payload,
        )
        self.nonces[who] += 1
        self.txs.append(tx)
        return tx

    def order(
        self,
        who: int,
        book: tuple[str, int],
        side: str,
        kwh: int,
        ticks: int,
        *,
        tif: str = "GTC",
        source: str | None = None,
    ) -> Transaction:
        if source is None:
            source = "any" if side == "buy" else self.rng.choice(("solar", "wind"))
        product, slot = book
        payload = [product, side, slot, kwh * KWH, ticks * TICK, source, 0, tif]
        return self.add(who, "order.place", payload)

    def build(self) -> None:
        rng = self.rng
        for who, role in enumerate(ROLES):
            self.add(who, "participant.register", [role, f"zone-{who % 3}", CAPACITY_W])
        sellers = [i for i, r in enumerate(ROLES) if r != "consumer"]
        buyers = [i for i, r in enumerate(ROLES) if r != "producer"]
        for book in self.books:  # a crossing pair per book, never cancelled
            self.order(rng.choice(buyers), book, "buy", 5, 30)
            self.order(rng.choice([0, 1, 2]), book, "sell", 5, 10)
        for _ in range(ORDERS):
            book = rng.choice(self.books)
            side = rng.choice(("buy", "sell"))
            who = rng.choice(buyers if side == "buy" else sellers)
            if rng.random() < 0.25 and self.deep and self.cancelled < len(self.deep):
                owner, oid = self.deep[self.cancelled]
                self.cancelled += 1
                self.add(owner, "order.cancel", [oid])
            elif rng.random() < 0.3:  # deep: buys below 0.10, sells above 0.30
                ticks = rng.randint(3, 9) if side == "buy" else rng.randint(31, 40)
                tx = self.order(who, book, side, rng.randint(1, 20), ticks)
                self.deep.append((who, tx.txid))
            else:
                tif = "IOC" if rng.random() < 0.15 else "GTC"
                source = "solar" if side == "buy" and rng.random() < 0.15 else None
                ticks = rng.randint(10, 30)
                self.order(who, book, side, rng.randint(1, 20), ticks, tif=tif, source=source)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[ProcessNetwork]:
    doc = dev_genesis(
        {k.address: FUNDS for k in KEYS},
        target=TARGET,
        chain_id=CHAIN_ID,
        block_time=1,
        timestamp=int(time.time()) - 60,
        markets=MARKETS,
    )
    with ProcessNetwork(tmp_path, doc, 4) as network:
        network.start()
        yield network


def confirmed(c: RpcClient, txids: list[str]) -> list[dict[str, Any]] | None:
    got = c.batch([("tx.get", {"id": t}) for t in txids])
    if any(isinstance(g, RpcError) or g["status"] != "confirmed" for g in got):
        return None
    return got


def buried(cs: list[RpcClient], txids: list[str], depth: int = 2) -> bool:
    """Every node has every tx on its main chain under ``depth - 1`` blocks.
    With several miners a node may sit on a rival block for a while, and a
    tip may be reorged away: a next phase whose txs need these (another
    account's device, PPA or certificate) is refused by a node without them."""
    for c in cs:
        got = confirmed(c, txids)
        if got is None or any((g["confirmations"] or 0) < depth for g in got):
            return False
    return True


def height(c: RpcClient) -> int:
    return int(c.call("node.info")["height"])


def converge(net: ProcessNetwork, c: RpcClient) -> None:
    """With the miners stopped, blocks found at the last moment may leave the
    nodes on rival tips of equal work (ties go to the first seen). Mine on
    one node's tip until every node has adopted the same one."""
    for attempt in range(4):
        c.call("dev.mine", {"blocks": 1})
        try:
            wait_until(lambda: len(set(net.tips())) == 1, timeout=10, what="one tip")
            return
        except WaitTimeout:
            if attempt == 3:
                raise


def market_view(
    c: RpcClient, books: list[tuple[str, int]], keys: list[KeyPair]
) -> dict[tuple[Any, ...], Any]:
    """Everything the market RPC methods say, plus balances: (method, *params) -> result."""
    calls: list[tuple[str, dict[str, Any]]] = [
        ("market.stats", {}),
        ("market.trades", {"limit": 1000}),
    ]
    for product, slot in books:
        calls += [
            ("market.book", {"product": product, "slot": slot}),
            ("market.trades", {"product": product, "slot": slot, "limit": 1000}),
            ("market.stats", {"product": product, "slot": slot}),
        ]
    calls += [("market.stats", {"product": p}) for p in ("spot", "forward")]
    for k in keys:
        calls += [
            ("market.orders", {"participant": k.address.hex()}),
            ("market.participant", {"address": k.address.hex()}),
            ("account.get", {"address": k.address.hex()}),
        ]
    results = c.batch(calls)
    errors = [(m, r) for (m, _), r in zip(calls, results, strict=True) if isinstance(r, RpcError)]
    assert not errors, errors
    return {(m, *sorted(p.items())): r for (m, p), r in zip(calls, results, strict=True)}


def test_four_mining_nodes_agree_on_the_market(net: ProcessNetwork) -> None:
    seed = int(os.environ.get("POWERNODE_TEST_SEED", random.randrange(1 << 30)))
    print(f"random seed {seed}")
    books = slots(int(time.time()))
    work = Workload(random.Random(seed), KEYS, books)
    work.build()
    cs = net.clients()
    try:
        for c in cs:
            c.call("miner.start")
        # Round robin, so a sender's txs reach different nodes, in waves with
        # blocks in between, so they spread over many blocks from all miners.
        for start in range(0, len(work.txs), WAVE):
            target = height(cs[0]) + 2
            for i in range(start, min(start + WAVE, len(work.txs))):
                assert cs[i % len(cs)].submit(work.txs[i]) == work.txs[i].txid.hex()
            wait_until(lambda: height(cs[0]) >= target, timeout=30, what="blocks between waves")  # noqa: B023
        txids = [tx.txid.hex() for tx in work.txs]
        wait_until(lambda: confirmed(cs[0], txids), timeout=60, what="every tx confirmed")
        for c in cs:
            c.call("miner.stop")
        converge(net, cs[0])
        tips = net.tips()
        assert len(set(tips)) == 1, tips
        receipts = [confirmed(c, txids) for c in cs]
        assert receipts[0] is not None
        assert all(r == receipts[0] for r in receipts), "nodes disagree on blocks or receipts"
        failed = [
            (r["tx"]["type"], r["receipt"]) for r in receipts[0] if r["receipt"]["status"] != "ok"
        ]
        assert not failed, failed
        views = [market_view(c, books, KEYS) for c in cs]
        for i, v in enumerate(views[1:], 1):
            diff = sorted(k for k in v if v[k] != views[0][k])
            assert not diff, f"node{i} differs from node0 in {diff}"
        info = cs[0].call("node.info")
        reorgs = sum(node.log_text().count("chain.reorg") for node in net.nodes)
        v = views[0]
        print(
            f"height {info['height']}, {reorgs} reorgs, {len(work.txs)} txs, {v[('market.stats',)]}"
        )
        for product, slot in books:  # every book traded
            stats = v[("market.stats", ("product", product), ("slot", slot))]
            assert stats["trades"] > 0, (product, slot, stats)
        orders = [o for k in KEYS for o in v[("market.orders", ("participant", k.address.hex()))]]
        assert sum(o["status"] == "cancelled" for o in orders) >= work.cancelled > 0
        assert any(o["status"] == "open" for o in orders)  # the deep ones not cancelled
        assert v[("market.stats",)]["trades"] == len(v[("market.trades", ("limit", 1000))])
    finally:
        for c in cs:
            c.close()
