"""The signature verifier: worker processes, bad signatures found wherever they
are, and answers that survive a worker's death."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from powernode.core.errors import BadSignature
from powernode.core.tx import Transaction
from powernode.node import sigworker, verify
from powernode.node.verify import Verifier, encode_request
from tests.unit.helpers import ALICE, BOB, tamper_signature, transfer


@pytest.fixture
def verifier() -> Iterator[Verifier]:
    v = Verifier(2)
    v.start()
    try:
        yield v
    finally:
        v.stop()


def _txs(n: int) -> list[Transaction]:
    return [transfer(ALICE if i % 2 else BOB, ALICE, 1 + i, nonce=i) for i in range(n)]


@pytest.mark.parametrize("n", [1, 3, 40, 300])
async def test_bad_indexes_finds_every_bad_signature(verifier: Verifier, n: int) -> None:
    txs = _txs(n)
    bad = {0, n - 1, n // 2}
    for i in bad:
        txs[i] = tamper_signature(txs[i])
    assert await verifier.bad_indexes(txs) == bad
    assert await verifier.bad_indexes([]) == set()


async def test_a_cancelled_check_does_not_disturb_the_next(verifier: Verifier) -> None:
    # The caller went away (a client hung up mid-batch): its chunks are
    # still answered by the workers, in order, and the answers dropped.
    dropped = verifier.bad_indexes(_txs(300))
    dropped.cancel()
    txs = _txs(50)
    txs[3] = tamper_signature(txs[3])
    async with asyncio.timeout(10):
        assert await verifier.bad_indexes(txs) == {3}
    assert dropped.cancelled()


def test_verify_blocking_raises_for_the_first_bad(verifier: Verifier) -> None:
    txs = _txs(200)
    verifier.verify_blocking(txs)  # all good
    txs[150] = tamper_signature(txs[150])
    with pytest.raises(BadSignature):
        verifier.verify_blocking(txs)


async def test_concurrent_batches_get_their_own_answers(verifier: Verifier) -> None:
    batches = [_txs(100) for _ in range(4)]
    for k, b in enumerate(batches):
        b[k * 10] = tamper_signature(b[k * 10])
    results = await asyncio.gather(*(verifier.bad_indexes(b) for b in batches))
    assert results == [{0}, {10}, {20}, {30}]


async def test_a_blocking_check_answers_the_async_requests_before_it(verifier: Verifier) -> None:
    # A block connect checks synchronously on the loop thread while gossip
    # batches wait on the same pipes: each gets its own answer.
    waiting = [_txs(130) for _ in range(3)]
    for k, b in enumerate(waiting):
        b[k + 5] = tamper_signature(b[k + 5])
    tasks = [asyncio.ensure_future(verifier.bad_indexes(b)) for b in waiting]
    await asyncio.sleep(0)  # the requests are written
    block = _txs(200)
    verifier.verify_blocking(block)
    block[99] = tamper_signature(block[99])
    with pytest.raises(BadSignature):
        verifier.verify_blocking(block)
    async with asyncio.timeout(10):
        assert await asyncio.gather(*tasks) == [{5}, {6}, {7}]


async def _on_a_loop(verifier: Verifier, txs: list[Transaction]) -> set[int]:
    # bad_indexes starts the check at once, so it is called on the loop.
    return await verifier.bad_indexes(txs)


def test_answers_survive_a_dead_worker(verifier: Verifier) -> None:
    for w in verifier._workers:
        assert w._proc is not None
        os.kill(w._proc.pid, signal.SIGKILL)
        w._proc.wait()
    txs = _txs(200)
    txs[7] = tamper_signature(txs[7])
    # the chunks go to dead workers: checked on the node's threads instead
    assert asyncio.run(_on_a_loop(verifier, txs)) == {7}
    with pytest.raises(BadSignature):
        verifier.verify_blocking(txs)


def test_stop_ends_the_workers() -> None:
    v = Verifier(2)
    v.start()
    v.verify_blocking(_txs(50))
    procs = [w._proc for w in v._workers]
    v.stop()
    assert all(p is not None and p.poll() is not None for p in procs)
    with pytest.raises(RuntimeError):
        v.verify_blocking(_txs(50))


def test_worker_request_round_trip() -> None:
    txs = _txs(5)
    txs[3] = tamper_signature(txs[3])
    reply = sigworker.check_request(encode_request(txs))
    assert sigworker.decode_reply(reply) == [3]
    assert verify._check_local(txs) == [3]


def test_stop_kills_a_worker_that_does_not_answer_and_answers_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(verify, "_STOP_WAIT_S", 0.5)
    v = Verifier(1)
    v.start()
    [w] = v._workers
    assert w._proc is not None
    os.kill(w._proc.pid, signal.SIGSTOP)  # hung: reads nothing, answers nothing
    txs = _txs(40)
    txs[3] = tamper_signature(txs[3])
    parts = v._submit(txs)
    v.stop()
    assert w._proc.poll() is not None  # killed
    assert [(start, req.result) for start, _, req in parts] == [(0, [3])]


def test_only_the_starting_thread_drives_the_verifier(verifier: Verifier) -> None:
    errors: list[BaseException] = []

    def other() -> None:
        try:
            verifier.verify_blocking(_txs(50))
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join(30)
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
    verifier.verify_blocking(_txs(50))  # still fine from its own thread


def test_the_worker_reads_requests_split_and_joined_anyhow() -> None:
    """A request may arrive in pieces, several in one read: each is answered
    once whole, in order."""
    batches = [_txs(3), _txs(5), _txs(2)]
    batches[1][4] = tamper_signature(batches[1][4])
    frames = [sigworker.frame(encode_request(b)) for b in batches]
    proc = subprocess.Popen(
        [sys.executable, "-m", "powernode.node.sigworker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
    )
    assert proc.stdin is not None and proc.stdout is not None
    out = proc.stdout

    def replies(n: int) -> list[list[int]]:
        got: list[list[int]] = []
        buf = b""
        while len(got) < n:
            ready, _, _ = select.select([out], [], [], 10.0)
            assert ready, "the worker did not answer"
            chunk = out.read(1 << 16)
            assert chunk, "the worker exited"
            buf += chunk
            while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
                end = 4 + int.from_bytes(buf[:4], "big")
                got.append(sigworker.decode_reply(buf[4:end]))
                buf = buf[end:]
        assert buf == b""
        return got

    try:
        half = len(frames[1]) // 2
        proc.stdin.write(frames[0] + frames[1][:half])  # one whole, one half
        assert replies(1) == [[]]
        proc.stdin.write(frames[1][half:] + frames[2])  # the rest, and one more
        assert replies(2) == [[4], []]
    finally:
        proc.stdin.close()
        code = proc.wait(timeout=10)
        out.close()
    assert code == 0


def test_chunks_are_cut_by_signatures_not_txs(verifier: Verifier) -> None:
    """Two full meter.batch txs (101 signatures each) and two transfers: each
    batch is a request of its own, so no worker holds half a second of work
    while the other waits, and a small block of batches is not checked on
    the calling thread."""
    from tests.unit.test_meter_batch import full_batch

    batches = [full_batch(ALICE), full_batch(BOB)]
    txs = [*batches, *_txs(2)]
    parts = verifier._submit(txs)
    for _, w, req in parts:
        assert w.wait(req) == []
    assert [start for start, _, _ in parts] == [0, 1, 2]
    assert [len(req.txs) for _, _, req in parts] == [1, 1, 2]
    verifier.verify_blocking(batches)  # two txs, 202 signatures: to the workers


def test_a_cosigned_tx_has_its_signatures_built_once_per_check(
    verifier: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The weight that splits a check and the worker request read the same
    list of a meter.batch's signatures: built once, not once for each."""
    from tests.unit.test_meter_batch import full_batch

    txs = [full_batch(ALICE), *_txs(3)]
    expected = encode_request(txs)
    built: list[Transaction] = []
    real = verify.tx_signatures

    def counted(tx: Transaction) -> tuple[tuple[bytes, bytes, bytes], ...]:
        built.append(tx)
        return real(tx)

    monkeypatch.setattr(verify, "tx_signatures", counted)
    assert encode_request(txs, verify.cosigned(txs)) == expected
    built.clear()
    parts = verifier._submit(txs)
    assert built == [txs[0]]
    for _, w, req in parts:
        assert w.wait(req) == []
