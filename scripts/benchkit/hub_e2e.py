"""bench_certs' phase f: readings end to end on one ``powernode run`` node
(a dev chain, mining, signature workers on): ``devices`` meters' readings of
one interval sent over RPC as a data hub's ``meter.batch`` txs (100 a tx),
then the same fleet's readings of another interval as ``meter.report`` txs;
readings/s from the first send until every reading is in the chain, and the
node's CPU (its process and its signature workers) per reading.

Setup (untimed): ``owners`` funded keys (each a certificate authority, as a
dev genesis makes every funded key) register as participants, register
``devices / owners`` devices each and approve their own. The node's
``mempool.max_per_sender`` is raised so one owner's txs of a phase all fit
the pool (the default 256 is a per-sender fairness bound, not the subject
here). Metering intervals are 60 s with an hour's reading window; the two
phases take the two latest ended intervals. Txs are signed before the clock
starts; the hub's batches go from one sender (the first owner), the reports
from each device's owner, sent in batched RPC calls of 1,000 from one thread.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from benchkit.cpu import child_pids
from benchkit.guard import progress
from benchkit.net.common import submit
from powernode.client import RpcClient
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import ProcessNode
from powernode.devnet.wait import WaitTimeout, wait_until
from powernode.devnet.workload import Signer, reading
from powernode.engines.metering.batch import MAX_BATCH_READINGS
from powernode.engines.metering.records import reading_message

CHAIN_ID = "bench-hub-e2e"
INTERVAL = 60
CAPACITY_W = 6_000_000


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of ``pid`` (and of its children it has
    reaped); 0 once it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = data[data.rfind(")") + 2 :].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def node_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of the node process (its event loop, the block connect,
    the miner thread) and of its live children (the signature workers)."""
    return cpu_seconds(pid), sum(cpu_seconds(p) for p in child_pids(pid))


def _confirmed(c: RpcClient, want: dict[bytes, int]) -> bool:
    got = c.batch([("account.get", {"address": a.hex()}) for a in want])
    return all(g["nonce"] >= n for g, n in zip(got, want.values(), strict=True))


def _wait(c: RpcClient, want: dict[bytes, int], timeout: float, what: str) -> None:
    try:
        wait_until(lambda: _confirmed(c, want), timeout=timeout, interval=0.1, what=what)
    except WaitTimeout:
        height = c.call("node.info")["height"]
        raise RuntimeError(f"{what}: not in {timeout:.0f} s (height {height})") from None


def _timed(node: ProcessNode, c: RpcClient, txs: list[Transaction], want: dict[bytes, int],
           readings: int, timeout: float, what: str) -> dict[str, Any]:  # fmt: skip
    assert node.proc is not None
    pid = node.proc.pid
    cpu0, t0 = node_cpu(pid), time.monotonic()
    submit(c, txs)
    t_sent = time.monotonic()
    _wait(c, want, timeout, what)
    secs = time.monotonic() - t0
    main, workers = (b - a for a, b in zip(cpu0, node_cpu(pid), strict=True))
    cpu = main + workers
    fig = {
        "txs": len(txs),
        "readings": readings,
        "send_s": t_sent - t0,
        "seconds": secs,
        "readings_per_s": readings / secs,
        "node_cpu_s": cpu,
        "node_cpu_us_per_reading": cpu * 1e6 / readings,
        "main_cpu_us_per_reading": main * 1e6 / readings,
        "workers_cpu_us_per_reading": workers * 1e6 / readings,
    }
    progress(f"f {what}: {readings:,} readings in {secs:.1f} s, {fig['readings_per_s']:,.0f}/s, "
             f"node CPU {fig['node_cpu_us_per_reading']:.0f} us/reading")  # fmt: skip
    return fig


def run(workdir: Path, devices: int, owners: int, timeout: float) -> dict[str, Any]:
    keys = [KeyPair.from_seed(sha256(b"bench-hub-e2e-owner-%d" % i)) for i in range(owners)]
    now = int(time.time())
    genesis = write_genesis(
        workdir / "hub-genesis.json",
        dev_genesis(
            {k.address: 10**12 for k in keys},
            chain_id=CHAIN_ID,
            timestamp=now - 600,
            max_block_txs=20_000,
            max_block_bytes=8 * 1024 * 1024,
            certificates={
                "authorities": sorted(k.address.hex() for k in keys),
                "interval_seconds": INTERVAL,
                "reading_window": 3600,
                "validity": 86_400,
            },
        ),
    )
    datadir = workdir / "hub-node"
    init_datadir(datadir, genesis, mining=True, miner_cpu=10)
    cfg = datadir / "config.toml"
    cfg.write_text(cfg.read_text().replace("max_per_sender = 256", "max_per_sender = 1000000"))
    w = Signer(CHAIN_ID)
    per = max(1, devices // owners)
    fleet: list[tuple[KeyPair, bytes, KeyPair]] = []
    for i, k in enumerate(keys):
        w.add(k, "participant.register", ["producer", f"zone-{i}", CAPACITY_W])
        for j in range(per):
            meter = KeyPair.from_seed(sha256(b"bench-hub-e2e-meter-%d-%d" % (i, j)))
            payload = ["generation", "wind", CAPACITY_W, f"zone-{i}", 10, meter.pubkey]
            fleet.append((k, w.add(k, "device.register", payload).txid, meter))
    with ProcessNode(datadir) as node:
        node.start()
        with RpcClient(node.endpoint, timeout=120) as c:
            setup = w.take()
            progress(f"f setup: {len(fleet):,} devices of {owners} owners ({len(setup):,} txs)")
            submit(c, setup)
            _wait(c, dict(w.nonces), timeout, "devices registered")
            for k, device, _ in fleet:
                w.add(k, "device.approve", [device])
            submit(c, w.take())
            _wait(c, dict(w.nonces), timeout, "devices approved")

            chain_now = int(c.call("cert.params")["now"])
            i_batch = chain_now // INTERVAL * INTERVAL - INTERVAL
            i_report = i_batch - INTERVAL
            hub = keys[0]
            ordered = sorted(fleet, key=lambda f: f[1])
            entries = []
            for d, (_, device, meter) in enumerate(ordered):
                produced = 1000 + d % 90_000
                msg = reading_message(CHAIN_ID, device, i_batch, produced, 0)
                entries.append([device, produced, 0, meter.pubkey, meter.sign(msg)])
            for s in range(0, len(entries), MAX_BATCH_READINGS):
                w.add(hub, "meter.batch", [i_batch, entries[s : s + MAX_BATCH_READINGS]])
            batches = w.take()
            out: dict[str, Any] = {"devices": len(fleet), "owners": owners}
            out["batch"] = _timed(
                node, c, batches, dict(w.nonces), len(entries), timeout, "meter.batch"
            )
            for d, (k, device, meter) in enumerate(fleet):
                w.add(k, "meter.report", reading(CHAIN_ID, device, meter, i_report, 1000 + d, 0))
            reports = w.take()
            out["report"] = _timed(
                node, c, reports, dict(w.nonces), len(reports), timeout, "meter.report"
            )
            got = c.call("meter.readings", {"device": fleet[0][1].hex()})
            if sorted(r["interval"] for r in got) != [i_report, i_batch]:
                raise RuntimeError(f"device 0's readings: {got}")
    out["ratio"] = out["batch"]["readings_per_s"] / out["report"]["readings_per_s"]
    return out
