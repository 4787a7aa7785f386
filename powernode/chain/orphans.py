"""Blocks whose parent we have not seen yet, held until it arrives.

Bounded in count (btcd keeps 100) and age (one hour); when full the oldest
goes. Times come from the caller's monotonic clock, so this stays testable.
"""

from __future__ import annotations

from dataclasses import dataclass

from powernode.core.block import Block


@dataclass(frozen=True, slots=True)
class _Orphan:
    block: Block
    added: float


class OrphanPool:
    def __init__(self, *, max_blocks: int = 100, max_age: float = 3600.0) -> None:
        self.max_blocks = max_blocks
        self.max_age = max_age
        self._by_hash: dict[bytes, _Orphan] = {}

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, block_hash: bytes) -> bool:
        return block_hash in self._by_hash

    def add(self, block: Block, now: float) -> None:
        self.expire(now)
        if block.hash in self._by_hash:
            return
        while len(self._by_hash) >= self.max_blocks:
            oldest = min(self._by_hash.values(), key=lambda o: o.added)
            del self._by_hash[oldest.block.hash]
        self._by_hash[block.hash] = _Orphan(block, now)

    def expire(self, now: float) -> None:
        stale = [h for h, o in self._by_hash.items() if now - o.added > self.max_age]
        for h in stale:
            del self._by_hash[h]

    def take_children(self, parent_hash: bytes) -> list[Block]:
        """Remove and return the orphans that build on ``parent_hash``."""
        kids = [o.block for o in self._by_hash.values() if o.block.header.prev_hash == parent_hash]
        for b in kids:
            del self._by_hash[b.hash]
        return kids
