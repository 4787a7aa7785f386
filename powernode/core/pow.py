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
    """Target for the block after ``parent``: aserti3-2d, bit for bit.

    target = anchor_target * 2^((time_delta - block_time * height_delta) / halflife)

    This is ``CalculateASERT`` of the reference (Bitcoin Cash Node,
    ``src/pow.cpp``) with its integer semantics: the exponent is 16.16 fixed
    point, divided with truncation toward zero (C++ ``/``, not Python's
    ``//``); its integer part is taken by an arithmetic shift (rounding toward
    minus infinity) and its 16-bit fraction by two's complement; 2^frac is
    the reference's cubic polynomial (every intermediate fits the
    reference's uint64); the final shift truncates; the result is clamped to
    [1, pow_limit]. The published vectors (tests/data/aserti3-2d) pin it.

    The anchor is genesis: it plays the reference anchor's *parent* (its
    timestamp is the reference's anchor time, its target the anchor target),
    so the block at height 1 gets the genesis target and ``parent_height``
    is the reference's ``nHeightDiff + 1``.

    Outside the reference's domain (it asserts a pow limit below 2^224, which
    our dev chains exceed for fast blocks, and a distance from the schedule
    below 2^47 s) the same formula runs on unbounded integers: the result is
    what the reference's fixed-width arithmetic stands for, never a wrapped
    value.
    """
    if halflife <= 0 or block_time <= 0:
        raise ValueError("block_time and halflife must be positive")
    time_delta = parent_timestamp - anchor_timestamp
    height_delta = parent_height
    numerator = (time_delta - block_time * height_delta) * 65536
    # C++ integer division truncates toward zero; Python's // floors, which
    # differs by one unit whenever blocks come faster than the schedule.
    exponent = abs(numerator) // halflife
    if numerator < 0:
        exponent = -exponent
    shifts = exponent >> 16  # arithmetic shift, as the reference's int64 >>
    frac = exponent & 0xFFFF  # uint16_t(exponent): two's complement low bits
    factor = 65536 + (
        (195766423245049 * frac + 971821376 * frac * frac + 5127 * frac**3 + (1 << 47)) >> 48
    )
    # Far outside these bounds the answer is a clamp anyway (anchor_target *
    # factor is in [2^16, 2^273)); stopping here keeps a hostile timestamp from
    # asking for a shift of billions of bits.
    if shifts > 512:
        return pow_limit
    if shifts < -512:
        return 1
    target = anchor_target * factor
    shifts -= 16  # undo factor's 2^16 scale in the same shift, as the reference
    if shifts < 0:
        target >>= -shifts
    else:
        target <<= shifts
    if target <= 0:
        return 1
    return min(target, pow_limit)
