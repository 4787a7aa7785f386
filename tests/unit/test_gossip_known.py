"""A block's txs that this node has already decoded are taken as they are:
those in the pool, and those received from a peer and still waiting to be
checked (a block often comes before its last txs are through admission)."""

from __future__ import annotations

import time
from collections.abc import Coroutine
from types import SimpleNamespace
from typing import Any, cast

import pytest

from powernode.chain.chain import ChainUpdate
from powernode.chain.mempool import Mempool
from powernode.core.block import decode_block, make_block
from powernode.core.merkle import merkle_root
from powernode.core.tx import Transaction, decode_tx
from powernode.node.api import NodeApi
from powernode.node.p2p_gossip import CHECK_BATCH, Gossip, Malformed
from powernode.node.p2p_sync import Sync
from powernode.node.peer import KnownSet, Peer
from powernode.protocol.messages import GetData, Inv, Message
from tests.unit.helpers import ALICE, BOB, transfer
from tests.unit.test_block import header


def _gossip(
    decoded: list[bytes], ids: list[bytes | None] | None = None
) -> tuple[Gossip, list[str]]:
    def decode(raw: bytes, txid: bytes | None = None) -> Transaction:
        decoded.append(raw)
        if ids is not None:
            ids.append(txid)
        return decode_tx(raw)

    spawned: list[str] = []

    def spawn(coro: Coroutine[Any, Any, None], name: str) -> None:
        coro.close()  # the check task is not run: its txs stay waiting
        spawned.append(name)

    node = SimpleNamespace(mempool=Mempool(), decode_tx=decode)
    g = Gossip(
        cast(NodeApi, node),
        {},
        cast(Sync, None),
        max_blocks_served=1,
        spawn=spawn,
        punish=lambda peer, exc: None,
    )
    return g, spawned


def test_a_block_takes_txs_waiting_to_be_checked_without_decoding_them() -> None:
    decoded: list[bytes] = []
    g, spawned = _gossip(decoded)
    txs = [transfer(ALICE, BOB, 1, nonce=n) for n in range(3)]
    peer = Peer(ws=cast(Any, None), proto=cast(Any, None), addr="127.0.0.1:1", direction="in")
    peer.asked_txs.update(dict.fromkeys(tx.txid for tx in txs[:2]))
    g._on_txs(peer, [tx.raw for tx in txs[:2]])
    assert spawned and len(decoded) == 2
    block = make_block(header(tx_root=merkle_root([tx.txid for tx in txs])), txs)
    decoded.clear()
    again = decode_block(block.raw, known=g._known_tx, decode=g.node.decode_tx)
    assert again.txs == block.txs
    # The two waiting were taken as they are; only the third was decoded.
    assert decoded == [txs[2].raw]


def test_a_tx_already_confirmed_or_pending_is_not_decoded_again() -> None:
    decoded: list[bytes] = []
    g, spawned = _gossip(decoded)
    confirmed, pending, fresh = (transfer(ALICE, BOB, 1, nonce=n) for n in range(3))
    g.recent_confirmed.update([confirmed.txid])
    g.node.mempool.add(pending, ALICE.address, 11)
    peer = Peer(ws=cast(Any, None), proto=cast(Any, None), addr="127.0.0.1:1", direction="in")
    sent = [confirmed, pending, fresh]
    peer.asked_txs.update(dict.fromkeys(tx.txid for tx in sent))
    g._on_txs(peer, [tx.raw for tx in sent])
    # Only the new one is decoded and queued for checking; the peer is known
    # to have all three, and none was sent unasked.
    assert decoded == [fresh.raw] and spawned
    assert list(g._checking) == [fresh.txid]
    assert all(tx.txid in peer.known_txs for tx in sent) and not peer.asked_txs


async def test_a_long_backlog_is_checked_a_bounded_batch_at_a_time() -> None:
    batches: list[int] = []

    async def submit_and_relay(txs: list[Transaction], *, source: int | None = None) -> list[Any]:
        batches.append(len(txs))
        return [(tx.txid, None) for tx in txs]

    g, _ = _gossip([])
    g.node.submit_and_relay = submit_and_relay  # type: ignore[method-assign,assignment]
    peer = Peer(ws=cast(Any, None), proto=cast(Any, None), addr="127.0.0.1:1", direction="in")
    txs = [transfer(ALICE, BOB, 1, nonce=n) for n in range(CHECK_BATCH + 5)]
    g._backlog[peer.id] = list(txs)
    g._checking.update({tx.txid: tx for tx in txs})
    await g._check_backlog(peer)
    assert batches == [CHECK_BATCH, 5]
    assert not g._checking and peer.id not in g._backlog


def test_txs_a_block_overtook_leave_the_backlog_unchecked() -> None:
    g, _ = _gossip([])
    peer = Peer(ws=cast(Any, None), proto=cast(Any, None), addr="127.0.0.1:1", direction="in")
    txs = [transfer(ALICE, BOB, 1, nonce=n) for n in range(4)]
    g._backlog[peer.id] = list(txs)
    g._checking.update({tx.txid: tx for tx in txs})
    block = make_block(header(tx_root=merkle_root([tx.txid for tx in txs[:3]])), txs[:3])
    g.chain_updated(ChainUpdate(connected=[(block, cast(Any, None))]), tip_moved=False)
    assert g._backlog[peer.id] == [txs[3]]
    assert list(g._checking) == [txs[3].txid]
    assert all(tx.txid in g.recent_confirmed for tx in txs[:3])


def test_a_frame_with_an_undecodable_tx_leaves_nothing_waiting() -> None:
    """A peer that sends another's tx and then junk in one frame is refused,
    and the good tx is not left marked as being checked: another peer's copy
    of it must still be decoded and admitted, not dropped by its id."""
    decoded: list[bytes] = []
    g, spawned = _gossip(decoded)
    tx = transfer(ALICE, BOB, 1, nonce=0)
    junk = b"\xc1not a tx"
    bad = Peer(ws=cast(Any, None), proto=cast(Any, None), addr="127.0.0.1:1", direction="in")
    bad.asked_txs.update(dict.fromkeys([tx.txid]))
    with pytest.raises(Malformed):
        g._on_txs(bad, [tx.raw, junk])
    assert tx.txid not in g._checking and not spawned
    good = Peer(ws=cast(Any, None), proto=cast(Any, None), addr="127.0.0.1:2", direction="in")
    good.asked_txs.update(dict.fromkeys([tx.txid]))
    g._on_txs(good, [tx.raw])
    assert list(g._checking) == [tx.txid] and spawned


def test_txs_a_reorg_undid_are_no_longer_taken_as_confirmed() -> None:
    decoded: list[bytes] = []
    g, spawned = _gossip(decoded)
    tx = transfer(ALICE, BOB, 1, nonce=0)
    block = make_block(header(tx_root=merkle_root([tx.txid])), [tx])
    g.recent_confirmed.update([tx.txid])
    g.chain_updated(ChainUpdate(disconnected=[block]), tip_moved=False)
    assert tx.txid not in g.recent_confirmed
    peer = Peer(ws=cast(Any, None), proto=cast(Any, None), addr="127.0.0.1:1", direction="in")
    peer.asked_txs.update(dict.fromkeys([tx.txid]))
    g._on_txs(peer, [tx.raw])
    assert decoded == [tx.raw] and spawned


def test_a_received_tx_is_hashed_once_its_id_handed_to_the_decoder() -> None:
    decoded: list[bytes] = []
    ids: list[bytes | None] = []
    g, _ = _gossip(decoded, ids)
    txs = [transfer(ALICE, BOB, 1, nonce=n) for n in range(2)]
    peer = Peer(ws=cast(Any, None), proto=cast(Any, None), addr="127.0.0.1:1", direction="in")
    peer.asked_txs.update(dict.fromkeys(tx.txid for tx in txs))
    g._on_txs(peer, [tx.raw for tx in txs])
    assert ids == [tx.txid for tx in txs]
    assert [g._checking[tx.txid] for tx in txs] == txs


class _Outbox:
    """A peer protocol that keeps what is sent, as messages."""

    ready = True

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, msg: Message) -> None:
        self.sent.append(msg)

    def data_to_send(self) -> list[bytes]:
        return []


def test_an_inv_asks_only_for_txs_not_known_in_any_way() -> None:
    g, _ = _gossip([])
    pending, confirmed, rejected, checking, asked, fresh = (
        transfer(ALICE, BOB, 1, nonce=n) for n in range(6)
    )
    g.node.mempool.add(pending, ALICE.address, 11)
    g.recent_confirmed.update([confirmed.txid])
    g.recent_rejects.add(rejected.txid)
    g._checking[checking.txid] = checking
    g._asked[asked.txid] = (time.monotonic(), 0)
    out = _Outbox()
    peer = Peer(ws=cast(Any, None), proto=cast(Any, out), addr="127.0.0.1:1", direction="in")
    every = [pending, confirmed, rejected, checking, asked, fresh]
    g.on_message(peer, Inv("tx", [tx.txid for tx in every]))
    assert out.sent == [GetData("tx", [fresh.txid])]
    assert list(peer.asked_txs) == [fresh.txid]
    assert all(tx.txid in peer.known_txs for tx in every)


def test_known_set_unknown_keeps_order_and_sees_both_generations() -> None:
    known = KnownSet(limit=2)
    known.update([b"a", b"b"])  # fills the young generation: it becomes the old
    known.add(b"c")
    assert known.unknown([b"d", b"a", b"c", b"e", b"b"]) == [b"d", b"e"]
