"""The difficulty rule against aserti3-2d's published vectors (tests/data/aserti3-2d).

The ten ``run*`` files were generated from the C++ reference in Bitcoin Cash
Node; every line must come out of ``asert_target`` exactly, in compact form.
Genesis stands for the reference anchor's parent: its time is the file's
"anchor ancestor time", its target the anchor nBits, so a line's block (the
one after ``height``) has parent height ``height - anchor height + 1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from powernode.core.pow import asert_target

DATA = Path(__file__).parents[1] / "data" / "aserti3-2d"
RUNS = sorted(DATA.glob("run*"))
BLOCK_SPACING = 600
HALFLIFE = 172_800
POW_LIMIT_BITS = 0x1D00FFFF


def target_from_compact(bits: int) -> int:
    """Bitcoin's ``arith_uint256::SetCompact`` for the non-negative values the
    vectors use (a sign bit in the mantissa would mean a negative target)."""
    size, word = bits >> 24, bits & 0x007FFFFF
    assert not bits & 0x00800000, "negative compact target"
    return word >> 8 * (3 - size) if size <= 3 else word << 8 * (size - 3)


def compact_from_target(target: int) -> int:
    """Bitcoin's ``arith_uint256::GetCompact``: three bytes of mantissa,
    truncated, moved down a byte when its top bit would read as a sign."""
    size = (target.bit_length() + 7) // 8
    word = target << 8 * (3 - size) if size <= 3 else target >> 8 * (size - 3)
    if word & 0x00800000:
        word >>= 8
        size += 1
    return word | size << 24


@dataclass(frozen=True)
class Run:
    name: str
    anchor_height: int
    anchor_parent_time: int
    anchor_bits: int
    lines: list[tuple[int, int, int, int]]  # iteration, height, time, nBits


def _header(text: str, key: str) -> str:
    m = re.search(rf"^##\s+{key}:\s*(\S+)\s*$", text, re.MULTILINE)
    assert m, f"no '{key}' in the header"
    return m.group(1)


def load(path: Path) -> Run:
    text = path.read_text()
    lines = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        it, height, time, bits = line.split()
        lines.append((int(it), int(height), int(time), int(bits, 16)))
    run = Run(
        name=path.name,
        anchor_height=int(_header(text, "anchor height")),
        anchor_parent_time=int(_header(text, "anchor ancestor time")),
        anchor_bits=int(_header(text, "anchor nBits"), 16),
        lines=lines,
    )
    assert len(lines) == int(_header(text, "iterations")), path.name
    return run


def test_all_ten_files_and_3000_vectors_are_there() -> None:
    assert [p.name for p in RUNS] == [f"run{i:02d}" for i in range(1, 11)]
    assert sum(len(load(p).lines) for p in RUNS) == 3000
    assert (DATA / "SOURCE.md").exists()


def test_compact_helpers_round_trip_every_vector() -> None:
    # The comparison is only as good as the compact encoding it goes through.
    for p in RUNS:
        for *_, bits in load(p).lines:
            assert compact_from_target(target_from_compact(bits)) == bits


@pytest.mark.parametrize("path", RUNS, ids=[p.name for p in RUNS])
def test_run_matches_the_reference(path: Path) -> None:
    run = load(path)
    anchor_target = target_from_compact(run.anchor_bits)
    pow_limit = target_from_compact(POW_LIMIT_BITS)
    wrong = []
    for it, height, time, bits in run.lines:
        target = asert_target(
            anchor_target=anchor_target,
            anchor_timestamp=run.anchor_parent_time,
            parent_height=height - run.anchor_height + 1,
            parent_timestamp=time,
            block_time=BLOCK_SPACING,
            halflife=HALFLIFE,
            pow_limit=pow_limit,
        )
        if compact_from_target(target) != bits:
            wrong.append((it, hex(compact_from_target(target)), hex(bits)))
    assert wrong == [], f"{len(wrong)} of {len(run.lines)} differ, first: {wrong[:3]}"


def test_exponent_truncates_toward_zero() -> None:
    # The defect the vectors found: one second ahead of schedule is an exponent
    # of -65536/172800 = -0.379..; C++ truncates it to 0 (the anchor target),
    # Python's // would floor it to -1 and shave a unit off the target.
    anchor = target_from_compact(0x1802AEE8)
    kwargs = dict(anchor_target=anchor, anchor_timestamp=0, block_time=600, halflife=HALFLIFE)
    assert asert_target(parent_height=2, parent_timestamp=1199, pow_limit=2**224, **kwargs) == (
        anchor
    )
    assert asert_target(parent_height=2, parent_timestamp=1200 - 3, pow_limit=2**224, **kwargs) < (
        anchor
    )
