"""Ed25519 edge cases: which way the node's rules decide where libraries differ.

The node's rule set (``core/crypto.py``, README "Standards") is checked with
libsodium doing the arithmetic; the one before it was OpenSSL (through
``cryptography``) behind a canonical-key pre-check. Every vector the suite
holds (RFC 8032, Wycheproof, ed25519-speccheck, our own acceptance vectors)
runs here through four verdicts: the node's, raw libsodium's, raw OpenSSL's
and the previous rule set's, and the tests pin where they differ, so a
library upgrade that moves any of them fails here first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from powernode.core.crypto import (
    SMALL_ORDER_Y,
    KeyPair,
    point_ok,
    signature_ok,
)
from powernode.node.sigworker import check_request, decode_reply, signature_frame

DATA = Path(__file__).parents[1] / "data"
SPECCHECK = DATA / "ed25519-speccheck" / "cases.json"

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, -1, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


# --- the four verdicts ----------------------------------------------------------------


def libsodium_accepts(pk: bytes, sig: bytes, msg: bytes) -> bool:
    """libsodium alone, without the node's pre-checks (lengths aside: the
    binding reads 32 key bytes whatever it is given)."""
    if len(pk) != 32 or len(sig) != 64:
        return False
    try:
        crypto_sign_open(sig + msg, pk)
    except BadSignatureError:
        return False
    return True


def openssl_accepts(pk: bytes, sig: bytes, msg: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
    except (InvalidSignature, ValueError):
        return False
    return True


def canonical_pubkey(pubkey: bytes) -> bool:
    """The previous rule set's pre-check (RFC 8032 section 5.1.3, which
    OpenSSL does not apply): y < p, and no sign bit when x = 0."""
    n = int.from_bytes(pubkey, "little")
    y = n & ((1 << 255) - 1)
    return len(pubkey) == 32 and y < P and not (n >> 255 and y in (1, P - 1))


def previous_rules_accept(pk: bytes, sig: bytes, msg: bytes) -> bool:
    """The rule set before libsodium: the canonical-key pre-check, then OpenSSL."""
    return canonical_pubkey(pk) and openssl_accepts(pk, sig, msg)


# --- ed25519-speccheck ("Taming the many EdDSAs") -----------------------------------

# Per case (tests/data/ed25519-speccheck/SOURCE.md describes each): the node,
# raw libsodium, raw OpenSSL, and the previous rule set. 1 = accept.
SPECCHECK_VERDICTS = {
    0: (0, 0, 1, 1),  # small A and small R, S = 0: rule 2 (both small)
    1: (0, 0, 1, 1),  # small A, mixed R: rule 2 (A)
    2: (0, 0, 1, 1),  # mixed A, small R: rule 2 (R)
    3: (1, 1, 1, 1),  # mixed A and R, the cofactorless equation holds
    4: (0, 0, 0, 0),  # only the cofactored equation holds: rule 4 is cofactorless
    5: (0, 0, 0, 0),  # same, for a cofactored check without pre-reduction
    6: (0, 0, 0, 0),  # S > L: rule 3
    7: (0, 0, 0, 0),  # S >> L: rule 3
    8: (0, 0, 0, 0),  # non-canonical R (y >= p), reduced for the hash: rule 2
    9: (0, 0, 0, 0),  # non-canonical R, not reduced for the hash: rule 2
    10: (0, 0, 0, 0),  # non-canonical A, reduced for the hash: rule 2
    11: (0, 0, 1, 0),  # non-canonical A, hashed as sent: rule 2; raw OpenSSL accepts
}


def speccheck_cases() -> list[tuple[int, bytes, bytes, bytes]]:
    return [
        (
            i,
            bytes.fromhex(c["pub_key"]),
            bytes.fromhex(c["signature"]),
            bytes.fromhex(c["message"]),
        )
        for i, c in enumerate(_json(SPECCHECK))
    ]


@pytest.mark.parametrize(("i", "pk", "sig", "msg"), speccheck_cases(), ids=lambda v: str(v))
def test_speccheck_case(i: int, pk: bytes, sig: bytes, msg: bytes) -> None:
    got = tuple(
        int(f(pk, sig, msg))
        for f in (signature_ok, libsodium_accepts, openssl_accepts, previous_rules_accept)
    )
    assert got == SPECCHECK_VERDICTS[i]


def test_the_signature_worker_decides_every_speccheck_case_as_signature_ok() -> None:
    # The worker checks signatures in place in its request (SpanVerifier):
    # the cases where libraries differ must not differ between the paths.
    cases = speccheck_cases()
    body = b"".join(b"\x01" + signature_frame(pk, sig, msg) for _, pk, sig, msg in cases)
    refused = decode_reply(check_request(body))
    assert refused == [i for i, pk, sig, msg in cases if not signature_ok(pk, sig, msg)]
    assert 0 < len(refused) < len(cases)


def test_speccheck_has_the_twelve_cases() -> None:
    assert [c[0] for c in speccheck_cases()] == list(SPECCHECK_VERDICTS)


# --- every vector: where the rule sets differ -------------------------------------------


def all_vectors() -> Iterator[tuple[str, bytes, bytes, bytes]]:
    for v in _json(DATA / "ed25519" / "rfc8032-7.1.json")["vectors"]:
        pk, sig, msg = (bytes.fromhex(v[k]) for k in ("public_key", "signature", "message"))
        yield f"rfc8032 {v['name']}", pk, sig, msg
    doc = _json(DATA / "wycheproof" / "ed25519_test.json")
    for group in doc["testGroups"]:
        pk = bytes.fromhex(group["publicKey"]["pk"])
        for t in group["tests"]:
            yield f"wycheproof tc{t['tcId']}", pk, bytes.fromhex(t["sig"]), bytes.fromhex(t["msg"])
    for t in _json(DATA / "ed25519" / "acceptance.json")["tests"]:
        pk, sig, msg = (bytes.fromhex(t[k]) for k in ("pk", "sig", "msg"))
        yield f"acceptance {t['name']}", pk, sig, msg
    for i, pk, sig, msg in speccheck_cases():
        yield f"speccheck {i}", pk, sig, msg


def _small_order_involved(pk: bytes, sig: bytes) -> bool:
    def small(enc: bytes) -> bool:
        return (int.from_bytes(enc, "little") & ((1 << 255) - 1)) in SMALL_ORDER_Y

    return len(pk) == 32 and len(sig) == 64 and (small(pk) or small(sig[:32]))


def test_node_rules_agree_with_libsodium_on_every_vector() -> None:
    # The pre-checks make the rules ours; today they refuse nothing libsodium
    # would accept, so libsodium's own checks and ours are the same set.
    differ = [
        n
        for n, pk, sig, msg in all_vectors()
        if signature_ok(pk, sig, msg) != libsodium_accepts(pk, sig, msg)
    ]
    assert differ == []


def test_the_rule_change_is_exactly_small_order_points() -> None:
    # The consensus change (chain ids -5): every vector the previous rule set
    # decided otherwise is one with a small-order A or R, which it accepted
    # and the node now refuses; nothing else moved, either way.
    vectors = list(all_vectors())
    changed = [
        (name, previous_rules_accept(pk, sig, msg))
        for name, pk, sig, msg in vectors
        if signature_ok(pk, sig, msg) != previous_rules_accept(pk, sig, msg)
    ]
    assert changed, "the vectors must show the change"
    assert all(before for _, before in changed)
    small = {name for name, pk, sig, _ in vectors if _small_order_involved(pk, sig)}
    assert {name for name, _ in changed} <= small
    assert {name for name, _ in changed} == {
        "acceptance small-order-key-order-1",
        "acceptance small-order-key-order-2",
        "acceptance small-order-key-order-4",
        "acceptance small-order-r",
        "acceptance mixed-order-key-k-even",
        "speccheck 0",
        "speccheck 1",
        "speccheck 2",
    }


@pytest.mark.parametrize(
    "t", _json(DATA / "ed25519" / "acceptance.json")["tests"], ids=lambda t: t["name"]
)
def test_acceptance_vector_under_the_previous_rules(t: dict[str, str]) -> None:
    pk, msg, sig = (bytes.fromhex(t[k]) for k in ("pk", "msg", "sig"))
    assert previous_rules_accept(pk, sig, msg) == (t["openssl"] == "valid"), t["comment"]


# --- the small-order points, from scratch ---------------------------------------------

Point = tuple[int, int]
IDENTITY: Point = (0, 1)


def _add(a: Point, b: Point) -> Point:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    return (
        (x1 * y2 + x2 * y1) * pow(1 + t, -1, P) % P,
        (y1 * y2 + x1 * x2) * pow(1 - t, -1, P) % P,
    )


def _mul(k: int, pt: Point) -> Point:
    out = IDENTITY
    while k:
        if k & 1:
            out = _add(out, pt)
        pt = _add(pt, pt)
        k >>= 1
    return out


def _point_with_y(y: int) -> Point | None:
    x2 = (y * y - 1) * pow(D * y * y + 1, -1, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if x * x % P != x2:
        x = x * SQRT_M1 % P
    return (x, y) if x * x % P == x2 else None


def _torsion_points() -> list[Point]:
    """The eight points of order dividing 8: multiples of L*Q for a Q whose
    torsion part has order exactly 8 (found by trying y = 2, 3, ...)."""
    for y in range(2, 200):
        q = _point_with_y(y)
        if q is None:
            continue
        t = _mul(L, q)
        if _mul(4, t) != IDENTITY:
            return [_mul(k, t) for k in range(8)]
    raise AssertionError("no point with a torsion part of order 8")


def _encode(pt: Point, sign: int | None = None) -> bytes:
    x, y = pt
    return (y | (x & 1 if sign is None else sign) << 255).to_bytes(32, "little")


def test_small_order_y_are_the_torsion_points() -> None:
    torsion = _torsion_points()
    assert len(set(torsion)) == 8
    assert {y for _, y in torsion} == SMALL_ORDER_Y
    for pt in torsion:
        # Canonically encoded, and with the other sign bit: refused either way.
        assert not point_ok(_encode(pt)) and not point_ok(_encode(pt, 1 - (pt[0] & 1)))


def test_point_ok() -> None:
    key = KeyPair.from_seed(bytes(32))
    assert point_ok(key.pubkey)
    y = int.from_bytes(key.pubkey, "little") & ((1 << 255) - 1)
    # Adding p to y leaves the point the same, and the encoding non-canonical.
    if y + P < 2**255:
        assert not point_ok((y + P).to_bytes(32, "little"))
    assert not point_ok(P.to_bytes(32, "little")) and not point_ok(
        (2**255 - 1).to_bytes(32, "little")
    )
    assert not point_ok(key.pubkey[:31])


def test_a_small_order_key_signs_anything_under_the_previous_rules_only() -> None:
    # Why the rule exists: with A = the identity, R = the identity and S = 0
    # the equation holds for every message, so no one owns that address.
    identity = (1).to_bytes(32, "little")
    sig = identity + bytes(32)
    for msg in (b"", b"pay everything to me"):
        assert previous_rules_accept(identity, sig, msg)
        assert not signature_ok(identity, sig, msg)


def test_keys_sign_as_before() -> None:
    # Signing moved to libsodium: for the same seed it must give OpenSSL's
    # key and signature bytes (Ed25519 signing is deterministic), so key
    # files and every signed object stay as they were.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    for i in range(8):
        seed = bytes([i]) * 32
        key = KeyPair.from_seed(seed)
        ref = Ed25519PrivateKey.from_private_bytes(seed)
        raw = serialization.Encoding.Raw
        assert key.pubkey == ref.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
        assert key.seed() == seed
        msg = b"message %d" % i
        assert key.sign(msg) == ref.sign(msg)
    assert KeyPair.generate().seed() != KeyPair.generate().seed()
