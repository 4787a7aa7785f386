"""bench_node's keys, pre-signed transfers and chains."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from powernode.client import build_transfer
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction
from powernode.devnet.devchain import dev_genesis

COIN = 1_000_000
FEE = 1000


# --- keys and txs ----------------------------------------------------------------


def key_for(tag: str, i: int) -> KeyPair:
    """A fixed key per (tag, index), so runs are reproducible."""
    return KeyPair.from_seed(sha256(f"bench-{tag}-{i}".encode()))


def sign_grid(keys: Sequence[KeyPair], nonces: int, chain_id: str) -> list[list[Transaction]]:
    """``grid[sender][nonce]``: one transfer per sender and nonce."""
    recipients = [sha256(f"bench-rcpt-{i}".encode())[:20] for i in range(1000)]
    grid: list[list[Transaction]] = []
    for i, k in enumerate(keys):
        row = [
            build_transfer(
                k,
                chain_id=chain_id,
                nonce=n,
                to=recipients[(i * nonces + n) % len(recipients)],
                amount=1000 + n,
                fee=FEE,
            )
            for n in range(nonces)
        ]
        grid.append(row)
    return grid


def nonce_major(grid: list[list[Transaction]], senders: Sequence[int]) -> list[Transaction]:
    """Every sender's nonce 0, then every sender's nonce 1, ...: each batch then
    carries many senders, as traffic from many wallets would."""
    nonces = len(grid[0])
    return [grid[s][n] for n in range(nonces) for s in senders]


def bench_genesis(
    chain_id: str, keys: Sequence[KeyPair], *, target: str, dev: bool, timestamp: int
) -> dict[str, Any]:
    """A chain funding each key with 1,000 units, 10 s blocks."""
    return dev_genesis(
        {k.address: 1_000 * COIN for k in keys},
        chain_id=chain_id,
        timestamp=timestamp,
        block_time=10,
        target=target,
        dev=dev,
        comment="written by scripts/bench_node.py",
    )
