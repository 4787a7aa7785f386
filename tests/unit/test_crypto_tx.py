"""Keys, signatures, addresses and the signed tx envelope."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powernode.chain.txdecode import TxDecoder
from powernode.core import encoding
from powernode.core.crypto import (
    ADDRESS_SIZE,
    KeyPair,
    address_of,
    parse_address,
    sha256,
    verify,
)
from powernode.core.errors import (
    BadSignature,
    DecodeError,
    FloatNotAllowed,
    OversizeTx,
    PowernodeError,
)
from powernode.core.tx import (
    MAX_TX_BYTES,
    Transaction,
    decode_tx,
    sign_tx,
    signing_bytes,
)
from tests.unit.helpers import ALICE, BOB, CHAIN_ID, key, tamper_signature, transfer, tx_to_obj

# --- keys and signatures ---------------------------------------------------------


def test_sign_and_verify() -> None:
    k = KeyPair.generate()
    sig = k.sign(b"hello")
    verify(k.pubkey, sig, b"hello")
    assert len(k.pubkey) == 32 and len(sig) == 64


def test_verify_refuses_other_message_key_or_signature() -> None:
    k, other = key(0), key(1)
    sig = k.sign(b"msg")
    with pytest.raises(BadSignature):
        verify(k.pubkey, sig, b"msh")
    with pytest.raises(BadSignature):
        verify(other.pubkey, sig, b"msg")
    bad = bytes([sig[0] ^ 1]) + sig[1:]
    with pytest.raises(BadSignature) as ei:
        verify(k.pubkey, bad, b"msg")
    assert ei.value.code == "bad_signature"


@pytest.mark.parametrize(
    ("pubkey", "sig"),
    [
        (b"\x00" * 31, b"\x00" * 64),
        (b"\x01" * 32, b"\x00" * 63),
        (b"", b""),
        (b"\xff" * 32, b"\xff" * 64),
    ],
)
def test_verify_malformed_inputs_are_bad_signature(pubkey: bytes, sig: bytes) -> None:
    with pytest.raises(BadSignature):
        verify(pubkey, sig, b"msg")


def test_from_seed_is_deterministic() -> None:
    a = KeyPair.from_seed(b"\x07" * 32)
    b = KeyPair.from_seed(b"\x07" * 32)
    assert a.pubkey == b.pubkey and a.address == b.address
    assert a.seed() == b"\x07" * 32
    assert KeyPair.from_seed(b"\x08" * 32).pubkey != a.pubkey
    # Ed25519 signatures are deterministic
    assert a.sign(b"m") == b.sign(b"m")


@pytest.mark.parametrize("n", [0, 31, 33, 64])
def test_from_seed_wrong_size(n: int) -> None:
    with pytest.raises(DecodeError):
        KeyPair.from_seed(b"\x01" * n)


def test_address_is_hash_prefix_of_pubkey() -> None:
    k = key(0)
    assert k.address == sha256(k.pubkey)[:ADDRESS_SIZE] == address_of(k.pubkey)
    assert len(k.address) == 20
    assert key(0).address != key(1).address


def test_parse_address() -> None:
    a = key(0).address
    assert parse_address(a.hex()) == a
    assert parse_address("0x" + a.hex().upper()) == a
    assert parse_address("  " + a.hex() + "\n") == a
    spaced = " ".join(a.hex()[i : i + 2] for i in range(0, 40, 2))
    for bad in ("", "zz" * 20, a.hex()[:-2], a.hex() + "00", "0x", "g" + a.hex()[1:], spaced):
        with pytest.raises(DecodeError):
            parse_address(bad)


# --- signed transactions -----------------------------------------------------------


def test_sign_tx_fields_and_verify() -> None:
    tx = transfer(ALICE, BOB, 1_000, nonce=3, fee=7)
    assert tx.chain_id == CHAIN_ID and tx.type == "transfer"
    assert tx.nonce == 3 and tx.fee == 7
    assert tx.payload == [BOB.address, 1_000]
    assert tx.sender == ALICE.pubkey and tx.sender_address == ALICE.address
    assert tx.txid == sha256(tx.raw) and tx.size == len(tx.raw)
    tx.verify_signature()
    verify(ALICE.pubkey, tx.signature, tx.signing_bytes())


def test_decode_tx_round_trip() -> None:
    tx = transfer(ALICE, BOB, 1_000, nonce=0)
    again = decode_tx(tx.raw)
    assert again == tx and again.txid == tx.txid and again.raw == tx.raw
    assert encoding.encode(tx_to_obj(tx)) == tx.raw


def test_tampered_signature_is_bad_signature() -> None:
    tx = transfer(ALICE, BOB, 1_000, nonce=0)
    bad = tamper_signature(tx)
    assert bad.raw != tx.raw and bad.txid != tx.txid
    with pytest.raises(BadSignature):
        bad.verify_signature()


def _resign_with(tx: Transaction, index: int, value: Any) -> Transaction:
    """``tx`` with one envelope field changed but the old signature kept."""
    obj = tx_to_obj(tx)
    obj[index] = value
    return decode_tx(encoding.encode(obj))


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, "other-chain"),
        (1, "transfer2"),
        (2, key(5).pubkey),
        (3, 1),
        (4, 11),
        (5, [BOB.address, 1_001]),
    ],
    ids=["chain_id", "type", "sender", "nonce", "fee", "payload"],
)
def test_signature_covers_every_field(index: int, value: Any) -> None:
    tx = transfer(ALICE, BOB, 1_000, nonce=0, fee=10)
    changed = _resign_with(tx, index, value)
    assert changed.txid != tx.txid
    with pytest.raises(BadSignature):
        changed.verify_signature()


_BASE: dict[str, Any] = {
    "chain_id": CHAIN_ID,
    "tx_type": "transfer",
    "nonce": 0,
    "fee": 10,
    "payload": [b"\x01" * 20, 5],
}
_VARIANTS: dict[str, Any] = {
    "chain_id": "other",
    "tx_type": "other",
    "nonce": 1,
    "fee": 11,
    "payload": [b"\x01" * 20, 6],
}


@pytest.mark.parametrize("field", sorted(_VARIANTS))
def test_txid_changes_with_any_field(field: str) -> None:
    base = sign_tx(ALICE, **_BASE)
    assert sign_tx(ALICE, **_BASE).txid == base.txid  # deterministic
    changed = sign_tx(ALICE, **{**_BASE, field: _VARIANTS[field]})
    assert changed.txid != base.txid
    assert sign_tx(BOB, **_BASE).txid != base.txid


@settings(max_examples=50, deadline=None)
@given(
    chain_id=st.text(min_size=1, max_size=10),
    nonce=st.integers(0, 2**64 - 1),
    fee=st.integers(0, 2**64 - 1),
    payload=st.lists(
        st.one_of(st.integers(-(2**63), 2**64 - 1), st.binary(max_size=20)), max_size=4
    ),
)
def test_sign_decode_round_trip_property(
    chain_id: str, nonce: int, fee: int, payload: list[Any]
) -> None:
    tx = sign_tx(ALICE, chain_id=chain_id, tx_type="t", nonce=nonce, fee=fee, payload=payload)
    assert decode_tx(tx.raw) == tx
    assert tx.signing_bytes() == signing_bytes(chain_id, "t", ALICE.pubkey, nonce, fee, payload)
    tx.verify_signature()


# --- decode_tx refusals ------------------------------------------------------------


def _fields() -> list[Any]:
    return tx_to_obj(transfer(ALICE, BOB, 1_000, nonce=0))


def test_decode_tx_non_canonical() -> None:
    f = _fields()
    assert f[3] == 0
    # the same seven values, but the nonce 0 written as an int16
    raw = b"\x97" + b"".join(encoding.encode(x) for x in f[:3]) + b"\xd1\x00\x00"
    raw += b"".join(encoding.encode(x) for x in f[4:])
    assert msgpack.unpackb(raw, raw=False) == f
    with pytest.raises(DecodeError) as ei:
        decode_tx(raw)
    assert ei.value.code == "malformed"
    assert "canonical" in ei.value.message


def test_decode_tx_oversize() -> None:
    pad = MAX_TX_BYTES  # payload bytes alone already exceed the limit
    f = _fields()
    f[5] = [BOB.address, 1, b"\x00" * pad]
    raw = encoding.encode(f)
    assert len(raw) > MAX_TX_BYTES
    with pytest.raises(OversizeTx) as ei:
        decode_tx(raw)
    assert ei.value.code == "oversize_tx"
    with pytest.raises(OversizeTx):
        sign_tx(
            ALICE, chain_id=CHAIN_ID, tx_type="transfer", nonce=0, fee=0, payload=[b"\x00" * pad]
        )


def test_decode_tx_at_the_size_limit() -> None:
    f = _fields()
    base = len(encoding.encode(f))
    # grow the payload until the tx is exactly MAX_TX_BYTES long
    n = MAX_TX_BYTES - base - 3  # bin16 header is 3 bytes
    f[5] = [BOB.address, 1_000, b"\x00" * n]
    raw = encoding.encode(f)
    assert len(raw) == MAX_TX_BYTES
    assert decode_tx(raw).size == MAX_TX_BYTES
    f[5] = [BOB.address, 1_000, b"\x00" * (n + 1)]
    with pytest.raises(OversizeTx):
        decode_tx(encoding.encode(f))


@pytest.mark.parametrize("n", [0, 1, 6, 8, 9])
def test_decode_tx_wrong_field_count(n: int) -> None:
    f = _fields()
    obj = [*f, b"x", b"y"][:n]
    with pytest.raises(DecodeError) as ei:
        decode_tx(encoding.encode(obj))
    assert "fields" in ei.value.message


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, b"unit"),  # chain id as bytes
        (0, "c" * 65),  # chain id too long
        (1, 5),  # type not a string
        (1, "t" * 33),  # type too long
        (2, b"\x01" * 31),  # short pubkey
        (2, "pubkey"),
        (3, -1),  # negative nonce
        (3, True),  # bool is not an int
        (4, None),
        (4, -5),
        (5, b"payload"),  # payload not an array
        (5, None),
        (6, b"\x00" * 63),  # short signature
        (6, "sig"),
    ],
)
def test_decode_tx_bad_field(index: int, value: Any) -> None:
    f = _fields()
    f[index] = value
    with pytest.raises(DecodeError) as ei:
        decode_tx(encoding.encode(f))
    assert ei.value.code == "malformed"


def test_decode_tx_float_field() -> None:
    f = _fields()
    f[4] = 1.0  # encode() refuses floats, so pack it by hand
    raw = msgpack.packb(f, use_bin_type=True)
    with pytest.raises(FloatNotAllowed):
        decode_tx(raw)


@pytest.mark.parametrize("raw", [bytearray(b"\x90"), "tx", None])
def test_decode_tx_wants_bytes(raw: Any) -> None:
    with pytest.raises(PowernodeError):
        decode_tx(raw)


def test_decode_tx_trailing_bytes() -> None:
    tx = transfer(ALICE, BOB, 1, nonce=0)
    with pytest.raises(DecodeError):
        decode_tx(tx.raw + b"\x00")


@pytest.mark.parametrize("where", ["after", "before"])
def test_a_float_anywhere_is_float_not_allowed_beside_a_too_deep_branch(where: str) -> None:
    # README: a float anywhere in a tx is float_not_allowed, whatever else is
    # wrong with it and in whichever order a walk would meet the two.
    deep: list[Any] = [1]
    for _ in range(20):
        deep = [deep]
    f = _fields()
    f[5] = [deep, 1.5] if where == "after" else [1.5, deep]
    raw = msgpack.packb(f, use_bin_type=True)
    for decode in (decode_tx, TxDecoder().decode):
        with pytest.raises(FloatNotAllowed):
            decode(raw)
    # without the float, the depth is what is wrong
    f[5] = [deep]
    with pytest.raises(DecodeError, match="nesting too deep"):
        decode_tx(msgpack.packb(f, use_bin_type=True))
