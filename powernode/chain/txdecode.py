"""The node's fast tx decoder: ``core.tx.decode_tx``'s result for less work.

Every tx the node receives (RPC, gossip, relayed blocks, the saved mempool)
is decoded once on the event loop, so the decode shows in ingest. This
decoder takes three shortcuts, each giving exactly what the core's decoder
gives (``tests/unit/test_hotpath.py`` compares them, accepts and refusals
alike, byte for byte):

- the common, well-formed shape is checked inline, and the type walk is cut
  to what that check has not covered (only the payload can hold what the
  canonical encoding refuses); anything else goes to ``decode_tx`` itself,
  which raises the precise typed error;
- the frozen dataclass is built by calling its slots' descriptors on a bare
  instance, in under half the time of ``__init__`` (which sets each field
  through ``object.__setattr__``);
- sender addresses (a SHA-256 each) are cached per decoder, bounded, since a
  busy sender's txs repeat the same key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from powernode.core import encoding
from powernode.core.crypto import PUBKEY_SIZE, SIG_SIZE, address_of
from powernode.core.errors import DecodeError, OversizeTx
from powernode.core.tx import MAX_CHAIN_ID_LEN, MAX_TX_BYTES, MAX_TYPE_LEN, Transaction, decode_tx

_UINT_MAX = 2**64 - 1
ADDRESSES_MAX = 65_536  # cached sender addresses; emptied when it grows past this


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
    raise RuntimeError("Transaction's fields changed: update TxDecoder")

_new_object = object.__new__
_sha256 = hashlib.sha256


class TxDecoder:
    """``decode_tx`` with the shortcuts above; one per ledger."""

    __slots__ = ("_addresses", "max_addresses")

    def __init__(self, *, max_addresses: int = ADDRESSES_MAX) -> None:
        self._addresses: dict[bytes, bytes] = {}
        self.max_addresses = max_addresses

    def address(self, pubkey: bytes) -> bytes:
        addr = self._addresses.get(pubkey)
        if addr is None:
            if len(self._addresses) >= self.max_addresses:
                self._addresses.clear()
            addr = self._addresses[pubkey] = address_of(pubkey)
        return addr

    def decode(self, raw: bytes, txid: bytes | None = None) -> Transaction:
        """``raw`` decoded; ``txid``, if given, must be ``raw``'s SHA-256
        (gossip hashes a tx's bytes before it decodes them: not twice)."""
        if type(raw) is not bytes:
            raise DecodeError("expected bytes")
        if len(raw) > MAX_TX_BYTES:
            raise OversizeTx(f"tx is {len(raw)} bytes, limit {MAX_TX_BYTES}")
        obj = encoding.unpack(raw, MAX_TX_BYTES)
        if type(obj) is not list or len(obj) != 7:
            return decode_tx(raw, self.address)
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
            return decode_tx(raw, self.address)
        # Its six other fields are of types the walk accepts: only the
        # payload can hold what it refuses (a float, a map, nesting too deep).
        encoding.check_decoded_list(payload, 1)
        encoding.check_canonical(obj, raw)
        tx: Transaction = _new_object(Transaction)
        _s_chain_id(tx, chain_id)
        _s_type(tx, tx_type)
        _s_sender(tx, sender)
        _s_nonce(tx, nonce)
        _s_fee(tx, fee)
        _s_payload(tx, payload)
        _s_signature(tx, sig)
        _s_raw(tx, raw)
        _s_txid(tx, _sha256(raw).digest() if txid is None else txid)
        _s_sender_address(tx, self.address(sender))
        return tx
