"""Load generator: signed transfers into a running testnet, confirmations tracked.

Usage::

    python scripts/loadgen.py --dir testnet/local --rate 500 --duration 30
    python scripts/loadgen.py --dir testnet/local --max --count 50000 --senders 200
    python scripts/loadgen.py --dir testnet/local --rate 2000 --duration 60 --json

Works against a testnet started by ``scripts/testnet.py up`` (mining on). In
order (the details are in the ``scripts/benchkit/load/`` modules):

1. Pre-signing (``sign``). Every transfer of the run is signed (on
   ``--sign-procs`` processes) before the first one is sent; fresh
   ``--senders`` keys, or the demo keys with ``--demo-keys``.
2. Funding (``send``). Each fresh sender gets one transfer from a demo
   key; the run waits until every node reports every funding tx confirmed
   under one more block (2 confirmations: a tx at the tip may be reorged away).
3. Sending (``send``). Each sender talks to one node, in ``tx.submit``
   batches of ``--batch`` over ``--conns`` connections per node, at
   ``--rate`` or (``--max``) as fast as the node answers.
4. Confirmations (``track``). A tracker polls every node's tip every
   ``--poll`` s. After the last send it waits until every accepted tx is
   confirmed, or no new one has been for ``--settle`` s, or
   ``--confirm-timeout`` s.

One progress line a second on stderr; the summary as a table on stdout (with
``--json``: JSON on stdout, the table on stderr). A tx counts as confirmed if
it is on the final main chain of the highest node; confirmed tx/s is over the
window from the first submit to the last confirmation, and latency is from
the start of its batch's POST to the first poll that saw its block (details
in ``report``).

Exit status: 0 when the run completed, 1 when no tx was confirmed, 2 on an
error or when ``--budget`` ran out, 130 on Ctrl-C. The generator starts no
node process; its signing processes are gone when it exits.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchkit.guard import BenchRefused, install_budget, progress, run_guarded
from benchkit.load.report import print_summary, summarize
from benchkit.load.send import (
    FUND_MARGIN,
    NodeLoad,
    Sender,
    demo_keys,
    fund_senders,
    testnet_nodes,
)
from benchkit.load.sign import AMOUNT, FEE, LoadConfig, Log, Prepared, make_batches, prepare
from benchkit.load.track import Tracker

from powernode.client import RpcClient

# The run, for other scripts (bench_network), and what it takes.
__all__ = ["LoadConfig", "Prepared", "prepare", "run_load"]

# --- the run -----------------------------------------------------------------------


def run_load(
    cfg: LoadConfig,
    log: Log = progress,
    *,
    prepared: Prepared | None = None,
    on_send_start: Callable[[], None] | None = None,
    on_send_end: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Fund, pre-sign (unless ``prepared``), send, track; the summary (see
    ``summarize``). ``on_send_start`` / ``on_send_end`` are called (in this
    thread) when the first batch is released and when the last answer is in."""
    endpoints = testnet_nodes(cfg.dir, cfg.nodes)
    n = len(endpoints)
    with RpcClient(endpoints[0][1], timeout=30) as c:
        info = c.call("node.info")
    chain_id = info["chain_id"]
    total = cfg.planned()
    result: dict[str, Any] = {
        "config": {
            "nodes": [name for name, _ in endpoints],
            "rate": cfg.rate,
            "mode": "max" if cfg.rate is None else "rate",
            "duration_s": cfg.duration,
            "count": cfg.count,
            "planned_txs": total,
            "senders": cfg.senders if not cfg.demo_keys else None,
            "batch": cfg.batch,
            "conns_per_node": max(1, cfg.conns),
            "sender_keys": "demo" if cfg.demo_keys else "fresh, funded by the demo keys",
        }
    }

    # 1. + 2. senders and pre-signed txs
    demo = demo_keys(cfg.dir)
    if not demo:
        raise BenchRefused("loadgen: the testnet has no demo keys")
    if prepared is None:
        nonce0 = None
        if cfg.demo_keys:
            with RpcClient(endpoints[0][1], timeout=30) as c:
                nonce0 = [
                    c.call("account.get", {"address": k.address.hex()})["next_nonce"] for k in demo
                ]
        prepared = prepare(cfg, chain_id, log, keys=demo if cfg.demo_keys else None, nonce0=nonce0)
    elif prepared.chain_id != chain_id:
        raise RuntimeError(
            f"txs were signed for {prepared.chain_id!r}, the testnet is {chain_id!r}"
        )
    keys, signed = prepared.keys, prepared.signed
    k = len(keys)
    total = sum(len(row) for row in signed)
    result["config"]["planned_txs"] = total
    result["config"]["senders"] = k
    result["presign_s"] = prepared.seconds
    if not cfg.demo_keys:
        amount = max(len(row) for row in signed) * (AMOUNT + FEE) + FUND_MARGIN
        log(f"funding {k} fresh senders from {len(demo)} demo keys ({amount:,} micro-units each)")
        result["funding_s"] = fund_senders(
            endpoints, demo, keys, amount, chain_id, cfg.fund_timeout, log
        )
        log(f"funding confirmed on all {n} nodes in {result['funding_s']:.1f} s")
    loads: list[NodeLoad] = []
    conns = max(1, cfg.conns)
    for i, (name, ep) in enumerate(endpoints):
        for ci in range(conns):
            ld = NodeLoad(name if conns == 1 else f"{name}/{ci}", ep)
            ld.batches = make_batches(
                [signed[s] for s in range(i, k, n) if (s // n) % conns == ci], cfg.batch
            )
            if ld.batches:  # more connections than senders: no idle ones
                loads.append(ld)
    watch = {t for row in signed for t, _ in row}

    # 3. + 4. send and track
    tracker = Tracker(endpoints, watch, cfg.poll)
    tracker.start_tips()
    if not any(tracker.mining.values()):
        log("WARNING: no node is mining; nothing will confirm unless blocks are mined")
    result["start_height"] = tracker.floor
    submit_times: dict[str, float] = {}
    stop = threading.Event()
    go = threading.Event()
    t0_box = [0.0]
    deadline = None
    senders: list[Sender] = []
    try:
        for ld in loads:
            share = sum(len(b.txids) for b in ld.batches) / max(1, total)
            rate = cfg.rate * share if cfg.rate else None
            senders.append(Sender(ld, rate, None, submit_times, stop, go, t0_box))
        for s in senders:
            s.start()
        tracker.start()
        time.sleep(0.2)  # senders connected
        t0_box[0] = start = time.monotonic()
        if cfg.duration is not None:
            deadline = start + cfg.duration
            for s in senders:
                s.deadline = deadline
        mode = f"{cfg.rate:,.0f} tx/s" if cfg.rate else "as fast as possible"
        log(f"sending {total:,} txs to {n} nodes, batch {cfg.batch}, {mode}")
        go.set()
        if on_send_start is not None:
            on_send_start()
        last_t, last_sub, last_conf = start, 0, 0
        while any(s.is_alive() for s in senders):
            time.sleep(1.0)
            now = time.monotonic()
            sub = sum(ld.submitted for ld in loads)
            acc = sum(ld.accepted for ld in loads)
            conf = tracker.confirmed_n
            dt_ = max(now - last_t, 1e-6)
            log(
                f"t={now - start:5.1f}s submitted {sub:,} accepted {acc:,} confirmed {conf:,} | "
                f"{(sub - last_sub) / dt_:,.0f} tx/s sent, {(conf - last_conf) / dt_:,.0f} tx/s "
                f"confirmed | height {tracker.best_height} mempool "
                f"{max(tracker.mempool.values(), default=0):,}"
            )
            last_t, last_sub, last_conf = now, sub, conf
        send_end = max((s.last for s in senders), default=start)
        if deadline is not None and send_end < deadline - 1 and not cfg.rate:
            log(f"the {total:,} pre-signed txs ran out after {send_end - start:.1f} s (--presign)")
        if on_send_end is not None:
            on_send_end()
        accepted = sum(ld.accepted for ld in loads)
        # wait for confirmations
        wait_start = time.monotonic()
        last_change, last_conf_n = wait_start, tracker.confirmed_n
        while True:
            conf = tracker.confirmed_n
            if conf >= accepted:
                break
            now = time.monotonic()
            if conf != last_conf_n:
                last_change, last_conf_n = now, conf
            if now - last_change > cfg.settle:
                log(f"no new confirmation for {cfg.settle:.0f} s; stopping the wait")
                break
            if now - wait_start > cfg.confirm_timeout:
                log(f"confirmation wait hit --confirm-timeout {cfg.confirm_timeout:.0f} s")
                break
            time.sleep(1.0)
            log(
                f"t={time.monotonic() - start:5.1f}s waiting: confirmed {conf:,} of {accepted:,} "
                f"accepted | height {tracker.best_height} mempool "
                f"{max(tracker.mempool.values(), default=0):,}"
            )
        tracker.stop()  # no more polls: the summary reads what it recorded
        chain = tracker.main_chain()
    finally:
        stop.set()
        go.set()
        for s in senders:
            s.join(timeout=130)
        tracker.stop()
        tracker.close()
    result.update(summarize(cfg, loads, senders, tracker, chain, submit_times, start, send_end))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("testnet/local"), help="testnet root")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--rate", type=float, help="target tx/s over all nodes")
    g.add_argument("--max", action="store_true", help="as fast as the nodes accept")
    h = ap.add_mutually_exclusive_group(required=True)
    h.add_argument("--duration", type=float, help="seconds of sending")
    h.add_argument("--count", type=int, help="txs to send")
    ap.add_argument("--senders", type=int, default=200, help="fresh sender keys (default 200)")
    ap.add_argument("--batch", type=int, default=100, help="txs per tx.submit batch")
    ap.add_argument(
        "--conns", type=int, default=2, help="client connections per node (own senders each)"
    )
    ap.add_argument("--demo-keys", action="store_true", help="send from the demo keys")
    ap.add_argument("--presign", type=int, default=0, help="--max --duration: txs to sign")
    ap.add_argument("--sign-procs", type=int, default=0, help="signing processes (0: cpus)")
    ap.add_argument("--nodes", default="", help="comma-separated node names (default all)")
    ap.add_argument("--poll", type=float, default=0.1, help="s between tip polls")
    ap.add_argument("--settle", type=float, default=30.0, help="s without a new confirmation")
    ap.add_argument("--confirm-timeout", type=float, default=120.0)
    ap.add_argument("--fund-timeout", type=float, default=120.0)
    ap.add_argument("--budget", type=float, default=0, help="hard limit in s (0: automatic)")
    ap.add_argument("--json", action="store_true", help="JSON on stdout, the table on stderr")
    a = ap.parse_args(argv)
    if a.batch < 1 or a.senders < 1 or a.conns < 1:
        ap.error("--batch, --senders and --conns must be at least 1")
    if a.rate is not None and a.rate <= 0:
        ap.error("--rate must be positive")
    cfg = LoadConfig(
        dir=a.dir,
        rate=a.rate,
        duration=a.duration,
        count=a.count,
        senders=a.senders,
        batch=a.batch,
        conns=a.conns,
        demo_keys=a.demo_keys,
        presign=a.presign,
        sign_procs=a.sign_procs,
        poll=a.poll,
        settle=a.settle,
        confirm_timeout=a.confirm_timeout,
        fund_timeout=a.fund_timeout,
        nodes=[x for x in a.nodes.split(",") if x] or None,
    )
    sending = a.duration if a.duration is not None else a.count / (a.rate or 2000)
    budget = a.budget or (a.fund_timeout + cfg.planned() / 5000 + sending + a.confirm_timeout + 120)
    install_budget(budget)
    result: dict[str, Any] = {}
    refused: list[BenchRefused] = []

    def body() -> None:
        try:
            result.update(run_load(cfg))
        except BenchRefused as exc:
            refused.append(exc)
            raise

    code = run_guarded(body, result)
    result.setdefault(
        "config",
        {"nodes": [], "rate": a.rate, "senders": a.senders, "sender_keys": "", "batch": a.batch},
    )
    if not refused:
        # A run that could not start (no testnet, ...) said why in one line.
        print_summary(result, sys.stderr if a.json else sys.stdout)
    if a.json:
        print(json.dumps(result, indent=2))
    if code == 0 and not result.get("confirmed"):
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
