"""A real 5-process testnet started with scripts/testnet.py, as a user starts it."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from powernode.client import RpcClient, RpcError, RpcUnavailable, build_transfer, read_key
from powernode.core.crypto import KeyPair
from powernode.devnet.wait import WaitTimeout, wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def run_testnet(*args: str, d: Path) -> str:
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "testnet.py"), *args, "--dir", str(d)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr + r.stdout
    return r.stdout


def status(d: Path) -> list[dict[str, Any]]:
    return list(json.loads(run_testnet("status", "--json", d=d)))


def converged(d: Path, n: int) -> list[dict[str, Any]] | None:
    rows = status(d)
    if len(rows) != n or not all(r.get("running") and "tip" in r for r in rows):
        return None
    if len({r["tip"] for r in rows}) != 1 or len({r["state_root"] for r in rows}) != 1:
        return None
    return rows


def mine_until_converged(d: Path, n: int) -> list[dict[str, Any]]:
    """One block on node0 until every node has its tip. A block mined
    elsewhere a moment before may not have reached node0 yet: node0's block
    at the same height ties with it, ties go to the first seen, and with no
    more blocks the nodes would stay split."""
    for attempt in range(4):
        with RpcClient.from_datadir(d / "node0") as c:
            c.call("dev.mine", {"blocks": 1})
        try:
            rows = wait_until(lambda: converged(d, n), timeout=30, what="one tip and state root")
            return cast("list[dict[str, Any]]", rows)
        except WaitTimeout:
            if attempt == 3:
                raise
    raise AssertionError("unreachable")


@pytest.fixture
def net5(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "tn"
    run_testnet("up", "--nodes", "5", "--no-mine", "--easy", d=d)
    try:
        yield d
    finally:
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "testnet.py"), "down", "--dir", str(d)],
            capture_output=True,
            timeout=120,
        )


def clients(d: Path) -> list[RpcClient]:
    state = json.loads((d / "testnet.json").read_text())
    return [RpcClient.from_datadir(d / n["name"], timeout=30) for n in state["nodes"]]


def test_five_processes_converge_and_share_txs(net5: Path) -> None:
    d = net5
    seed = random.randrange(1 << 30)
    print(f"random seed {seed}")
    rng = random.Random(seed)
    cs = clients(d)
    try:
        wait_until(
            lambda: all(len(c.call("peer.list")) >= 4 for c in cs), timeout=30, what="full mesh"
        )
        chain_id = cs[0].call("node.info")["chain_id"]
        state = json.loads((d / "testnet.json").read_text())
        senders = [read_key(d / k) for k in state["demo_keys"]]
        sink = KeyPair.generate().address
        sent: list[str] = []
        nonces = dict.fromkeys(range(len(senders)), 0)
        for _round in range(6):
            for _ in range(4):
                i = rng.randrange(len(senders))
                tx = build_transfer(
                    senders[i], chain_id=chain_id, nonce=nonces[i], to=sink, amount=1000
                )
                sent.append(rng.choice(cs).submit(tx))
                nonces[i] += 1
            # Wait for the txs to reach every mempool before mining elsewhere.
            wait_until(
                lambda: all(
                    all(
                        c.call("tx.get", {"id": t})["status"] in ("pending", "confirmed")
                        for t in sent
                    )
                    for c in cs
                ),
                timeout=30,
                what="tx gossip",
            )
            rng.choice(cs).call("dev.mine", {"blocks": rng.randint(1, 3)})
        rows = mine_until_converged(d, 5)
        cs[0].call("dev.mine", {"blocks": 1})  # on the agreed tip: no tie now
        wait_until(
            lambda: converged(d, 5) and converged(d, 5)[0]["mempool"] == 0,  # type: ignore[index]
            timeout=60,
            what="all mined",
        )
        for c in cs:
            assert all(c.call("tx.get", {"id": t})["status"] == "confirmed" for t in sent)
            assert c.call("account.get", {"address": sink.hex()})["balance"] == 1000 * len(sent)
        assert rows[0]["height"] >= 6
    finally:
        for c in cs:
            c.close()


class Load(threading.Thread):
    """Transfers to random live nodes until stopped; tolerates a dead node."""

    def __init__(self, d: Path, sender: KeyPair, chain_id: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.d, self.sender, self.chain_id = d, sender, chain_id
        self.rng = random.Random(seed)
        self.halt = threading.Event()
        self.accepted: list[str] = []
        self.sink = KeyPair.generate().address

    def run(self) -> None:
        state = json.loads((self.d / "testnet.json").read_text())
        names = [n["name"] for n in state["nodes"]]
        nonce = 0
        while not self.halt.is_set():
            name = self.rng.choice(names)
            try:
                with RpcClient.from_datadir(self.d / name, timeout=5) as c:
                    if nonce == 0:
                        nonce = c.call("account.get", {"address": self.sender.address.hex()})[
                            "next_nonce"
                        ]
                    tx = build_transfer(
                        self.sender, chain_id=self.chain_id, nonce=nonce, to=self.sink, amount=1
                    )
                    self.accepted.append(c.submit(tx))
                    nonce += 1
                    if self.rng.random() < 0.15:
                        c.call("dev.mine", {"blocks": 1})
            except (RpcUnavailable, RpcError, OSError, ValueError):
                continue


def test_kill9_one_node_under_load_then_it_catches_up(net5: Path) -> None:
    d = net5
    state = json.loads((d / "testnet.json").read_text())
    sender = read_key(d / state["demo_keys"][1])
    cs = clients(d)
    chain_id = cs[0].call("node.info")["chain_id"]
    for c in cs:
        c.close()
    load = Load(d, sender, chain_id, seed=random.randrange(1 << 30))
    load.start()
    try:
        wait_until(lambda: len(load.accepted) >= 20, timeout=60, what="load running")
        run_testnet("kill", "3", d=d)
        before = len(load.accepted)
        wait_until(
            lambda: len(load.accepted) >= before + 20,
            timeout=60,
            what="load continuing without node3",
        )
        out = run_testnet("restart", "3", d=d)
        assert "node3 started" in out
        wait_until(lambda: len(load.accepted) >= before + 40, timeout=60, what="load after restart")
    finally:
        load.halt.set()
        load.join(30)
    rows = mine_until_converged(d, 5)
    assert rows[3]["height"] == rows[0]["height"]
    node3_log = (d / "node3" / "node.log").read_text()
    assert node3_log.count("node.started") == 2
