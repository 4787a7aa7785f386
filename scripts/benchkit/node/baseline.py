"""The baseline of every benchmark (bench_node's phase 1): raw Ed25519
verifies per second with the node's verifier (libsodium, through PyNaCl)
directly, and the node's own per-tx path, on 1 and 2 threads, beside the
verifier candidates measured on the same messages in the same run.
bench_market.py measures it beside its figures over its own txs
(``bench_baseline``), bench_network.py over sample transfers
(``transfer_baseline``).

The candidates (issue 15: the verifier is chosen by these figures):

- ``cryptography``: OpenSSL's Ed25519, the node's verifier before libsodium,
  with parsed key objects (its best case);
- ``pynacl``: libsodium's Ed25519 (``crypto_sign_open``), raw key bytes; the
  same keys, messages and signatures as ``cryptography`` (Ed25519 signing is
  deterministic, so both libraries make the same signature bytes);
- ``pynacl_node_rules``: ``core.crypto.signature_ok``, libsodium behind the
  node's own pre-checks (what a signature worker runs);
- ``coincurve``: libsecp256k1's BIP340 Schnorr, for comparison only (another
  key scheme): its own keys from the same seeds, signing SHA-256 of the same
  messages (BIP340 signs 32 bytes; the hash is timed with the verify, as
  Ed25519 hashes the message inside its verify), parsed x-only keys.

Each runs on 1 and 2 threads, timed over slices of ``SLICE`` signatures,
all candidates on the same slice in turn, and rated by each one's best
slice (``_best_slice_rates``: robust to a machine shared with other work).
The baseline itself is timed as before, best of whole passes over all the
signatures, so its meaning for the ingest ratio does not change; beside it
the node's verifier also runs on 2 worker processes, to show whether threads
now do as well (cffi releases the GIL around the C call). Candidates not
installed are reported as missing, not measured.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from typing import Any, TypeVar

from nacl.bindings import crypto_sign_open

from benchkit.guard import progress
from benchkit.node.txs import FEE
from powernode.client import build_transfer
from powernode.core.crypto import KeyPair, sha256, signature_ok
from powernode.core.tx import Transaction

T = TypeVar("T")

# Signatures per timed slice of the candidate comparison (~5 ms at 18,000/s: a
# slice that short often runs undisturbed on a busy machine).
SLICE = 100

# (public key bytes, signature, message): one Ed25519 item.
Item = tuple[bytes, bytes, bytes]


# --- 1. baseline -------------------------------------------------------------------


def _best_rates(n: int, runs: int, fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Items per second of each function, best of ``runs``; the runs are
    interleaved so a slow spell of the machine hits every variant alike."""
    best = dict.fromkeys(fns, math.inf)
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: n / t for name, t in best.items()}


def _best_slice_rates(
    slices: Sequence[Sequence[int]], runs: int, fns: dict[str, Callable[[Sequence[int]], object]]
) -> dict[str, float]:
    """Like ``_best_rates``, but each timing is one short slice of the items
    (every function on the same slice in turn, ``runs`` passes over all of
    them), and a rate is a slice's size over its best time: on a machine
    shared with other work, a slice of a few ms often runs undisturbed where a
    whole pass never does, so the figure is the library's, not the load's."""
    best = dict.fromkeys(fns, math.inf)
    for _ in range(runs):
        for sl in slices:
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn(sl)
                best[name] = min(best[name], (time.perf_counter() - t0) / len(sl))
    return {name: 1 / t for name, t in best.items()}


def _split(items: Sequence[T], parts: int) -> list[Sequence[T]]:
    size = -(-len(items) // parts)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _on_pool(
    pool: Executor, fn: Callable[[Sequence[T]], None], parts: Sequence[Sequence[T]]
) -> None:
    list(pool.map(fn, parts))


def _halves_on_pool(
    pool: Executor, fn: Callable[[Sequence[int]], None], part: Sequence[int]
) -> None:
    list(pool.map(fn, _split(part, 2)))


def _sodium(chunk: Sequence[Item]) -> None:
    """The node's verifier, raw: libsodium's verify on key bytes."""
    for pub, sig, msg in chunk:
        crypto_sign_open(sig + msg, pub)


def _node_rules(chunk: Sequence[Item]) -> None:
    for pub, sig, msg in chunk:
        if not signature_ok(pub, sig, msg):
            raise RuntimeError("a baseline signature did not verify")


def _candidates(
    seeds: Sequence[bytes], items: Sequence[Item], *, every: bool
) -> tuple[dict[str, Callable[[Sequence[int]], None]], list[str]]:
    """Per candidate library that is installed, a function verifying the
    items at the given indexes; and the names of those missing. Without
    ``every``, only the node's verifier (the baseline)."""
    fns: dict[str, Callable[[Sequence[int]], None]] = {}
    missing: list[str] = []
    n_keys = len(seeds)

    def sodium(idx: Sequence[int]) -> None:
        _sodium([items[i] for i in idx])

    fns["pynacl"] = sodium
    if not every:
        return fns, missing

    def node_rules(idx: Sequence[int]) -> None:
        _node_rules([items[i] for i in idx])

    fns["pynacl_node_rules"] = node_rules
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:
        missing.append("cryptography")
    else:
        ossl = [Ed25519PublicKey.from_public_bytes(KeyPair.from_seed(s).pubkey) for s in seeds]

        def openssl(idx: Sequence[int]) -> None:
            for i in idx:
                _, sig, msg = items[i]
                ossl[i % n_keys].verify(sig, msg)

        fns["cryptography"] = openssl
    try:
        import coincurve
    except ImportError:
        missing.append("coincurve")
    else:
        sk = [coincurve.PrivateKey(s) for s in seeds]
        xonly = [coincurve.PublicKeyXOnly.from_secret(s) for s in seeds]
        digests = [hashlib.sha256(msg).digest() for _, _, msg in items]
        schnorr = [sk[i % n_keys].sign_schnorr(d) for i, d in enumerate(digests)]
        msgs = [msg for _, _, msg in items]

        def bip340(idx: Sequence[int]) -> None:
            for i in idx:
                if not xonly[i % n_keys].verify(schnorr[i], hashlib.sha256(msgs[i]).digest()):
                    raise RuntimeError("a BIP340 signature did not verify")

        fns["coincurve"] = bip340
    return fns, missing


def bench_baseline(
    n: int,
    runs: int,
    msg_bytes: int,
    sample_txs: Sequence[Transaction],
    *,
    candidates: bool = False,
) -> dict[str, Any]:
    """The baseline; with ``candidates`` (bench_node) also every candidate
    verifier and the node's verifier on 2 processes, which the benchmarks
    that only need the baseline skip (they would triple its time)."""
    seeds = [sha256(b"baseline-%d" % i) for i in range(64)]
    keys = [KeyPair.from_seed(s) for s in seeds]
    items: list[Item] = []
    for j in range(n):
        msg = os.urandom(msg_bytes)
        key = keys[j % len(keys)]
        items.append((key.pubkey, key.sign(msg), msg))

    def node_path(chunk: Sequence[Transaction]) -> None:
        for tx in chunk:
            tx.verify_signature()

    txs = [sample_txs[i % len(sample_txs)] for i in range(n)]
    out: dict[str, Any] = {
        "verifier": "libsodium (PyNaCl crypto_sign_open)",
        "signatures": n,
        "message_bytes": msg_bytes,
        "runs": runs,
        "node_path_tx_bytes": txs[0].size,
    }
    cands, missing = _candidates(seeds, items, every=candidates)
    everything = range(n)
    idx_halves = _split(everything, 2)
    halves = _split(items, 2)
    tx_halves = _split(txs, 2)
    with ExitStack() as stack:
        fns: dict[str, Callable[[], object]] = {}
        if candidates:
            # Started (and warmed) before the threads, so the fork copies no
            # thread of ours.
            procs = stack.enter_context(ProcessPoolExecutor(2))
            list(procs.map(_sodium, _split(items[:200], 2)))
            fns["verify_per_s_2p"] = partial(_on_pool, procs, _sodium, halves)
        pool = stack.enter_context(ThreadPoolExecutor(2))
        list(pool.map(_sodium, _split(items[:200], 2)))  # start and warm both threads
        fns["node_path_per_s_1t"] = lambda: node_path(txs)
        fns["node_path_per_s_2t"] = lambda: list(pool.map(node_path, tx_halves))
        sodium = cands["pynacl"]
        fns["verify_per_s_1t"] = partial(sodium, everything)
        fns["verify_per_s_2t"] = partial(_on_pool, pool, sodium, idx_halves)
        out.update(_best_rates(n, runs, fns))
        if candidates:
            slice_fns: dict[str, Callable[[Sequence[int]], object]] = {}
            for name, fn in cands.items():
                slice_fns[f"{name}/1t"] = fn
                slice_fns[f"{name}/2t"] = partial(_halves_on_pool, pool, fn)
            rates = _best_slice_rates(_split(everything, max(1, n // SLICE)), runs, slice_fns)
    if candidates:
        ref = rates.get("cryptography/1t")
        figures: dict[str, Any] = {}
        for name in cands:
            one, two = rates[f"{name}/1t"], rates[f"{name}/2t"]
            figures[name] = {
                "per_s_1t": one,
                "per_s_2t": two,
                "ratio_to_cryptography_1t": one / ref if ref else None,
            }
        for name in missing:
            figures[name] = {"missing": True}
        out["candidates"] = figures
        out["candidate_slice"] = SLICE
    progress(f"baseline: 1 thread  {out['verify_per_s_1t']:,.0f} verifies/s (libsodium)")
    progress(f"baseline: 2 threads {out['verify_per_s_2t']:,.0f} verifies/s (the baseline)")
    if candidates:
        progress(f"baseline: 2 processes {out['verify_per_s_2p']:,.0f} verifies/s")
    progress(
        "baseline: node path Transaction.verify_signature "
        f"{out['node_path_per_s_1t']:,.0f}/s (1 thread), {out['node_path_per_s_2t']:,.0f}/s (2)"
    )
    for name, c in out.get("candidates", {}).items():
        if c.get("missing"):
            progress(f"baseline: candidate {name}: not installed")
            continue
        ratio = c["ratio_to_cryptography_1t"]
        progress(
            f"baseline: candidate {name}: {c['per_s_1t']:,.0f}/s per core, "
            f"{c['per_s_2t']:,.0f}/s on 2 threads"
            + (f", {ratio:.2f}x cryptography per core" if ratio else "")
        )
    return out


def transfer_baseline(sigs: int) -> dict[str, Any]:
    """``bench_baseline`` with 200 transfers from one key as the node-path sample."""
    key = KeyPair.from_seed(sha256(b"net-baseline"))
    sample = [
        build_transfer(key, chain_id="powernode-bench", nonce=n, to=bytes(20), amount=1, fee=FEE)
        for n in range(200)
    ]
    return bench_baseline(sigs, 3, 140, sample)
