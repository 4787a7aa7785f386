"""Stand-in txs for mempool unit tests: the pool reads only a tx's nonce,
fee, bytes and id, so these skip keys and signatures."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

_serial = iter(range(1, 1 << 62))


@dataclass(eq=False)
class FakeTx:
    """What the pool reads of a tx: nonce, fee, bytes and id."""

    nonce: int
    fee: int
    raw: bytes
    txid: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.txid = hashlib.sha256(self.raw).digest()

    @property
    def size(self) -> int:
        return len(self.raw)


def ftx(nonce: int, fee: int, size: int = 100) -> Any:
    """A tx of ``size`` bytes, unique whatever its fields."""
    return FakeTx(nonce, fee, next(_serial).to_bytes(8, "big") + bytes(size - 8))


def sender(i: int) -> bytes:
    return i.to_bytes(20, "big")
