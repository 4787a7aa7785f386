"""The block export file (``powernode export`` / ``import``): a header naming
the chain, then the raw blocks of a main-chain range, in height order.

Layout (integers big-endian):

    8 bytes   magic  b"PWNBLK01"
    4 bytes   header length N
    N bytes   header: UTF-8 JSON {"chain_id", "genesis" (hex), "from", "to"}
    then per block, ``to - from + 1`` of them:
    4 bytes   block length L (at most MAX_BLOCK_BYTES)
    L bytes   the block as on the wire (``chain.block`` raw)

Reading checks the framing only; the node that imports the blocks checks
them as any block it is given.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from powernode.core.hextext import from_hex

MAGIC = b"PWNBLK01"
# Larger than the largest block the chain allows (HARD_MAX_BLOCK_BYTES, 8 MiB),
# with room to spare.
MAX_BLOCK_BYTES = 32 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
_LEN = struct.Struct(">I")


class BlockFileError(ValueError):
    """The file is not a block export, or is cut short."""


@dataclass(frozen=True, slots=True)
class BlockFileHeader:
    chain_id: str
    genesis: bytes
    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def write_header(f: BinaryIO, header: BlockFileHeader) -> None:
    doc = {
        "chain_id": header.chain_id,
        "genesis": header.genesis.hex(),
        "from": header.first,
        "to": header.last,
    }
    raw = json.dumps(doc, sort_keys=True).encode()
    f.write(MAGIC + _LEN.pack(len(raw)) + raw)


def write_block(f: BinaryIO, raw: bytes) -> None:
    f.write(_LEN.pack(len(raw)) + raw)


def _exactly(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise BlockFileError(f"the file ends inside {what}: cut short")
    return data


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError("not a string")
    return v


def _height(v: Any) -> int:
    # json gives 1.0 or true for what export writes as 1: not ours
    if type(v) is not int:
        raise TypeError("not a whole number")
    return v


def read_header(f: BinaryIO) -> BlockFileHeader:
    if f.read(len(MAGIC)) != MAGIC:
        raise BlockFileError("not a powernode block export (no PWNBLK01 magic)")
    (n,) = _LEN.unpack(_exactly(f, _LEN.size, "the header"))
    if n > MAX_HEADER_BYTES:
        raise BlockFileError(f"a header of {n} bytes: not a powernode block export")
    raw = _exactly(f, n, "the header")
    try:
        doc = json.loads(raw)
        header = BlockFileHeader(
            chain_id=_text(doc["chain_id"]),
            genesis=from_hex(_text(doc["genesis"])),
            first=_height(doc["from"]),
            last=_height(doc["to"]),
        )
    except (ValueError, KeyError, TypeError, RecursionError):
        # (RecursionError: JSON nested thousands deep, which json refuses so)
        raise BlockFileError("its header is not the JSON an export writes") from None
    if len(header.genesis) != 32 or not 0 <= header.first <= header.last:
        raise BlockFileError("its header names no chain or no range of blocks")
    return header


def iter_blocks(f: BinaryIO, header: BlockFileHeader) -> Iterator[bytes]:
    """The raw blocks after the header, ``header.count`` of them."""
    for i in range(header.count):
        what = f"block {header.first + i}"
        (n,) = _LEN.unpack(_exactly(f, _LEN.size, what))
        if n > MAX_BLOCK_BYTES:
            raise BlockFileError(f"{what} claims {n} bytes, more than any block")
        yield _exactly(f, n, what)
    if f.read(1):
        raise BlockFileError("bytes after the last block the header announces")
