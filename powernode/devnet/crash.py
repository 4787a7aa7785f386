"""Crash checks for ``kill -9`` experiments: a transfer load that runs until
its node goes away (``TransferLoad``), a crash image of a killed node's
store (``snapshot_store``) and the check that such a store holds exactly
what a replay of its own blocks from genesis gives (``Replay``).

Shared by ``tests/e2e/test_crash_recovery.py`` and ``scripts/bench_crash.py``.
The replay opens stores with the chain layer in this process (a killed node
is not there to ask); the nodes themselves are reached only over RPC.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from powernode.chain.ledger import Ledger
from powernode.chain.store import BlockStore
from powernode.client import RpcClient, RpcError, RpcUnavailable, build_transfer
from powernode.core.crypto import KeyPair
from powernode.core.errors import StoreUnusable
from powernode.devnet.process import ProcessNode
from powernode.state.genesis import parse_genesis_json

STORE_FILES = ("chain.db", "chain.db-wal", "chain.db-shm")


class ReplayMismatch(AssertionError):
    """A stored chain and its replay from genesis disagree (or its supply is off)."""


class TransferLoad(threading.Thread):
    """Submits transfers from ``senders`` as fast as the node takes them until
    ``halt`` is set or the node goes away; ``accepted`` holds the ids of the
    txs the node took."""

    def __init__(self, node: ProcessNode, senders: list[KeyPair], chain_id: str) -> None:
        super().__init__(daemon=True)
        self.client = RpcClient(node.endpoint, timeout=10)
        self.senders = senders
        self.chain_id = chain_id
        self.accepted: list[str] = []
        self.halt = threading.Event()
        self.sink = KeyPair.generate().address

    def run(self) -> None:
        try:
            nonces = {
                s.address: self.client.call("account.get", {"address": s.address.hex()})[
                    "next_nonce"
                ]
                for s in self.senders
            }
            while not self.halt.is_set():
                calls, txs = [], []
                for s in self.senders:
                    tx = build_transfer(
                        s,
                        chain_id=self.chain_id,
                        nonce=nonces[s.address],
                        to=self.sink,
                        amount=1000,
                    )
                    calls.append(("tx.submit", {"raw": tx.raw.hex()}))
                    txs.append((s, tx))
                for (s, _tx), res in zip(txs, self.client.batch(calls), strict=True):
                    if not isinstance(res, RpcError):
                        self.accepted.append(res)
                        nonces[s.address] += 1
        except (RpcUnavailable, OSError, ValueError):
            return  # the node was killed under us: expected
        finally:
            self.client.close()


def snapshot_store(datadir: Path, dest: Path) -> Path:
    """Copy a stopped node's store files (the database and its WAL, as the
    crash left them) into ``dest``; the copy's ``chain.db`` path."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in STORE_FILES:
        if (datadir / name).exists():
            shutil.copy2(datadir / name, dest / name)
    return dest / "chain.db"


@dataclass(frozen=True)
class ReplayResult:
    height: int
    tip: str  # hex
    supply: int  # micro-units in all accounts
    replayed: int  # blocks applied to the replay this time


class Replay:
    """A ledger of its own, in ``path``, that follows a node's main chain
    block by block from genesis. ``check(store)`` brings it to that store's
    tip (from where it stopped last time, or from genesis again if the
    store's chain left its path) and compares the two: tip, every state
    record, and the supply (genesis allocations plus a block reward per
    block: fees only move money). The store is opened and closed here; its
    node must not be running on it."""

    def __init__(self, genesis: Path, path: Path) -> None:
        self.params = parse_genesis_json(genesis.read_bytes())
        self.path = path
        self._store: BlockStore | None = None
        self._ledger: Ledger | None = None

    def _fresh(self) -> Ledger:
        self.close()
        for name in STORE_FILES:
            (self.path.parent / name.replace("chain.db", self.path.name)).unlink(missing_ok=True)
        self._store = BlockStore(self.path)
        self._store.open()
        self._ledger = Ledger(params=self.params, store=self._store)
        self._ledger.load()
        return self._ledger

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        self._store = None
        self._ledger = None

    def check(self, store_path: Path) -> ReplayResult:
        store = BlockStore(store_path)
        store.open()
        try:
            node = Ledger(params=self.params, store=store)
            try:
                node.load()
            except StoreUnusable as exc:
                raise ReplayMismatch(f"the store is of another chain: {exc}") from exc
            active = node.chain.active
            replay = self._ledger or self._fresh()
            mine = replay.chain.active
            if len(mine) > len(active) or active[len(mine) - 1].hash != mine[-1].hash:
                replay = self._fresh()  # the node's chain left ours: start again
                mine = replay.chain.active
            start = len(mine)
            for entry in active[start:]:
                outcome, _ = replay.submit_block(
                    node.chain.get_block(entry.hash), now=int(time.time()), mono=time.monotonic()
                )
                if outcome != "connected":
                    raise ReplayMismatch(
                        f"replay of block {entry.height} ({entry.hash.hex()[:16]}): {outcome}"
                    )
            if replay.chain.tip.hash != node.chain.tip.hash:
                raise ReplayMismatch("the replay ends at another tip")
            replayed, stored = replay.chain.state.snapshot(), node.chain.state.snapshot()
            if replayed != stored:
                diff = {
                    k for k in replayed.keys() | stored.keys() if replayed.get(k) != stored.get(k)
                }
                raise ReplayMismatch(f"stored state differs from the replay in {len(diff)} records")
            supply = sum(v.balance for v in node.chain.state.namespace("acct").values())
            allocated = sum(a for _, a in self.params.allocations)
            expected = allocated + self.params.block_reward * node.chain.height
            if supply != expected:
                raise ReplayMismatch(f"supply {supply}, expected {expected}")
            return ReplayResult(
                height=node.chain.height,
                tip=node.chain.tip.hash.hex(),
                supply=supply,
                replayed=len(active) - start,
            )
        finally:
            store.close()
