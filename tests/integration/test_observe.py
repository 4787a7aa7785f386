"""Watching a node over real sockets: ``GET /health``, ``node.info``'s sync
fields, the Prometheus ``/metrics`` endpoint (values against RPC, counters
that move), per-category log levels set over RPC, and the debug events."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from powernode.client import RpcError, build_register, build_transfer, endpoint_from_datadir
from powernode.core.crypto import KeyPair
from powernode.core.errors import ConfigError
from powernode.devnet.datadir import free_port, init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.node.config import load_config
from powernode.node.health import SYNC_SLACK
from powernode.node.node import Node
from tests.harness import TEST_CHAIN
from tests.harness.arpc import AsyncRpc
from tests.harness.builder import ChainBuilder
from tests.harness.network import async_wait_until, connect, enable_p2p
from tests.harness.p2pnet import events
from tests.harness.testpeer import TestPeer
from tests.integration.conftest import DevNode

FUNDS = 10**12
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Watched:
    node: Node
    rpc: AsyncRpc
    http: aiohttp.ClientSession
    datadir: Path

    @property
    def health_url(self) -> str:
        return self.node.rpc_url.removesuffix("/rpc") + "/health"

    async def health(self, query: str = "") -> tuple[int, dict[str, Any]]:
        async with self.http.get(self.health_url + query) as resp:
            return resp.status, await resp.json()

    async def metrics(self) -> dict[str, float]:
        """Every sample of a scrape: name{label="v",...} -> value."""
        async with self.http.get(self.node.metrics.url) as resp:
            assert resp.status == 200
            text = await resp.text()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
        return out


def start_config(datadir: Path, genesis: Path) -> None:
    init_datadir(datadir, genesis)
    enable_p2p(datadir, ban_seconds=600)
    cfg = datadir / "config.toml"
    text = cfg.read_text()
    assert "[metrics]\nenabled = false" in text
    text = text.replace("[metrics]\nenabled = false", "[metrics]\nenabled = true")
    cfg.write_text(text.replace("port = 8647", "port = 0"))


@pytest.fixture
def users() -> list[KeyPair]:
    return [KeyPair.generate() for _ in range(2)]


@pytest.fixture
def genesis(tmp_path: Path, users: list[KeyPair]) -> Path:
    return write_genesis(
        tmp_path / "genesis.json",
        dev_genesis({u.address: FUNDS for u in users}, chain_id=TEST_CHAIN),
    )


@pytest.fixture
async def pair(tmp_path: Path, genesis: Path) -> AsyncIterator[tuple[Watched, Watched]]:
    """Two in-process nodes, p2p on and connected, metrics on (port 0)."""
    nodes: list[Node] = []
    out: list[Watched] = []
    async with aiohttp.ClientSession() as http:
        try:
            for name in ("a", "b"):
                datadir = tmp_path / name
                start_config(datadir, genesis)
                node = Node(load_config(datadir))
                await node.start()
                nodes.append(node)
                rpc = AsyncRpc(endpoint_from_datadir(datadir))
                await rpc.__aenter__()
                out.append(Watched(node, rpc, http, datadir))
            await connect(nodes[0], nodes[1])
            yield out[0], out[1]
        finally:
            for w in out:
                await w.rpc.__aexit__()
            for node in nodes:
                await node.stop()


async def test_health_is_unauthenticated_and_follows_sync(pair: tuple[Watched, Watched]) -> None:
    a, _ = pair
    status, body = await a.health()
    assert status == 200, body
    assert body["status"] == "ok" and body["syncing"] is False and body["peers"] == 1
    info = await a.rpc.call("node.info")
    assert info["syncing"] is False and info["best_peer_height"] == 0
    assert info["version"] and info["uptime_s"] >= 0 and info["peers"] == 1

    # A peer that shows a chain far ahead (and never sends it): syncing.
    ahead = info["height"] + SYNC_SLACK + 50
    async with TestPeer.for_node(a.node, height=ahead) as peer:
        await peer.connect()

        async def unhealthy() -> bool:
            return (await a.health())[0] == 503

        await async_wait_until(unhealthy, what="503 while a peer is far ahead")
        status, body = await a.health()
        assert body["reason"] == "syncing" and body["best_peer_height"] == ahead
        info = await a.rpc.call("node.info")
        assert info["syncing"] is True and info["best_peer_height"] == ahead
        assert (await a.metrics())["powernode_syncing"] == 1

    # That peer gone, the node is in sync with the peers it has.
    async def healthy() -> bool:
        return (await a.health())[0] == 200

    await async_wait_until(healthy, what="200 once the peer left")

    # An operator's own staleness bound: the dev genesis is old.
    status, body = await a.health("?max_tip_age=0")
    assert (status, body["reason"]) == (503, "tip_stale")
    # Not a non-negative integer: 400, also for digits int() refuses.
    for bad in ("soon", "-1", "%C2%B2", "1.5"):
        async with a.http.get(a.health_url + "?max_tip_age=" + bad) as resp:
            assert resp.status == 400, bad
    # A bound past any chain's age: no bound, and no digit limit hit.
    status, body = await a.health("?max_tip_age=" + "9" * 5000)
    assert status == 200, body
    # Leading zeros are no digits of the bound: still 0, still stale.
    status, body = await a.health("?max_tip_age=" + "0" * 30)
    assert (status, body["reason"]) == (503, "tip_stale")


async def test_metrics_agree_with_rpc_and_count_events(
    pair: tuple[Watched, Watched], users: list[KeyPair], tmp_path: Path, genesis: Path
) -> None:
    a, b = pair
    before = await a.metrics()
    alice = users[0]
    txs = [
        build_transfer(alice, chain_id=TEST_CHAIN, nonce=n, to=users[1].address, amount=10)
        for n in range(3)
    ]
    for tx in txs:
        await a.rpc.call("tx.submit", {"raw": tx.raw.hex()})
    with pytest.raises(RpcError):
        await a.rpc.call("tx.submit", {"raw": txs[0].raw.hex()})
    info = await a.rpc.call("node.info")
    pool = await a.rpc.call("mempool.info")
    m = await a.metrics()
    assert m["powernode_height"] == info["height"]
    assert m["powernode_mempool_txs"] == pool["size"] == 3
    assert m["powernode_mempool_bytes"] == pool["bytes"]
    assert m['powernode_peers{direction="in"}'] + m['powernode_peers{direction="out"}'] == 1
    assert info["peers"] == 1
    assert m["powernode_txs_accepted_total"] - before.get("powernode_txs_accepted_total", 0) == 3
    assert m['powernode_txs_rejected_total{code="already_known"}'] == 1
    assert m['powernode_rpc_calls_total{method="tx.submit"}'] == 4
    assert m['powernode_info{chain_id="powernode-test",version="' + info["version"] + '"}'] == 1
    # A quiet pair asks no tx twice; each reason has its series, at 0.
    for reason in ("peer_gone", "notfound", "timeout"):
        assert m[f'powernode_tx_reasked_total{{reason="{reason}"}}'] == 0

    await a.rpc.call("dev.mine", {"blocks": 2})
    m = await a.metrics()
    assert m["powernode_height"] == 2 and m["powernode_mempool_txs"] == 0
    assert m["powernode_blocks_connected_total"] == 2
    assert m["powernode_block_connect_seconds_count"] == 2
    # b got the blocks from a, and counts them as connected too.
    await async_wait_until(lambda: b.node.ledger.chain.height == 2, what="b at a's height")
    assert (await b.metrics())["powernode_blocks_connected_total"] == 2

    # A heavier branch from genesis (built off-line): a reorg of 2 blocks.
    builder = ChainBuilder(genesis, tmp_path / "builder")
    try:
        branch = builder.mine(3)
    finally:
        builder.close()
    for block in branch:
        await a.rpc.call("block.submit", {"raw": block.raw.hex()})
    m = await a.metrics()
    assert (await a.rpc.call("node.info"))["height"] == m["powernode_height"] == 3
    assert m["powernode_blocks_reorged_total"] == 2 and m["powernode_reorgs_total"] == 1
    assert m["powernode_blocks_connected_total"] == 5
    # The undone blocks' txs are back in the pool, and the scrape says so.
    assert m["powernode_mempool_txs"] == (await a.rpc.call("mempool.info"))["size"] == 3


async def test_category_level_set_over_rpc_changes_what_is_logged(
    pair: tuple[Watched, Watched], users: list[KeyPair], caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = pair
    # The base level info; the capture takes whatever a category lets through.
    caplog.set_level(logging.INFO, logger="powernode")
    caplog.handler.setLevel(logging.DEBUG)
    levels = await a.rpc.call("node.loglevel")
    assert levels["categories"]["mempool"] is None and levels["categories"]["rpc"] is None
    tx = build_transfer(users[0], chain_id=TEST_CHAIN, nonce=0, to=users[1].address, amount=1)
    await a.rpc.call("tx.submit", {"raw": tx.raw.hex()})
    assert not events(caplog, "tx.accepted") and not events(caplog, "rpc.call")

    try:
        got = await a.rpc.call("node.loglevel", {"category": "mempool", "level": "debug"})
        assert got["categories"]["mempool"] == "debug"
        await a.rpc.call("node.loglevel", ["rpc", "debug"])
        with pytest.raises(RpcError, match="already_known"):
            await a.rpc.call("tx.submit", {"raw": tx.raw.hex()})
        tx2 = build_transfer(users[0], chain_id=TEST_CHAIN, nonce=1, to=users[1].address, amount=1)
        await a.rpc.call("tx.submit", {"raw": tx2.raw.hex()})
        # b, in this process too, may log its own acceptance from gossip
        (acc,) = events(caplog, "tx.accepted", source="rpc")
        assert acc.fields == {"id": tx2.txid, "source": "rpc"}  # type: ignore[attr-defined]
        (rej,) = events(caplog, "tx.rejected", reason="already_known")
        assert rej.fields["id"] == tx.txid  # type: ignore[attr-defined]
        # tx.submit runs as a batch of its calls; its line names the first
        # refused call's code, as a single method's names what it raised.
        calls = events(caplog, "rpc.call", method="tx.submit")
        assert [c.fields["error"] for c in calls] == ["already_known", ""]  # type: ignore[attr-defined]
        assert all(c.fields["ms"] >= 0 for c in calls)  # type: ignore[attr-defined]

        # Back to the base level: debug lines stop.
        await a.rpc.call("node.loglevel", {"category": "rpc", "level": "default"})
        caplog.clear()
        await a.rpc.call("node.info")
        assert not events(caplog, "rpc.call")
        for bad in ({"category": "nope", "level": "debug"}, {"level": "loud"}, {"category": "rpc"}):
            with pytest.raises(RpcError) as info:
                await a.rpc.call("node.loglevel", bad)
            assert info.value.code == -32602, bad
    finally:
        await a.rpc.call("node.loglevel", {"category": "mempool", "level": "default"})
        await a.rpc.call("node.loglevel", {"category": "rpc", "level": "default"})


async def test_block_connected_names_its_peer_size_and_age(
    pair: tuple[Watched, Watched], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    caplog.set_level(logging.INFO, logger="powernode")
    (mined,) = (await a.rpc.call("dev.mine", {"blocks": 1}))["hashes"]
    await async_wait_until(lambda: b.node.ledger.chain.height == 1, what="b at height 1")
    here = [r for r in events(caplog, "block.connected") if r.fields["hash"].hex() == mined]  # type: ignore[attr-defined]
    fields = sorted((r.fields["peer"], r.fields["size"]) for r in here)  # type: ignore[attr-defined]
    raw = await a.rpc.call("chain.block", {"height": 1, "raw": True})
    size = len(bytes.fromhex(raw["raw"]))
    # Once on a (mined here) and once on b (from a's connection).
    assert len(fields) == 2 and all(s == size for _, s in fields)
    peers = {p for p, _ in fields}
    assert "local" in peers and any(p != "local" for p in peers)
    assert all(isinstance(r.fields["age_s"], int) for r in here)  # type: ignore[attr-defined]


def exported_names(scrape: str) -> set[str]:
    """Every series name a scrape can hold: each family's name and, by its
    type, the suffixed names (a labelled family with no sample yet counts)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names: set[str] = set()
    for family in text_string_to_metric_families(scrape):
        names.add(family.name)
        names.update(family.name + s for s in suffixes.get(family.type, ()))
        names.update(s.name for s in family.samples)
    return names


async def test_grafana_dashboard_uses_only_exported_metrics(dev_node: DevNode) -> None:
    doc = json.loads((ROOT / "configs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    assert len(exprs) > 20
    used = {name for e in exprs for name in re.findall(r"\bpowernode_[a-z0-9_]+", e)}
    exported = exported_names(dev_node.node.metrics.scrape().decode())
    assert used - exported == set(), f"dashboard metrics not exported: {sorted(used - exported)}"
    # And every family the node exports has a panel, so none is forgotten.
    families = {
        f.name for f in text_string_to_metric_families(dev_node.node.metrics.scrape().decode())
    }
    unused = {
        f
        for f in families
        if not f.endswith("_created") and not any(u == f or u.startswith(f + "_") for u in used)
    }
    assert unused == set(), f"exported metrics without a panel: {sorted(unused)}"


async def test_dial_failures_are_info_while_the_node_has_no_peer(
    tmp_path: Path, genesis: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="powernode")
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    datadir = tmp_path / "lonely"
    init_datadir(datadir, genesis)
    enable_p2p(datadir, peers=[nobody])
    node = Node(load_config(datadir))
    await node.start()
    try:
        await async_wait_until(
            lambda: events(caplog, "peer.dial_failed", peer=nobody), what="a failed dial"
        )
        (first, *_) = events(caplog, "peer.dial_failed", peer=nobody)
        assert first.levelno == logging.INFO
        assert first.fields["reason"] and first.fields["retry_s"] > 0  # type: ignore[attr-defined]
    finally:
        await node.stop()


async def test_metrics_port_in_use_is_one_config_error(tmp_path: Path, genesis: Path) -> None:
    start_config(tmp_path / "first", genesis)
    first = Node(load_config(tmp_path / "first"))
    await first.start()
    try:
        port = int(first.metrics.url.rsplit(":", 1)[1].removesuffix("/metrics"))
        # A second node on its own RPC and P2P ports, on the first's metrics port.
        start_config(tmp_path / "second", genesis)
        cfg = tmp_path / "second" / "config.toml"
        head, _, _ = cfg.read_text().partition("[metrics]")
        cfg.write_text(head + f'[metrics]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\n')
        second = Node(load_config(tmp_path / "second"))
        with pytest.raises(ConfigError, match=r"^config \[metrics\] host/port: cannot listen"):
            try:
                await second.start()
            finally:
                await second.stop()
    finally:
        await first.stop()


async def test_engine_categories_log_what_a_block_did(
    pair: tuple[Watched, Watched], users: list[KeyPair], caplog: pytest.LogCaptureFixture
) -> None:
    a, b = pair
    caplog.set_level(logging.INFO, logger="powernode")
    caplog.handler.setLevel(logging.DEBUG)
    alice, bob = users
    register = build_register(
        alice, chain_id=TEST_CHAIN, nonce=0, role="producer", location="Z1", capacity_w=5000
    )
    pay = build_transfer(bob, chain_id=TEST_CHAIN, nonce=0, to=alice.address, amount=3)
    await a.rpc.call("tx.submit", {"raw": register.raw.hex()})
    await a.rpc.call("dev.mine", {"blocks": 1})
    await async_wait_until(lambda: b.node.ledger.chain.height == 1, what="b at height 1")
    assert not events(caplog, "engine.block")  # market is at the base level (info)
    try:
        await a.rpc.call("node.loglevel", {"category": "market", "level": "debug"})
        again = build_register(
            bob, chain_id=TEST_CHAIN, nonce=1, role="consumer", location="Z1", capacity_w=1
        )
        for tx in (pay, again):
            await a.rpc.call("tx.submit", {"raw": tx.raw.hex()})
        await a.rpc.call("dev.mine", {"blocks": 1})
        await async_wait_until(lambda: b.node.ledger.chain.height == 2, what="b at height 2")
        # The market's line only (the transfer is the accounts category's,
        # still at info), once from each node: both run in this process, so
        # they share its loggers.
        lines = events(caplog, "engine.block")
        assert len(lines) == 2 and {r.name for r in lines} == {"powernode.market"}
        for line in lines:
            assert line.fields == {  # type: ignore[attr-defined]
                "engine": "market",
                "height": 2,
                "txs": 1,
                "failed": 0,
                "events": "registered=1",
            }
    finally:
        await a.rpc.call("node.loglevel", {"category": "market", "level": "default"})
