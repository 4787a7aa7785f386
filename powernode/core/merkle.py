"""RFC 6962 Merkle tree over tx ids, with inclusion proofs.

The tree is RFC 6962's Merkle Tree Hash (section 2.1) with the tx ids as
the leaf data: a leaf is SHA-256(0x00 || item) and an inner node
SHA-256(0x01 || left || right), so an inner node can never pass for a leaf;
the root of no items is SHA-256 of the empty string. A proof's siblings are
RFC 6962's audit path, bottom up. ``tests/unit/test_conformance_merkle.py``
compares both with a direct implementation of section 2.1 for 0..64 leaves.

The levels are built bottom up, and a node without a sibling is carried up
unchanged rather than paired with itself: that gives exactly RFC 6962's split
at the largest power of two below the size, and avoids Bitcoin's
duplicate-leaf ambiguity (CVE-2012-2459): two different item lists never
share a root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

_LEAF = b"\x00"
_INNER = b"\x01"
# RFC 6962: MTH({}) = SHA-256(), the hash of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def _leaf(item: bytes) -> bytes:
    return hashlib.sha256(_LEAF + item).digest()


def _parent(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_INNER + left + right).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return EMPTY_ROOT
    # _leaf and _parent inlined: a 5,000-tx block hashes 10,000 nodes, and the
    # two calls per node cost a tenth of the time.
    sha = hashlib.sha256
    level = [sha(_LEAF + x).digest() for x in leaves]
    while len(level) > 1:
        pairs = zip(level[0:-1:2], level[1::2], strict=True)
        nxt = [sha(_INNER + left + right).digest() for left, right in pairs]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class MerkleAccumulator:
    """``merkle_root`` of a list that only grows, kept up to date as items
    are appended: a miner's template gains txs at every refresh, and hashing
    the whole tree again each time cost work in proportion to the template.

    ``_done[k]`` holds the nodes of level k whose subtrees are complete (both
    children final); they never change as items are appended. ``root``
    hashes only what hangs off their right edge: O(log n) nodes."""

    def __init__(self) -> None:
        self._done: list[list[bytes]] = [[]]

    def __len__(self) -> int:
        return len(self._done[0])

    def extend(self, items: Sequence[bytes]) -> None:
        sha = hashlib.sha256
        done = self._done
        done[0].extend(sha(_LEAF + x).digest() for x in items)
        k = 0
        while len(done[k]) >= 2:
            if k + 1 == len(done):
                done.append([])
            below, above = done[k], done[k + 1]
            for j in range(len(above), len(below) // 2):
                above.append(sha(_INNER + below[2 * j] + below[2 * j + 1]).digest())
            k += 1

    def root(self) -> bytes:
        done = self._done
        if not done[0]:
            return EMPTY_ROOT
        # Each level's nodes past its complete ones, built from the level
        # below's leftovers exactly as merkle_root builds a level.
        rest: list[bytes] = []
        for k, level in enumerate(done):
            above = len(done[k + 1]) if k + 1 < len(done) else 0
            rest = _level_above(level[2 * above :] + rest)
        # Past the top complete level: finish the tree on what is left.
        while len(rest) > 1:
            rest = _level_above(rest)
        return rest[0]


def _level_above(level: list[bytes]) -> list[bytes]:
    sha = hashlib.sha256
    pairs = zip(level[0:-1:2], level[1::2], strict=True)
    out = [sha(_INNER + left + right).digest() for left, right in pairs]
    if len(level) % 2:
        out.append(level[-1])
    return out


@dataclass(frozen=True, slots=True)
class MerkleProof:
    """Path from an item (a tx id) to the root: each step is (sibling, sibling_is_left)."""

    leaf: bytes
    index: int
    steps: tuple[tuple[bytes, bool], ...]

    def root(self) -> bytes:
        h = _leaf(self.leaf)
        for sibling, sibling_left in self.steps:
            h = _parent(sibling, h) if sibling_left else _parent(h, sibling)
        return h

    def to_json(self) -> dict[str, object]:
        return {
            "leaf": self.leaf.hex(),
            "index": self.index,
            "steps": [{"hash": s.hex(), "left": left} for s, left in self.steps],
        }


def merkle_proof(leaves: Sequence[bytes], index: int) -> MerkleProof:
    if not 0 <= index < len(leaves):
        raise IndexError("leaf index out of range")
    steps: list[tuple[bytes, bool]] = []
    level = [_leaf(x) for x in leaves]
    i = index
    while len(level) > 1:
        if i % 2 == 1:
            steps.append((level[i - 1], True))
        elif i + 1 < len(level):
            steps.append((level[i + 1], False))
        nxt = [_parent(level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        i //= 2
    return MerkleProof(leaf=leaves[index], index=index, steps=tuple(steps))


def inclusion_path(leaves: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """RFC 6962's audit path for ``leaves[index]``: the sibling hashes alone,
    bottom up. With the index and the tree size they are all a verifier
    needs (``verify_inclusion`` derives each sibling's side from them), so a
    proof carries no side flags that could disagree with its position."""
    return tuple(sibling for sibling, _ in merkle_proof(leaves, index).steps)


def inclusion_paths(leaves: Sequence[bytes], indexes: Sequence[int]) -> list[tuple[bytes, ...]]:
    """``inclusion_path`` of several leaves of one tree, building its levels
    once (a proof of a long lineage takes many txs from one block)."""
    for i in indexes:
        if not 0 <= i < len(leaves):
            raise IndexError("leaf index out of range")
    paths: list[list[bytes]] = [[] for _ in indexes]
    pos = list(indexes)
    level = [_leaf(x) for x in leaves]
    while len(level) > 1:
        for k, i in enumerate(pos):
            if i % 2 == 1:
                paths[k].append(level[i - 1])
            elif i + 1 < len(level):
                paths[k].append(level[i + 1])
            pos[k] = i // 2
        nxt = [_parent(level[j], level[j + 1]) for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return [tuple(p) for p in paths]


def verify_inclusion(
    item: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``path`` proves ``item`` is leaf ``index`` of a tree of ``size``
    leaves with ``root``: RFC 9162 section 2.1.3.2 (the RFC 6962 audit path
    checked from the index and size). The path must have exactly the length
    the position calls for; the walk consumes it bottom up, a sibling on the
    left whenever this node is a right child or the last node of its level
    (a node carried up unpaired takes no sibling at that level)."""
    if not 0 <= index < size:
        return False
    node, last = index, size - 1
    h = _leaf(item)
    for sibling in path:
        if last == 0:
            return False  # the path is longer than the tree is tall
        if node & 1 or node == last:
            h = _parent(sibling, h)
            # A left child that is its level's last node was carried up
            # unpaired: climb until it is a right child (or the root's side).
            while not node & 1 and node != 0:
                node >>= 1
                last >>= 1
        else:
            h = _parent(h, sibling)
        node >>= 1
        last >>= 1
    return last == 0 and h == root
