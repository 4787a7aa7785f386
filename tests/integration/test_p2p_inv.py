"""Tx announcements are batched per peer and filtered when they go out; a tx
is downloaded and checked once however many peers offer it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from powernode.client import build_transfer
from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction
from powernode.devnet.datadir import free_port, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.node import p2p_gossip
from powernode.node.node import Node
from powernode.protocol.messages import Inv, TxMsg
from tests.harness import TEST_CHAIN
from tests.harness.p2pnet import p2p_datadir, peer_by_listen, start_node
from tests.harness.testpeer import TestPeer
from tests.unit.helpers import tamper_signature

FUNDS = 1_000 * 1_000_000


@pytest.fixture
async def node_and_user(tmp_path: Path) -> AsyncIterator[tuple[Node, KeyPair]]:
    user = KeyPair.generate()
    genesis = write_genesis(
        tmp_path / "genesis.json", dev_genesis({user.address: FUNDS}, chain_id=TEST_CHAIN)
    )
    node = await start_node(p2p_datadir(tmp_path / "node", genesis))
    try:
        yield node, user
    finally:
        await node.stop()


def _transfers(node: Node, user: KeyPair, n: int) -> list[Transaction]:
    chain_id = node.ledger.params.chain_id
    return [
        build_transfer(user, chain_id=chain_id, nonce=i, to=os.urandom(20), amount=5)
        for i in range(n)
    ]


def _announced(peer: TestPeer) -> list[bytes]:
    return [h for m in peer.messages("inv") if m.kind == "tx" for h in m.hashes]  # type: ignore[attr-defined]


async def _peer(node: Node) -> TestPeer:
    peer = TestPeer.for_node(node, listen=f"127.0.0.1:{free_port()}")
    await peer.connect()
    await peer.sync_with_ping()
    assert peer_by_listen(node, peer.hello.listen) is not None
    return peer


async def test_txs_admitted_apart_are_announced_in_one_inv(
    node_and_user: tuple[Node, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    node, user = node_and_user
    monkeypatch.setattr(p2p_gossip, "INV_DELAY_S", 0.5)
    a, b, c = _transfers(node, user, 3)
    async with await _peer(node) as peer:
        for tx in (a, b, c):
            [(txid, err)] = await node.submit_and_relay([tx])
            assert err is None and txid == tx.txid
        await peer.wait_for(lambda: _announced(peer), what="a tx inv")
        await peer.sync_with_ping()
        assert [m.hashes for m in peer.messages("inv")] == [[a.txid, b.txid, c.txid]]  # type: ignore[attr-defined]


async def test_a_tx_the_peer_announced_meanwhile_is_not_announced_back(
    node_and_user: tuple[Node, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    node, user = node_and_user
    monkeypatch.setattr(p2p_gossip, "INV_DELAY_S", 0.5)
    a, b = _transfers(node, user, 2)
    async with await _peer(node) as peer:
        results = await node.submit_and_relay([a, b])
        assert [err for _, err in results] == [None, None]
        # The peer learns of ``a`` elsewhere and says so before our flush.
        await peer.send(Inv("tx", [a.txid]))
        await peer.wait_for(lambda: _announced(peer), what="a tx inv")
        assert _announced(peer) == [b.txid]
        assert peer.messages("getdata") == []  # we have ``a``: nothing to ask


async def test_a_tx_being_checked_is_neither_asked_for_nor_checked_again(
    node_and_user: tuple[Node, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    node, user = node_and_user
    [tx] = _transfers(node, user, 1)
    release = asyncio.Event()
    checked: list[list[bytes]] = []
    real = node.verifier.bad_indexes

    async def slow(txs: Sequence[Transaction]) -> set[int]:
        checked.append([t.txid for t in txs])
        await release.wait()  # the signature check takes a while
        return await real(txs)

    monkeypatch.setattr(node.verifier, "bad_indexes", slow)
    async with await _peer(node) as first, await _peer(node) as second:
        await first.send(TxMsg(tx.raw))
        await first.wait_for(lambda: checked, what="the check to start")
        # Announced, then sent, by a second peer while the first copy is checked.
        await second.send(Inv("tx", [tx.txid]))
        await second.send(TxMsg(tx.raw))
        await second.sync_with_ping()
        assert second.messages("getdata") == []
        release.set()
        await first.wait_for(lambda: tx.txid in node.ledger.mempool, what="the tx admitted")
        await second.sync_with_ping()
        assert checked == [[tx.txid]]


async def test_txs_queued_behind_a_bad_one_are_still_checked_after_the_ban(
    node_and_user: tuple[Node, KeyPair], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another peer's copy of ``good`` was skipped while this peer's waited,
    # so dropping it with the banned peer would lose it.
    node, user = node_and_user
    bad_src, good = _transfers(node, user, 2)
    bad = tamper_signature(bad_src)
    release = asyncio.Event()
    real = node.verifier.bad_indexes

    async def slow(txs: Sequence[Transaction]) -> set[int]:
        await release.wait()
        return await real(txs)

    monkeypatch.setattr(node.verifier, "bad_indexes", slow)
    async with await _peer(node) as hostile, await _peer(node) as honest:
        await hostile.send(TxMsg(bad.raw))
        await hostile.sync_with_ping()  # its check has started and waits
        await hostile.send(TxMsg(good.raw))
        await hostile.sync_with_ping()  # queued behind it
        await honest.send(TxMsg(good.raw))  # skipped: a copy is being checked
        await honest.sync_with_ping()
        release.set()
        await hostile.wait_disconnected()
        await honest.wait_for(lambda: good.txid in node.ledger.mempool, what="the good tx admitted")
        assert bad.txid not in node.ledger.mempool
