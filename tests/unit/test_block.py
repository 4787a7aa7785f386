"""Headers and blocks: encoding, hashes, PoW commitment and context-free checks."""

from __future__ import annotations

from typing import Any

import pytest

from powernode.core import encoding
from powernode.core.block import (
    Block,
    check_block,
    decode_block,
    decode_header,
    make_block,
    make_header,
    median_time_past,
)
from powernode.core.crypto import sha256
from powernode.core.errors import (
    BadMerkleRoot,
    BadPow,
    DecodeError,
    DuplicateTx,
    InvalidBlock,
    OversizeBlock,
)
from powernode.core.merkle import merkle_root
from powernode.core.pow import MAX_TARGET, pow_hash, target_to_bytes
from tests.unit.helpers import ALICE, BOB, CAROL, replace_header, solve, transfer

HARD = target_to_bytes(MAX_TARGET >> 6)  # one hash in 64 meets it
EASY = target_to_bytes(MAX_TARGET)

TXS = (transfer(ALICE, BOB, 1, nonce=0), transfer(BOB, CAROL, 2, nonce=0))


def header(**fields: Any) -> Any:
    base: dict[str, Any] = dict(
        version=1,
        height=1,
        prev_hash=b"\x11" * 32,
        timestamp=1_005,
        target=HARD,
        nonce=0,
        tx_root=merkle_root([tx.txid for tx in TXS]),
        state_root=b"\x22" * 32,
        miner=b"\x33" * 20,
    )
    base.update(fields)
    return make_header(**base)


def block(txs: tuple[Any, ...] = TXS, **fields: Any) -> Block:
    return make_block(solve(header(**fields)), txs)


def test_header_hash_and_round_trip() -> None:
    h = header()
    assert h.hash == sha256(h.encode())
    assert h.encode() == encoding.encode(h.to_obj())
    again = decode_header(h.encode())
    assert again == h and again.hash == h.hash


_CHANGES = {
    "version": 2,
    "height": 2,
    "prev_hash": b"\x12" * 32,
    "timestamp": 1_006,
    "target": EASY,
    "tx_root": b"\x00" * 32,
    "state_root": b"\x23" * 32,
    "miner": b"\x34" * 20,
}


@pytest.mark.parametrize("field", sorted(_CHANGES))
def test_pow_commitment_covers_every_field_but_nonce(field: str) -> None:
    h = header()
    changed = replace_header(h, **{field: _CHANGES[field]})
    assert changed.hash != h.hash
    assert changed.pow_commitment() != h.pow_commitment()


def test_nonce_changes_hash_not_commitment() -> None:
    h = header()
    h2 = h.with_nonce(12345)
    assert h2.nonce == 12345 and h2.hash != h.hash
    assert h2.pow_commitment() == h.pow_commitment()


def test_check_pow_mined_vs_unmined() -> None:
    h = header()
    mined = solve(h)
    assert pow_hash(mined.pow_commitment(), mined.nonce) <= mined.target_int
    mined.check_pow()
    missed = solve(h, want_valid=False)
    with pytest.raises(BadPow) as ei:
        missed.check_pow()
    assert ei.value.code == "bad_pow"
    # a solution does not carry over to a header that differs in another field
    moved = [replace_header(mined, timestamp=mined.timestamp + i) for i in range(1, 40)]
    failing = [m for m in moved if pow_hash(m.pow_commitment(), m.nonce) > m.target_int]
    assert failing, "39 other headers all met a 1-in-64 target with the same nonce"
    with pytest.raises(BadPow):
        failing[0].check_pow()


def test_easiest_target_accepts_any_nonce() -> None:
    h = header(target=EASY)
    for n in (0, 1, 2**64 - 1):
        h.with_nonce(n).check_pow()


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, -1),
        (1, "1"),
        (2, b"\x11" * 31),
        (3, None),
        (4, b"\xff" * 31),
        (5, -3),
        (6, b"\x00" * 33),
        (7, "root"),
        (8, b"\x33" * 21),
    ],
)
def test_decode_header_bad_fields(index: int, value: Any) -> None:
    obj = header().to_obj()
    obj[index] = value
    with pytest.raises(DecodeError):
        decode_header(encoding.encode(obj))


def test_decode_header_wrong_count_and_oversize() -> None:
    obj = header().to_obj()
    with pytest.raises(DecodeError):
        decode_header(encoding.encode(obj[:8]))
    with pytest.raises(DecodeError):
        decode_header(encoding.encode([*obj, 0]))
    with pytest.raises(DecodeError):
        decode_header(encoding.encode([*obj[:8], b"\x00" * 600]))


def test_block_round_trip() -> None:
    b = block()
    again = decode_block(b.raw)
    assert again.header == b.header and again.txs == b.txs and again.raw == b.raw
    assert again.hash == b.hash and again.height == 1
    assert again.txids() == [tx.txid for tx in TXS]


def test_decode_block_takes_known_txs_instead_of_decoding_them() -> None:
    b = block()
    pool = {TXS[0].txid: TXS[0]}
    again = decode_block(b.raw, known=pool.get)
    assert again.txs[0] is TXS[0]  # the very object: not decoded again
    assert again.txs == b.txs and all(
        t is not u for t, u in zip(again.txs[1:], TXS[1:], strict=True)
    )
    # A lookup that answers with another tx for an id is not believed.
    liar = decode_block(b.raw, known=lambda txid: TXS[-1])
    assert liar.txs == b.txs


def test_decode_block_wraps_tx_errors_with_their_code() -> None:
    b = block()
    raw = encoding.encode([b.header.to_obj(), [TXS[0].raw, b"\x90"]])
    with pytest.raises(InvalidBlock) as ei:
        decode_block(raw)
    assert ei.value.code == "malformed"
    assert "tx 1" in ei.value.message
    raw = encoding.encode([b.header.to_obj(), [TXS[0].raw, 5]])
    with pytest.raises(InvalidBlock):
        decode_block(raw)


def test_decode_block_shape() -> None:
    b = block()
    for obj in ([b.header.to_obj()], [b.header.to_obj(), b"txs"], [b.header.to_obj(), [], []]):
        with pytest.raises(DecodeError):
            decode_block(encoding.encode(obj))
    with pytest.raises(OversizeBlock):
        decode_block(b.raw, max_bytes=len(b.raw) - 1)


def test_check_block_accepts_a_good_block() -> None:
    check_block(block(), max_txs=10, max_bytes=10_000)
    empty = make_block(solve(header(tx_root=merkle_root([]))), ())
    check_block(empty, max_txs=10, max_bytes=10_000)


def test_check_block_errors() -> None:
    good = block()
    with pytest.raises(BadPow):
        check_block(
            make_block(solve(good.header, want_valid=False), TXS), max_txs=10, max_bytes=10_000
        )
    with pytest.raises(BadMerkleRoot):
        check_block(make_block(good.header, TXS[:1]), max_txs=10, max_bytes=10_000)
    with pytest.raises(BadMerkleRoot):
        check_block(make_block(good.header, TXS[::-1]), max_txs=10, max_bytes=10_000)
    dup = (TXS[0], TXS[0])
    with pytest.raises(DuplicateTx) as ei:
        check_block(
            block(dup, tx_root=merkle_root([t.txid for t in dup])), max_txs=10, max_bytes=10_000
        )
    assert ei.value.code == "duplicate_tx"
    with pytest.raises(OversizeBlock):
        check_block(good, max_txs=1, max_bytes=10_000)
    with pytest.raises(OversizeBlock) as ei2:
        check_block(good, max_txs=10, max_bytes=len(good.raw) - 1)
    assert ei2.value.code == "oversize_block"
    check_block(good, max_txs=2, max_bytes=len(good.raw))


@pytest.mark.parametrize(
    ("ts", "mtp"),
    [
        ([5], 5),
        ([1, 2], 2),  # upper median for even counts
        ([3, 1, 2], 2),
        ([10, 1, 9, 2, 8, 3], 8),
        (list(range(100)), 94),  # only the last 11 count
        ([100] * 11 + [1], 100),
    ],
)
def test_median_time_past(ts: list[int], mtp: int) -> None:
    assert median_time_past(ts) == mtp
