"""A tx asked of one announcer and not received is asked of another that
announced it: when the first disconnects, answers ``notfound``, or has not
sent it within ASK_TIMEOUT_S. Without this a tx announced once (after a
reorg, or to a new peer) is lost to a node whose request went to a
connection that was then replaced, until someone announces it again."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, cast

import pytest

import powernode.node.p2p_gossip as gossip_mod
from powernode.chain.mempool import Mempool
from powernode.core.tx import decode_tx
from powernode.node.api import NodeApi
from powernode.node.p2p_gossip import ASK_TIMEOUT_S, Gossip
from powernode.node.p2p_sync import Sync
from powernode.node.peer import Peer, now_ms
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
    assert g.reasked == {"peer_gone": 1, "notfound": 0, "timeout": 0}


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
    # Counted once: the second notfound found no one to ask.
    assert g.reasked == {"peer_gone": 0, "notfound": 1, "timeout": 0}


def test_an_overdue_request_is_asked_of_another_announcer_and_only_overdue_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(gossip_mod.time, "monotonic", lambda: clock[0])
    g, (a, b), (_, out_b) = _net(2)
    old, young = (transfer(ALICE, BOB, 1, nonce=n) for n in range(2))
    g.on_message(a, Inv("tx", [old.txid]))
    clock[0] += 3
    g.on_message(a, Inv("tx", [young.txid]))
    g.on_message(b, Inv("tx", [old.txid, young.txid]))
    clock[0] += ASK_TIMEOUT_S - 1  # old is overdue, young is not
    g.tick()
    assert out_b.sent == [GetData("tx", [old.txid])]
    # a may still answer late: its request stays on record as asked.
    assert old.txid in a.asked_txs
    g.tick()  # b's request is fresh: nothing more
    assert len(out_b.sent) == 1
    clock[0] += 3
    g.tick()  # now young is overdue too
    assert out_b.sent[1:] == [GetData("tx", [young.txid])]
    assert g.reasked["timeout"] == 2


def test_the_first_peer_leaving_after_a_timeout_leaves_the_second_request_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(gossip_mod.time, "monotonic", lambda: clock[0])
    g, (a, b, c), (_, out_b, out_c) = _net(3)
    tx = transfer(ALICE, BOB, 1, nonce=0)
    for p in (a, b, c):
        g.on_message(p, Inv("tx", [tx.txid]))
    clock[0] += ASK_TIMEOUT_S + 0.5
    g.tick()
    asked_b = out_b.sent + out_c.sent
    assert asked_b == [GetData("tx", [tx.txid])]
    second = b if out_b.sent else c
    third_out = out_c if out_b.sent else out_b
    # The first peer goes, or says notfound: the request now with the second
    # peer keeps its wait; the third is not asked at once.
    g.on_message(a, NotFound("tx", [tx.txid]))
    del cast(dict[int, Peer], g.peers)[a.id]
    g.peer_gone(a)
    assert third_out.sent == []
    assert g._asked[tx.txid][1] == second.id
    clock[0] += ASK_TIMEOUT_S + 0.5
    g.tick()  # the second did not answer either: the third is asked
    assert third_out.sent == [GetData("tx", [tx.txid])]


def test_a_slowed_or_not_ready_peer_is_not_asked() -> None:
    g, (a, b, c), (_, out_b, out_c) = _net(3)
    tx = transfer(ALICE, BOB, 1, nonce=0)
    for p in (a, b, c):
        g.on_message(p, Inv("tx", [tx.txid]))
    b.relay.charge(b.relay.slow_at + 1, now_ms())
    out_c.ready = False
    del cast(dict[int, Peer], g.peers)[a.id]
    g.peer_gone(a)
    assert out_b.sent == [] and out_c.sent == []
    assert tx.txid not in g._asked  # waits for a new announcement
    assert g.reasked["peer_gone"] == 0  # nobody was asked


def test_a_wanted_tx_that_arrived_meanwhile_is_not_asked_again() -> None:
    g, (a, b), (_, out_b) = _net(2)
    tx = transfer(ALICE, BOB, 1, nonce=0)
    g.on_message(a, Inv("tx", [tx.txid]))
    g.on_message(b, Inv("tx", [tx.txid]))
    g.node.mempool.add(tx, ALICE.address, 11)
    del cast(dict[int, Peer], g.peers)[a.id]
    g.peer_gone(a)
    assert out_b.sent == []


def test_a_timeout_reask_is_logged_for_the_operator_with_what_waits(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(gossip_mod.time, "monotonic", lambda: clock[0])
    g, (a, b), _ = _net(2)
    txs = [transfer(ALICE, BOB, 1, nonce=n) for n in range(3)]
    g.on_message(a, Inv("tx", [tx.txid for tx in txs]))
    g.on_message(b, Inv("tx", [txs[0].txid]))  # b can serve only one of them
    clock[0] += ASK_TIMEOUT_S + 0.5
    with caplog.at_level(logging.INFO, logger="powernode.p2p"):
        g.tick()
    lines = [r for r in caplog.records if r.getMessage() == "tx.reasked"]
    assert len(lines) == 1
    fields = cast(Any, lines[0]).fields
    assert lines[0].levelno == logging.INFO
    assert fields == {"reason": "timeout", "txs": 1, "waiting": 2}
