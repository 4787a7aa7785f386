"""Merkle roots and proofs, the PoW hash, block work and the ASERT retarget."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from powernode.core import encoding
from powernode.core.block import make_header
from powernode.core.crypto import ZERO_HASH, sha256
from powernode.core.merkle import MerkleAccumulator, MerkleProof, merkle_proof, merkle_root
from powernode.core.pow import (
    MAX_TARGET,
    asert_target,
    block_work,
    pow_hash,
    target_from_bytes,
    target_to_bytes,
)


def leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [sha256(salt + i.to_bytes(4, "big")) for i in range(n)]


# --- merkle ------------------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    # RFC 6962's MTH({}); never the all-zero hash a header might default to.
    assert merkle_root([]) == hashlib.sha256(b"").digest() != ZERO_HASH


def _leaf(x: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + x).digest()


def test_single_leaf_root_is_the_tagged_leaf() -> None:
    (a,) = leaves(1)
    assert merkle_root([a]) == _leaf(a)
    assert merkle_proof([a], 0).steps == ()
    assert merkle_proof([a], 0).root() == _leaf(a)


def test_known_small_trees() -> None:
    a, b, c = leaves(3)

    def p(x: bytes, y: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + x + y).digest()

    la, lb, lc = _leaf(a), _leaf(b), _leaf(c)
    assert merkle_root([a, b]) == p(la, lb)
    # an odd node is carried up, not paired with itself
    assert merkle_root([a, b, c]) == p(p(la, lb), lc)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_accumulator_root_is_the_root_of_every_prefix(chunk: int) -> None:
    items = leaves(300)
    acc = MerkleAccumulator()
    assert acc.root() == merkle_root([])
    for end in range(chunk, 300 + chunk, chunk):
        acc.extend(items[len(acc) : end])
        assert len(acc) == min(end, 300)
        assert acc.root() == merkle_root(items[:end])


@pytest.mark.parametrize("n", range(1, 18))
def test_proof_for_every_index(n: int) -> None:
    ls = leaves(n)
    root = merkle_root(ls)
    for i in range(n):
        proof = merkle_proof(ls, i)
        assert proof.leaf == ls[i] and proof.index == i
        assert proof.root() == root
        assert len(proof.steps) <= max(1, (n - 1).bit_length())


@pytest.mark.parametrize("n", range(1, 18))
def test_tampered_proofs_do_not_verify(n: int) -> None:
    ls = leaves(n)
    root = merkle_root(ls)
    for i in range(n):
        proof = merkle_proof(ls, i)
        other_leaf = MerkleProof(sha256(b"evil"), i, proof.steps)
        assert other_leaf.root() != root
        for s in range(len(proof.steps)):
            sib, left = proof.steps[s]
            flipped_sib = (bytes([sib[0] ^ 1]) + sib[1:], left)
            flipped_dir = (sib, not left)
            for bad in (flipped_sib, flipped_dir):
                steps = (*proof.steps[:s], bad, *proof.steps[s + 1 :])
                assert MerkleProof(proof.leaf, i, steps).root() != root
            dropped = proof.steps[:s] + proof.steps[s + 1 :]
            assert MerkleProof(proof.leaf, i, dropped).root() != root


def test_proof_index_out_of_range() -> None:
    for bad in (-1, 3):
        with pytest.raises(IndexError):
            merkle_proof(leaves(3), bad)
    with pytest.raises(IndexError):
        merkle_proof([], 0)


def test_no_duplicate_leaf_ambiguity() -> None:
    a, b, c, d, e = leaves(5)
    assert merkle_root([a, b, c]) != merkle_root([a, b, c, c])
    assert merkle_root([a, b, c, d, e]) != merkle_root([a, b, c, d, e, e])
    assert merkle_root([a, b, c, d, e]) != merkle_root([a, b, c, d, e, e, e, e])
    assert merkle_root([a]) != merkle_root([a, a])


def test_inner_node_is_not_a_leaf() -> None:
    a, b, c = leaves(3)
    inner = hashlib.sha256(b"\x01" + a + b).digest()
    assert merkle_root([inner, c]) != merkle_root([a, b, c])


def test_order_matters() -> None:
    a, b, c = leaves(3)
    assert merkle_root([a, b, c]) != merkle_root([b, a, c])
    assert merkle_root([a, b, c]) != merkle_root([a, c, b])


def test_proof_to_json() -> None:
    ls = leaves(5)
    j = merkle_proof(ls, 4).to_json()
    assert j["leaf"] == ls[4].hex() and j["index"] == 4
    steps = merkle_proof(ls, 4).steps
    assert j["steps"] == [{"hash": s.hex(), "left": left} for s, left in steps]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40, unique=True), st.data()
)
def test_proof_property(ls: list[bytes], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(ls) - 1))
    assert merkle_proof(ls, i).root() == merkle_root(ls)


hashes = st.binary(min_size=32, max_size=32)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda n: st.tuples(
            st.lists(hashes, min_size=n, max_size=n), st.lists(hashes, min_size=n, max_size=n)
        )
    )
)
def test_distinct_lists_of_one_length_have_distinct_roots(
    pair: tuple[list[bytes], list[bytes]],
) -> None:
    a, b = pair
    assume(a != b)
    assert merkle_root(a) != merkle_root(b)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(hashes, min_size=1, max_size=12),
    st.lists(hashes, min_size=1, max_size=5),
    st.booleans(),
)
def test_extending_a_list_changes_its_root(
    base: list[bytes], tail: list[bytes], repeat_last: bool
) -> None:
    # leaves are tx ids and inner nodes are tagged, so appending anything, even
    # copies of the last leaf (CVE-2012-2459), gives another root
    ext = base + ([base[-1]] * len(tail) if repeat_last else tail)
    assert merkle_root(ext) != merkle_root(base)


# --- pow hash and work ------------------------------------------------------------


def test_pow_hash_deterministic_and_nonce_sensitive() -> None:
    c = sha256(b"header")
    h = pow_hash(c, 0)
    assert h == pow_hash(c, 0)
    assert 0 <= h <= MAX_TARGET
    assert len({pow_hash(c, n) for n in range(20)}) == 20
    assert pow_hash(sha256(b"other"), 0) != h


def test_pow_hash_nonce_range() -> None:
    c = sha256(b"h")
    assert pow_hash(c, 2**64 - 1) != pow_hash(c, 0)
    with pytest.raises(OverflowError):
        pow_hash(c, 2**64)


def test_block_work_values() -> None:
    assert block_work(MAX_TARGET) == 1
    assert block_work(MAX_TARGET // 2) == 2
    assert block_work(0) == 2**256
    assert block_work(2**255 - 1) == 2


@settings(max_examples=200, deadline=None)
@given(st.integers(0, MAX_TARGET), st.integers(0, MAX_TARGET))
def test_block_work_monotonic(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert block_work(lo) >= block_work(hi) >= 1
    assert block_work(lo) == 2**256 // (lo + 1)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, MAX_TARGET))
def test_target_bytes_round_trip(t: int) -> None:
    raw = target_to_bytes(t)
    assert len(raw) == 32 and target_from_bytes(raw) == t


# --- ASERT ------------------------------------------------------------------------

ANCHOR = 2**220
T0 = 1_000_000
BT = 10
HL = 3600
LIMIT = 2**236


def asert(height: int, ts: int, *, anchor: int = ANCHOR, limit: int = LIMIT, hl: int = HL) -> int:
    return asert_target(
        anchor_target=anchor,
        anchor_timestamp=T0,
        parent_height=height,
        parent_timestamp=ts,
        block_time=BT,
        halflife=hl,
        pow_limit=limit,
    )


def test_first_block_gets_the_initial_target() -> None:
    assert asert(0, T0) == ANCHOR


@pytest.mark.parametrize("h", [1, 2, 10, 1_000, 10**6])
def test_on_schedule_keeps_the_target(h: int) -> None:
    assert asert(h, T0 + BT * h) == ANCHOR


@pytest.mark.parametrize("k", range(1, 6))
def test_each_halflife_late_doubles_and_early_halves(k: int) -> None:
    h = 100
    on_time = T0 + BT * h
    assert asert(h, on_time + k * HL) == ANCHOR << k
    assert asert(h, on_time - k * HL) == ANCHOR >> k


def test_fast_blocks_shrink_slow_blocks_grow() -> None:
    h = 50
    on_time = T0 + BT * h
    assert asert(h, on_time - 1) < ANCHOR < asert(h, on_time + 1)
    assert asert(h, on_time - 60) < asert(h, on_time - 1)
    assert asert(h, on_time + 60) > asert(h, on_time + 1)


def test_clamps() -> None:
    h = 10
    assert asert(h, T0 + 10**9) == LIMIT
    assert asert(h, T0 + BT * h + 20 * HL, limit=MAX_TARGET) == ANCHOR << 20
    assert asert(h, T0 - 10**9) == 1
    assert asert(h, T0 - 300 * HL) == 1
    assert asert(h, 0) >= 1
    assert asert(10**12, T0) == 1


def test_bad_schedule_params() -> None:
    with pytest.raises(ValueError):
        asert(1, T0, hl=0)
    with pytest.raises(ValueError):
        asert_target(
            anchor_target=ANCHOR,
            anchor_timestamp=T0,
            parent_height=1,
            parent_timestamp=T0,
            block_time=0,
            halflife=HL,
            pow_limit=LIMIT,
        )


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.integers(-(10**6), 10**6), st.integers(0, 10**5))
def test_target_monotonic_in_time(h: int, offset: int, step: int) -> None:
    ts = T0 + BT * h + offset
    assert asert(h, ts) <= asert(h, ts + step)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**6), st.integers(-(10**6), 10**6), st.integers(0, 10**4))
def test_target_monotonic_in_height(h: int, offset: int, step: int) -> None:
    ts = T0 + BT * h + offset
    assert asert(h, ts) >= asert(h + step, ts)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**5), st.integers(-20 * HL, 16 * HL))
def test_target_tracks_exponential(h: int, offset: int) -> None:
    ts = T0 + BT * h + offset
    got = asert(h, ts, limit=MAX_TARGET)
    ideal = ANCHOR * 2 ** (offset / HL)
    assert 1 <= got <= MAX_TARGET
    assert abs(got - ideal) / ideal < 2e-4


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, MAX_TARGET),
    st.integers(0, 10**7),
    st.integers(-(10**9), 10**9),
    st.integers(1, MAX_TARGET),
)
def test_target_always_within_bounds(anchor: int, h: int, offset: int, limit: int) -> None:
    t = asert(h, T0 + offset, anchor=anchor, limit=limit)
    assert 1 <= t <= limit


def test_the_readme_pow_formula() -> None:
    # README, Consensus in brief: PBKDF2-HMAC-SHA256 over SHA-256 of the
    # header array without its nonce, then the nonce as 8 bytes big-endian,
    # salt "powernode-pow-v1", 64 iterations; the hash is SHA-256 of the
    # header's canonical bytes; work is 2^256 // (target + 1).
    h = make_header(1, 7, b"\x01" * 32, 1_700_000_000, b"\x0f" + b"\xff" * 31, 12345,
                    b"\x02" * 32, b"\x03" * 32, b"\x04" * 20)  # fmt: skip
    fields = [1, 7, b"\x01" * 32, 1_700_000_000, b"\x0f" + b"\xff" * 31, b"\x02" * 32,
              b"\x03" * 32, b"\x04" * 20]  # fmt: skip
    password = hashlib.sha256(encoding.encode(fields)).digest() + (12345).to_bytes(8, "big")
    want = hashlib.pbkdf2_hmac("sha256", password, b"powernode-pow-v1", 64)
    assert pow_hash(h.pow_commitment(), h.nonce) == int.from_bytes(want, "big")
    assert h.hash == hashlib.sha256(encoding.encode([*fields[:5], 12345, *fields[5:]])).digest()
    assert block_work(h.target_int) == 2**256 // (int.from_bytes(h.target, "big") + 1)
