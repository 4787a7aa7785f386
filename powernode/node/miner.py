"""The miner: a worker thread that searches nonces for a template.

Templates are built on the event loop (they read the ledger, which only the
loop touches) and handed to the thread; a found block goes back with
``call_soon_threadsafe``. The PoW hash releases the GIL (see core/pow.py), so
the loop stays responsive while the thread hashes. A new tip bumps
``generation``, which makes the thread drop its template within a few
hundred attempts; a changed mempool is picked up at the next refresh.

The CPU cap (``cpu_share``) counts the thread's own CPU time, not wall time:
on a busy machine the thread spends much of its wall time waiting for a core
or for the GIL, and resting in proportion to that wall time made the miner
hash at a small fraction of its share exactly when the node was busiest
(blocks came late and filled up, and confirmed tx/s fell with the load).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from powernode.core.block import Block, make_block
from powernode.core.pow import pow_hash
from powernode.logkit import emit
from powernode.node.runtime import name_os_thread

log = logging.getLogger("powernode.miner")

_CHECK_EVERY = 256


class Miner:
    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        make_template: Callable[[], Coroutine[Any, Any, Block]],
        on_found: Callable[[Block], None],
        refresh: float,
        state_key: Callable[[], object],
        cpu_share: float = 1.0,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self._loop = loop
        self._make_template = make_template
        self._on_found = on_found
        self._refresh = refresh
        # After hashing for t seconds of its CPU time the thread rests
        # t * _rest_factor (wall time): its CPU stays at cpu_share of a core.
        self._rest_factor = 1.0 / cpu_share - 1.0 if 0 < cpu_share < 1 else 0.0
        # The calling thread's CPU seconds (a parameter for tests).
        self._cpu_clock = cpu_clock
        # Read from the miner thread: a stale read costs one extra rebuild at most.
        self._state_key = state_key
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.generation = 0
        self.hashes = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="miner", daemon=True)
        self._thread.start()
        emit(log, "miner.started")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop and join (call from a worker thread if the loop must not block)."""
        t = self._thread
        if t is None:
            return
        self._stop.set()
        self._wake.set()
        t.join(timeout)
        self._thread = None
        emit(log, "miner.stopped", hashes=self.hashes)

    def new_tip(self) -> None:
        self.generation += 1
        self._wake.set()

    def _template(self) -> Block | None:
        fut = asyncio.run_coroutine_threadsafe(self._make_template(), self._loop)
        try:
            return fut.result(timeout=30)
        except Exception as exc:
            if not self._stop.is_set():
                emit(log, "miner.template_failed", logging.WARNING, reason=repr(exc))
            return None

    def _run(self) -> None:
        name_os_thread("miner")
        nonce_base = int.from_bytes(threading.get_ident().to_bytes(8, "little")[:4], "big") << 32
        while not self._stop.is_set():
            gen = self.generation
            key = self._state_key()
            block = self._template()
            if block is None:
                self._stop.wait(1.0)
                continue
            header = block.header
            commitment = header.pow_commitment()
            target = header.target_int
            deadline = time.monotonic() + self._refresh
            nonce = nonce_base
            found = None
            rest, cpu_clock = self._rest_factor, self._cpu_clock
            while found is None:
                started = cpu_clock()
                for n in range(nonce, nonce + _CHECK_EVERY):
                    if pow_hash(commitment, n) <= target:
                        found = n
                        break
                self.hashes += _CHECK_EVERY
                nonce += _CHECK_EVERY
                if rest:
                    self._stop.wait((cpu_clock() - started) * rest)
                if self._stop.is_set() or gen != self.generation:
                    break
                if time.monotonic() > deadline:
                    # Rebuilding costs the event loop a full template; only
                    # do it when the tip or the mempool changed.
                    if self._state_key() != key:
                        break
                    deadline = time.monotonic() + self._refresh
            nonce_base = nonce
            if found is None:
                continue
            mined = make_block(header.with_nonce(found), block.txs)
            self._wake.clear()
            self._loop.call_soon_threadsafe(self._on_found, mined)
            # Wait for the loop to connect it (a new generation) before the next
            # template, so the same height is not mined twice.
            self._wake.wait(5.0)
