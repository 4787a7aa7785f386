"""README, Peer protocol: "a peer that leaves a ping unanswered for 4 x
``ping_interval`` is disconnected (``peer.timeout``, close reason
``ping_timeout``; not banned)"; one that answers stays."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import free_port, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.node.node import Node
from powernode.protocol.messages import Ping
from tests.harness import TEST_CHAIN
from tests.harness.network import async_wait_until
from tests.harness.p2pnet import events, p2p_datadir, peer_by_listen, start_node
from tests.harness.testpeer import TestPeer

PING_INTERVAL = 1


@pytest.fixture
async def node(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[Node]:
    caplog.set_level(logging.INFO, logger="powernode")
    genesis = write_genesis(
        tmp_path / "genesis.json",
        dev_genesis({KeyPair.generate().address: 1_000_000}, chain_id=TEST_CHAIN),
    )
    n = await start_node(p2p_datadir(tmp_path / "node", genesis, ping_interval=PING_INTERVAL))
    try:
        yield n
    finally:
        await n.stop()


class Mute(TestPeer):
    """Answers everything but the node's pings."""

    async def on_ping(self, msg: Ping) -> None:
        return None


async def test_a_peer_that_never_answers_pings_is_dropped_not_banned(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    async with Mute.for_node(node, listen=listen) as mute:
        await mute.connect()
        await mute.sync_with_ping()  # the node answers ours
        assert peer_by_listen(node, listen) is not None
        started = time.monotonic()
        code = await mute.wait_disconnected(timeout=12 * PING_INTERVAL)
        waited = time.monotonic() - started
    assert code == 4001 and mute.close_reason == "ping_timeout", (code, mute.close_reason)
    # 4 intervals unanswered, checked once an interval: not before 4 s.
    assert waited >= 4 * PING_INTERVAL - 1.5
    assert len(mute.messages("ping")) >= 1
    assert events(caplog, "peer.timeout") != []
    await async_wait_until(
        lambda: events(caplog, "peer.disconnected"), what="the disconnect logged"
    )
    assert [e.fields["reason"] for e in events(caplog, "peer.disconnected")] == [  # type: ignore[attr-defined]
        "ping_timeout"
    ]
    assert events(caplog, "peer.banned") == []
    assert node.p2p is not None and not node.p2p.banned_node(mute.hello.node_id)


async def test_a_peer_that_answers_pings_stays(node: Node) -> None:
    listen = f"127.0.0.1:{free_port()}"
    async with TestPeer.for_node(node, listen=listen) as peer:
        await peer.connect()
        await peer.sync_with_ping()
        await async_wait_until(
            lambda: len(peer.messages("ping")) >= 6, timeout=20 * PING_INTERVAL, what="6 pings"
        )
        assert not peer.is_closed
        assert peer_by_listen(node, listen) is not None
