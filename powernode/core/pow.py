"""Proof of work, chain work, and the absolute ASERT retarget.

The PoW hash is PBKDF2-HMAC-SHA256 over a 40-byte input (a commitment to the
rest of the header plus the nonce). ``hashlib.sha256`` holds the GIL for small
inputs, so a miner thread hashing with it would starve the event loop;
``pbkdf2_hmac`` releases the GIL for the whole call, so with a few dozen
iterations the miner thread hands the interpreter back to the loop between
attempts. Verifying one header costs one call (tens of microseconds).
"""

from __future__ import annotations

import hashlib

POW_SALT = b"powernode-pow-v1"
POW_ITERATIONS = 64
MAX_TARGET = 2**256 - 1


def pow_hash(commitment: bytes, nonce: int) -> int:
    """The header's PoW value as an integer; valid when it is <= the target."""
    digest = hashlib.pbkdf2_hmac(
        "sha256", commitment + nonce.to_bytes(8, "big"), POW_SALT, POW_ITERATIONS
    )
    return int.from_bytes(digest, "big")


def block_work(target: int) -> int:
    """Expected hashes to find a block at ``target``: 2^256 // (target + 1)."""
    return (1 << 256) // (target + 1)


def target_to_bytes(target: int) -> bytes:
    return target.to_bytes(32, "big")


def target_from_bytes(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def asert_target(
    *,
    anchor_target: int,
    anchor_timestamp: int,
    parent_height: int,
    parent_timestamp: int,
    block_time: int,
    halflife: int,
    pow_limit: int,
) -> int:
    """Target for the block after ``parent`` (aserti3-2d, anchored at genesis).

    target = anchor_target * 2^((time_delta - block_time * height_delta) / halflife)

    with the anchor at genesis (height 0), so the block at height 1 gets the
    genesis target. The exponent is 16.16 fixed point. Rounding rules, all
    integer: the exponent is floor-divided (Python ``//`` rounds toward minus
    infinity, unlike the C++ reference, which is fine for a chain of our own);
    2^frac uses the reference cubic approximation, whose error is under 0.013%;
    the final shift truncates. The result is clamped to [1, pow_limit].
    """
    if halflife <= 0 or block_time <= 0:
        raise ValueError("block_time and halflife must be positive")
    time_delta = parent_timestamp - anchor_timestamp
    height_delta = parent_height
    exponent = ((time_delta - block_time * height_delta) * 65536) // halflife
    shifts = exponent >> 16
    frac = exponent & 0xFFFF
    factor = 65536 + (
        (195766423245049 * frac + 971821376 * frac * frac + 5127 * frac**3 + (1 << 47)) >> 48
    )
    # Far outside these bounds the answer is a clamp anyway; stopping here keeps
    # a hostile timestamp from asking for a shift of billions of bits.
    if shifts > 512:
        return pow_limit
    if shifts < -512:
        return 1
    target = anchor_target * factor
    if shifts < 0:
        target >>= -shifts
    else:
        target <<= shifts
    target >>= 16
    if target <= 0:
        return 1
    return min(target, pow_limit)
