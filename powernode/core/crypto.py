"""Ed25519 keys, addresses and hashing.

An account is addressed by the first 20 bytes of SHA-256 of its 32-byte
public key; transactions carry the public key itself so anyone can verify them
without a lookup. Addresses are shown as 40 lowercase hex characters.

Signatures are Ed25519 as RFC 8032 section 5.1.7 verifies them (the README's
"Consensus rules" lists the acceptance rules). OpenSSL, behind
``cryptography``, enforces S < L and compares R byte for byte with the
canonical encoding of the point it recomputes (so a non-canonical R fails),
but it decodes a non-canonical public key (y >= p, or x = 0 with the sign bit
set) where RFC 8032 section 5.1.3 says decoding fails; ``canonical_pubkey``
adds that check in front. Small-order keys are accepted, as RFC 8032 accepts
them. RFC 8032's and Wycheproof's vectors pin all of it
(``tests/unit/test_conformance_ed25519.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from powernode.core.errors import BadSignature, DecodeError

PUBKEY_SIZE = 32
SIG_SIZE = 64
ADDRESS_SIZE = 20
HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)
ZERO_ADDRESS = bytes(ADDRESS_SIZE)

_P = 2**255 - 19
_Y_MASK = (1 << 255) - 1


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def address_of(pubkey: bytes) -> bytes:
    return hashlib.sha256(pubkey).digest()[:ADDRESS_SIZE]


def address_hex(addr: bytes) -> str:
    return addr.hex()


def parse_address(text: str) -> bytes:
    """Address from its hex form; a clear DecodeError for anything else."""
    s = text.strip().lower().removeprefix("0x")
    try:
        raw = bytes.fromhex(s)
    except ValueError as exc:
        raise DecodeError(f"address is not hex: {text!r}") from exc
    if len(raw) != ADDRESS_SIZE:
        raise DecodeError(f"address must be {ADDRESS_SIZE} bytes, got {len(raw)}")
    return raw


def canonical_pubkey(pubkey: bytes) -> bool:
    """Whether ``pubkey`` is a canonical point encoding (RFC 8032 section
    5.1.3): y below p, and no sign bit when x is 0 (y = 1 or y = p - 1).
    Whether the point is on the curve is left to OpenSSL's decoder."""
    if len(pubkey) != PUBKEY_SIZE:
        return False
    n = int.from_bytes(pubkey, "little")
    y = n & _Y_MASK
    if y >= _P:
        return False
    return not (n >> 255 and y in (1, _P - 1))


@lru_cache(maxsize=65536)
def _public_key(pubkey: bytes) -> Ed25519PublicKey:
    if not canonical_pubkey(pubkey):
        raise ValueError("non-canonical public key encoding")
    return Ed25519PublicKey.from_public_bytes(pubkey)


def verify(pubkey: bytes, signature: bytes, message: bytes) -> None:
    """Raise BadSignature unless ``signature`` is ``pubkey``'s over ``message``.

    OpenSSL's verify releases the GIL, so callers may run this on worker threads.
    """
    try:
        _public_key(pubkey).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise BadSignature("signature does not verify") from exc


def signature_ok(pubkey: bytes, signature: bytes, message: bytes) -> bool:
    """``verify`` as a boolean and without the parsed-key cache (parsing costs
    ~2 us, ~1% of a verify), for the signature worker processes."""
    if not canonical_pubkey(pubkey):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(pubkey).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class KeyPair:
    private: Ed25519PrivateKey
    pubkey: bytes

    @property
    def address(self) -> bytes:
        return address_of(self.pubkey)

    @classmethod
    def generate(cls) -> KeyPair:
        return cls.from_private(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        if len(seed) != 32:
            raise DecodeError("a private key seed is 32 bytes")
        return cls.from_private(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_private(cls, priv: Ed25519PrivateKey) -> KeyPair:
        pub = priv.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(private=priv, pubkey=pub)

    def seed(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)
