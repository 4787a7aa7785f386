"""A tx asked of one announcer and not received is asked of another that
announced it: when the first disconnects, answers ``notfound``, or has not
sent it within ASK_TIMEOUT_S. Without this a tx announced once (after a
reorg, or to a new peer) is lost to a node whose request went to a
connection that was then replaced, until someone announces it again."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

from powernode.chain.mempool import Mempool
from powernode.core.tx import decode_tx
from powernode.node.api import NodeApi
from powernode.node.p2p_gossip import ASK_TIMEOUT_S, Gossip
from powernode.node.p2p_sync import Sync
from powernode.node.peer import Peer
from powernode.protocol.messages import GetData, Inv, NotFound
from tests.unit.helpers import ALICE, BOB, transfer
from tests.unit.test_gossip_known import _Outbox


def _net(n: int) -> tuple[Gossip, list[Peer], list[_Outbox]]:
    peers: dict[int, Peer] = {}
    node = SimpleNamespace(mempool=Mempool(), decode_tx=lambda raw, txid=None: decode_tx(raw))
    g = Gossip(
        cast(NodeApi, node),
        peers,
        cast(Sync, None),
        max_blocks_served=1,
        spawn=lambda coro, name: coro.close(),
        punish=lambda peer, exc: None,
    )
    outs = [_Outbox() for _ in range(n)]
    made = []
    for out in outs:
        p = Peer(ws=cast(Any, None), proto=cast(Any, out), addr="127.0.0.1:1", direction="in")
        peers[p.id] = p
        made.append(p)
    return g, made, outs


def test_a_tx_asked_of_a_peer_that_leaves_is_asked_of_another_announcer() -> None:
    g, (a, b, _), (out_a, out_b, out_c) = _net(3)
    tx = transfer(ALICE, BOB, 1, nonce=0)
    g.on_message(a, Inv("tx", [tx.txid]))
    g.on_message(b, Inv("tx", [tx.txid]))  # in flight with a: not asked twice
    assert out_a.sent == [GetData("tx", [tx.txid])] and out_b.sent == []
    del cast(dict[int, Peer], g.peers)[a.id]
    g.peer_gone(a)
    assert out_b.sent == [GetData("tx", [tx.txid])]
    assert out_c.sent == []  # c never announced it
    assert tx.txid in b.asked_txs and not a.asked_txs


def test_notfound_asks_another_announcer_not_the_same_peer() -> None:
    g, (a, b), (out_a, out_b) = _net(2)
    tx = transfer(ALICE, BOB, 1, nonce=0)
    g.on_message(a, Inv("tx", [tx.txid]))
    g.on_message(b, Inv("tx", [tx.txid]))
    g.on_message(a, NotFound("tx", [tx.txid]))
    assert out_a.sent == [GetData("tx", [tx.txid])]
    assert out_b.sent == [GetData("tx", [tx.txid])]
    # b has nothing either: no announcer is left, nobody is asked again.
    g.on_message(b, NotFound("tx", [tx.txid]))
    assert len(out_a.sent) == 1 and len(out_b.sent) == 1


def test_an_overdue_request_is_asked_of_another_announcer_and_only_overdue_ones() -> None:
    g, (a, b), (_, out_b) = _net(2)
    old, young = (transfer(ALICE, BOB, 1, nonce=n) for n in range(2))
    g.on_message(a, Inv("tx", [old.txid, young.txid]))
    g.on_message(b, Inv("tx", [old.txid, young.txid]))
    g._asked[old.txid] = time.monotonic() - ASK_TIMEOUT_S - 1
    g._asked = {old.txid: g._asked.pop(old.txid), **g._asked}
    g.tick()
    assert out_b.sent == [GetData("tx", [old.txid])]
    # a may still answer late: its request stays on record as asked.
    assert old.txid in a.asked_txs
    g.tick()  # b's request is fresh: nothing more
    assert len(out_b.sent) == 1


def test_a_wanted_tx_that_arrived_meanwhile_is_not_asked_again() -> None:
    g, (a, b), (_, out_b) = _net(2)
    tx = transfer(ALICE, BOB, 1, nonce=0)
    g.on_message(a, Inv("tx", [tx.txid]))
    g.on_message(b, Inv("tx", [tx.txid]))
    g.node.mempool.add(tx, ALICE.address, 11)
    del cast(dict[int, Peer], g.peers)[a.id]
    g.peer_gone(a)
    assert out_b.sent == []
