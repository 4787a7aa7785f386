"""The block index: every block we know, linked to its parent, with its
cumulative work and validation status. Fork choice reads it."""

from __future__ import annotations

from dataclasses import dataclass

from powernode.core.block import BlockHeader
from powernode.core.pow import block_work

HAVE_DATA = 1  # full block stored
CONNECTED_ONCE = 2  # passed full validation at least once
FAILED = 4  # invalid, or builds on an invalid block


@dataclass(slots=True, eq=False)
class IndexEntry:
    header: BlockHeader
    prev: IndexEntry | None
    work: int
    status: int
    seq: int

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def failed(self) -> bool:
        return bool(self.status & FAILED)

    def better_than(self, other: IndexEntry) -> bool:
        """Most cumulative work wins; on a tie the block seen first wins."""
        if self.work != other.work:
            return self.work > other.work
        return self.seq < other.seq


class BlockIndex:
    def __init__(self) -> None:
        self.entries: dict[bytes, IndexEntry] = {}
        self.next_seq = 0

    def __contains__(self, block_hash: bytes) -> bool:
        return block_hash in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, block_hash: bytes) -> IndexEntry | None:
        return self.entries.get(block_hash)

    def add(self, header: BlockHeader, status: int, seq: int | None = None) -> IndexEntry:
        prev = self.entries.get(header.prev_hash) if header.height > 0 else None
        if header.height > 0 and prev is None:
            raise KeyError("parent not in index")
        work = (prev.work if prev else 0) + block_work(int.from_bytes(header.target, "big"))
        if seq is None:
            seq = self.next_seq
        self.next_seq = max(self.next_seq, seq + 1)
        entry = IndexEntry(header=header, prev=prev, work=work, status=status, seq=seq)
        self.entries[header.hash] = entry
        return entry

    @staticmethod
    def ancestor(entry: IndexEntry, height: int) -> IndexEntry:
        e: IndexEntry | None = entry
        while e is not None and e.height > height:
            e = e.prev
        if e is None or e.height != height:
            raise KeyError(f"no ancestor at height {height}")
        return e

    @classmethod
    def fork_point(cls, a: IndexEntry, b: IndexEntry) -> IndexEntry:
        if a.height > b.height:
            a = cls.ancestor(a, b.height)
        elif b.height > a.height:
            b = cls.ancestor(b, a.height)
        while a is not b:
            if a.prev is None or b.prev is None:
                raise KeyError("blocks share no ancestor")
            a, b = a.prev, b.prev
        return a

    @staticmethod
    def recent_timestamps(entry: IndexEntry, n: int = 11) -> list[int]:
        """Timestamps of ``entry`` and its ancestors, oldest first, at most n."""
        out: list[int] = []
        e: IndexEntry | None = entry
        while e is not None and len(out) < n:
            out.append(e.header.timestamp)
            e = e.prev
        out.reverse()
        return out

    @staticmethod
    def descends_from(entry: IndexEntry, ancestor: IndexEntry) -> bool:
        e: IndexEntry | None = entry
        while e is not None and e.height > ancestor.height:
            e = e.prev
        return e is ancestor
