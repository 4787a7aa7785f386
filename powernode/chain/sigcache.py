"""Remembers which txs had a valid signature, so a tx checked on its way into
the mempool is not checked again when its block connects.

Keyed by tx id: the id is the hash of the signed bytes, so the same id means
the same message, key and signature. Bounded; the oldest entries go first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from powernode.core.tx import Transaction
from powernode.state.registry import verify_tx


class SigCache:
    def __init__(self, max_entries: int = 250_000) -> None:
        self.max_entries = max_entries
        self._ids: dict[bytes, None] = {}
        self.hits = 0
        self.misses = 0

    def __contains__(self, txid: bytes) -> bool:
        return txid in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, txid: bytes) -> None:
        ids = self._ids
        if txid in ids:
            return
        ids[txid] = None
        if len(ids) > self.max_entries:
            del ids[next(iter(ids))]

    def missing(self, txs: Sequence[Transaction]) -> list[Transaction]:
        """The txs whose signature is not known good yet."""
        ids = self._ids
        return [tx for tx in txs if tx.txid not in ids]

    def add_checked(self, txs: Sequence[Transaction], bad: set[int]) -> None:
        """Remember ``txs`` as checked, but those at the ``bad`` indexes."""
        for i, tx in enumerate(txs):
            if i not in bad:
                self.add(tx.txid)

    def clear(self) -> None:
        self._ids.clear()

    def verify_all(
        self,
        txs: Sequence[Transaction],
        verify_batch: Callable[[Sequence[Transaction]], None],
    ) -> None:
        """Check every tx not already known good; raise BadSignature on the first
        bad one. Only successes are cached."""
        todo = [tx for tx in txs if tx.txid not in self._ids]
        self.hits += len(txs) - len(todo)
        self.misses += len(todo)
        if todo:
            verify_batch(todo)
            for tx in todo:
                self.add(tx.txid)


def verify_serial(txs: Sequence[Transaction]) -> None:
    for tx in txs:
        verify_tx(tx)
