"""``run --reindex`` commits the re-applied chain in runs of blocks, as sync
does, not one block at a time; a crash in the middle leaves a store at the
end of the last run, which a plain start carries on from."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from powernode.chain.index import HAVE_DATA
from powernode.chain.store import BlockStore
from powernode.client import build_transfer
from powernode.core.block import make_block
from powernode.core.crypto import ZERO_ADDRESS, KeyPair
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis, solve
from powernode.node import node as node_module
from powernode.node.config import load_config
from powernode.node.node import Node
from tests.harness import TEST_CHAIN

BLOCKS = 300
KILLED_AT = 150  # the block after which a copy of the files is taken (kill -9)


async def test_a_reindex_commits_in_runs_and_a_crash_in_one_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = KeyPair.generate()
    genesis = write_genesis(
        tmp_path / "genesis.json", dev_genesis({user.address: 10**12}, chain_id=TEST_CHAIN)
    )
    d = tmp_path / "node"
    init_datadir(d, genesis)
    node = Node(load_config(d))
    await node.start()
    try:
        for n in range(10):
            tx = build_transfer(user, chain_id=TEST_CHAIN, nonce=n, to=bytes(20), amount=1)
            ((_, err),) = await node.submit_and_relay([tx])
            assert err is None
            await node.mine_now(1)
        await node.mine_now(BLOCKS - 10)
        tip = node.ledger.chain.tip
        assert tip.height == BLOCKS
    finally:
        await node.stop()
    # What a kill -9 in the middle of the reindex leaves: the data dir with
    # its store files as they are after block KILLED_AT's connect.
    killed = tmp_path / "killed"
    shutil.copytree(d, killed)
    seen = {"blocks": 0}
    observe = node_module.ReindexProgress.__call__

    def copying(self: Any, seconds: float) -> None:
        observe(self, seconds)
        seen["blocks"] += 1
        if seen["blocks"] == KILLED_AT:
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{d / 'chain.db'}{suffix}")
                if src.exists():
                    shutil.copyfile(src, f"{killed / 'chain.db'}{suffix}")

    monkeypatch.setattr(node_module.ReindexProgress, "__call__", copying)
    statements: list[str] = []
    connect = sqlite3.connect

    def traced(*args: Any, **kw: Any) -> sqlite3.Connection:
        conn = connect(*args, **kw)
        conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)
    node = Node(load_config(d), reindex=True)
    await node.start()
    try:
        assert node.ledger.chain.tip.hash == tip.hash
        assert node.ledger.chain.tip.header.state_root == tip.header.state_root
    finally:
        await node.stop()
    monkeypatch.setattr(sqlite3, "connect", connect)
    assert seen["blocks"] == BLOCKS
    # Runs of up to 64 blocks (or 0.25 s): a handful of commits, not one or
    # two per block.
    commits = statements.count("COMMIT")
    print(f"{commits} commits for {BLOCKS} blocks")
    assert commits < BLOCKS // 10, commits

    # The killed copy holds the end of a run, never part of one...
    store = BlockStore(killed / "chain.db")
    store.open()
    try:
        stored_tip = store.get_meta("tip")
        main = store.main_chain()
    finally:
        store.close()
    assert stored_tip is not None and main[-1] == stored_tip
    print(f"killed after block {KILLED_AT}: committed up to {len(main) - 1}")
    assert 0 < len(main) - 1 <= KILLED_AT
    # ... and a plain start carries on to the same tip and state.
    again = Node(load_config(killed))
    await again.start()
    try:
        assert again.ledger.chain.tip.hash == tip.hash
        assert again.ledger.chain.state.snapshot() == node.ledger.chain.state.snapshot()
    finally:
        await again.stop()


async def test_a_reindex_checks_each_stored_blocks_proof_of_work(tmp_path: Path) -> None:
    """As the README says, a reindex checks each stored block as on connect,
    proof of work included: a stored block on the tip whose PoW misses its
    target is refused (``bad_pow``, marked invalid), and the tip stays."""
    genesis = write_genesis(tmp_path / "genesis.json", dev_genesis({}, chain_id=TEST_CHAIN))
    d = tmp_path / "node"
    init_datadir(d, genesis)
    node = Node(load_config(d))
    await node.start()
    try:
        await node.mine_now(3)
        tip = node.ledger.chain.tip
        tmpl = node.ledger.template(ZERO_ADDRESS, now=int(time.time()))
        bad = make_block(solve(tmpl.header, want_valid=False), tmpl.txs)
    finally:
        await node.stop()
    store = BlockStore(d / "chain.db")
    store.open()
    try:
        store.put_block(bad, HAVE_DATA, 10_000)
    finally:
        store.close()
    node = Node(load_config(d), reindex=True)
    await node.start()
    try:
        chain = node.ledger.chain
        assert chain.tip.hash == tip.hash
        entry = chain.index.get(bad.hash)
        assert entry is not None and entry.failed
    finally:
        await node.stop()
