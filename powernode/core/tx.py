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

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
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
_UINT_MAX = 2**64 - 1


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


# Fast construction for decode: the frozen dataclass's ``__init__`` sets each
# of the ten fields through ``object.__setattr__``; calling the slots' own
# descriptors on a bare instance builds the same object in under half the time.
def _setter(name: str) -> Callable[[Transaction, Any], None]:
    setter: Callable[[Transaction, Any], None] = Transaction.__dict__[name].__set__
    return setter


_s_chain_id = _setter("chain_id")
_s_type = _setter("type")
_s_sender = _setter("sender")
_s_nonce = _setter("nonce")
_s_fee = _setter("fee")
_s_payload = _setter("payload")
_s_signature = _setter("signature")
_s_raw = _setter("raw")
_s_txid = _setter("txid")
_s_sender_address = _setter("sender_address")
if len(fields(Transaction)) != 10:  # a new field needs a setter above
    raise RuntimeError("Transaction's fields changed: update _fast_tx")

_new_object = object.__new__
_sha256 = hashlib.sha256

# sender pubkey -> address: one SHA-256 per decode otherwise, and a busy
# sender's txs repeat the same key. Bounded: emptied when it grows past this.
_ADDRESSES: dict[bytes, bytes] = {}
_ADDRESSES_MAX = 65_536


def _address(pubkey: bytes) -> bytes:
    if len(_ADDRESSES) >= _ADDRESSES_MAX:
        _ADDRESSES.clear()
    addr = _ADDRESSES[pubkey] = address_of(pubkey)
    return addr


def _fast_tx(obj: Any, raw: bytes) -> Transaction | None:
    """The tx if ``obj`` has the common, well-formed shape, else None. Checked
    inline: the field readers' calls (``tx_from_obj``'s path for anything
    else, which raises the precise typed error) cost more than the rest of
    the decode."""
    if type(obj) is not list or len(obj) != 7:
        return None
    chain_id, tx_type, sender, nonce, fee, payload, sig = obj
    if not (
        type(chain_id) is str
        and len(chain_id) <= MAX_CHAIN_ID_LEN
        and type(tx_type) is str
        and len(tx_type) <= MAX_TYPE_LEN
        and type(sender) is bytes
        and len(sender) == PUBKEY_SIZE
        and type(nonce) is int
        and 0 <= nonce <= _UINT_MAX
        and type(fee) is int
        and 0 <= fee <= _UINT_MAX
        and type(payload) is list
        and type(sig) is bytes
        and len(sig) == SIG_SIZE
    ):
        return None
    # Transaction(...) field by field; see _s_chain_id.
    tx: Transaction = _new_object(Transaction)
    _s_chain_id(tx, chain_id)
    _s_type(tx, tx_type)
    _s_sender(tx, sender)
    _s_nonce(tx, nonce)
    _s_fee(tx, fee)
    _s_payload(tx, payload)
    _s_signature(tx, sig)
    _s_raw(tx, raw)
    _s_txid(tx, _sha256(raw).digest())
    _s_sender_address(tx, _ADDRESSES.get(sender) or _address(sender))
    return tx


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


def decode_tx(raw: bytes) -> Transaction:
    """Parse a signed tx's bytes. Checks shape only; the signature is checked by
    ``verify_signature`` (separately, so it can run on another thread)."""
    if type(raw) is not bytes:
        raise DecodeError("expected bytes")
    if len(raw) > MAX_TX_BYTES:
        raise OversizeTx(f"tx is {len(raw)} bytes, limit {MAX_TX_BYTES}")
    # encoding.decode, then tx_from_obj, in the order they raise, but with
    # decode's type walk cut to what the fast path has not checked already.
    obj = encoding.unpack(raw, MAX_TX_BYTES)
    tx = _fast_tx(obj, raw)
    if tx is None:
        # Not the common shape: decode's checks in full, then the readers'
        # precise error (parsing twice is fine off the hot path).
        return tx_from_obj(encoding.decode(raw, max_bytes=MAX_TX_BYTES), raw)
    # Its six other fields are of types the walk accepts: only the payload can
    # hold what it refuses (a float, a map, nesting too deep).
    encoding.check_decoded_list(tx.payload, 1)
    encoding.check_canonical(obj, raw)
    return tx


def tx_from_obj(obj: Any, raw: bytes) -> Transaction:
    tx = _fast_tx(obj, raw)
    if tx is not None:
        return tx
    f = encoding.as_list(obj, 7, "tx")
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
        sender_address=address_of(sender),
    )


def tx_to_obj(tx: Transaction) -> list[Any]:
    return [tx.chain_id, tx.type, tx.sender, tx.nonce, tx.fee, tx.payload, tx.signature]
