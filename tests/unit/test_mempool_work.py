"""The work a full mempool does per tx, counted, not timed (issue 12, item 2).

A full pool used to look at every sender's cheapest tx for each tx it refused
or admitted, so a flood of cheap txs at a full pool cost work in proportion to
the pool (ingest fell from about 10,000 to 125 tx/s). Any scheme that picks
the cheapest compares entries, and every comparison reads their fee rates:
so the reads of ``PoolEntry.rate`` per ``add`` are the entries it touches.
They must grow as log n, not n. (These tests use only ``Mempool.add`` and
``PoolEntry``, so they run, and fail, against the linear scan too.)
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator
from typing import Any

import pytest

from powernode.chain import mempool as mempool_mod
from powernode.chain.mempool import Mempool, PoolEntry
from powernode.core.errors import MempoolFull
from tests.unit.pool_helpers import ftx, sender


class _Reads:
    n = 0


# PoolEntry's slot descriptor for ``rate`` (to mypy, ``rate`` is only an
# instance attribute, not a descriptor on the class).
_RATE_SLOT: Any = vars(PoolEntry)["rate"]


class CountingEntry(PoolEntry):
    """A PoolEntry that counts reads of its fee rate (every comparison of two
    entries, in any eviction scheme, reads both rates)."""

    @property
    def rate(self) -> int:
        _Reads.n += 1
        return _RATE_SLOT.__get__(self)

    @rate.setter
    def rate(self, value: int) -> None:
        _RATE_SLOT.__set__(self, value)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Reads]]:
    monkeypatch.setattr(mempool_mod, "PoolEntry", CountingEntry)
    _Reads.n = 0
    yield _Reads


SIZE = 100


def full_pool(n: int, rng: random.Random) -> Mempool:
    """``n`` senders with one tx each at fees 1000..1999, exactly at the bound."""
    pool = Mempool(max_bytes=n * SIZE)
    for i in range(n):
        pool.add(ftx(0, 1000 + rng.randrange(1000), SIZE), sender(i), 0)
    assert pool.total_bytes == pool.max_bytes
    # The first tx that does not fit builds the eviction heap, once (a sort
    # of the tails): the figures below are the work per add after that.
    pool.cheapest()
    return pool


def reads_per_op(pool: Mempool, reads: type[_Reads], txs: list[tuple[Any, bytes]]) -> float:
    """Mean reads of a rate per ``add``, refused or not."""
    reads.n = 0
    for tx, who in txs:
        with contextlib.suppress(MempoolFull):
            pool.add(tx, who, 0)
    return reads.n / len(txs)


@pytest.mark.parametrize("n", [1_000, 8_000, 32_000])
def test_refusing_a_cheap_tx_at_a_full_pool_touches_log_n_entries(
    n: int, counting: type[_Reads]
) -> None:
    rng = random.Random(n)
    pool = full_pool(n, rng)
    cheap = [(ftx(0, 10, SIZE), sender(n + i)) for i in range(200)]
    per_op = reads_per_op(pool, counting, cheap)
    assert len(pool) == n  # every one refused, nothing lost
    # The linear scan read n rates per refusal; a heap reads O(log n).
    assert per_op <= 8 * math.log2(n) + 8, per_op
    pool.check_index()


@pytest.mark.parametrize("n", [1_000, 8_000, 32_000])
def test_admitting_into_a_full_pool_touches_log_n_entries(n: int, counting: type[_Reads]) -> None:
    rng = random.Random(n)
    pool = full_pool(n, rng)
    rich = [(ftx(0, 3000 + i, SIZE), sender(n + i)) for i in range(200)]
    per_op = reads_per_op(pool, counting, rich)
    assert len(pool) == n and all(tx.txid in pool for tx, _ in rich)  # each evicted one
    assert per_op <= 8 * math.log2(n) + 8, per_op
    pool.check_index()


def test_work_per_refusal_does_not_grow_with_the_pool(counting: type[_Reads]) -> None:
    rng = random.Random(7)
    costs = []
    for n in (1_000, 32_000):
        pool = full_pool(n, rng)
        cheap = [(ftx(0, 10, SIZE), sender(n + i)) for i in range(100)]
        costs.append(reads_per_op(pool, counting, cheap))
    # 32x the pool: at most a few more levels of the heap, not 32x the work.
    assert costs[1] <= costs[0] + 4 * 5 + 1, costs


def test_deep_sender_queues_keep_their_tails(counting: type[_Reads]) -> None:
    # 100 senders x 100 nonces: eviction walks each queue down from its tail.
    pool = Mempool(max_bytes=100 * 100 * SIZE)
    for n in range(100):
        for s in range(100):
            pool.add(ftx(n, 1000 + s, SIZE), sender(s), 0)
    pool.check_index()
    counting.n = 0
    for i in range(300):
        pool.add(ftx(0, 5000, SIZE), sender(1000 + i), 0)
    assert counting.n / 300 <= 8 * math.log2(len(pool.by_sender)) + 8
    pool.check_index()
    # The cheapest senders lost their highest nonces first, never a head.
    for q in pool.by_sender.values():
        assert sorted(q) == list(range(min(q), min(q) + len(q)))


def test_the_eviction_heap_is_built_once_when_the_pool_fills(counting: type[_Reads]) -> None:
    """Below the bound no heap is kept (adds do not pay for it); the first
    tx that does not fit builds it from the tails, once, and the adds after
    it keep it, each touching O(log n) entries."""
    n = 8_000
    pool = Mempool(max_bytes=n * SIZE)
    counting.n = 0
    for i in range(n):
        pool.add(ftx(0, 1000 + i % 1000, SIZE), sender(i), 0)
    assert counting.n == 0  # no rate read: no heap kept while it fits
    pool.check_index()
    cheap = [(ftx(0, 10, SIZE), sender(n + i)) for i in range(201)]
    first = reads_per_op(pool, counting, cheap[:1])
    assert first >= n  # the build: every tail's rate
    assert reads_per_op(pool, counting, cheap[1:]) <= 8 * math.log2(n) + 8
    pool.check_index()
    # A block that leaves it under half full lets the heap go.
    for i in range(n // 2 + 1):
        pool.remove(pool.by_sender[sender(i)][0].tx.txid)
    pool.block_connected(0)
    assert not pool._heaped
    pool.check_index()
