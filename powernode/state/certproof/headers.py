"""A proof's header chain, checked from the genesis parameters alone.

The headers run from height 1 to the tip, each linked to the one before
(the first to the genesis block the genesis file gives), each meeting its
own target, each target the one ASERT gives after its parent (the schedule
is absolute: it needs only the parent's height and time and the genesis
params), and each timestamp above the median of the eleven before it: the
checks a node makes of a header, except the clock rule, which runs only
when the caller says what time it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from powernode.core.block import BlockHeader, median_time_past
from powernode.core.errors import ProofBadHeader, ProofBrokenLink
from powernode.core.params import ChainParams
from powernode.core.pow import asert_target, block_work, pow_hash


@dataclass(frozen=True, slots=True)
class HeaderChain:
    tip: BlockHeader
    # Cumulative work from genesis to the tip, genesis included: what a
    # node reports as its chain work for the same tip.
    work: int
    # max_times[h]: the highest timestamp of blocks 1..h (0 for genesis):
    # the market clock can be no later than it at block h.
    max_times: tuple[int, ...]


def check_headers(
    genesis: BlockHeader,
    headers: Sequence[BlockHeader],
    params: ChainParams,
    *,
    now: int | None = None,
) -> HeaderChain:
    """Check ``headers`` (heights 1..tip) against ``genesis``; raise
    ProofBrokenLink / ProofBadHeader naming the first header that fails."""
    parent = genesis
    recent = [genesis.timestamp]
    work = block_work(genesis.target_int)
    max_times = [0]
    highest = 0
    for h in headers:
        if h.height != parent.height + 1:
            raise ProofBrokenLink(f"header at height {h.height} follows height {parent.height}")
        if h.prev_hash != parent.hash:
            raise ProofBrokenLink(f"header {h.height} does not link to header {parent.height}")
        expected = asert_target(
            anchor_target=params.initial_target,
            anchor_timestamp=params.timestamp,
            parent_height=parent.height,
            parent_timestamp=parent.timestamp,
            block_time=params.block_time,
            halflife=params.asert_halflife,
            pow_limit=params.pow_limit,
        )
        if h.target_int != expected:
            raise ProofBadHeader(f"header {h.height}: target is not the ASERT schedule's")
        if pow_hash(h.pow_commitment(), h.nonce) > expected:
            raise ProofBadHeader(f"header {h.height}: does not meet its target")
        if h.timestamp <= median_time_past(recent):
            raise ProofBadHeader(f"header {h.height}: timestamp not above median time past")
        if now is not None and h.timestamp > now + params.max_future:
            raise ProofBadHeader(
                f"header {h.height}: timestamp more than {params.max_future}s ahead of now"
            )
        recent.append(h.timestamp)
        if len(recent) > 11:
            del recent[0]
        work += block_work(expected)
        highest = max(highest, h.timestamp)
        max_times.append(highest)
        parent = h
    return HeaderChain(tip=parent, work=work, max_times=tuple(max_times))
