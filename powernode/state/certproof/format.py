"""The certificate proof file: one canonical msgpack array, version 1.

::

    ["powernode-cert-proof", 1, chain_id, genesis_hash, cert_id,
     [header, ...],                                   # heights 1..tip, in order
     [[height, index, tx_count, tx_raw, [sibling, ...]], ...]]   # chain order

- the magic string and the version come first, so a reader tells a proof
  from any other msgpack (and a future version from this one) before it
  reads anything else;
- ``header``: a block header's nine-field array, exactly as blocks carry it
  (its hash is SHA-256 of that array's encoding);
- each lineage tx: the block height, its position and the block's tx count,
  the tx's signed bytes as they are in the block, and its RFC 6962 audit
  path (``core.merkle.inclusion_path``) to that block's ``tx_root``.

The file is read with ``encoding.decode``: a byte sequence that is not the
canonical encoding of its value is refused, so one proof has one encoding.
Sizes are bounded before anything is hashed (``MAX_*`` below).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from powernode.core import encoding
from powernode.core.block import BlockHeader, header_from_obj
from powernode.core.crypto import HASH_SIZE
from powernode.core.errors import BadProof, PowernodeError
from powernode.core.tx import MAX_TX_BYTES

MAGIC = "powernode-cert-proof"
VERSION = 1
# 64 MiB holds ~380,000 headers (about 175 bytes each): the bound a reader
# allocates at most. An RPC answer carries the proof as hex; a single call
# with auth is not capped by max_response_bytes (a batch is), while one
# without auth is, at [explorer] max_response_bytes (4 MiB by default).
MAX_PROOF_BYTES = 64 * 1024 * 1024
MAX_HEADERS = 380_000
# A lineage of 100,000 txs is far beyond any real certificate (each split
# or transfer is a signed tx); the bound only keeps a hostile file small.
MAX_LINEAGE_TXS = 100_000
# max_block_txs is at most 100,000 (core/params.py): a tree 17 levels deep.
MAX_BRANCH = 17
MAX_BLOCK_TXS = 100_000


@dataclass(frozen=True, slots=True)
class LineageTx:
    height: int
    index: int  # position in its block
    tx_count: int  # txs in its block: with the index, fixes the path's shape
    raw: bytes  # the signed tx exactly as the block holds it
    branch: tuple[bytes, ...]  # RFC 6962 audit path, bottom up

    def to_obj(self) -> list[Any]:
        return [self.height, self.index, self.tx_count, self.raw, list(self.branch)]


@dataclass(frozen=True, slots=True)
class CertProof:
    chain_id: str
    genesis_hash: bytes
    cert_id: bytes
    headers: tuple[BlockHeader, ...]  # heights 1..tip
    txs: tuple[LineageTx, ...]  # chain order

    def to_obj(self) -> list[Any]:
        return [
            MAGIC,
            VERSION,
            self.chain_id,
            self.genesis_hash,
            self.cert_id,
            [h.to_obj() for h in self.headers],
            [t.to_obj() for t in self.txs],
        ]

    def encode(self) -> bytes:
        raw = encoding.encode(self.to_obj())
        if len(raw) > MAX_PROOF_BYTES:
            raise BadProof(f"proof is {len(raw)} bytes, limit {MAX_PROOF_BYTES}")
        return raw


def _lineage_tx(obj: Any, i: int) -> LineageTx:
    f = encoding.as_list(obj, 5, f"lineage tx {i}")
    height = encoding.as_uint(f[0], f"lineage tx {i} height")
    count = encoding.as_uint(f[2], f"lineage tx {i} tx_count", max_value=MAX_BLOCK_TXS)
    index = encoding.as_uint(f[1], f"lineage tx {i} index", max_value=MAX_BLOCK_TXS)
    raw = encoding.as_bytes(f[3], f"lineage tx {i} bytes", max_size=MAX_TX_BYTES)
    path = encoding.as_list(f[4], None, f"lineage tx {i} branch")
    if len(path) > MAX_BRANCH:
        raise BadProof(f"lineage tx {i}: branch of {len(path)} hashes, limit {MAX_BRANCH}")
    branch = tuple(
        encoding.as_bytes(s, f"lineage tx {i} branch hash", size=HASH_SIZE) for s in path
    )
    return LineageTx(height, index, count, raw, branch)


def _check_head(head: list[Any]) -> None:
    if len(head) < 2 or head[0] != MAGIC:
        raise BadProof("not a powernode certificate proof (no magic)")
    # ``type`` too: msgpack's true would pass for 1 in a comparison.
    if type(head[1]) is not int or head[1] != VERSION:
        raise BadProof(f"proof version {head[1]!r} is not supported (this reads {VERSION})")


def parse_proof(raw: bytes) -> CertProof:
    """The proof in ``raw``, or BadProof saying what is wrong with the file.
    Only the shape is checked here; ``verify_proof`` checks what it proves."""
    if type(raw) is not bytes:
        raise BadProof("a proof is bytes")
    if len(raw) > MAX_PROOF_BYTES:
        raise BadProof(f"proof is {len(raw)} bytes, limit {MAX_PROOF_BYTES}")
    # The magic and version first, read without the rest (README: a reader
    # knows a proof and its version before anything else): a later
    # version's body need not decode as this one's.
    head = encoding.peek_head(raw, 2)
    if head is not None:
        _check_head(head)
    try:
        obj = encoding.decode(raw, max_bytes=MAX_PROOF_BYTES)
        if type(obj) is not list:
            raise BadProof("not a powernode certificate proof (no magic)")
        _check_head(obj[:2])
        f = encoding.as_list(obj, 7, "proof")
        chain_id = encoding.as_str(f[2], "proof chain_id", max_len=64)
        genesis_hash = encoding.as_bytes(f[3], "proof genesis_hash", size=HASH_SIZE)
        cert_id = encoding.as_bytes(f[4], "proof cert_id", size=HASH_SIZE)
        header_objs = encoding.as_list(f[5], None, "proof headers")
        if len(header_objs) > MAX_HEADERS:
            raise BadProof(f"{len(header_objs)} headers, limit {MAX_HEADERS}")
        tx_objs = encoding.as_list(f[6], None, "proof txs")
        if len(tx_objs) > MAX_LINEAGE_TXS:
            raise BadProof(f"{len(tx_objs)} lineage txs, limit {MAX_LINEAGE_TXS}")
        # The lineage txs' bounds before any header is hashed.
        txs = tuple(_lineage_tx(t, i) for i, t in enumerate(tx_objs))
        headers = tuple(header_from_obj(h) for h in header_objs)
    except BadProof:
        raise
    except PowernodeError as exc:
        raise BadProof(f"{exc.code}: {exc.message}") from exc
    return CertProof(chain_id, genesis_hash, cert_id, headers, txs)
