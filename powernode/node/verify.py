"""Signature checks in worker processes.

Why processes and not threads: OpenSSL's Ed25519 verify releases the GIL,
but a thread needs it back for a few microseconds after every signature, and
while the event loop runs Python (decoding and checking the next txs) a
verify thread waits for it up to the switch interval. Measured on 2 cores
with a busy loop, two verify threads ran at a third of their idle speed. A
worker process (``sigworker.py``) has its own interpreter, so it verifies at
full speed whatever the loop does; the node's threads that feed it and read
its replies take the GIL once per chunk of txs, not once per signature.

Each worker has a feeder thread (writes chunks to its stdin) and a reader
thread (reads replies, resolves the chunks' futures in order). If a worker
dies, its pending and later chunks are checked on those threads instead, so
an answer is never lost, only slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import queue
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import powernode
from powernode.core.errors import PowernodeError
from powernode.core.tx import Transaction
from powernode.logkit import emit
from powernode.node import sigworker

log = logging.getLogger("powernode.verify")

# Txs per message to a worker: ~10 ms of work, so the per-message costs
# (two thread wake-ups, two pipe writes) stay well under 1%.
_CHUNK = 64
# Below this a blocking check (a tiny block) runs on the calling thread: a
# round trip to a worker costs more than a few signatures. It is also the
# smallest chunk worth a message of its own.
_INLINE = 4

_Chunk = tuple[Sequence[Transaction], "Future[list[int]]"]


def _check_local(txs: Sequence[Transaction]) -> list[int]:
    bad = []
    for i, tx in enumerate(txs):
        try:
            tx.verify_signature()
        except PowernodeError:
            bad.append(i)
    return bad


class _Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self._queue: queue.SimpleQueue[_Chunk | None] = queue.SimpleQueue()
        self._in_flight: deque[_Chunk] = deque()
        self._lock = threading.Lock()
        self._dead = False
        self._stopping = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        # The worker must import this very package, also from a checkout
        # that is not installed, and not one from the working directory (-P).
        root = str(Path(powernode.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "powernode.node.sigworker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        for name, target in (("feed", self._feed), ("read", self._read)):
            t = threading.Thread(target=target, name=f"verify-{name}-{self.index}", daemon=True)
            t.start()
            self._threads.append(t)

    def submit(self, chunk: _Chunk) -> None:
        self._queue.put(chunk)

    def stop(self) -> None:
        self._stopping = True
        self._queue.put(None)
        for t in self._threads:
            t.join(timeout=10)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):  # a dead worker's unflushed input
                        stream.close()

    def _feed(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        stdin = self._proc.stdin
        while (chunk := self._queue.get()) is not None:
            with self._lock:
                dead = self._dead
                if not dead:
                    self._in_flight.append(chunk)
            if dead:
                _resolve(chunk)
                continue
            try:
                stdin.write(sigworker.frame(sigworker.encode_request(chunk[0])))
                stdin.flush()
            except OSError:
                pass  # the worker died: the reader answers what is in flight
        with contextlib.suppress(OSError):
            stdin.close()  # the worker exits at end of input

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        try:
            while (body := sigworker.read_frame(stdout)) is not None:
                with self._lock:
                    _, fut = self._in_flight.popleft()
                fut.set_result(sigworker.decode_reply(body))
        finally:
            # End of output: the worker exited (after a stop, nothing is in
            # flight) or died; from now on the feeder checks chunks itself.
            with self._lock:
                self._dead = True
                orphans = list(self._in_flight)
                self._in_flight.clear()
            if not self._stopping:
                emit(
                    log, "verify.worker_died", logging.ERROR, worker=self.index, chunks=len(orphans)
                )
            for chunk in orphans:
                _resolve(chunk)


def _resolve(chunk: _Chunk) -> None:
    """Answer a chunk on this thread."""
    txs, fut = chunk
    try:
        bad = _check_local(txs)
    except Exception as exc:
        fut.set_exception(exc)
    else:
        fut.set_result(bad)


class Verifier:
    def __init__(self, threads: int) -> None:
        """``threads`` worker processes (the config key predates them)."""
        self.threads = threads
        self._workers: list[_Worker] = []
        self._next: itertools.cycle[_Worker] | None = None

    def start(self) -> None:
        self._workers = [_Worker(i) for i in range(self.threads)]
        for w in self._workers:
            w.start()
        self._next = itertools.cycle(self._workers)

    def stop(self) -> None:
        workers, self._workers, self._next = self._workers, [], None
        for w in workers:
            w.stop()

    def _submit(self, txs: Sequence[Transaction]) -> list[tuple[int, Future[list[int]]]]:
        """Split ``txs`` over the workers; (offset, future of bad indexes) per chunk."""
        if self._next is None:
            raise RuntimeError("verifier not started")
        size = max(_INLINE, min(_CHUNK, -(-len(txs) // self.threads)))
        out = []
        for start in range(0, len(txs), size):
            fut: Future[list[int]] = Future()
            next(self._next).submit((txs[start : start + size], fut))
            out.append((start, fut))
        return out

    async def bad_indexes(self, txs: Sequence[Transaction]) -> set[int]:
        """Indexes of txs whose signature fails, checked off the event loop
        (even one: the loop stays free to serve while it is checked)."""
        if not txs:
            return set()
        parts = self._submit(txs)
        results = await asyncio.gather(*(asyncio.wrap_future(f) for _, f in parts))
        return {start + i for (start, _), bad in zip(parts, results, strict=True) for i in bad}

    def verify_blocking(self, txs: Sequence[Transaction]) -> None:
        """For the chain's synchronous block connect: parallel, raises on the first bad."""
        if len(txs) < 2 * _INLINE:
            for tx in txs:
                tx.verify_signature()
            return
        first_bad: int | None = None
        for start, fut in self._submit(txs):
            bad = fut.result()
            if bad and first_bad is None:
                first_bad = start + bad[0]
        if first_bad is not None:
            txs[first_bad].verify_signature()  # raises the typed error
