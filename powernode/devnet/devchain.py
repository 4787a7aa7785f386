"""Dev chains: the one genesis builder, their difficulty presets, and the nonce
search that solves a block header at those difficulties.

``powernode init --dev``, ``scripts/testnet.py``, the benchmarks and the test
harness all build their genesis documents with ``dev_genesis``; what differs
between them is passed in, so a rule a dev chain needs (say, markets open
around the clock) is written once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from powernode.core.block import BlockHeader
from powernode.core.pow import pow_hash
from powernode.engines.market.params import PRODUCTS

# Dev chains (like bitcoind's regtest): about one PBKDF2 hash in 16 meets it,
# so a block is found at once.
DEV_TARGET = "0fff" + "ff" * 30
# PoW hashes a second one testnet miner makes per percent of a core its cap
# allows (``[mining] cpu_percent``), measured in the 4-node load test: about
# 1,000/s at 10% with two cores shared with the txs (``bench_network``'s
# "miners' PoW hashes/s" line gives 1,000-1,500 over the whole run, idle
# start included; at 110 the blocks came every 2.1-2.5 s under load, at the
# old target every 1.3-1.9 s). Far below the 52,000 hashes per CPU
# second of one idle thread: under load the miner thread waits for the GIL
# after every hash (the hash itself releases it), so a testnet that is
# idle finds blocks several times faster than its genesis says until ASERT
# catches up; the target is set for a testnet at work.
MINER_HASHES_PER_S_PER_PCT = 100
# Dev and local testnet chains trade around the clock (the defaults keep the
# seed's 8:00-22:00), so demos and tests work at any hour; the rest of each
# product's market params are the defaults.
ALWAYS_OPEN_MARKETS: Mapping[str, Mapping[str, int]] = {
    product: {"open_hour": 0, "close_hour": 24} for product in PRODUCTS
}
DEV_FUNDS = 1_000_000 * 1_000_000  # what init --dev and testnet.py give each funded key
# Dev chains meter in 15-minute intervals (the spot slot), take a reading up
# to half an hour after its interval ends and keep certificates for a week,
# so a demo goes from reading to certificate in minutes; every funded key is
# an authority (``dev_genesis``), so the demo key approves its own devices.
DEV_CERTIFICATES: Mapping[str, int] = {
    "interval_seconds": 900,
    "reading_window": 1800,
    "validity": 604_800,
}


# Local testnets (scripts/testnet.py, which the demo and quickstart run on)
# trade one-minute slots whose gate closes as the slot starts (gates are
# whole minutes), meter one-minute intervals and take a reading up to a
# minute after its interval ends, so a trade settles against its readings
# two to three minutes after it matches (the wait for its slot, the 60 s
# slot, the 60 s window). A real genesis keeps the defaults (15-minute
# slots, 5-minute gate, 2-day reading window).
TESTNET_MARKETS: Mapping[str, Mapping[str, int]] = {
    product: {"open_hour": 0, "close_hour": 24, "slot_seconds": 60, "gate_closure_seconds": 0}
    for product in PRODUCTS
}
TESTNET_CERTIFICATES: Mapping[str, int] = {
    "interval_seconds": 60,
    "reading_window": 60,
    "validity": 604_800,
}


def testnet_target(miner_cpu: int = 100, *, miners: int = 4, block_time: int = 2) -> str:
    """The initial target at which ``miners`` nodes, each capped at
    ``miner_cpu`` percent of a core, find a block every ``block_time``
    seconds on average (at MINER_HASHES_PER_S_PER_PCT): a block takes
    2^256 / (target + 1) hashes on average. Never easier than DEV_TARGET."""
    # A block time or cap the genesis refuses (0, say) still gives a target
    # here: the node's own check of the genesis is what reports it.
    work = MINER_HASHES_PER_S_PER_PCT * max(miner_cpu, 1) * max(miners, 1) * max(block_time, 1)
    target = min((1 << 256) // work - 1, int(DEV_TARGET, 16))
    return format(target, "064x")


def dev_genesis(
    allocations: Mapping[bytes, int],
    *,
    chain_id: str = "powernode-dev-7",
    timestamp: int | None = None,
    block_time: int = 2,
    target: str = DEV_TARGET,
    pow_limit: str | None = None,
    asert_halflife: int = 3600,
    max_future: int = 7200,
    block_reward: int = 50_000_000,
    min_fee: int = 0,
    dev: bool = True,
    markets: Mapping[str, Mapping[str, int]] = ALWAYS_OPEN_MARKETS,
    certificates: Mapping[str, Any] | None = None,
    comment: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """A genesis document (as ``genesis.json`` holds it) for a dev chain.

    ``allocations`` maps addresses to micro-units. ``timestamp`` defaults to a
    minute ago, so the first blocks mined at once have later timestamps;
    ``pow_limit`` defaults to ``target``. ``extra`` adds any other genesis key
    (e.g. ``max_block_txs``); ``comment`` becomes the ``_comment`` key.
    ``certificates`` is the genesis section of that name; by default
    ``DEV_CERTIFICATES`` with every funded address an authority.
    """
    if certificates is None:
        authorities = sorted(address.hex() for address in allocations)
        certificates = {"authorities": authorities, **DEV_CERTIFICATES}
    doc: dict[str, Any] = {"_comment": comment} if comment else {}
    doc |= {
        "chain_id": chain_id,
        "timestamp": int(time.time()) - 60 if timestamp is None else timestamp,
        "block_time": block_time,
        "initial_target": target,
        "pow_limit": target if pow_limit is None else pow_limit,
        "asert_halflife": asert_halflife,
        "max_future": max_future,
        "block_reward": block_reward,
        "min_fee": min_fee,
        **extra,
        "dev": dev,
        "allocations": {address.hex(): amount for address, amount in allocations.items()},
        "markets": {product: dict(params) for product, params in markets.items()},
        "certificates": dict(certificates),
    }
    return doc


def solve(header: BlockHeader, *, want_valid: bool = True, start: int = 0) -> BlockHeader:
    """``header`` with the first nonce from ``start`` that meets its target
    (or, with ``want_valid=False``, that misses it, for a bad block). Meant
    for dev targets: the search has no bound."""
    commitment = header.pow_commitment()
    target = header.target_int
    n = start
    while (pow_hash(commitment, n) <= target) != want_valid:
        n += 1
    return header.with_nonce(n)
