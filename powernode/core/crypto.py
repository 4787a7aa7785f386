"""Ed25519 keys, addresses and hashing.

An account is addressed by the first 20 bytes of SHA-256 of its 32-byte
public key; transactions carry the public key itself so anyone can verify them
without a lookup. Addresses are shown as 40 lowercase hex characters.

Signatures are Ed25519 (RFC 8032, pure: no context, no prehash), with libsodium
(through PyNaCl) doing the curve arithmetic. The acceptance rules are ours,
not a library's: ``signature_ok`` applies them in this order, and each one
that is not plain arithmetic is checked here before libsodium sees the bytes
(the README's "Standards" states the same list):

1. the key is 32 bytes and the signature 64;
2. the key A and the signature's R are each a canonical encoding (y < p) of
   a point that is not of small order (``point_ok``): the eight points of
   order 1, 2, 4 or 8 are refused whatever their encoding (with a
   small-order key anyone can sign; a small-order R comes only from a
   crafted mixed-order key or a nonce of 0, which gives the private key
   away). The two points with x = 0 are among them, so the rule
   also covers RFC 8032 section 5.1.3's "x = 0 with the sign bit set";
3. S < L (RFC 8032 section 5.1.7);
4. A decodes to a point on the curve, and the cofactorless equation
   [S]B = R + [k]A holds, compared as encodings (k = SHA-512(R || A || M) mod
   L over the bytes as sent).

libsodium's ``crypto_sign_open`` applies 2 and 3 itself too; checking them
here makes a library upgrade or a build with other defaults unable to change
what the chain accepts. The rule set differs from the one before (OpenSSL
through ``cryptography``, which accepts small-order keys and small-order R)
only by rule 2's small-order part: a consensus change, hence the chain ids
``powernode-dev-5`` and ``powernode-testnet-5`` (README, "Standards"; a later
tx type moved them on again).
``tests/unit/test_conformance_ed25519.py`` pins every rule with RFC 8032's,
Wycheproof's and our own vectors; ``tests/unit/test_ed25519_edge_cases.py``
adds ed25519-speccheck's and shows where libsodium, OpenSSL and the previous
rule set decide otherwise.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from nacl._sodium import ffi, lib
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError
from nacl.utils import random as random_bytes

from powernode.core.errors import BadSignature, DecodeError
from powernode.core.hextext import from_hex, is_hex

PUBKEY_SIZE = 32
SIG_SIZE = 64
SEED_SIZE = 32
ADDRESS_SIZE = 20
HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)
ZERO_ADDRESS = bytes(ADDRESS_SIZE)

_P = 2**255 - 19
# The order of the base point's group.
_L = 2**252 + 27742317777372353535851937790883648493
_Y_MASK = (1 << 255) - 1
# One of the two y coordinates of the points of order 8 (the other is p - y):
# the y of libsodium's published blacklist entry 26e8958f...6d53fc05, checked
# in the conformance test by computing the torsion points from scratch.
_Y_ORDER_8 = 0x5FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
# The y coordinates of all eight small-order points: the identity (y = 1),
# order 2 (y = p - 1), order 4 (y = 0, both signs of x), order 8 (both).
SMALL_ORDER_Y = frozenset({0, 1, _P - 1, _Y_ORDER_8, _P - _Y_ORDER_8})


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def address_of(pubkey: bytes) -> bytes:
    return hashlib.sha256(pubkey).digest()[:ADDRESS_SIZE]


def address_hex(addr: bytes) -> str:
    return addr.hex()


def parse_address(text: str, *, strict: bool = False) -> bytes:
    """Address from its hex form; a clear DecodeError for anything else.
    A user's text (the CLI, the config) may have spaces around it and
    ``0X``; ``strict`` (an RPC param) takes hex in any case with an
    optional ``0x`` and nothing else, as every id in a param."""
    s = text.removeprefix("0x") if strict else text.strip().lower().removeprefix("0x")
    if is_hex(s) and len(s) != 2 * ADDRESS_SIZE:
        raise DecodeError(
            f"address must be {ADDRESS_SIZE} bytes ({2 * ADDRESS_SIZE} hex digits), "
            f"got {len(s)} hex digits"
        )
    try:
        raw = from_hex(s)
    except ValueError as exc:
        raise DecodeError(f"address is not hex: {text!r}") from exc
    return raw


def point_ok(encoding: bytes) -> bool:
    """Rule 2 for a key or an R: 32 bytes, y < p, not a small-order point.
    (A point with x = 0 is small-order, so its sign bit needs no rule.)"""
    if len(encoding) != PUBKEY_SIZE:
        return False
    y = int.from_bytes(encoding, "little") & _Y_MASK
    return y < _P and y not in SMALL_ORDER_Y


def signature_ok(pubkey: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``pubkey``'s over ``message`` under the rules
    above. libsodium's verify releases the GIL (cffi drops it around the
    call), so this may run on worker threads as well as in worker processes."""
    if len(signature) != SIG_SIZE or not point_ok(pubkey) or not point_ok(signature[:32]):
        return False
    if int.from_bytes(signature[32:], "little") >= _L:
        return False
    try:
        crypto_sign_open(signature + message, pubkey)
    except BadSignatureError:
        return False
    return True


class SpanVerifier:
    """``signature_ok`` for signatures that sit inside one buffer (the
    signature worker's requests), laid out as ``pubkey`` at ``key_at`` and
    ``signature || message`` from ``sig_at`` to ``end``: the same rules, in
    the same order, and the same libsodium function (``crypto_sign_open``),
    called through cffi on the buffer itself. PyNaCl's wrapper would copy the
    signed message and allocate two C buffers per call (about 4% of a
    verify); here the output buffer is allocated once."""

    __slots__ = ("_buf", "_out", "_outlen", "_view")

    def __init__(self) -> None:
        # crypto_sign_open writes the message out: at most a whole buffer.
        self._out = ffi.new("unsigned char[]", 0)
        self._outlen = ffi.new("unsigned long long *")
        self._buf = b""
        self._view = ffi.from_buffer("unsigned char[]", b"")

    def ok(self, buf: bytes, key_at: int, sig_at: int, end: int) -> bool:
        if buf is not self._buf:
            self._buf = buf
            self._view = ffi.from_buffer("unsigned char[]", buf)
            if len(self._out) < len(buf):
                self._out = ffi.new("unsigned char[]", len(buf))
        r_end = sig_at + 32
        if (
            end - sig_at < SIG_SIZE
            or end > len(buf)
            or not point_ok(buf[key_at : key_at + PUBKEY_SIZE])
            or not point_ok(buf[sig_at:r_end])
        ):
            return False
        if int.from_bytes(buf[r_end : sig_at + SIG_SIZE], "little") >= _L:
            return False
        view = self._view
        return (
            lib.crypto_sign_open(
                self._out, self._outlen, view + sig_at, end - sig_at, view + key_at
            )
            == 0
        )


def verify(pubkey: bytes, signature: bytes, message: bytes) -> None:
    """Raise BadSignature unless ``signature_ok``."""
    if not signature_ok(pubkey, signature, message):
        raise BadSignature("signature does not verify")


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An Ed25519 key: the 32-byte seed (what key files hold, RFC 8032's
    private key), libsodium's 64-byte signing key derived from it, and the
    public key."""

    secret: bytes = field(repr=False)
    pubkey: bytes

    @property
    def address(self) -> bytes:
        return address_of(self.pubkey)

    @classmethod
    def generate(cls) -> KeyPair:
        return cls.from_seed(random_bytes(SEED_SIZE))

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        if len(seed) != SEED_SIZE:
            raise DecodeError("a private key seed is 32 bytes")
        pub, secret = crypto_sign_seed_keypair(seed)
        return cls(secret=secret, pubkey=pub)

    def seed(self) -> bytes:
        # libsodium's signing key is seed || public key.
        return self.secret[:SEED_SIZE]

    def sign(self, message: bytes) -> bytes:
        # crypto_sign returns signature || message.
        return crypto_sign(message, self.secret)[:SIG_SIZE]
