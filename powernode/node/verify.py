"""Signature checks in worker processes, driven from the node's own thread.

Why processes and not threads: libsodium's Ed25519 verify releases the GIL
(cffi drops it around the call), but a thread needs it back for a few
microseconds after every signature (and for the rule pre-checks), and while
the event loop runs Python (decoding and checking the next txs) a verify
thread waits for it up to the switch interval. A worker process
(``sigworker.py``) has its own interpreter, so it verifies at full speed
whatever the loop does. Re-measured for issue 15 (bench_node's baseline):
two bare threads verify about 25,600 signatures/s on the 2-core box, two
processes about 27,800, before any loop competes for the GIL; in the node
the loop runs Python for about 15-20 us of every ingested tx, which verify
threads would wait behind. So the node keeps processes, and the cost
around a worker was cut instead (below).

What a check costs around the signature itself, and how it is kept small:

- a request carries only what the worker needs, per signature ``pubkey ||
  length || signature || message`` with the signature and the message
  contiguous, so the worker hands libsodium the signed message in place in
  the request (``core.crypto.SpanVerifier``: no copy, no allocation per
  signature);
- requests made in one turn of the event loop are written to a worker at
  the end of that turn, in one write; the worker reads whatever has come in
  one read and answers what it read together, in one write (at least every
  ``sigworker._ANSWER_EVERY_S``), so a burst of small checks (gossip brings
  txs a few at a time) costs a few system calls and wake-ups, not several
  per check;
- ``bad_indexes`` returns a plain future that the last answer of its
  chunks resolves: no task, coroutine or gather per check.

Why no feeder or reader threads: the pipes to the workers are non-blocking
and the event loop writes requests and reads replies itself (``add_reader``
/ ``add_writer``). A thread per direction per worker cost the loop a GIL
hand-over and a cross-thread wake-up per chunk, and CPU of its own. The
synchronous path (``verify_blocking``, for a block connect, or a caller
without a loop) waits on the same pipes with ``select``, answering every
earlier request it reads on the way.

Replies come back in request order, matched to requests by position, so one
thread drives a verifier: the one that started it (the node's event loop).
If a worker dies, its pending and later requests are checked on that thread
instead, so an answer is never lost, only slower.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import powernode
from powernode.core.errors import PowernodeError
from powernode.core.execution import CoSig
from powernode.core.tx import Transaction
from powernode.logkit import emit
from powernode.node import sigworker
from powernode.state.registry import COSIGNERS, tx_signatures, verify_tx

log = logging.getLogger("powernode.verify")

# Signatures per message to a worker: ~10 ms of work, so the per-message
# costs stay well under 1%. Counted in signatures, not txs: a meter.batch
# carries up to 101, so 64 of them would be half a second of one worker.
_CHUNK = 64
# Below this many signatures a blocking check (a tiny block) runs on the
# calling thread: a round trip to a worker costs more than a few signatures.
# It is also the smallest chunk worth a message of its own.
_INLINE = 4
# Pipe buffers big enough that a burst of requests is written at once.
_PIPE_BYTES = 1 << 20
_READ_BYTES = 1 << 16
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# How long a stop waits for a worker to answer what it was given.
_STOP_WAIT_S = 10.0


# Per tx of a check, its signatures if its type has co-signers (built once,
# for the weight that splits the check and for the request), else None.
Cosigned = Sequence[tuple[CoSig, ...] | None]


def cosigned(txs: Sequence[Transaction]) -> list[tuple[CoSig, ...] | None]:
    return [tx_signatures(tx) if tx.type in COSIGNERS else None for tx in txs]


def encode_request(txs: Sequence[Transaction], sigs: Cosigned | None = None) -> bytes:
    """A worker request for ``txs`` (framing in ``sigworker``); ``sigs``:
    ``cosigned(txs)`` if the caller has it. Here, not in the worker module:
    the registry pulls in every engine, which would slow the worker's
    start."""
    parts: list[bytes] = []
    for i, tx in enumerate(txs):
        if tx.type in COSIGNERS:
            sigs_i = None if sigs is None else sigs[i]
            tx_sigs = tx_signatures(tx) if sigs_i is None else sigs_i
            # One byte: up to 255 signatures per tx (bytes() raises past it).
            parts.append(bytes((len(tx_sigs),)))
            for pubkey, sig, msg in tx_sigs:
                parts += (pubkey, len(msg).to_bytes(2, "big"), sig, msg)
        else:
            msg = tx.signing_bytes()
            parts += (b"\x01", tx.sender, len(msg).to_bytes(2, "big"), tx.signature, msg)
    return b"".join(parts)


def _weight(tx: Transaction) -> int:
    """Signatures a tx carries: its own, and its co-signers' if its type has any."""
    return len(tx_signatures(tx)) if tx.type in COSIGNERS else 1


def _check_local(txs: Sequence[Transaction]) -> list[int]:
    bad = []
    for i, tx in enumerate(txs):
        try:
            verify_tx(tx)
        except PowernodeError:
            bad.append(i)
    return bad


class _Batch:
    """One ``bad_indexes`` call: its requests (one per chunk) and the future
    its caller awaits, resolved when the last request is answered. A plain
    future, not a task gathering one per request: the loop pays for no task,
    no coroutine and no gather per call (gossip brings txs a few at a time)."""

    __slots__ = ("bad", "future", "left")

    def __init__(self, future: asyncio.Future[set[int]], parts: int) -> None:
        self.future = future
        self.left = parts
        self.bad: set[int] = set()

    def part_done(self, req: _Request) -> None:
        fut = self.future
        if req.error is not None:
            self.left = -1
            if not fut.done() and not fut.get_loop().is_closed():
                fut.set_exception(req.error)
            return
        assert req.result is not None
        offset = req.offset
        self.bad.update(offset + i for i in req.result)
        self.left -= 1
        if self.left == 0 and not fut.done() and not fut.get_loop().is_closed():
            fut.set_result(self.bad)


class _Request:
    __slots__ = ("batch", "error", "offset", "result", "txs")

    def __init__(self, txs: Sequence[Transaction], offset: int = 0) -> None:
        self.txs = txs
        self.offset = offset  # of txs[0] in its batch
        self.result: list[int] | None = None
        self.error: Exception | None = None
        self.batch: _Batch | None = None

    def resolve(self, bad: list[int], error: Exception | None = None) -> None:
        self.result, self.error = bad, error
        if self.batch is not None:
            self.batch.part_done(self)

    def check_here(self) -> None:
        """Answer on this thread (its worker is gone): a bug in the check
        reaches the awaiting caller, it does not leave it waiting forever."""
        try:
            bad = _check_local(self.txs)
        except Exception as exc:
            self.resolve([], exc)
        else:
            self.resolve(bad)


class _Worker:
    def __init__(self, index: int) -> None:
        self.index = index
        self._proc: subprocess.Popen[bytes] | None = None
        self._wfd = self._rfd = -1
        self._out = bytearray()
        self._in = bytearray()
        self._pending: deque[_Request] = deque()
        self._dead = False
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writing = False
        self._flush_soon = False

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
            bufsize=0,
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._wfd, self._rfd = self._proc.stdin.fileno(), self._proc.stdout.fileno()
        for fd in (self._wfd, self._rfd):
            os.set_blocking(fd, False)
            with contextlib.suppress(OSError):  # not Linux, or over the system's limit
                fcntl.fcntl(fd, _F_SETPIPE_SZ, _PIPE_BYTES)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Have ``loop`` read this worker's replies as they come."""
        if self._loop is loop or self._dead:
            return
        self._unbind()
        loop.add_reader(self._rfd, self._on_readable)
        self._loop = loop
        # A flush the old loop scheduled and never ran is redone here.
        self._flush_soon = False
        if self._out:
            self._flush()

    def _unbind(self) -> None:
        old, self._loop = self._loop, None
        if old is not None and not old.is_closed():
            old.remove_reader(self._rfd)
            if self._writing:
                old.remove_writer(self._wfd)
        self._writing = False

    def submit(
        self, txs: Sequence[Transaction], offset: int = 0, sigs: Cosigned | None = None
    ) -> _Request:
        req = _Request(txs, offset)
        if self._dead:
            req.check_here()
            return req
        self._pending.append(req)
        self._out += sigworker.frame(encode_request(txs, sigs))
        loop = self._loop
        if loop is None or loop.is_closed():
            self._flush()
        elif not self._flush_soon:
            # Written at the end of this turn of the loop: the requests of
            # every check started in it (a few txs each, from gossip) go in
            # one write, and wake the worker once.
            self._flush_soon = True
            loop.call_soon(self._flush)
        return req

    def _flush(self) -> None:
        self._flush_soon = False
        out = self._out
        while out:
            try:
                n = os.write(self._wfd, out)
            except BlockingIOError:
                break
            except OSError:  # the worker died: its replies end, _on_eof answers
                out.clear()
                break
            del out[:n]
        loop = self._loop
        if loop is None:
            return
        if out and not self._writing:
            loop.add_writer(self._wfd, self._flush)
            self._writing = True
        elif not out and self._writing:
            loop.remove_writer(self._wfd)
            self._writing = False

    def _on_readable(self) -> None:
        buf = self._in
        eof = False
        while True:
            try:
                data = os.read(self._rfd, _READ_BYTES)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                eof = True
                break
            buf += data
        pos = 0
        pending = self._pending
        while len(buf) - pos >= 4 and pending:
            end = pos + 4 + int.from_bytes(buf[pos : pos + 4], "big")
            if end > len(buf):
                break
            pending.popleft().resolve(sigworker.decode_reply(bytes(buf[pos + 4 : end])))
            pos = end
        del buf[:pos]
        if eof:  # after the replies it did send
            self._on_eof()

    def _on_eof(self) -> None:
        """The worker exited (after a stop nothing is pending) or died: check
        what it still owed on this thread, and every later request too."""
        self._dead = True
        self._unbind()
        orphans = list(self._pending)
        self._pending.clear()
        self._out.clear()
        if not self._stopping:
            emit(log, "verify.worker_died", logging.ERROR, worker=self.index, chunks=len(orphans))
        for req in orphans:
            req.check_here()

    def wait(self, req: _Request, timeout: float | None = None) -> list[int] | None:
        """Block until ``req`` is answered (answering earlier requests on the
        way); None if ``timeout`` s pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        poller = select.poll()
        while req.result is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            poller.register(self._rfd, select.POLLIN)
            if self._out and not self._dead:
                poller.register(self._wfd, select.POLLOUT)
            events = dict(poller.poll(1000))
            poller.unregister(self._rfd)
            with contextlib.suppress(KeyError):
                poller.unregister(self._wfd)
            if self._wfd in events:
                self._flush()
            if self._rfd in events:
                self._on_readable()
        if req.error is not None:
            raise req.error
        return req.result

    def stop(self) -> None:
        self._stopping = True
        # Answer what is in flight; a worker that hangs is killed, and its
        # requests are checked here.
        last = self._pending[-1] if self._pending and not self._dead else None
        if last is not None:
            with contextlib.suppress(Exception):  # an error goes to its caller
                self.wait(last, timeout=_STOP_WAIT_S)
            if last.result is None and self._proc is not None:
                self._proc.kill()
                self._on_eof()
        self._unbind()
        proc = self._proc
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):  # a dead worker's unflushed input
                    stream.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Verifier:
    def __init__(self, processes: int) -> None:
        """``processes`` worker processes (config key ``verify_processes``)."""
        self.processes = processes
        self._workers: list[_Worker] = []
        self._next: itertools.cycle[_Worker] | None = None
        self._owner = 0

    def start(self) -> None:
        self._owner = threading.get_ident()
        self._workers = [_Worker(i) for i in range(self.processes)]
        for w in self._workers:
            w.start()
        self._next = itertools.cycle(self._workers)

    @property
    def queued_txs(self) -> int:
        """Txs sent to the workers and not answered yet (the metrics' verify queue)."""
        return sum(len(req.txs) for w in self._workers for req in w._pending)

    def stop(self) -> None:
        workers, self._workers, self._next = self._workers, [], None
        for w in workers:
            w.stop()

    def _submit(self, txs: Sequence[Transaction]) -> list[tuple[int, _Worker, _Request]]:
        """Split ``txs`` over the workers; (offset, worker, request) per chunk."""
        if self._next is None:
            raise RuntimeError("verifier not started")
        if threading.get_ident() != self._owner:
            # Requests and replies are matched by order on shared buffers.
            raise RuntimeError("the verifier is driven by the thread that started it")
        sigs = cosigned(txs)
        if not any(sigs):
            # One signature per tx (the common case): equal slices, no walk.
            size = max(_INLINE, min(_CHUNK, -(-len(txs) // self.processes)))
            out = []
            for start in range(0, len(txs), size):
                w = next(self._next)
                out.append((start, w, w.submit(txs[start : start + size], start)))
            return out
        weights = [1 if s is None else len(s) for s in sigs]
        size = max(_INLINE, min(_CHUNK, -(-sum(weights) // self.processes)))
        out = []
        start = filled = 0
        for i, w_i in enumerate(weights):
            filled += w_i
            if filled >= size or i == len(txs) - 1:
                w = next(self._next)
                out.append((start, w, w.submit(txs[start : i + 1], start, sigs[start : i + 1])))
                start, filled = i + 1, 0
        return out

    def bad_indexes(self, txs: Sequence[Transaction]) -> asyncio.Future[set[int]]:
        """Indexes of txs whose signature fails, checked off the event loop
        (even one: the loop stays free to serve while it is checked). Call
        it on the loop, await what it returns (it starts at once)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[set[int]] = loop.create_future()
        if not txs:
            fut.set_result(set())
            return fut
        for w in self._workers:
            w.bind(loop)
        parts = self._submit(txs)
        batch = _Batch(fut, len(parts))
        for _, _, req in parts:
            if req.result is None:
                req.batch = batch
            else:  # answered already (its worker is gone)
                batch.part_done(req)
        return fut

    def verify_blocking(self, txs: Sequence[Transaction]) -> None:
        """For the chain's synchronous block connect: parallel, raises on the first bad."""
        if len(txs) < 2 * _INLINE and sum(_weight(tx) for tx in txs) < 2 * _INLINE:
            for tx in txs:
                verify_tx(tx)
            return
        first_bad: int | None = None
        for start, w, req in self._submit(txs):
            bad = w.wait(req)
            assert bad is not None  # no timeout
            if bad and first_bad is None:
                first_bad = start + bad[0]
        if first_bad is not None:
            verify_tx(txs[first_bad])  # raises the typed error
