"""The export file's framing (chain/blockfile.py): what is written reads back,
and a file that is not one, or is cut short, is refused by name."""

from __future__ import annotations

import io
import json

import pytest

from powernode.chain.blockfile import (
    MAGIC,
    MAX_BLOCK_BYTES,
    BlockFileError,
    BlockFileHeader,
    iter_blocks,
    read_header,
    write_block,
    write_header,
)

HEADER = BlockFileHeader(chain_id="unit", genesis=bytes(range(32)), first=3, last=5)
BLOCKS = [b"a" * 10, b"", b"c" * 300]


def written() -> bytes:
    f = io.BytesIO()
    write_header(f, HEADER)
    for raw in BLOCKS:
        write_block(f, raw)
    return f.getvalue()


def read_all(data: bytes) -> list[bytes]:
    f = io.BytesIO(data)
    return list(iter_blocks(f, read_header(f)))


def test_a_written_file_reads_back() -> None:
    data = written()
    assert data.startswith(MAGIC)
    f = io.BytesIO(data)
    assert read_header(f) == HEADER and HEADER.count == 3
    assert list(iter_blocks(f, HEADER)) == BLOCKS


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "magic"),
        (b"PWNBLK02" + written()[8:], "magic"),
        (written()[:14], "cut short"),
        (written()[:-1], "cut short"),
        (written() + b"\x00", "after the last block"),
        (MAGIC + b"\x00\x00\x00\x02{}", "header"),
        (MAGIC + (0xFFFFFFFF).to_bytes(4, "big"), "header of"),
    ],
)
def test_what_is_not_an_export_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(BlockFileError, match=why):
        read_all(data)


def test_a_block_length_past_any_block_is_refused_before_reading_it() -> None:
    f = io.BytesIO()
    write_header(f, BlockFileHeader(chain_id="unit", genesis=bytes(32), first=1, last=1))
    f.write((MAX_BLOCK_BYTES + 1).to_bytes(4, "big"))
    with pytest.raises(BlockFileError, match="more than any block"):
        read_all(f.getvalue())


def test_a_header_without_a_range_is_refused() -> None:
    f = io.BytesIO()
    write_header(f, BlockFileHeader(chain_id="unit", genesis=bytes(32), first=5, last=4))
    with pytest.raises(BlockFileError, match="no range"):
        read_all(f.getvalue())


@pytest.mark.parametrize(
    "doc",
    [
        {"chain_id": "unit", "genesis": "00 " * 32, "from": 1, "to": 1},
        {"chain_id": "unit", "genesis": "00" * 32, "from": 1.0, "to": 1},
        {"chain_id": "unit", "genesis": "00" * 32, "from": True, "to": 1},
        {"chain_id": "unit", "genesis": "00" * 32, "from": "1", "to": 1},
        {"chain_id": 7, "genesis": "00" * 32, "from": 1, "to": 1},
    ],
)
def test_a_header_field_export_never_writes_is_refused(doc: dict[str, object]) -> None:
    raw = json.dumps(doc).encode()
    data = MAGIC + len(raw).to_bytes(4, "big") + raw
    with pytest.raises(BlockFileError, match="not the JSON an export writes"):
        read_header(io.BytesIO(data))


def test_a_header_of_deeply_nested_json_is_refused_by_name() -> None:
    raw = b"[" * 30_000 + b"]" * 30_000  # within the 64 KiB a header may be
    data = MAGIC + len(raw).to_bytes(4, "big") + raw
    with pytest.raises(BlockFileError, match="not the JSON an export writes"):
        read_header(io.BytesIO(data))
