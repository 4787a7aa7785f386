"""bench_certs' phase e: the same fleet's readings as ``meter.batch`` txs
(a data hub relaying up to 100 meter-signed readings per tx) against the
same readings as ``meter.report`` txs, each on its own copy of the fleet's
chain, through ``apply_block``; the signature cost per reading of each form
(2 signatures per report, 1 + 1/100 per batch entry); and the bytes each
form puts in blocks and state per reading.

CPU seconds (this thread's) are reported beside wall seconds: apply_block
is single-threaded (it is the block connect), and CPU time per reading is
what holds on a machine other processes share.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from benchkit.certs import (
    INTERVAL,
    READING_NAMESPACES,
    T0,
    Chain,
    Fleet,
    reading_message,
    run_blocks,
    setup_fleet,
    sign_readings,
    state_bytes,
    stored_growth,
)
from benchkit.guard import progress
from powernode.core.crypto import signature_ok
from powernode.core.tx import Transaction
from powernode.engines.metering.batch import MAX_BATCH_READINGS
from powernode.state.registry import COSIGNERS, verify_tx


def produced_wh(d: int, t: int) -> int:
    """The same deterministic spread as sign_readings'."""
    return 1000 + (d * 7919 + t * 104_729) % 900_000


def sign_batches(
    fleet: Fleet, intervals: int, per_batch: int = MAX_BATCH_READINGS
) -> list[Transaction]:
    """The readings sign_readings makes, relayed by one hub (the first
    owner, a registered participant): per interval, devices ascending, in
    batches of ``per_batch``."""
    hub = fleet.owners[0]
    txs: list[Transaction] = []
    order = sorted(range(len(fleet.devices)), key=lambda d: fleet.devices[d])
    for t in range(intervals):
        start = T0 + t * INTERVAL
        entries = []
        for d in order:
            device, meter = fleet.devices[d], fleet.meters[d]
            produced = produced_wh(d, t)
            sig = meter.sign(reading_message(device, start, produced, 0))
            entries.append([device, produced, 0, meter.pubkey, sig])
        for i in range(0, len(entries), per_batch):
            txs.append(fleet.sign(hub, "meter.batch", [start, entries[i : i + per_batch]]))
    return txs


def verify_cost(txs: Sequence[Transaction], readings_per_tx: int, n: int) -> dict[str, Any]:
    """Every signature of ``n`` readings' txs (``verify_tx``, as a signature
    worker does), serially on this thread: CPU us per reading."""
    count = max(1, n // readings_per_tx)
    sample = [txs[i % len(txs)] for i in range(count)]
    c0 = time.thread_time()
    for tx in sample:
        verify_tx(tx)
    cpu = time.thread_time() - c0
    readings = count * readings_per_tx
    return {"readings": readings, "cpu_s": cpu, "us_per_reading": cpu * 1e6 / readings}


def ed25519_cpu(txs: Sequence[Transaction], n: int) -> dict[str, Any]:
    """The Ed25519 baseline in CPU time: ``n`` raw signature checks (the
    chain's verifier, no tx around them) of readings' meter signatures, on
    this thread. Beside the wall-clock baseline, which a busy machine
    distorts far more than the CPU time each check takes."""
    cosig = COSIGNERS["meter.report"]
    sample = [cosig(txs[i % len(txs)])[0] for i in range(n)]
    c0 = time.thread_time()
    for pubkey, sig, msg in sample:
        signature_ok(pubkey, sig, msg)
    cpu = time.thread_time() - c0
    return {"signatures": n, "cpu_s": cpu, "us_per_sig": cpu * 1e6 / n, "per_cpu_s": n / cpu}


def one_form(
    chain: Chain, txs: list[Transaction], readings: int, block_txs: int, after: int, what: str
) -> dict[str, Any]:
    fig = run_blocks(chain, txs, block_txs, lambda b: after + b, what)
    cpu = fig["cpu_s"]
    fig |= {
        "readings": readings,
        "cpu_s": cpu,
        "apply_us_per_reading": cpu * 1e6 / readings,
        "readings_per_s": readings / fig["seconds"],
        "readings_per_cpu_s": readings / cpu,
        "tx_bytes_per_reading": sum(len(tx.raw) for tx in txs) / readings,
    }
    sizes = state_bytes(chain.state, READING_NAMESPACES)
    fig["state_bytes_per_reading"] = sum(sizes.values()) / readings
    return fig


def batch_vs_report(
    owners: int, devices: int, intervals: int, block_readings: int, sigs: int
) -> dict[str, Any]:
    """The two forms of the same readings, each on a fresh copy of the same
    fleet (setup is deterministic: same devices, same meter keys)."""
    progress(f"e setup: two copies of {devices:,} devices; {intervals} intervals each form")
    rep_chain, rep_fleet = setup_fleet(owners, devices // owners)
    bat_chain, bat_fleet = setup_fleet(owners, devices // owners)
    reports = sign_readings(rep_fleet, intervals)
    batches = sign_batches(bat_fleet, intervals)
    n = len(reports)
    after = T0 + intervals * INTERVAL + 10  # every interval ended
    per_batch = min(MAX_BATCH_READINGS, devices)
    out: dict[str, Any] = {"readings": n, "batch_size": per_batch}
    out["report"] = one_form(rep_chain, reports, n, block_readings, after, "e meter.report")
    out["batch"] = one_form(
        bat_chain, batches, n, max(1, block_readings // per_batch), after, "e meter.batch"
    )
    out["report"]["failed"] = rep_chain.failed
    out["batch"]["failed"] = bat_chain.failed
    out["ed25519"] = ed25519_cpu(reports, sigs)
    out["report"]["verify"] = verify_cost(reports, 1, sigs)
    out["batch"]["verify"] = verify_cost(batches, per_batch, sigs)
    for form in ("report", "batch"):
        f = out[form]
        f["total_us_per_reading"] = f["apply_us_per_reading"] + f["verify"]["us_per_reading"]
    out["apply_ratio"] = (
        out["report"]["apply_us_per_reading"] / out["batch"]["apply_us_per_reading"]
    )
    out["verify_ratio"] = (
        out["report"]["verify"]["us_per_reading"] / out["batch"]["verify"]["us_per_reading"]
    )
    out["problems"] = [
        f"{form}: {chain.failed} failed receipts: {chain.failures[:3]}"
        for form, chain in (("report", rep_chain), ("batch", bat_chain))
        if chain.failed
    ]
    certs_r = len(rep_chain.state.namespace("crt.cert"))
    certs_b = len(bat_chain.state.namespace("crt.cert"))
    if certs_r != certs_b:
        out["problems"].append(f"certificates: {certs_r} from reports, {certs_b} from batches")
    if rep_chain.root != bat_chain.root:
        # Different relayers and nonces: only the certificate counts must match.
        out["roots_differ"] = True
    progress(
        f"e apply: report {out['report']['apply_us_per_reading']:.1f} us/reading, batch "
        f"{out['batch']['apply_us_per_reading']:.1f} us/reading (CPU); verify report "
        f"{out['report']['verify']['us_per_reading']:.1f}, batch "
        f"{out['batch']['verify']['us_per_reading']:.1f} us/reading"
    )
    return out


def db_bytes_per_reading(workdir: Path, devices: int, intervals: int) -> dict[str, float]:
    """chain.db bytes per reading of each form: a small fleet's setup blocks,
    then its readings (as reports, or as batches), connected into a real
    chain store; the store's size (an SQLite backup, so no free pages) after
    the setup and after the readings."""
    out: dict[str, float] = {}
    for form in ("report", "batch"):
        chain, fleet = setup_fleet(2, max(1, devices // 2), keep=True)
        setup_blocks = len(chain.blocks)
        txs = (
            sign_readings(fleet, intervals) if form == "report" else sign_batches(fleet, intervals)
        )
        readings = intervals * len(fleet.devices)
        after = T0 + intervals * INTERVAL + 10  # every interval ended
        per_block = 5000 if form == "report" else 50
        run_blocks(chain, txs, per_block, partial(operator.add, after), f"e bytes {form}")
        grown = stored_growth(
            chain, setup_blocks, workdir / f"hub-bytes-{form}", f"hub bytes: {form}"
        )
        out[form] = grown / readings
    return out
