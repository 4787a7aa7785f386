"""Load generator: signed transfers into a running testnet, confirmations tracked.

Usage::

    python scripts/loadgen.py --dir testnet/local --rate 500 --duration 30
    python scripts/loadgen.py --dir testnet/local --max --count 50000 --senders 200
    python scripts/loadgen.py --dir testnet/local --rate 2000 --duration 60 --json

Works against a testnet started by ``scripts/testnet.py up`` (mining on). In
order:

1. Pre-signing. Every transfer of the run is signed (on ``--sign-procs``
   processes) and encoded into JSON-RPC batch bodies before the first one is
   sent, so signing never limits the rate. ``--rate R --duration S`` signs
   R x S txs, ``--count N`` signs N, ``--max --duration S`` signs
   ``--presign`` txs (default 3,000 x S) and stops early if they run out.
   Senders: ``--senders K`` fresh keys, or with ``--demo-keys`` the demo
   keys themselves (few senders, so at most 256 pending txs each: the
   node's ``max_per_sender``).
2. Funding. Each fresh sender gets one transfer from a demo key
   (``DIR/keys/demoK.key``; the demo keys take turns, at most 200 pending
   each); the run waits until every node reports every funding tx confirmed.
3. Sending. Each sender talks to one node (sender i to node i mod n, as a
   wallet talks to its node), so its nonces arrive in order; each node gets its
   senders' txs nonce-major (every sender's next nonce, then the next), in
   ``tx.submit`` batches of ``--batch``, over ``--conns`` keep-alive
   connections per node (a thread each; a sender always uses the same one, so
   its nonces still arrive in order), as many wallets share a node. One
   connection waits for each answer before its next batch, so with one a
   node's slow answer would hold back the rate. With ``--rate`` each
   connection gets its share of the rate
   on a fixed schedule (a late batch is sent at once, never skipped); with
   ``--max`` as fast as the node answers.
4. Confirmations. A tracker thread polls every node's ``node.info`` every
   ``--poll`` s; for every tip it has not seen it fetches the block
   (``chain.block``, tx ids only) and its unseen ancestors, and matches tx ids.
   A tx's confirmation time is the first poll at which any node had the block
   that holds it on the best chain (a tx in a block that a reorg undid counts
   from the block that finally holds it). After the last send it waits until every accepted tx is confirmed,
   or no new one has been for ``--settle`` s, or ``--confirm-timeout`` s.

One progress line a second on stderr; the summary as a table on stdout (with
``--json``: JSON on stdout, the table on stderr). The summary counts a tx
confirmed if it is on the final main chain of the highest node; confirmed
tx/s is over the window from the first submit to the last confirmation, and
latency is submit (the start of its batch's POST) to confirmation.

Exit status: 0 when the run completed, 1 when no tx was confirmed, 2 on an
error or when ``--budget`` ran out, 130 on Ctrl-C. The generator starts no
node process; its signing processes are gone when it exits.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import (
    RawRpc,
    install_budget,
    percentile,
    progress,
    run_guarded,
)

from powernode.client import (
    Endpoint,
    RpcClient,
    RpcError,
    RpcUnavailable,
    build_transfer,
    endpoint_from_datadir,
    read_key,
)
from powernode.core.crypto import KeyPair

AMOUNT = 1  # micro-units per transfer
FEE = 1000
FUND_MARGIN = 1_000_000  # one unit on top of what a sender will spend
FUND_PER_ROUND = 200  # funding txs per demo key per round (max_per_sender is 256)
RECIPIENTS = 1000

Log = Callable[[str], None]


# --- configuration and results ----------------------------------------------------


@dataclass
class LoadConfig:
    dir: Path
    rate: float | None = None  # tx/s over all nodes; None means as fast as possible
    duration: float | None = None
    count: int | None = None
    senders: int = 200
    batch: int = 100
    conns: int = 2  # client connections per node, each with its own senders
    demo_keys: bool = False
    presign: int = 0  # --max --duration: txs to sign (0: 3,000 x duration)
    sign_procs: int = 0  # 0: cpu count
    poll: float = 0.1
    settle: float = 30.0
    confirm_timeout: float = 120.0
    fund_timeout: float = 120.0
    nodes: list[str] | None = None  # node names to send to (default: every running node)

    def planned(self) -> int:
        if self.count is not None:
            return self.count
        assert self.duration is not None
        if self.rate is not None:
            return max(1, round(self.rate * self.duration))
        return self.presign or round(3000 * self.duration)


@dataclass
class Batch:
    body: bytes
    txids: list[str]


@dataclass
class NodeLoad:
    name: str
    endpoint: Endpoint
    batches: list[Batch] = field(default_factory=list)
    submitted: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    posts: int = 0
    post_seconds: float = 0.0
    post_max: float = 0.0


# --- testnet -----------------------------------------------------------------------


def testnet_nodes(d: Path, only: Sequence[str] | None = None) -> list[tuple[str, Endpoint]]:
    """(name, RPC endpoint) of every running node of the testnet in ``d``."""
    path = d / "testnet.json"
    if not path.exists():
        raise SystemExit(f"loadgen: no testnet in {d} (run 'scripts/testnet.py up' first)")
    state = json.loads(path.read_text())
    out: list[tuple[str, Endpoint]] = []
    for n in state["nodes"]:
        if only and n["name"] not in only:
            continue
        try:
            out.append((n["name"], endpoint_from_datadir(d / n["name"])))
        except RpcUnavailable:
            progress(f"loadgen: {n['name']} is not running; skipped")
    if not out:
        raise SystemExit(f"loadgen: no running node in {d}")
    return out


def demo_keys(d: Path) -> list[KeyPair]:
    state = json.loads((d / "testnet.json").read_text())
    return [read_key(d / p) for p in state.get("demo_keys", [])]


# --- signing -----------------------------------------------------------------------


def _sign_range(
    seed: bytes, chain_id: str, nonce0: int, count: int, recipients: list[bytes], offset: int
) -> list[tuple[str, str]]:
    """(txid hex, raw hex) of ``count`` transfers from one key; runs in a
    worker process."""
    key = KeyPair.from_seed(seed)
    out = []
    for j in range(count):
        tx = build_transfer(
            key,
            chain_id=chain_id,
            nonce=nonce0 + j,
            to=recipients[(offset + j) % len(recipients)],
            amount=AMOUNT,
            fee=FEE,
        )
        out.append((tx.txid.hex(), tx.raw.hex()))
    return out


def presign(
    keys: Sequence[KeyPair],
    nonce0: Sequence[int],
    per_sender: Sequence[int],
    chain_id: str,
    procs: int,
) -> list[list[tuple[str, str]]]:
    """``out[s]``: sender s's txs in nonce order, signed on ``procs`` processes."""
    recipients = [os.urandom(20) for _ in range(RECIPIENTS)]
    jobs: list[tuple[int, int, int]] = []  # sender, first nonce, count
    step = 500
    for s, n in enumerate(per_sender):
        for start in range(0, n, step):
            jobs.append((s, nonce0[s] + start, min(step, n - start)))
    out: list[list[tuple[str, str]]] = [[] for _ in keys]
    if procs <= 1 or sum(per_sender) < 2000:
        for s, first, n in jobs:
            out[s] += _sign_range(keys[s].seed(), chain_id, first, n, recipients, s * 7919)
        return out
    # spawn: the caller may have threads running, and fork with threads is unsafe.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(procs, mp_context=ctx) as pool:
        futs = [
            pool.submit(_sign_range, keys[s].seed(), chain_id, first, n, recipients, s * 7919)
            for s, first, n in jobs
        ]
        try:
            for (s, _, _), fut in zip(jobs, futs, strict=True):
                out[s] += fut.result()
        except BaseException:
            for f in futs:
                f.cancel()
            raise
    return out


def batch_body(items: Sequence[tuple[str, str]]) -> bytes:
    doc = [
        {"jsonrpc": "2.0", "id": j, "method": "tx.submit", "params": {"raw": raw}}
        for j, (_, raw) in enumerate(items)
    ]
    return json.dumps(doc, separators=(",", ":")).encode()


# --- funding -----------------------------------------------------------------------


def _batches(rows: list[list[tuple[str, str]]], size: int) -> list[Batch]:
    """The senders' txs nonce-major (every sender's next nonce, then the
    next), in ``tx.submit`` batches of ``size``."""
    order = [
        row[j]
        for j in range(max((len(r) for r in rows), default=0))
        for row in rows
        if j < len(row)
    ]
    return [
        Batch(batch_body(order[a : a + size]), [t for t, _ in order[a : a + size]])
        for a in range(0, len(order), size)
    ]


def wait_confirmed(
    endpoints: Sequence[tuple[str, Endpoint]], txids: list[str], timeout: float, log: Log
) -> None:
    """Until every node reports every tx in ``txids`` confirmed (tx.get in batches)."""
    deadline = time.monotonic() + timeout
    clients = {name: RpcClient(ep, timeout=60) for name, ep in endpoints}
    pending = {name: list(txids) for name in clients}
    last_log = 0.0
    try:
        while any(pending.values()):
            for name, c in clients.items():
                if not pending[name]:
                    continue
                left = []
                for i in range(0, len(pending[name]), 500):
                    chunk = pending[name][i : i + 500]
                    res = c.batch([("tx.get", {"id": t}) for t in chunk])
                    for t, r in zip(chunk, res, strict=True):
                        if isinstance(r, RpcError) or r.get("status") != "confirmed":
                            left.append(t)
                pending[name] = left
            if not any(pending.values()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"funding not confirmed after {timeout:.0f} s: "
                    + ", ".join(f"{n} {len(p)} left" for n, p in pending.items())
                )
            if time.monotonic() - last_log > 5:
                last_log = time.monotonic()
                worst = max(len(p) for p in pending.values())
                log(f"funding: waiting for confirmation ({worst} of {len(txids)} pending)")
            time.sleep(0.5)
    finally:
        for c in clients.values():
            c.close()


def fund_senders(
    endpoints: Sequence[tuple[str, Endpoint]],
    funders: Sequence[KeyPair],
    senders: Sequence[KeyPair],
    amount: int,
    chain_id: str,
    timeout: float,
    log: Log,
) -> float:
    """One transfer of ``amount`` from a demo key (in turn) to each sender,
    submitted to the first node; returns once every node has them confirmed."""
    t0 = time.monotonic()
    name, ep = endpoints[0]
    with RpcClient(ep, timeout=60) as c:
        for start in range(0, len(senders), FUND_PER_ROUND * len(funders)):
            group = senders[start : start + FUND_PER_ROUND * len(funders)]
            nonces = {
                f.address: c.call("account.get", {"address": f.address.hex()})["next_nonce"]
                for f in funders
            }
            txs = []
            for i, s in enumerate(group):
                f = funders[i % len(funders)]
                txs.append(
                    build_transfer(
                        f, chain_id=chain_id, nonce=nonces[f.address], to=s.address, amount=amount
                    )
                )
                nonces[f.address] += 1
            res = c.batch([("tx.submit", {"raw": tx.raw.hex()}) for tx in txs])
            bad = [r for r in res if isinstance(r, RpcError)]
            if bad:
                raise RuntimeError(f"funding rejected by {name}: {bad[0]}")
            log(f"funding: {len(txs)} transfers from {len(funders)} demo keys sent to {name}")
            wait_confirmed(endpoints, [tx.txid.hex() for tx in txs], timeout, log)
    return time.monotonic() - t0


# --- confirmation tracking ----------------------------------------------------------


@dataclass
class SeenBlock:
    height: int
    prev: str
    txids: list[str]
    seen: float  # monotonic time of the poll that first showed it
    ours: int  # how many of its txs are watched


class Tracker(threading.Thread):
    """Polls every node's tip and records each block it has not seen (with
    the time of the poll that first showed it). The best chain is the one of
    the highest node; a watched tx counts as confirmed while a block on it
    holds the tx, at the time that block was first seen, so a tx in a block
    that a reorg undid counts only once it is in a block of the final chain."""

    def __init__(
        self, endpoints: Sequence[tuple[str, Endpoint]], watch: set[str], interval: float
    ) -> None:
        super().__init__(name="loadgen-tracker", daemon=True)
        self.clients = {name: RpcClient(ep, timeout=60) for name, ep in endpoints}
        self.watch = watch
        self.interval = interval
        self.blocks: dict[str, SeenBlock] = {}
        self.tips: dict[str, tuple[int, str]] = {}
        self.mempool: dict[str, int] = {}
        self.mining: dict[str, bool] = {}
        self.floor = 0
        self.errors: Counter[str] = Counter()
        self.polls = 0
        self.best = ""
        self.confirmed_n = 0  # watched txs on the best chain
        self.best_height = 0
        self._halt = threading.Event()

    def start_tips(self) -> None:
        """Record where the chain is before the run; blocks up to the lowest
        of these heights are never fetched."""
        for name, c in self.clients.items():
            info = c.call("node.info")
            self.tips[name] = (info["height"], info["tip"])
            self.mining[name] = bool(info["mining"])
            self.mempool[name] = info["mempool_size"]
        self.floor = min(h for h, _ in self.tips.values())
        self.best_height = max(h for h, _ in self.tips.values())

    def _fetch(self, c: RpcClient, h: str, now: float) -> SeenBlock:
        b = c.call("chain.block", {"hash": h})
        txids = b["txs"]
        watch = self.watch
        blk = SeenBlock(
            b["height"], b["prev_hash"], txids, now, sum(1 for t in txids if t in watch)
        )
        self.blocks[h] = blk
        return blk

    def _walk(self, c: RpcClient, tip: str, height: int, now: float) -> None:
        h = tip
        while height > self.floor and h not in self.blocks:
            blk = self._fetch(c, h, now)
            h, height = blk.prev, blk.height - 1

    def _chain_from(self, tip: str, height: int) -> list[SeenBlock]:
        out: list[SeenBlock] = []
        h = tip
        while height > self.floor:
            blk = self.blocks.get(h)
            if blk is None:
                break
            out.append(blk)
            h, height = blk.prev, blk.height - 1
        out.reverse()
        return out

    def poll_once(self) -> None:
        for name, c in self.clients.items():
            try:
                info = c.call("node.info")
                now = time.monotonic()
                self.tips[name] = (info["height"], info["tip"])
                self.mempool[name] = info["mempool_size"]
                self.mining[name] = bool(info["mining"])
                self._walk(c, info["tip"], info["height"], now)
            except (RpcError, RpcUnavailable, OSError, ValueError, KeyError) as exc:
                self.errors[f"{name}: {type(exc).__name__}"] += 1
        height, tip = max(self.tips.values())
        if tip != self.best:
            self.best, self.best_height = tip, height
            self.confirmed_n = sum(b.ours for b in self._chain_from(tip, height))
        self.polls += 1

    def run(self) -> None:
        while not self._halt.is_set():
            t0 = time.monotonic()
            self.poll_once()
            self._halt.wait(max(0.0, self.interval - (time.monotonic() - t0)))

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=30)

    def close(self) -> None:
        for c in self.clients.values():
            c.close()

    def main_chain(self) -> list[SeenBlock]:
        """Blocks above the floor on the chain of the highest node, oldest
        first (fetching any this tracker has not seen)."""
        name, (height, tip) = max(self.tips.items(), key=lambda kv: kv[1])
        self._walk(self.clients[name], tip, height, time.monotonic())
        return self._chain_from(tip, height)


# --- sending -----------------------------------------------------------------------


class Sender(threading.Thread):
    """Sends one node's batches, paced or as fast as it answers."""

    def __init__(
        self,
        load: NodeLoad,
        rate: float | None,
        deadline: float | None,
        submit_times: dict[str, float],
        stop: threading.Event,
        go: threading.Event,
        t0_box: list[float],
    ) -> None:
        super().__init__(name=f"loadgen-{load.name}", daemon=True)
        self.load = load
        self.rate = rate
        self.deadline = deadline
        self.submit_times = submit_times
        self.stop_event = stop
        self.go = go
        self.t0_box = t0_box
        self.conn = RawRpc(load.endpoint, timeout=120)
        self.first = 0.0
        self.last = 0.0
        self.error: str | None = None

    def run(self) -> None:
        ld = self.load
        try:
            self.conn.call("node.info")  # connected before the clock starts
            self.go.wait()
            t0 = self.t0_box[0]
            for b in ld.batches:
                if self.stop_event.is_set():
                    break
                if self.rate:
                    wait = t0 + ld.submitted / self.rate - time.monotonic()
                    if wait > 0 and self.stop_event.wait(wait):
                        break
                start = time.monotonic()
                if self.deadline is not None and start >= self.deadline:
                    break
                data = self.conn.post(b.body)
                end = time.monotonic()
                if not self.first:
                    self.first = start
                self.last = end
                ld.posts += 1
                ld.post_seconds += end - start
                ld.post_max = max(ld.post_max, end - start)
                answers = {r.get("id"): r for r in json.loads(data)}
                for j, txid in enumerate(b.txids):
                    r = answers.get(j)
                    if r is None:
                        ld.rejected["missing_response"] += 1
                    elif "error" in r:
                        e = r["error"]
                        ld.rejected[str((e.get("data") or {}).get("code", e.get("message")))] += 1
                    else:
                        self.submit_times[txid] = start
                        ld.accepted += 1
                ld.submitted += len(b.txids)
        except Exception as exc:  # the run reports it; other nodes keep going
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.conn.close()


# --- the run -----------------------------------------------------------------------


@dataclass
class Prepared:
    """Sender keys and every tx of a run, signed (``signed[s]``: sender s's
    txs in nonce order, as (txid hex, raw hex))."""

    chain_id: str
    keys: list[KeyPair]
    signed: list[list[tuple[str, str]]]
    seconds: float


def prepare(
    cfg: LoadConfig,
    chain_id: str,
    log: Log = progress,
    *,
    keys: list[KeyPair] | None = None,
    nonce0: list[int] | None = None,
) -> Prepared:
    """Sign every tx of a run: from ``keys`` starting at ``nonce0``, or from
    ``cfg.senders`` fresh keys starting at nonce 0. Needs no running node, so
    a benchmark can sign before it starts its testnet."""
    total = cfg.planned()
    if keys is None:
        keys = [KeyPair.generate() for _ in range(cfg.senders)]
        nonce0 = [0] * len(keys)
    assert nonce0 is not None and len(nonce0) == len(keys)
    k = len(keys)
    per_sender = [total // k + (1 if s < total % k else 0) for s in range(k)]
    procs = cfg.sign_procs or os.cpu_count() or 1
    log(f"pre-signing {total:,} transfers from {k} senders on {procs} processes")
    t0 = time.monotonic()
    signed = presign(keys, nonce0, per_sender, chain_id, procs)
    seconds = time.monotonic() - t0
    log(f"signed in {seconds:.1f} s ({total / max(seconds, 1e-6):,.0f} tx/s)")
    return Prepared(chain_id, keys, signed, seconds)


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
        raise SystemExit("loadgen: the testnet has no demo keys")
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
        for c in range(conns):
            ld = NodeLoad(name if conns == 1 else f"{name}/{c}", ep)
            ld.batches = _batches(
                [signed[s] for s in range(i, k, n) if (s // n) % conns == c], cfg.batch
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


def summarize(
    cfg: LoadConfig,
    loads: list[NodeLoad],
    senders: list[Sender],
    tracker: Tracker,
    chain: list[SeenBlock],
    submit_times: dict[str, float],
    start: float,
    send_end: float,
) -> dict[str, Any]:
    rejected: Counter[str] = Counter()
    for ld in loads:
        rejected.update(ld.rejected)
    conf_at = {t: b.seen for b in chain for t in b.txids if t in submit_times}
    lat = [at - submit_times[t] for t, at in conf_at.items()]
    confirmed = len(lat)
    first_submit = min(submit_times.values(), default=start)
    last_conf = max(conf_at.values(), default=first_submit)
    window = max(last_conf - first_submit, 1e-6)
    submitted = sum(ld.submitted for ld in loads)
    accepted = sum(ld.accepted for ld in loads)
    send_window = max(send_end - start, 1e-6)
    ours = [b for b in chain if any(t in submit_times for t in b.txids)]
    sizes = [len(b.txids) for b in chain]
    intervals = [b.seen - a.seen for a, b in itertools.pairwise(chain)]
    out: dict[str, Any] = {
        "submitted": submitted,
        "accepted": accepted,
        "rejected": sum(rejected.values()),
        "rejected_by_reason": dict(rejected.most_common()),
        "confirmed": confirmed,
        "unconfirmed": accepted - confirmed,
        "send_seconds": send_window,
        "submit_tx_per_s": submitted / send_window,
        "window_seconds": window,
        "confirmed_tx_per_s": confirmed / window,
        "latency_s": {
            "p50": percentile(lat, 50) if lat else None,
            "p99": percentile(lat, 99) if lat else None,
            "max": max(lat) if lat else None,
            "min": min(lat) if lat else None,
        },
        "blocks": {
            "count": len(chain),
            "with_our_txs": len(ours),
            "txs_mean": sum(sizes) / len(sizes) if sizes else 0,
            "txs_max": max(sizes, default=0),
            "interval_mean_s": sum(intervals) / len(intervals) if intervals else None,
            "final_height": chain[-1].height if chain else tracker.floor,
            "off_main_chain": len(tracker.blocks) - len(chain),
        },
        "nodes": {
            ld.name: {
                "submitted": ld.submitted,
                "accepted": ld.accepted,
                "rejected": dict(ld.rejected),
                "posts": ld.posts,
                "post_ms_mean": 1000 * ld.post_seconds / ld.posts if ld.posts else None,
                "post_ms_max": 1000 * ld.post_max,
                "error": s.error,
            }
            for ld, s in zip(loads, senders, strict=True)
        },
        "tracker": {"polls": tracker.polls, "errors": dict(tracker.errors)},
    }
    return out


# --- output --------------------------------------------------------------------------


def print_summary(r: dict[str, Any], file: Any = sys.stdout) -> None:
    c = r["config"]
    mode = f"target {c['rate']:,.0f} tx/s" if c["rate"] else "as fast as possible"
    print(
        f"\nloadgen: {len(c['nodes'])} nodes, {c['senders']} senders ({c['sender_keys']}), "
        f"batch {c['batch']}, {mode}",
        file=file,
    )
    rows: list[tuple[str, str]] = []
    if "submitted" in r:
        rows += [
            ("submitted", f"{r['submitted']:,}"),
            ("  over", f"{r['send_seconds']:.1f} s = {r['submit_tx_per_s']:,.0f} tx/s"),
            ("accepted", f"{r['accepted']:,}"),
            ("rejected", f"{r['rejected']:,}"),
        ]
        rows += [(f"  {k}", f"{v:,}") for k, v in r["rejected_by_reason"].items()]
        rows += [
            ("confirmed (on the final main chain)", f"{r['confirmed']:,}"),
            ("accepted, not confirmed", f"{r['unconfirmed']:,}"),
            ("window: first submit to last confirmation", f"{r['window_seconds']:.1f} s"),
            ("confirmed tx/s", f"{r['confirmed_tx_per_s']:,.0f}"),
        ]
        lat = r["latency_s"]
        if lat["p50"] is not None:
            rows.append(
                (
                    "confirmation latency p50 / p99 (max)",
                    f"{lat['p50']:.2f} / {lat['p99']:.2f} s ({lat['max']:.2f})",
                )
            )
        b = r["blocks"]
        interval = f"{b['interval_mean_s']:.2f} s" if b["interval_mean_s"] is not None else "-"
        rows.append(
            (
                "blocks: count, txs mean / max, interval",
                f"{b['count']}, {b['txs_mean']:,.0f} / {b['txs_max']:,}, {interval}",
            )
        )
        rows.append(
            (
                "blocks seen but not on the final chain (reorged)",
                f"{b['off_main_chain']}",
            )
        )
        for name, nd in r["nodes"].items():
            mean = f"{nd['post_ms_mean']:.0f}" if nd["post_ms_mean"] is not None else "-"
            rows.append(
                (
                    f"  {name}: accepted / submitted, POST ms mean (max)",
                    f"{nd['accepted']:,} / {nd['submitted']:,}, {mean} ({nd['post_ms_max']:.0f})",
                )
            )
            if nd["error"]:
                rows.append((f"  {name}: sender error", nd["error"]))
    for k in ("funding_s", "presign_s"):
        if k in r:
            rows.append((k.replace("_s", " (s)"), f"{r[k]:.1f}"))
    w = max(len(a) for a, _ in rows) if rows else 20
    for a, b_ in rows:
        print(f"{a:<{w}}  {b_}", file=file)
    if "error" in r:
        print(f"RUN FAILED: {r['error']}", file=file)


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
    code = run_guarded(lambda: result.update(run_load(cfg)), result)
    result.setdefault(
        "config",
        {"nodes": [], "rate": a.rate, "senders": a.senders, "sender_keys": "", "batch": a.batch},
    )
    print_summary(result, sys.stderr if a.json else sys.stdout)
    if a.json:
        print(json.dumps(result, indent=2))
    if code == 0 and not result.get("confirmed"):
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
