"""Transactions waiting for a block: ordered by fee rate, per sender by nonce.

Bounded in bytes. When full, the cheapest tx (lowest fee per kB) at the tail
of some sender's queue is evicted: taking a tail never leaves a nonce gap
behind it. Validation against the tip state is the ledger's job; this class
only keeps the entries and their order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from powernode.core.errors import MempoolFull
from powernode.core.tx import Transaction


@dataclass(slots=True, eq=False)
class PoolEntry:
    tx: Transaction
    sender: bytes
    cost: int  # fee plus the most the tx can debit beyond it
    rate: int  # fee per 1000 bytes, the ordering key
    seq: int  # arrival order, the tie-breaker


class Mempool:
    def __init__(self, *, max_bytes: int = 64 * 1024 * 1024, max_per_sender: int = 256) -> None:
        self.max_bytes = max_bytes
        self.max_per_sender = max_per_sender
        self.by_id: dict[bytes, PoolEntry] = {}
        self.by_sender: dict[bytes, dict[int, PoolEntry]] = {}
        self.total_bytes = 0
        self._sender_cost: dict[bytes, int] = {}
        self._seq = 0
        # Changes whenever the contents do; the miner rebuilds only then.
        self.version = 0

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, txid: bytes) -> bool:
        return txid in self.by_id

    def get(self, txid: bytes) -> PoolEntry | None:
        return self.by_id.get(txid)

    def entry_at(self, sender: bytes, nonce: int) -> PoolEntry | None:
        q = self.by_sender.get(sender)
        return None if q is None else q.get(nonce)

    def next_nonce(self, sender: bytes, state_nonce: int) -> int:
        """The nonce a new tx from ``sender`` should use (after its queued run)."""
        q = self.by_sender.get(sender)
        n = state_nonce
        if q:
            while n in q:
                n += 1
        return n

    def slot(self, sender: bytes, nonce: int) -> tuple[PoolEntry | None, int]:
        """The entry at (``sender``, ``nonce``) if any, and what all of
        ``sender``'s other pending txs may take: both admission checks in one
        lookup. Every pending tx counts, whatever its nonce, so sending
        nonces out of order cannot overdraw the account."""
        q = self.by_sender.get(sender)
        if q is None:
            return None, 0
        old = q.get(nonce)
        total = self._sender_cost[sender]
        return old, total if old is None else total - old.cost

    def add(self, tx: Transaction, sender: bytes, cost: int) -> list[PoolEntry]:
        """Insert (replacing the same sender+nonce if present); returns what was
        evicted to stay in bounds. If the pool is full and ``tx`` pays least,
        the pool is left exactly as it was and MempoolFull is raised."""
        q = self.by_sender.get(sender)
        old = None if q is None else q.get(tx.nonce)
        if old is not None:
            self._drop(old)
        # len(tx.raw) is tx.size, without the property call.
        entry = PoolEntry(tx, sender, cost, tx.fee * 1000 // (len(tx.raw) or 1), self._seq)
        self._seq += 1
        self._insert(entry)
        if self.total_bytes <= self.max_bytes:
            return []
        evicted = self._evict()
        if any(e is entry for e in evicted):
            for e in evicted:
                if e is not entry:
                    self._insert(e)
            if old is not None:
                self._insert(old)
            raise MempoolFull("mempool is full and this tx pays too little to displace any other")
        return evicted

    def _insert(self, entry: PoolEntry) -> None:
        self.version += 1
        sender, tx = entry.sender, entry.tx
        q = self.by_sender.get(sender)
        if q is None:  # not setdefault: it would build a dict per call
            q = self.by_sender[sender] = {}
        q[tx.nonce] = entry
        self.by_id[tx.txid] = entry
        self.total_bytes += len(tx.raw)  # tx.size
        cost = self._sender_cost
        cost[sender] = cost.get(sender, 0) + entry.cost

    def remove(self, txid: bytes) -> PoolEntry | None:
        entry = self.by_id.get(txid)
        if entry is not None:
            self._drop(entry)
        return entry

    def _drop(self, entry: PoolEntry) -> None:
        self.version += 1
        del self.by_id[entry.tx.txid]
        q = self.by_sender[entry.sender]
        del q[entry.tx.nonce]
        if not q:
            del self.by_sender[entry.sender]
            del self._sender_cost[entry.sender]
        else:
            self._sender_cost[entry.sender] -= entry.cost
        self.total_bytes -= entry.tx.size

    def drop_stale(self, sender: bytes, state_nonce: int) -> list[PoolEntry]:
        """Remove ``sender``'s entries whose nonce the chain has used."""
        q = self.by_sender.get(sender)
        if not q:
            return []
        stale = [e for n, e in q.items() if n < state_nonce]
        if len(stale) < len(q):
            for e in stale:
                self._drop(e)
            return stale
        # The whole queue (the usual case after a block): drop it at once.
        del self.by_sender[sender]
        del self._sender_cost[sender]
        by_id = self.by_id
        for e in stale:
            del by_id[e.tx.txid]
        self.total_bytes -= sum(len(e.tx.raw) for e in stale)  # len(raw) is tx.size
        self.version += 1
        return stale

    def _evict(self) -> list[PoolEntry]:
        evicted: list[PoolEntry] = []
        while self.total_bytes > self.max_bytes and self.by_id:
            tails = (q[max(q)] for q in self.by_sender.values())
            victim = min(tails, key=lambda e: (e.rate, -e.seq))
            self._drop(victim)
            evicted.append(victim)
        return evicted

    def select(self, state_nonce: Callable[[bytes], int]) -> Iterator[Transaction]:
        """Executable txs, best fee rate first, each sender's in nonce order."""
        heap: list[tuple[int, int, int, PoolEntry]] = []
        for sender, q in self.by_sender.items():
            e = q.get(state_nonce(sender))
            if e is not None:
                heap.append((-e.rate, e.seq, e.tx.nonce, e))
        heapq.heapify(heap)
        while heap:
            _, _, nonce, e = heapq.heappop(heap)
            yield e.tx
            rest = self.by_sender.get(e.sender)  # not get(, {}): a dict per tx
            nxt = None if rest is None else rest.get(nonce + 1)
            if nxt is not None:
                heapq.heappush(heap, (-nxt.rate, nxt.seq, nxt.tx.nonce, nxt))

    def ordered(self) -> list[Transaction]:
        """Every tx, grouped by sender in nonce order (for saving and re-admission)."""
        return [q[n].tx for _, q in sorted(self.by_sender.items()) for n in sorted(q)]

    def clear(self) -> None:
        self.by_id.clear()
        self.by_sender.clear()
        self._sender_cost.clear()
        self.total_bytes = 0
        self.version += 1
