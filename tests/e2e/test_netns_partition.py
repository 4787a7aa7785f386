"""A 2|3 partition of five node processes, each on a host of its own (a
network namespace and IP, ``scripts/testnet.py up --netns``), cut and healed
the way a network is: the links move to separate bridges, the nodes are not
told. A double spend (one account, one nonce, one tx per side) and other txs
on both sides; both sides mine; after the heal every node has one tip and one
state root, exactly one spend is confirmed and no other tx is lost or doubled
(the process-level twin of tests/integration/test_p2p_network.py's
``test_partition_and_heal_keeps_every_tx``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from powernode.client import RpcClient, build_transfer
from powernode.core.crypto import KeyPair
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import pid_alive
from powernode.devnet.testnet import TestnetLayout
from powernode.devnet.wait import wait_until
from tests.harness.netnsnet import (
    NetnsTestnet,
    Tip,
    require_netns,
    run_testnet,
    run_testnet_raw,
)

pytestmark = pytest.mark.e2e

SIDE_A, SIDE_B = [0, 1], [2, 3, 4]


@pytest.fixture
def net5(tmp_path: Path) -> Iterator[NetnsTestnet]:
    require_netns()
    net = NetnsTestnet(tmp_path / "tn")
    try:
        # Blocks only on dev.mine, so the test decides which side has more work.
        yield net.up(5, "--no-mine", "--easy")
    finally:
        net.close()


def test_partition_with_a_double_spend_heals_to_one_chain(net5: NetnsTestnet) -> None:
    net = net5
    wait_until(net.meshed, timeout=60, what="every node connected to every other IP")
    u0, u1, u2 = net.layout.read_demo_keys()[:3]
    sink = KeyPair.generate().address
    chain_id = net.rpc(0).chain_id()
    net.rpc(0).call("dev.mine", {"blocks": 2})
    wait_until(net.converged, timeout=60, what="the first blocks everywhere")

    # Every node on exactly one side, or nothing is cut.
    for sides, why in (
        (["0,1", "2"], "missing: node3, node4"),
        (["0,1", "1,2,3,4"], "exactly one side"),
        (["0,1,2,3,4"], "two or more sides"),
        (["0,1", "2,3,9"], "no node '9'"),
    ):
        r = run_testnet_raw(net.d, "partition", *sides)
        assert r.returncode == 1 and why in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert net.meshed()
    out = run_testnet(net.d, "partition", "0,1", "2,3,4")
    assert "node0,node1 | node2,node3,node4" in out
    assert "partitioned: node0,node1 | node2,node3,node4" in run_testnet(net.d, "status")
    rows = json.loads(run_testnet(net.d, "status", "--json"))
    assert [(r["netns"], r["ip"]) for r in rows] == [
        (n.netns, n.host) for n in TestnetLayout.load(net.d).nodes
    ]
    assert len({r["ip"] for r in rows}) == 5

    # u0's nonce 0 is spent on both sides; side B's spend pays more.
    tx_a = [build_transfer(u0, chain_id=chain_id, nonce=0, to=sink, amount=111)]
    tx_a += [build_transfer(u1, chain_id=chain_id, nonce=n, to=sink, amount=5) for n in range(3)]
    tx_b = [build_transfer(u0, chain_id=chain_id, nonce=0, to=sink, amount=222, fee=2000)]
    tx_b += [build_transfer(u2, chain_id=chain_id, nonce=n, to=sink, amount=7) for n in range(2)]
    ids_a = [net.rpc(SIDE_A[0]).submit(tx) for tx in tx_a]
    ids_b = [net.rpc(SIDE_B[0]).submit(tx) for tx in tx_b]

    def gossiped(side: list[int], ids: list[str]) -> bool:
        return all(net.tx_status(i, t) == "pending" for i in side for t in ids)

    wait_until(lambda: gossiped(SIDE_A, ids_a), timeout=30, what="side A's txs on side A")
    wait_until(lambda: gossiped(SIDE_B, ids_b), timeout=30, what="side B's txs on side B")
    # The cut holds: nothing of one side's reached the other.
    assert all(net.tx_status(i, t) == "unknown" for i in SIDE_B for t in ids_a[1:])
    assert all(net.tx_status(i, t) == "unknown" for i in SIDE_A for t in ids_b[1:])

    net.rpc(SIDE_A[1]).call("dev.mine", {"blocks": 2})
    net.rpc(SIDE_B[1]).call("dev.mine", {"blocks": 4})  # more work: side B wins
    tip_a = cast(Tip, wait_until(lambda: net.converged(SIDE_A), timeout=60, what="side A agreeing"))
    tip_b = cast(Tip, wait_until(lambda: net.converged(SIDE_B), timeout=60, what="side B agreeing"))
    assert (tip_a[2], tip_b[2]) == (4, 6)
    assert tip_a[0] != tip_b[0]

    out = run_testnet(net.d, "heal")
    assert "healed" in out
    tip = wait_until(net.converged, timeout=90, what="one tip after the heal")
    assert tip == tip_b  # the side with more work
    # Side A's other txs went back to the pool on side A and spread; its spend
    # of u0's nonce 0 lost to side B's.
    wait_until(
        lambda: gossiped(list(range(5)), ids_a[1:]), timeout=60, what="side A's txs everywhere"
    )
    net.rpc(0).call("dev.mine", {"blocks": 1})
    wait_until(
        lambda: (t := net.converged()) is not None and t[2] == 7,
        timeout=60,
        what="the block with side A's txs everywhere",
    )
    for i in range(5):
        c = net.rpc(i)
        assert all(net.tx_status(i, t) == "confirmed" for t in ids_a[1:] + ids_b)
        assert net.tx_status(i, ids_a[0]) != "confirmed"
        assert c.call("node.info")["mempool_size"] == 0

        def nonce(k: KeyPair, c: RpcClient = c) -> int:
            return int(c.call("account.get", {"address": k.address.hex()})["next_nonce"])

        assert (nonce(u0), nonce(u1), nonce(u2)) == (1, 3, 2)
        balance = c.call("account.get", {"address": sink.hex()})["balance"]
        assert balance == 222 + 3 * 5 + 2 * 7  # every tx once, side B's spend only

    # `ip netns exec` execs the node: the pid testnet.json records is the
    # node's own, so kill -9 reaches it, and a restart joins the network again.
    pid = TestnetLayout.load(net.d).node("4").pid
    assert pid is not None and b"powernode.cli" in Path(f"/proc/{pid}/cmdline").read_bytes()
    run_testnet(net.d, "kill", "4")
    wait_until(lambda: not pid_alive(pid), timeout=30, what="node4 gone")
    run_testnet(net.d, "restart", "4")
    net.forget(4)
    net.rpc(0).call("dev.mine", {"blocks": 1})
    wait_until(
        lambda: (t := net.converged()) is not None and t[2] == 8,
        timeout=60,
        what="the restarted node4 with the next block",
    )


def test_partition_needs_a_netns_testnet(tmp_path: Path) -> None:
    """A plain testnet (one host) has no links to cut: one line, exit 1."""
    d = tmp_path / "tn"
    TestnetLayout.create(d, dev_genesis({}, chain_id="plain"), nodes=2)
    for args in (["partition", "0", "1"], ["isolate", "0"], ["heal"]):
        r = run_testnet_raw(d, *args)
        assert r.returncode == 1, r
        assert r.stderr.strip() == (
            "testnet: only a testnet started with 'up --netns' can be partitioned"
        )


def test_isolated_node_misses_blocks_until_healed(tmp_path: Path) -> None:
    require_netns()
    net = NetnsTestnet(tmp_path / "tn")
    try:
        net.up(3, "--no-mine", "--easy")
        wait_until(net.meshed, timeout=60, what="three nodes connected on their IPs")
        assert "node2 isolated" in run_testnet(net.d, "isolate", "2")
        assert "partitioned: node0,node1 | node2" in run_testnet(net.d, "status")
        net.rpc(0).call("dev.mine", {"blocks": 2})
        top = cast(
            Tip, wait_until(lambda: net.converged([0, 1]), timeout=60, what="node1 with the blocks")
        )
        assert top[2] == 2
        assert net.tips([2])[0][2] == 0  # the blocks cannot reach node2
        net.rpc(2).call("dev.mine", {"blocks": 1})  # a block of its own, on its own
        assert net.converged([0, 1]) == top
        run_testnet(net.d, "heal")
        tip = wait_until(net.converged, timeout=90, what="node2 back on the longer chain")
        assert tip == top
    finally:
        net.close()
