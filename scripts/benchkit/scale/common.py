"""What bench_scale's rows share: a funded chain, a ledger on a store (the
node's own code path: mempool, template, connect, SQLite), node processes on
a prepared data dir, RSS, and the curve record (a cost at each size, with the
ratios between sizes)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit.node.txs import COIN, key_for
from powernode.chain.ledger import Ledger
from powernode.chain.store import BlockStore
from powernode.core.block import Block, make_block
from powernode.core.crypto import KeyPair, sha256
from powernode.core.params import ChainParams
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import DEV_CERTIFICATES, dev_genesis, solve
from powernode.devnet.process import ProcessNode
from powernode.node.runtime import freeze_loaded_objects

MINER = sha256(b"bench-scale-miner")[:20]
FEE = 1000
ANY_TARGET = "ff" * 32  # every nonce meets it: blocks cost no work


def funded_genesis(
    chain_id: str, addresses: Sequence[bytes], *, timestamp: int, **extra: Any
) -> dict[str, Any]:
    """Every address funded with 1,000 units; one certificate authority (the
    first address): dev_genesis would make every funded address one."""
    return dev_genesis(
        {a: 1_000 * COIN for a in addresses},
        chain_id=chain_id,
        timestamp=timestamp,
        target=ANY_TARGET,
        certificates={"authorities": [addresses[0].hex()], **DEV_CERTIFICATES},
        comment="written by scripts/bench_scale.py",
        **extra,
    )


def filler_addresses(n: int) -> list[bytes]:
    """``n`` distinct addresses nobody holds a key for (funded accounts)."""
    return [sha256(b"bench-scale-acct-%d" % i)[:20] for i in range(n)]


def open_ledger(path: Path, params: ChainParams, **kw: Any) -> Ledger:
    path.parent.mkdir(parents=True, exist_ok=True)
    store = BlockStore(path)
    store.open()
    ledger = Ledger(params=params, store=store, **kw)
    ledger.load()
    freeze_loaded_objects()
    return ledger


def close_ledger(ledger: Ledger) -> None:
    ledger.chain.store.close()


def mine(ledger: Ledger, now: int) -> Block:
    """Mine the mempool's best block on the tip, as the node's miner does
    (the ledger reuses its template's result)."""
    tmpl = ledger.template(MINER, now=now)
    block = make_block(solve(tmpl.header), tmpl.txs)
    outcome, _ = ledger.submit_block(block, now=now, mono=time.monotonic())
    if outcome != "connected":
        raise RuntimeError(f"mined block not connected: {outcome}")
    return block


def copy_store(src: Path, dst: Path) -> None:
    """A closed store's file (SQLite checkpoints its WAL at close)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


def node_datadir(root: Path, genesis_doc: dict[str, Any], db: Path | None, *, p2p: bool = False,
                 peers: Sequence[str] = (), key: KeyPair | None = None) -> Path:  # fmt: skip
    """A data dir as ``powernode init`` writes it, holding ``db`` as its chain.db."""
    root.mkdir(parents=True, exist_ok=True)
    genesis = write_genesis(root.parent / f"{root.name}-genesis.json", genesis_doc)
    init_datadir(root, genesis, p2p=p2p, peers=peers, key=key or key_for("node", 0))
    if db is not None:
        shutil.copyfile(db, root / "chain.db")
    return root


def rss_mib(pid: int) -> float:
    """Resident set size of a process, MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_timed(node: ProcessNode, timeout: float) -> float:
    """Seconds from spawning ``powernode run`` to its first RPC answer."""
    t0 = time.monotonic()
    node.start(timeout=timeout)
    return time.monotonic() - t0


@dataclass(frozen=True)
class Curve:
    """One row of the table: ``cost`` (in ``unit``) at each work ``size``;
    ``per_unit`` True when the cost is per item (flat is linear), False when
    it is a total (linear is a ratio equal to the size ratio)."""

    row: str
    size_name: str
    unit: str
    sizes: tuple[int, ...]
    costs: tuple[float, ...]
    per_unit: bool
    note: str = ""

    def ratios(self) -> list[float]:
        return [b / a if a else 0.0 for a, b in zip(self.costs, self.costs[1:], strict=False)]

    def size_ratios(self) -> list[float]:
        return [b / a for a, b in zip(self.sizes, self.sizes[1:], strict=False)]

    def linear(self, slack: float = 1.5) -> bool:
        """At most linear in its work: a per-item cost that stays flat, a
        total that grows no faster than its size, within ``slack`` for a
        busy machine's noise."""
        for r, s in zip(self.ratios(), self.size_ratios(), strict=True):
            bound = 1.0 if self.per_unit else s
            if r > bound * slack:
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "size": self.size_name,
            "unit": self.unit,
            "sizes": list(self.sizes),
            "costs": list(self.costs),
            "ratios": self.ratios(),
            "per_unit": self.per_unit,
            "linear": self.linear(),
            "note": self.note,
        }
