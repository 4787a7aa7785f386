"""A storage fault met while connecting a block a peer sent: the node stops
on it, and neither the block nor the peer is blamed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from powernode.core.crypto import KeyPair
from tests.harness.network import Network, async_wait_until, sync_all
from tests.harness.p2pnet import events


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[Network]:
    network = Network(tmp_path, [KeyPair.generate()])
    try:
        yield network
    finally:
        await network.stop()


async def test_a_full_store_on_a_peers_block_stops_the_node_and_blames_no_one(
    net: Network, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    a, b = await net.start(2)
    await a.mine_now(1)
    await sync_all([a, b])
    store = b.ledger.chain.store
    # SQLite's own full disk: no page past those the file has now.
    (pages,) = store.db.execute("PRAGMA page_count").fetchone()
    store.db.execute(f"PRAGMA max_page_count = {pages}")

    for _ in range(50):
        await a.mine_now(1)
        if b.failure is not None:
            break
    await async_wait_until(
        lambda: b.failure is not None and b.stopping.is_set(), timeout=15, what="b to fail"
    )
    assert b.failure is not None and b.failure.code == "disk_full"
    assert b.ledger.chain.height < a.ledger.chain.height
    assert not any(e.failed for e in b.ledger.chain.index.entries.values()), "no block blamed"
    assert events(caplog, "peer.banned") == [], "no peer blamed"
    assert events(caplog, "block.invalid") == []
    # The peer's connection ends as any other, for the fault's reason.
    assert events(caplog, "p2p.task_failed") == []
    tracebacks = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info]
    assert tracebacks == [], "the fault ends no peer task or request in a traceback"
