"""Signature checks on worker threads.

OpenSSL's Ed25519 verify releases the GIL, so chunks of a batch checked on
``threads`` workers run in parallel while the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from powernode.core.errors import PowernodeError
from powernode.core.tx import Transaction

_CHUNK = 32


def _check_chunk(txs: Sequence[Transaction]) -> list[int]:
    bad = []
    for i, tx in enumerate(txs):
        try:
            tx.verify_signature()
        except PowernodeError:
            bad.append(i)
    return bad


class Verifier:
    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="verify")

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    @property
    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            raise RuntimeError("verifier not started")
        return self._pool

    def _chunks(self, txs: Sequence[Transaction]) -> list[Sequence[Transaction]]:
        size = max(_CHUNK, -(-len(txs) // (self.threads * 8)))
        return [txs[i : i + size] for i in range(0, len(txs), size)]

    async def bad_indexes(self, txs: Sequence[Transaction]) -> set[int]:
        """Indexes of txs whose signature fails, checked off the event loop."""
        if not txs:
            return set()
        loop = asyncio.get_running_loop()
        chunks = self._chunks(txs)
        results = await asyncio.gather(
            *(loop.run_in_executor(self.pool, _check_chunk, c) for c in chunks)
        )
        bad: set[int] = set()
        offset = 0
        for chunk, res in zip(chunks, results, strict=True):
            bad.update(offset + i for i in res)
            offset += len(chunk)
        return bad

    def verify_blocking(self, txs: Sequence[Transaction]) -> None:
        """For the chain's synchronous block connect: parallel, raises on the first bad."""
        if len(txs) < 2 * _CHUNK:
            for tx in txs:
                tx.verify_signature()
            return
        futures = [self.pool.submit(_check_chunk, c) for c in self._chunks(txs)]
        offset = 0
        first_bad: int | None = None
        for fut, chunk in zip(futures, self._chunks(txs), strict=True):
            res = fut.result()
            if res and first_bad is None:
                first_bad = offset + res[0]
            offset += len(chunk)
        if first_bad is not None:
            txs[first_bad].verify_signature()  # raises the typed error
