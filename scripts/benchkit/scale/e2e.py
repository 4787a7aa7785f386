"""Row (opt-in, ``--only e2e``): meter readings per second end to end on a
4-node testnet started by ``scripts/testnet.py up`` (every node mining).

``owners`` demo keys (funded, each a certificate authority on a testnet)
register as participants and ``devices / owners`` devices each, then
approve them once they are on chain (untimed). Then, right after a metering interval ends (the
testnet's intervals are 60 s, its reading window 60 s), one signed reading
per device for that interval is sent over RPC, spread over the four nodes
from four threads; the figure is readings / seconds from the first send to
the last reading confirmed on node0. Signed before the clock starts. Then
the same fleet's readings of the next interval as ``meter.batch`` txs of
100 (a data hub's form), relayed by four of the owners, timed the same way.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from benchkit.guard import progress
from benchkit.net.common import submit
from benchkit.net.testnet import Testnet
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction
from powernode.devnet.wait import WaitTimeout, wait_until
from powernode.devnet.workload import Signer, reading
from powernode.engines.metering.batch import MAX_BATCH_READINGS

CAPACITY_W = 6_000_000
INTERVAL = 60


def _confirmed(tn: Testnet, want: dict[bytes, int]) -> bool:
    with tn.client(tn.names[0]) as c:
        got = c.batch([("account.get", {"address": a.hex()}) for a in want])
    return all(g["nonce"] >= n for g, n in zip(got, want.values(), strict=True))


def _stuck(tn: Testnet, want: dict[bytes, int], txs: list[Transaction]) -> str:
    """Why ``want`` is not met: the chain's height and the first owner behind."""
    with tn.client(tn.names[0]) as c:
        height = c.call("node.info")["height"]
        for a, n in want.items():
            got = c.call("account.get", {"address": a.hex()})["nonce"]
            if got < n:
                tx = next(t for t in txs if t.sender_address == a and t.nonce == got)
                status = c.call("tx.get", {"id": tx.txid.hex()})
                return f"height {height}; {a.hex()[:12]} at nonce {got} of {n}: {status}"
    return f"height {height}; all confirmed"


def _wait(tn: Testnet, want: dict[bytes, int], txs: list[Transaction], timeout: float,
          what: str) -> None:  # fmt: skip
    try:
        wait_until(lambda: _confirmed(tn, want), timeout=timeout, interval=0.2, what=what)
    except WaitTimeout:
        raise RuntimeError(f"{what}: not in {timeout:.0f} s; {_stuck(tn, want, txs)}") from None


def _send_spread(tn: Testnet, txs: list[Transaction]) -> None:
    """Each owner's txs to one node (its nonces stay in order there), the
    owners spread over the nodes, one thread a node."""
    parts: list[list[Transaction]] = [[] for _ in tn.names]
    for tx in txs:
        parts[tx.sender_address[0] % len(parts)].append(tx)

    errors: list[str] = []

    def send(name: str, part: list[Transaction]) -> None:
        try:
            with tn.client(name) as c:
                submit(c, part)
        except Exception as exc:
            errors.append(f"{name}: {exc}")

    threads = [
        threading.Thread(target=send, args=(n, p)) for n, p in zip(tn.names, parts, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"sending txs: {errors[0]}")


def run(workdir: Path, devices: int, owners: int, timeout: float) -> dict[str, Any]:
    with Testnet(workdir / "tn") as tn:
        tn.up(4, accounts=owners)
        keys = tn.layout.read_demo_keys()
        with tn.client(tn.names[0]) as c:
            chain_id = c.call("node.info")["chain_id"]
        w = Signer(chain_id)
        per = max(1, devices // len(keys))
        fleet: list[tuple[KeyPair, bytes, KeyPair]] = []
        for i, k in enumerate(keys):
            w.add(k, "participant.register", ["producer", f"zone-{i % 50}", CAPACITY_W])
            for j in range(per):
                meter = KeyPair.from_seed(sha256(b"bench-scale-e2e-meter-%d-%d" % (i, j)))
                payload = ["generation", "solar", CAPACITY_W, f"zone-{i % 50}", 40, meter.pubkey]
                fleet.append((k, w.add(k, "device.register", payload).txid, meter))
        # A device must be on chain before its approval is admitted.
        setup = w.take()
        progress(f"e2e: registering {len(fleet):,} devices ({len(setup):,} txs)")
        _send_spread(tn, setup)
        _wait(tn, dict(w.nonces), setup, timeout, "devices registered")
        for k, device, _ in fleet:
            w.add(k, "device.approve", [device])
        setup = w.take()
        _send_spread(tn, setup)
        _wait(tn, dict(w.nonces), setup, timeout, "devices approved")
        # The interval under way now: signed while it runs, sent once it ends.
        start = int(time.time()) // INTERVAL * INTERVAL
        for d, (k, device, meter) in enumerate(fleet):
            produced = 1000 + d % 900_000
            w.add(k, "meter.report", reading(chain_id, device, meter, start, produced, 0))
        readings = w.take()
        want = dict(w.nonces)
        progress(f"e2e: {len(readings):,} readings signed for the interval at {start}")
        while time.time() < start + INTERVAL + 3:  # ended, on the chain's clock too
            time.sleep(0.2)
        t0 = time.monotonic()
        _send_spread(tn, readings)
        t_sent = time.monotonic()
        _wait(tn, want, readings, timeout, "readings confirmed")
        secs = time.monotonic() - t0
        out: dict[str, Any] = {
            "devices": len(fleet),
            "readings": len(readings),
            "send_s": t_sent - t0,
            "seconds": secs,
            "readings_per_s": len(readings) / secs,
        }
        progress(f"e2e: {len(readings):,} readings confirmed in {secs:.1f} s: "
                 f"{out['readings_per_s']:,.0f} readings/s (sent in {out['send_s']:.1f} s)")  # fmt: skip
        out["batch"] = _batched(tn, w, fleet, start + INTERVAL, timeout)
    return out


def _batched(tn: Testnet, w: Signer, fleet: list[tuple[KeyPair, bytes, KeyPair]], start: int,
             timeout: float) -> dict[str, Any]:  # fmt: skip
    """The same fleet's readings of the next interval as meter.batch txs of
    100, relayed by four hubs (the first four owners, one hub's batches to
    one node), timed the same way."""
    hubs = list(dict.fromkeys(k.address for k, _, _ in fleet))[: len(tn.names)]
    keys = {k.address: k for k, _, _ in fleet}
    ordered = sorted(fleet, key=lambda f: f[1])
    share = -(-len(ordered) // len(hubs))
    for h, hub in enumerate(hubs):
        part = ordered[h * share : (h + 1) * share]
        entries = []
        for d, (_, device, meter) in enumerate(part):
            payload = reading(w.chain_id, device, meter, start, 1000 + d % 900_000, 0)
            entries.append([device, payload[2], payload[3], payload[4], payload[5]])
        for i in range(0, len(entries), MAX_BATCH_READINGS):
            w.add(keys[hub], "meter.batch", [start, entries[i : i + MAX_BATCH_READINGS]])
    batches = w.take()
    want = {a: n for a, n in w.nonces.items() if a in set(hubs)}
    while time.time() < start + INTERVAL + 3:  # ended, on the chain's clock too
        time.sleep(0.2)
    t0 = time.monotonic()
    _send_spread(tn, batches)
    t_sent = time.monotonic()
    _wait(tn, want, batches, timeout, "batched readings confirmed")
    secs = time.monotonic() - t0
    n = len(ordered)
    progress(f"e2e: {n:,} readings in {len(batches)} batches confirmed in {secs:.1f} s: "
             f"{n / secs:,.0f} readings/s")  # fmt: skip
    return {"readings": n, "txs": len(batches), "send_s": t_sent - t0, "seconds": secs,
            "readings_per_s": n / secs}  # fmt: skip
