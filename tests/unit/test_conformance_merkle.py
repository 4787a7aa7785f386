"""The Merkle tree against RFC 6962 (tests/data/rfc6962).

``powernode.core.merkle`` builds its tree bottom up and carries an unpaired
node up a level; its docstring claims that is RFC 6962's Merkle Tree Hash.
Here the claim is checked rather than argued: ``mth`` and ``path`` below are
RFC 6962 section 2.1 written out directly (the recursive split at the
largest power of two below n, nothing shared with core), and core's root and
every inclusion proof must equal theirs for 0..64 leaves. The published
Certificate Transparency known answers pin ``mth`` and ``path`` themselves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from powernode.core.merkle import (
    EMPTY_ROOT,
    inclusion_path,
    inclusion_paths,
    merkle_proof,
    merkle_root,
    verify_inclusion,
)

DATA = Path(__file__).parents[1] / "data" / "rfc6962" / "ct-vectors.json"
MAX_LEAVES = 64


def _load() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DATA.read_text())
    return doc


def _largest_power_of_two_below(n: int) -> int:
    """RFC 6962's k: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: Sequence[bytes]) -> bytes:
    """RFC 6962 section 2.1, Merkle Tree Hash, as the text defines it."""
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _largest_power_of_two_below(n)
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def path(m: int, d: Sequence[bytes]) -> list[tuple[bytes, bool]]:
    """RFC 6962 section 2.1.1, PATH(m, D[n]), bottom up; each node paired
    with whether it is the left child (the side the recursion takes it from)."""
    n = len(d)
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return [*path(m, d[:k]), (mth(d[k:]), False)]
    return [*path(m - k, d[k:]), (mth(d[:k]), True)]


def tx_ids(n: int) -> list[bytes]:
    # 32-byte items, as the tx ids core hashes in blocks are.
    return [hashlib.sha256(b"tx" + i.to_bytes(4, "big")).digest() for i in range(n)]


# --- the independent implementation against the published answers -------------


def test_reference_implementation_gives_the_published_roots() -> None:
    doc = _load()
    leaves = [bytes.fromhex(x) for x in doc["leaves"]]
    assert len(doc["roots"]) == len(leaves) + 1
    for n, root in enumerate(doc["roots"]):
        assert mth(leaves[:n]).hex() == root, n


def test_reference_implementation_gives_the_published_audit_paths() -> None:
    doc = _load()
    leaves = [bytes.fromhex(x) for x in doc["leaves"]]
    assert doc["inclusion_proofs"]
    for case in doc["inclusion_proofs"]:
        got = [h.hex() for h, _ in path(case["index"], leaves[: case["size"]])]
        assert got == case["path"], case


# --- core against the published answers -----------------------------------------


def test_core_gives_the_published_roots_and_paths() -> None:
    doc = _load()
    leaves = [bytes.fromhex(x) for x in doc["leaves"]]
    for n, root in enumerate(doc["roots"]):
        assert merkle_root(leaves[:n]).hex() == root, n
    for case in doc["inclusion_proofs"]:
        proof = merkle_proof(leaves[: case["size"]], case["index"])
        assert [s.hex() for s, _ in proof.steps] == case["path"], case
        assert proof.root().hex() == doc["roots"][case["size"]]


def test_empty_tree_is_the_hash_of_nothing() -> None:
    # RFC 6962: MTH({}) = SHA-256(); core once used 32 zero bytes here.
    assert merkle_root([]) == mth([]) == hashlib.sha256(b"").digest()


# --- core against the independent implementation, 0..64 leaves ------------------


@pytest.mark.parametrize("n", range(MAX_LEAVES + 1))
def test_root_and_every_inclusion_proof_match_rfc6962(n: int) -> None:
    items = tx_ids(n)
    root = mth(items)
    assert merkle_root(items) == root
    for m in range(n):
        proof = merkle_proof(items, m)
        assert proof.leaf == items[m] and proof.index == m
        # The same audit path, node for node and side for side ...
        assert list(proof.steps) == path(m, items), (n, m)
        # ... which leads to the root.
        assert proof.root() == root


def test_varied_length_leaves_match_rfc6962() -> None:
    # RFC 6962 leaves are arbitrary byte strings; core takes any bytes too.
    items = [bytes(range(i % 7)) * (i % 3) for i in range(MAX_LEAVES + 1)]
    for n in range(len(items) + 1):
        assert merkle_root(items[:n]) == mth(items[:n]), n


# --- inclusion proofs checked from (index, size) alone (RFC 9162 2.1.3.2) -------


def test_verify_inclusion_accepts_the_published_audit_paths() -> None:
    doc = _load()
    leaves = [bytes.fromhex(x) for x in doc["leaves"]]
    for case in doc["inclusion_proofs"]:
        path_ = [bytes.fromhex(h) for h in case["path"]]
        root = bytes.fromhex(doc["roots"][case["size"]])
        leaf = leaves[case["index"]]
        assert verify_inclusion(leaf, case["index"], case["size"], path_, root), case
        # Any other leaf, root, or a path one node short or long is refused.
        assert not verify_inclusion(leaf + b"x", case["index"], case["size"], path_, root)
        assert not verify_inclusion(leaf, case["index"], case["size"], path_, EMPTY_ROOT)
        assert not verify_inclusion(leaf, case["index"], case["size"], [*path_, root], root)
        if path_:
            assert not verify_inclusion(leaf, case["index"], case["size"], path_[:-1], root)


@pytest.mark.parametrize("n", range(1, MAX_LEAVES + 1))
def test_verify_inclusion_of_every_leaf_and_no_other_position(n: int) -> None:
    items = tx_ids(n)
    root = mth(items)
    for m in range(n):
        p = inclusion_path(items, m)
        assert list(p) == [h for h, _ in path(m, items)]
        assert verify_inclusion(items[m], m, n, p, root)
        # The same path at another index of the same tree proves nothing,
        # and neither does another item at this index.
        for other in range(n):
            if other != m:
                assert not verify_inclusion(items[m], other, n, p, root), (n, m, other)
        assert not verify_inclusion(items[(m + 1) % n] + b"!", m, n, p, root)
    assert not verify_inclusion(items[0], n, n, inclusion_path(items, 0), root)
    assert not verify_inclusion(items[0], -1, n, inclusion_path(items, 0), root)


def test_verify_inclusion_flipped_sibling_bit_is_refused() -> None:
    items = tx_ids(13)
    root = mth(items)
    for m in range(13):
        p = list(inclusion_path(items, m))
        for k in range(len(p)):
            for bit in (0, 77, 255):
                bad = bytearray(p[k])
                bad[bit // 8] ^= 1 << (bit % 8)
                q = [*p[:k], bytes(bad), *p[k + 1 :]]
                assert not verify_inclusion(items[m], m, 13, q, root)


def test_inclusion_paths_of_many_leaves_are_each_leafs_path() -> None:
    for n in (1, 2, 3, 7, 13, 64):
        items = tx_ids(n)
        picks = list(range(n))[::-1]
        assert inclusion_paths(items, picks) == [inclusion_path(items, m) for m in picks]
    with pytest.raises(IndexError):
        inclusion_paths(tx_ids(3), [3])
