"""Blocks submitted over RPC: bad ones refused with typed codes, a heavier
competing branch adopted with its txs moved back to the mempool."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from powernode.client import RpcError, build_transfer
from powernode.core.block import make_block
from powernode.core.crypto import sha256
from powernode.devnet.devchain import solve
from powernode.node.config import load_config
from powernode.node.node import Node
from tests.harness.builder import ChainBuilder, reheader
from tests.integration.conftest import DevNode


async def submit_reason(dev: DevNode, block_hex: str) -> str:
    with pytest.raises(RpcError) as info:
        await dev.rpc.call("block.submit", {"raw": block_hex})
    return info.value.reason


async def test_bad_blocks_are_refused(dev_node: DevNode, tmp_path: Path) -> None:
    b = ChainBuilder(dev_node.genesis, tmp_path / "builder")
    alice, bob = dev_node.users[0], dev_node.users[1]
    tx = build_transfer(alice, chain_id=dev_node.chain_id, nonce=0, to=bob.address, amount=5)
    good = b.next_block([tx])
    h = good.header

    bad_pow = make_block(solve(h, want_valid=False), good.txs)
    assert await submit_reason(dev_node, bad_pow.raw.hex()) == "bad_pow"
    bad_merkle = reheader(good, tx_root=sha256(b"not the txs"))
    assert await submit_reason(dev_node, bad_merkle.raw.hex()) == "bad_merkle_root"
    bad_state = reheader(good, state_root=sha256(b"not the state"))
    assert await submit_reason(dev_node, bad_state.raw.hex()) == "bad_state_root"
    future = reheader(good, timestamp=int(time.time()) + 7200 + 600)
    assert await submit_reason(dev_node, future.raw.hex()) == "time_too_new"
    past = reheader(good, timestamp=h.timestamp - 10_000)
    assert await submit_reason(dev_node, past.raw.hex()) == "time_too_old"
    easy = reheader(good, target=b"\xff" * 32)
    assert await submit_reason(dev_node, easy.raw.hex()) == "bad_target"
    wrong_height = reheader(good, height=5)
    assert await submit_reason(dev_node, wrong_height.raw.hex()) == "bad_height"
    assert await submit_reason(dev_node, "zz") == "malformed"
    assert await submit_reason(dev_node, "c1") == "malformed"

    # After every rejection the node still serves, and the honest block connects.
    result = await dev_node.rpc.call("block.submit", {"raw": good.raw.hex()})
    assert result["outcome"] == "connected" and result["height"] == 1
    assert (await dev_node.rpc.call("tx.get", {"id": tx.txid.hex()}))["status"] == "confirmed"
    again = await dev_node.rpc.call("block.submit", {"raw": good.raw.hex()})
    assert again["outcome"] == "duplicate"
    b.close()


async def test_orphan_waits_for_its_parent(dev_node: DevNode, tmp_path: Path) -> None:
    b = ChainBuilder(dev_node.genesis, tmp_path / "builder")
    blocks = b.mine(3)
    r = await dev_node.rpc.call("block.submit", {"raw": blocks[2].raw.hex()})
    assert r["outcome"] == "orphan"
    assert (await dev_node.rpc.call("node.info"))["height"] == 0
    await dev_node.rpc.call("block.submit", {"raw": blocks[1].raw.hex()})
    await dev_node.rpc.call("block.submit", {"raw": blocks[0].raw.hex()})
    info = await dev_node.rpc.call("node.info")
    assert info["height"] == 3 and info["tip"] == blocks[2].hash.hex()
    b.close()


async def test_heavier_branch_over_rpc_wins(
    dev_node: DevNode, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rpc = dev_node.rpc
    alice, bob, carol = dev_node.users[:3]
    cid = dev_node.chain_id
    # The node's own branch: two blocks with alice's transfers.
    own = [
        build_transfer(alice, chain_id=cid, nonce=n, to=bob.address, amount=1_000_000)
        for n in range(3)
    ]
    for tx in own:
        await rpc.call("tx.submit", {"raw": tx.raw.hex()})
    await rpc.call("dev.mine", {"blocks": 2})
    assert (await rpc.call("account.get", {"address": bob.address.hex()}))["balance"] > 0

    # A competing branch from genesis, three blocks, with a different tx.
    b = ChainBuilder(dev_node.genesis, tmp_path / "builder")
    theirs = build_transfer(carol, chain_id=cid, nonce=0, to=alice.address, amount=42)
    branch = b.mine(3, [theirs])
    for block in branch[:2]:
        r = await rpc.call("block.submit", {"raw": block.raw.hex()})
        assert r["outcome"] == "side"  # equal work: the first seen keeps the tip
    r = await rpc.call("block.submit", {"raw": branch[2].raw.hex()})
    assert r["outcome"] == "connected"

    info = await rpc.call("node.info")
    assert info["tip"] == branch[-1].hash.hex() and info["height"] == 3
    assert info["state_root"] == branch[-1].header.state_root.hex()
    # Balances follow the winning branch; the undone txs are pending again.
    assert (await rpc.call("account.get", {"address": alice.address.hex()}))[
        "balance"
    ] == b.ledger.account(alice.address).balance
    assert (await rpc.call("account.get", {"address": bob.address.hex()}))[
        "balance"
    ] == b.ledger.account(bob.address).balance
    for tx in own:
        assert (await rpc.call("tx.get", {"id": tx.txid.hex()}))["status"] == "pending"
    assert (await rpc.call("tx.get", {"id": theirs.txid.hex()}))["status"] == "confirmed"
    reorgs = [r for r in caplog.records if r.getMessage() == "chain.reorg"]
    assert reorgs and reorgs[-1].fields["undone"] == 2 and reorgs[-1].fields["applied"] == 3  # type: ignore[attr-defined]
    # The node's state equals the builder's replay of the same blocks.
    assert dev_node.node.ledger.chain.state.snapshot() == b.ledger.chain.state.snapshot()
    # Mining on the new tip includes the resurrected txs exactly once.
    await rpc.call("dev.mine", {"blocks": 1})
    for tx in own:
        assert (await rpc.call("tx.get", {"id": tx.txid.hex()}))["status"] == "confirmed"
    assert (await rpc.call("account.get", {"address": alice.address.hex()}))["nonce"] == 3
    b.close()


async def test_clean_restart_keeps_chain_and_mempool(
    dev_node: DevNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="powernode")
    rpc = dev_node.rpc
    alice, bob = dev_node.users[:2]
    await rpc.call("dev.mine", {"blocks": 2})
    txs = [
        build_transfer(alice, chain_id=dev_node.chain_id, nonce=n, to=bob.address, amount=5)
        for n in range(4)
    ]
    for tx in txs:
        await rpc.call("tx.submit", {"raw": tx.raw.hex()})
    before = await rpc.call("node.info")
    await dev_node.node.stop()

    node = Node(load_config(dev_node.datadir))
    await node.start()
    try:
        assert node.ledger.chain.tip.hash.hex() == before["tip"]
        assert sorted(t.txid for t in node.ledger.mempool.ordered()) == sorted(t.txid for t in txs)
        loaded = [r for r in caplog.records if r.getMessage() == "mempool.loaded"]
        assert loaded[-1].fields["txs"] == 4  # type: ignore[attr-defined]
    finally:
        await node.stop()
    # The fixture's own stop must still be safe after ours.
    dev_node.node = Node(load_config(dev_node.datadir))
    await dev_node.node.start()
