"""The orphan pool's bounds as the README states them ("Peer protocol",
Catching up): at most 100 blocks, each for at most an hour, the oldest going
first when full, and a parent's children handed back when it connects."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from powernode.chain.orphans import OrphanPool


def block(n: int, parent: int = 0) -> Any:
    return SimpleNamespace(
        hash=n.to_bytes(32, "big"), header=SimpleNamespace(prev_hash=parent.to_bytes(32, "big"))
    )


def test_at_most_100_the_oldest_goes_first() -> None:
    pool = OrphanPool()
    for n in range(1, 102):
        pool.add(block(n), now=float(n))
    assert len(pool) == 100
    assert block(1).hash not in pool and block(2).hash in pool and block(101).hash in pool


def test_held_for_at_most_an_hour() -> None:
    pool = OrphanPool()
    pool.add(block(1), now=0.0)
    pool.expire(3600.0)
    assert block(1).hash in pool
    pool.expire(3600.5)
    assert block(1).hash not in pool


def test_children_come_back_when_the_parent_connects() -> None:
    pool = OrphanPool()
    pool.add(block(5, parent=4), now=0.0)
    pool.add(block(6, parent=5), now=0.0)
    assert [b.hash for b in pool.take_children(block(4).hash)] == [block(5).hash]
    assert len(pool) == 1
