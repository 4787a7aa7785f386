"""Rows: meter readings per second through block application against the
readings already stored, and chain.db bytes per reading.

One fleet (benchkit.certs: approved devices, each with its meter key)
reports interval after interval; each size is the next window of readings
on the same state, so a later window runs over every earlier reading and
certificate. Signed before anything is timed; ``apply_block`` checks no
signature (the node checks them ahead), so the figure is the state
machine's: each reading records the reading, issues a certificate and
updates the device's sums.

Bytes per reading: a small fleet's blocks connected into a real chain
store, the store's size (SQLite backup) before and after the readings.
"""

from __future__ import annotations

import operator
from functools import partial
from pathlib import Path
from typing import Any

from benchkit.certs import (
    INTERVAL,
    T0,
    Fleet,
    reading_message,
    run_blocks,
    setup_fleet,
    stored_growth,
)
from benchkit.guard import progress
from powernode.core.tx import Transaction

OWNERS = 100


def sign_window(fleet: Fleet, first: int, intervals: int) -> list[Transaction]:
    per_owner = len(fleet.devices) // len(fleet.owners)
    txs: list[Transaction] = []
    for t in range(first, first + intervals):
        start = T0 + t * INTERVAL
        for d, (device, meter) in enumerate(zip(fleet.devices, fleet.meters, strict=True)):
            produced = 1000 + (d * 7919 + t * 104_729) % 900_000
            msg = reading_message(device, start, produced, 0)
            payload = [device, start, produced, 0, meter.pubkey, meter.sign(msg)]
            txs.append(fleet.sign(fleet.owners[d // per_owner], "meter.report", payload))
    return txs


def throughput(sizes: list[int], devices: int, block_txs: int) -> list[dict[str, Any]]:
    chain, fleet = setup_fleet(OWNERS, max(1, devices // OWNERS))
    devices = len(fleet.devices)
    out = []
    first = 0
    for n in sizes:
        intervals = max(1, n // devices)
        progress(f"readings: signing {intervals * devices:,} readings ({intervals} intervals)")
        txs = sign_window(fleet, first, intervals)
        after = T0 + (first + intervals) * INTERVAL + 10
        fig = run_blocks(chain, txs, block_txs, partial(operator.add, after), f"readings {n:,}")
        if fig["failed"]:
            raise RuntimeError(f"readings: {fig['failed']} failed receipts: {chain.failures[:3]}")
        out.append({"stored_before": first * devices, "readings": len(txs), "devices": devices,
                    "per_s": fig["per_s"], "us_per_reading": 1e6 / fig["per_s"],
                    "block_ms_p50": fig["block_ms_p50"]})  # fmt: skip
        first += intervals
    return out


def bytes_per_reading(workdir: Path, devices: int, intervals: int) -> dict[str, Any]:
    chain, fleet = setup_fleet(10, max(1, devices // 10), keep=True)
    setup_blocks = len(chain.blocks)
    txs = sign_window(fleet, 0, intervals)
    after = T0 + intervals * INTERVAL + 10
    run_blocks(chain, txs, 5000, lambda b: after + b, "readings for bytes")
    grown = stored_growth(chain, setup_blocks, workdir, "readings bytes")
    return {"readings": len(txs), "bytes": grown, "bytes_per_reading": grown / len(txs)}
