"""Block header and block, their canonical encoding, and context-free checks.

Header wire form (canonical msgpack array)::

    [version, height, prev_hash, timestamp, target(32 bytes), nonce,
     tx_root, state_root, miner(20 bytes)]

Block wire form: ``[header, [tx_bytes, ...]]``; each tx is kept as its own
signed bytes so its id is the hash of exactly what was signed.

The block hash is SHA-256 of the header encoding. The PoW input is the
SHA-256 of the header without its nonce, followed by the nonce (see pow.py),
so a miner re-hashes 40 bytes per attempt, not the whole header.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from powernode.core import encoding
from powernode.core.crypto import ADDRESS_SIZE, HASH_SIZE, sha256
from powernode.core.errors import (
    BadMerkleRoot,
    BadPow,
    DecodeError,
    DuplicateTx,
    InvalidBlock,
    Oversize,
    OversizeBlock,
    PowernodeError,
)
from powernode.core.merkle import merkle_root
from powernode.core.pow import pow_hash, target_from_bytes
from powernode.core.tx import Transaction, decode_tx

BLOCK_VERSION = 1
HARD_MAX_BLOCK_BYTES = 8 * 1024 * 1024
HEADER_MAX_BYTES = 512
HEADER_FIELDS = (
    "version",
    "height",
    "prev_hash",
    "timestamp",
    "target",
    "nonce",
    "tx_root",
    "state_root",
    "miner",
)


@dataclass(frozen=True, slots=True)
class BlockHeader:
    version: int
    height: int
    prev_hash: bytes
    timestamp: int
    target: bytes
    nonce: int
    tx_root: bytes
    state_root: bytes
    miner: bytes
    hash: bytes = field(default=b"", compare=False, repr=False)

    def to_obj(self) -> list[Any]:
        return [
            self.version,
            self.height,
            self.prev_hash,
            self.timestamp,
            self.target,
            self.nonce,
            self.tx_root,
            self.state_root,
            self.miner,
        ]

    def encode(self) -> bytes:
        return encoding.encode(self.to_obj())

    def pow_commitment(self) -> bytes:
        obj = self.to_obj()
        del obj[5]
        return sha256(encoding.encode(obj))

    @property
    def target_int(self) -> int:
        return target_from_bytes(self.target)

    def check_pow(self) -> None:
        if pow_hash(self.pow_commitment(), self.nonce) > self.target_int:
            raise BadPow(f"block {self.hash.hex()[:16]} does not meet its target")

    def with_nonce(self, nonce: int) -> BlockHeader:
        return self.replace(nonce=nonce)

    def replace(self, **changes: Any) -> BlockHeader:
        """A copy with some fields changed and its hash recomputed (unlike
        ``dataclasses.replace``, which would carry the old hash over)."""
        fields = dict(zip(HEADER_FIELDS, self.to_obj(), strict=True))
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"not header fields: {sorted(unknown)}")
        fields.update(changes)
        return make_header(**fields)


def make_header(
    version: int,
    height: int,
    prev_hash: bytes,
    timestamp: int,
    target: bytes,
    nonce: int,
    tx_root: bytes,
    state_root: bytes,
    miner: bytes,
) -> BlockHeader:
    h = BlockHeader(
        version, height, prev_hash, timestamp, target, nonce, tx_root, state_root, miner
    )
    object.__setattr__(h, "hash", sha256(h.encode()))
    return h


def header_from_obj(obj: Any) -> BlockHeader:
    f = encoding.as_list(obj, 9, "header")
    return make_header(
        encoding.as_uint(f[0], "header version"),
        encoding.as_uint(f[1], "header height"),
        encoding.as_bytes(f[2], "header prev_hash", size=HASH_SIZE),
        encoding.as_uint(f[3], "header timestamp"),
        encoding.as_bytes(f[4], "header target", size=32),
        encoding.as_uint(f[5], "header nonce"),
        encoding.as_bytes(f[6], "header tx_root", size=HASH_SIZE),
        encoding.as_bytes(f[7], "header state_root", size=HASH_SIZE),
        encoding.as_bytes(f[8], "header miner", size=ADDRESS_SIZE),
    )


def decode_header(raw: bytes) -> BlockHeader:
    return header_from_obj(encoding.decode(raw, max_bytes=HEADER_MAX_BYTES))


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    txs: tuple[Transaction, ...]
    raw: bytes = field(default=b"", compare=False, repr=False)

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def txids(self) -> list[bytes]:
        return [tx.txid for tx in self.txs]


def make_block(header: BlockHeader, txs: Sequence[Transaction]) -> Block:
    raw = encoding.encode_trusted([header.to_obj(), [tx.raw for tx in txs]])
    return Block(header=header, txs=tuple(txs), raw=raw)


def decode_block(
    raw: bytes,
    *,
    max_bytes: int = HARD_MAX_BLOCK_BYTES,
    known: Callable[[bytes], Transaction | None] | None = None,
    decode: Callable[[bytes], Transaction] = decode_tx,
) -> Block:
    """Parse a block's bytes; every tx must itself be canonical. Raises typed
    errors. ``known`` maps a txid to a tx already decoded (the mempool's):
    a tx whose bytes are the same is taken from there instead of being
    decoded again, which is most of a relayed block's txs. ``decode`` decodes
    each tx (a node passes its fast decoder, which gives what ``decode_tx``
    gives)."""
    if type(raw) is not bytes:
        raise DecodeError("expected bytes")
    if len(raw) > max_bytes:
        raise OversizeBlock(f"block is {len(raw)} bytes, limit {max_bytes}")
    obj = encoding.decode(raw, max_bytes=max_bytes)
    f = encoding.as_list(obj, 2, "block")
    try:
        header = header_from_obj(f[0])
    except DecodeError as exc:
        # The header's own bound, as decode_header (P2P headers) applies it.
        # A header that parses is under 200 bytes, so only one that does
        # not is measured (off the hot path: make_header encodes it anyway).
        if len(encoding.encode_trusted(f[0])) > HEADER_MAX_BYTES:
            raise Oversize(f"block header is over {HEADER_MAX_BYTES} bytes") from exc
        raise
    tx_raws = encoding.as_list(f[1], None, "block txs")
    txs = []
    for i, tx_raw in enumerate(tx_raws):
        if known is not None and type(tx_raw) is bytes:
            tx = known(sha256(tx_raw))
            if tx is not None and tx.raw == tx_raw:
                txs.append(tx)
                continue
        try:
            txs.append(decode(encoding.as_bytes(tx_raw, "block tx")))
        except PowernodeError as exc:
            raise InvalidBlock(f"tx {i}: {exc.code}: {exc.message}", code=exc.code) from exc
    return Block(header=header, txs=tuple(txs), raw=raw)


def check_block(
    block: Block,
    *,
    max_txs: int,
    max_bytes: int,
    pow_checked: bool = False,
    tx_root_known: bool = False,
) -> None:
    """Checks that need nothing but the block: size, PoW, merkle root, no
    duplicate tx. ``pow_checked``: this very header (its hash) passed its PoW
    check already, in the headers batch that announced it. ``tx_root_known``:
    the caller computed the header's tx root from exactly these txs itself (a
    block mined from its own template), so it is not hashed again."""
    if len(block.raw) > max_bytes:
        raise OversizeBlock(f"block is {len(block.raw)} bytes, limit {max_bytes}")
    if len(block.txs) > max_txs:
        raise OversizeBlock(f"block has {len(block.txs)} txs, limit {max_txs}")
    if not pow_checked:
        block.header.check_pow()
    ids = block.txids()
    if len(set(ids)) != len(ids):
        raise DuplicateTx("block contains the same tx twice")
    if not tx_root_known and merkle_root(ids) != block.header.tx_root:
        raise BadMerkleRoot("tx_root does not match the block's transactions")


def median_time_past(timestamps: Sequence[int]) -> int:
    """Median of up to the last 11 timestamps (upper median for even counts)."""
    window = sorted(timestamps[-11:])
    return window[len(window) // 2]
