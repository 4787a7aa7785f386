"""scripts/soak.py's checks, on made-up answers, so each can be seen to fail:
where a killed node's log says it died, the RSS growth rule, the duplicate
scan, the money sum, and the load's rule that a lost tx is sent again byte
for byte (never signed anew)."""

from __future__ import annotations

import importlib
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from powernode.client import RpcError, RpcUnavailable
from powernode.core.crypto import KeyPair, sha256
from powernode.devnet.workload import Parties

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.append(str(SCRIPTS))  # the scripts import their siblings

checks = importlib.import_module("benchkit.soak.checks")
cluster = importlib.import_module("benchkit.soak.cluster")
load = importlib.import_module("benchkit.soak.load")


def test_last_tip_in_log_follows_connects_and_disconnects() -> None:
    log = (
        "INFO chain block.connected height=7 hash=aa.. txs=0\n"
        "INFO chain block.connected height=8 hash=bb.. txs=3\n"
    )
    assert cluster.last_tip_in_log(log) == (8, "bb..")
    # a reorg cut short: the tip is below the last block disconnected
    assert cluster.last_tip_in_log(
        log + "WARNING chain block.disconnected height=8 hash=bb..\n"
    ) == (
        7,
        "",
    )
    assert cluster.last_tip_in_log("") == (0, "")


def test_rss_growth_rule_compares_late_max_with_early_max() -> None:
    flat, growing = checks.Rss(), checks.Rss()
    for t in range(100):
        flat.samples.setdefault(0, []).append((float(t), 50_000 + (t % 3) * 100))
        growing.samples.setdefault(0, []).append((float(t), 50_000 + t * 2_000))
    ok = flat.verdict(0, 100.0, ratio=1.25, slack_mib=8)
    bad = growing.verdict(0, 100.0, ratio=1.25, slack_mib=8)
    assert not ok["growing"] and ok["peak"] == 50_200
    assert bad["growing"] and bad["late"] > bad["limit"] > bad["early"]


class FakeNodes:
    """Answers RPC from a table of functions, one node."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def alive(self) -> list[int]:
        return [0]

    def call(self, i: int, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.answer(method, params or {})

    def batch(self, i: int, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        return [self.answer(m, p) for m, p in calls]


def test_chain_scan_finds_a_tx_twice() -> None:
    txs = {1: ["a"], 2: ["b", "c"], 3: ["d"]}

    def answer(method: str, p: dict[str, Any]) -> Any:
        return {"hash": f"h{p['height']}", "txs": txs[p["height"]]}

    scan = checks.ChainScan()
    assert scan.duplicates(FakeNodes(answer), 0, 3) == []
    txs[3] = ["d", "a"]
    assert scan.duplicates(FakeNodes(answer), 0, 3) == ["tx a is in the chain 2 times"]


def test_money_adds_escrows_and_catches_a_missing_unit() -> None:
    balances = {"k1": 600, "k2": 300}

    def answer(method: str, p: dict[str, Any]) -> Any:
        if method == "node.info":
            return {"tip": "t", "height": 2}
        if method == "account.get":
            return {"balance": balances[p["address"]]}
        if method == "market.position":
            return {"order_escrow": 40, "settlement_escrow": 10}
        if method == "ppa.list":
            return [{"id": "p1", "escrow": 30}]
        if method == "contract.list":
            return [{"id": "c1", "escrow": 20}]
        raise AssertionError(method)

    money = checks.Money(
        addresses=["k1", "k2"],
        participants=["k1"],
        producers=["k1"],
        allocated=800,
        block_reward=100,
    )
    ok, detail = money.check(FakeNodes(answer), 0)
    assert ok, detail  # 900 + 50 + 30 + 20 = 800 + 2 x 100
    balances["k2"] -= 1
    ok, detail = money.check(FakeNodes(answer), 0)
    assert not ok and "total=999 expected=1000" in detail


def test_a_tx_lost_with_its_node_is_sent_again_unchanged() -> None:
    def key(tag: str) -> KeyPair:
        return KeyPair.from_seed(sha256(tag.encode()))

    parties = Parties(
        authority=key("a"), producers=[key("p")], consumers=[key("c")], meters=[], cmeters=[]
    )
    ld = load.Load(
        chain_id="soak-unit",
        rng=random.Random(1),
        parties=parties,
        payers=[key("payer")],
        rate=1e-9,  # one transfer, at the first tick
        round_every=1e9,
        seed=1,
    )
    raws: list[str] = []
    down = True

    def answer(method: str, p: dict[str, Any]) -> Any:
        if method == "tx.submit":
            if down:
                raise RpcUnavailable("killed")
            raws.append(p["raw"])
            return "id"
        if method == "tx.get":
            return {"status": "pending"}
        return {"now": 0}

    nodes = FakeNodes(answer)
    ld.tick(nodes, 0.0, lambda: 0)  # a transfer and the first round, to a node that is gone
    ld.stopped = True
    lost = {s.tx.raw.hex(): (s.tx.sender_address, s.tx.nonce) for s in ld.unconfirmed()}
    assert len(lost) > 1 and not raws
    down = False
    ld.tick(nodes, load.RESEND_AFTER + 1, lambda: 0)
    assert sorted(raws) == sorted(lost)  # each sent again as it was signed
    assert not ld.given_up
    assert {s.tx.raw.hex(): (s.tx.sender_address, s.tx.nonce) for s in ld.unconfirmed()} == lost


@pytest.mark.parametrize("reason", ["gate_closed", "reading_too_late"])
def test_a_tx_refused_again_and_again_is_given_up_and_its_sender_goes_on(reason: str) -> None:
    def key(tag: str) -> KeyPair:
        return KeyPair.from_seed(sha256(tag.encode()))

    payer = key("payer")
    parties = Parties(
        authority=key("a"), producers=[key("p")], consumers=[key("c")], meters=[], cmeters=[]
    )
    ld = load.Load(
        chain_id="soak-unit",
        rng=random.Random(1),
        parties=parties,
        payers=[payer],
        rate=1e-9,  # one transfer, at the first tick
        round_every=1e9,
        seed=1,
    )

    def answer(method: str, p: dict[str, Any]) -> Any:
        if method == "tx.submit":
            raise RpcError(-32000, "no", {"code": reason})
        if method == "tx.get":
            return {"status": "pending"}
        if method == "account.get":
            return {"nonce": 0}
        return {"now": 0}

    nodes = FakeNodes(answer)
    now = 0.0
    ld.tick(nodes, now, lambda: 0)
    ld.stopped = True
    for _ in range(load.GIVE_UP_AFTER + 1):
        now += load.RESEND_AFTER + 1
        ld.tick(nodes, now, lambda: 0)
    assert ld.given_up and reason in ld.given_up[0]
    assert not ld.unconfirmed()
    assert ld.w.nonces[payer.address] == 0  # the next tx takes the nonce again
