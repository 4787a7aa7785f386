"""The signed transaction envelope.

Wire form (canonical msgpack array, in this order)::

    [chain_id, type, sender_pubkey, nonce, fee, payload, signature]

The signature covers the canonical encoding of the first six fields. The tx id
is SHA-256 of the full signed encoding, so two encodings of one tx cannot
exist (``decode`` refuses non-canonical bytes). ``payload`` is an array whose
shape belongs to the engine that owns ``type``; the envelope only checks it is
an array.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from powernode.core import encoding
from powernode.core.crypto import (
    PUBKEY_SIZE,
    SIG_SIZE,
    KeyPair,
    address_of,
    sha256,
    verify,
)
from powernode.core.errors import DecodeError, OversizeTx

MAX_TX_BYTES = 16 * 1024
_ARRAY6 = b"\x96"
_SIG_TAIL = 2 + SIG_SIZE
MAX_TYPE_LEN = 32
MAX_CHAIN_ID_LEN = 64


@dataclass(frozen=True, slots=True)
class Transaction:
    chain_id: str
    type: str
    sender: bytes
    nonce: int
    fee: int
    payload: list[Any]
    signature: bytes
    raw: bytes = field(compare=False, repr=False)
    txid: bytes = field(compare=False, repr=False)
    # Derived once at decode: engines and the mempool ask for it many times.
    sender_address: bytes = field(compare=False, repr=False)

    @property
    def size(self) -> int:
        return len(self.raw)

    def signing_bytes(self) -> bytes:
        # ``raw`` is canonical (decode_tx checked), so the signed six-field
        # array is the seven-field one with a 6-element header and without
        # the trailing 66-byte signature (bin8 marker, length, 64 bytes).
        # Slicing beats re-encoding, and it runs for every signature check.
        return _ARRAY6 + self.raw[1:-_SIG_TAIL]

    def verify_signature(self) -> None:
        verify(self.sender, self.signature, self.signing_bytes())


# pubkey -> address. ``address_of`` costs a SHA-256; a node decoding many txs
# of the same senders uses a decoder with a cache of its own (chain/txdecode.py).
AddressOf = Callable[[bytes], bytes]


def signing_bytes(
    chain_id: str, tx_type: str, sender: bytes, nonce: int, fee: int, payload: list[Any]
) -> bytes:
    return encoding.encode([chain_id, tx_type, sender, nonce, fee, payload])


def sign_tx(
    key: KeyPair,
    *,
    chain_id: str,
    tx_type: str,
    nonce: int,
    fee: int,
    payload: list[Any],
) -> Transaction:
    """Build and sign a transaction (client side; the node never holds keys)."""
    msg = signing_bytes(chain_id, tx_type, key.pubkey, nonce, fee, payload)
    sig = key.sign(msg)
    raw = encoding.encode([chain_id, tx_type, key.pubkey, nonce, fee, payload, sig])
    return decode_tx(raw)


def decode_tx(raw: bytes, address: AddressOf = address_of) -> Transaction:
    """Parse a signed tx's bytes: the one definition of a valid encoding.
    Checks shape only; the signature is checked by ``verify_signature``
    (separately, so it can run on another thread). ``address`` derives the
    sender's address from its public key."""
    if type(raw) is not bytes:
        raise DecodeError("expected bytes")
    if len(raw) > MAX_TX_BYTES:
        raise OversizeTx(f"tx is {len(raw)} bytes, limit {MAX_TX_BYTES}")
    f = encoding.as_list(encoding.decode(raw, max_bytes=MAX_TX_BYTES), 7, "tx")
    payload = f[5]
    if type(payload) is not list:
        raise DecodeError("tx payload: expected array")
    sender = encoding.as_bytes(f[2], "tx sender", size=PUBKEY_SIZE)
    return Transaction(
        chain_id=encoding.as_str(f[0], "tx chain_id", max_len=MAX_CHAIN_ID_LEN),
        type=encoding.as_str(f[1], "tx type", max_len=MAX_TYPE_LEN),
        sender=sender,
        nonce=encoding.as_uint(f[3], "tx nonce"),
        fee=encoding.as_uint(f[4], "tx fee"),
        payload=payload,
        signature=encoding.as_bytes(f[6], "tx signature", size=SIG_SIZE),
        raw=raw,
        txid=sha256(raw),
        sender_address=address(sender),
    )
