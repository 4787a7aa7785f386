"""Network benchmark: signature baseline, block propagation, late-joiner sync,
sustained confirmed tx/s of a mining testnet under load.

Usage::

    python scripts/bench_network.py            # progress on stderr, table on stdout
    python scripts/bench_network.py --json     # ... and the figures as JSON after the table
    python scripts/bench_network.py --check    # exit 1 if the tx/s target is missed

What it measures, in one run (every testnet is started with
``scripts/testnet.py up`` in a temporary directory, on 127.0.0.1 only):

a. Baseline: raw Ed25519 verifies per second on 1 and 2 threads, exactly as
   ``scripts/bench_node.py`` measures it (its ``bench_baseline``; best of 3).
   The 2-thread figure is *the baseline*.
b. Propagation: a 5-node testnet (``up --nodes 5 --no-mine --easy``). Each
   round puts 1,000 signed transfers into node0's mempool, waits until every
   node's mempool holds them (gossip), then ``dev.mine``s one block on node
   ``round mod 5`` and polls every node's tip until all are that block. The
   figure is from the node logs: the ``block.connected`` line of that hash on
   the mining node to the same line on the last node to connect it
   (timestamps with milliseconds, one machine, one clock). p50 over
   ``--rounds`` blocks; the poll-based time (dev.mine call to the last tip
   seen) is shown too.
c. Late-joiner sync: on the same testnet, ``--sync-blocks`` more blocks of
   ``--sync-txs`` transfers each are mined on node0 (so the chain holds at
   least 500 blocks with txs), then a 6th node is started with a fresh data
   dir, the same genesis and the five as bootstrap peers. Figures: its own
   ``sync.done`` line (blocks, ms, blocks/s) and tx/s over the same time
   (txs counted from its ``block.connected`` lines), and the wall time from
   process start to its tip equal to the others'.
d. Sustained load: a 4-node testnet with mining on (``up --nodes 4
   --block-time B --miner-cpu PCT``: each node's miner thread capped at PCT%
   of a core, 10 by default, with the target eased to match, so four miners
   leave the two cores to the txs; ``--miner-cpu 100`` mines flat out); ``scripts/loadgen.py`` (in process) funds ``--senders``
   fresh keys, then offers ``--load-rate`` tx/s for ``--load-duration`` s,
   spread over the 4 nodes, and tracks confirmations. Figures: confirmed
   tx/s (first submit to last confirmation), latency p50/p99, reorged
   blocks, and the ratio (confirmed tx/s x nodes) / baseline: every node
   verifies every tx once, so this is the share of the machine's signature
   capacity that ends up as confirmed txs. Where the time goes: CPU seconds
   of each node's threads (event loop, miner, verify workers) over the send
   window, and with py-spy installed a sampled profile of node0's event loop
   (``--profile-seconds``). Then, by ``--variant``, the same load runs again
   on a fresh 4-node testnet: ``dev-mine`` (the default) starts it with
   ``--no-mine --easy`` and mines one block on node0 with ``dev.mine`` every
   block_time s: no hashing threads, no forks, the same block interval, so
   it shows what the tx pipeline itself sustains; ``one-miner``: only node0
   mines (normal target); ``none`` skips it. ``--nice-miners`` (an
   experiment, off by default) renices the miner threads to 19 first.

The machine must be otherwise idle for the figures to mean anything: the run
waits (up to ``--wait-quiet`` s) for other processes to go quiet and records
how many cores other processes used during each phase.

The whole run is bounded by ``--budget`` seconds; every node process is
stopped (SIGTERM, then SIGKILL) on every exit path. Exit status: 0 when every
phase ran (with ``--check``: and the target was met, else 1), 2 when a phase
failed or the budget ran out, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cryptography
from bench_node import bench_baseline
from benchlib import (
    REPO,
    CpuMonitor,
    Testnet,
    child_pids,
    cpu_by_role,
    free_port,
    install_budget,
    log_events,
    median,
    node_pids_under,
    progress,
    pyspy_path,
    run_guarded,
    stop_pids,
    summarize_pyspy_raw,
    thread_names,
)
from loadgen import LoadConfig, Prepared, prepare, run_load

from powernode.client import (
    RpcClient,
    RpcError,
    RpcUnavailable,
    build_transfer,
    endpoint_from_datadir,
    read_key,
    write_key,
)
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction
from powernode.node.config import render_config

TARGET_TX_PER_S = 2000.0
LOAD_CHAIN = "powernode-netbench"
BUSY_CORES = 0.25
FEE = 1000


# --- timed phases ------------------------------------------------------------------


class Phases:
    """Records other processes' CPU load while each phase runs."""

    def __init__(self, monitor: CpuMonitor) -> None:
        self.monitor = monitor

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.monitor.begin()
        try:
            yield
        finally:
            load = self.monitor.end(name)
            if load["other_cores"] > BUSY_CORES:
                progress(
                    f"WARNING: other processes used {load['other_cores']:.2f} cores "
                    f"during {name}; its figures are unreliable"
                )


# --- txs from the demo keys ----------------------------------------------------------


class DemoSigner:
    """Transfers from a testnet's demo keys, nonces counted here (the caller
    makes sure each is confirmed before a sender's pending txs pass 256)."""

    def __init__(self, tn: Testnet, chain_id: str) -> None:
        self.keys = [read_key(tn.root / p) for p in tn.state["demo_keys"]]
        self.chain_id = chain_id
        with tn.client(tn.names[0]) as c:
            self.nonces = [
                c.call("account.get", {"address": k.address.hex()})["next_nonce"] for k in self.keys
            ]
        self.recipients = [sha256(b"net-rcpt-%d" % i)[:20] for i in range(500)]
        self.made = 0

    def sign(self, n: int) -> list[Transaction]:
        out = []
        for _ in range(n):
            i = self.made % len(self.keys)
            out.append(
                build_transfer(
                    self.keys[i],
                    chain_id=self.chain_id,
                    nonce=self.nonces[i],
                    to=self.recipients[self.made % len(self.recipients)],
                    amount=1 + self.made % 1000,
                    fee=FEE,
                )
            )
            self.nonces[i] += 1
            self.made += 1
        return out


def submit(c: RpcClient, txs: list[Transaction], chunk: int = 1000) -> None:
    for i in range(0, len(txs), chunk):
        part = txs[i : i + chunk]
        res = c.batch([("tx.submit", {"raw": tx.raw.hex()}) for tx in part])
        bad = [r for r in res if isinstance(r, RpcError)]
        if bad:
            raise RuntimeError(f"{len(bad)} of {len(part)} txs rejected, first: {bad[0]}")


def wait_mempools(
    clients: dict[str, RpcClient], size: int, timeout: float
) -> tuple[float, dict[str, int]]:
    t0 = time.monotonic()
    sizes: dict[str, int] = {}
    while True:
        sizes = {n: c.call("mempool.info")["size"] for n, c in clients.items()}
        if min(sizes.values()) >= size or time.monotonic() - t0 > timeout:
            return time.monotonic() - t0, sizes
        time.sleep(0.05)


def wait_same_tip(
    clients: dict[str, RpcClient], timeout: float, tip: str | None = None
) -> tuple[bool, dict[str, tuple[int, str]]]:
    deadline = time.monotonic() + timeout
    tips: dict[str, tuple[int, str]] = {}
    while True:
        for n, c in clients.items():
            info = c.call("node.info")
            tips[n] = (info["height"], info["tip"])
        want = tip or max(tips.values())[1]
        if all(t == want for _, t in tips.values()):
            return True, tips
        if time.monotonic() > deadline:
            return False, tips
        time.sleep(0.1)


# --- a. baseline ---------------------------------------------------------------------


def phase_baseline(sigs: int) -> dict[str, Any]:
    key = KeyPair.from_seed(sha256(b"net-baseline"))
    sample = [
        build_transfer(key, chain_id="powernode-bench", nonce=n, to=bytes(20), amount=1, fee=FEE)
        for n in range(200)
    ]
    return bench_baseline(sigs, 3, 140, sample)


# --- b. propagation ------------------------------------------------------------------


def connected_at(tn: Testnet, name: str, block_hash: str) -> float | None:
    for ts, _, f in log_events(tn.datadir(name) / "node.log", {"block.connected"}):
        if f.get("hash") == block_hash:
            return ts
    return None


def phase_propagation(
    tn: Testnet, signer: DemoSigner, rounds: int, txs: int, timeout: float
) -> dict[str, Any]:
    names = tn.names
    clients = {n: tn.client(n) for n in names}
    per_round: list[dict[str, Any]] = []
    try:
        batches = [signer.sign(txs) for _ in range(rounds)]
        for r, batch in enumerate(batches):
            submit(clients[names[0]], batch)
            gossip_s, sizes = wait_mempools(clients, txs, timeout)
            if min(sizes.values()) < txs:
                progress(f"propagation: round {r + 1}: mempools after {timeout:.0f} s: {sizes}")
            miner = names[r % len(names)]
            t_call = time.time()
            block_hash = clients[miner].call("dev.mine", {"blocks": 1})["hashes"][0]
            seen: dict[str, float] = {}
            deadline = time.monotonic() + timeout
            while len(seen) < len(names) and time.monotonic() < deadline:
                for n, c in clients.items():
                    if n not in seen and c.call("node.info")["tip"] == block_hash:
                        seen[n] = time.time()
                time.sleep(0.005)
            if len(seen) < len(names):
                raise RuntimeError(
                    f"block {block_hash[:16]} reached only {sorted(seen)} in {timeout:.0f} s"
                )
            logged = {n: connected_at(tn, n, block_hash) for n in names}
            missing = [n for n, t in logged.items() if t is None]
            if missing:
                raise RuntimeError(f"no block.connected line for {block_hash[:16]} in {missing}")
            at = {n: float(t) for n, t in logged.items() if t is not None}
            others = sorted(at[n] - at[miner] for n in names if n != miner)
            block = clients[miner].call("chain.block", {"hash": block_hash})
            row = {
                "round": r + 1,
                "miner": miner,
                "hash": block_hash,
                "txs": len(block["txs"]),
                "bytes": block["size"],
                "mempools_filled_s": gossip_s,
                "propagation_ms": 1000 * others[-1],
                "first_peer_ms": 1000 * others[0],
                "per_peer_ms": [1000 * x for x in others],
                "mine_call_to_connected_ms": 1000 * (at[miner] - t_call),
                "call_to_all_tips_polled_ms": 1000 * (max(seen.values()) - t_call),
            }
            per_round.append(row)
            progress(
                f"propagation: round {r + 1}/{rounds}: {row['txs']:,}-tx block "
                f"({row['bytes']:,} B) mined on {miner}; all 5 connected "
                f"{row['propagation_ms']:.0f} ms after it (first peer {row['first_peer_ms']:.0f} "
                f"ms); mempools filled in {gossip_s:.1f} s"
            )
    finally:
        for c in clients.values():
            c.close()
    props = [r["propagation_ms"] for r in per_round]
    polled = [r["call_to_all_tips_polled_ms"] for r in per_round]
    return {
        "nodes": len(names),
        "txs_per_block": txs,
        "rounds": per_round,
        "propagation_ms_p50": median(props),
        "propagation_ms_min": min(props),
        "propagation_ms_max": max(props),
        "first_peer_ms_p50": median([r["first_peer_ms"] for r in per_round]),
        "call_to_all_tips_ms_p50": median(polled),
        "mempools_filled_s_p50": median([r["mempools_filled_s"] for r in per_round]),
    }


# --- c. late joiner ---------------------------------------------------------------------


def build_chain(
    tn: Testnet, signer: DemoSigner, blocks: int, txs: int, timeout: float
) -> dict[str, Any]:
    name = tn.names[0]
    progress(f"sync: signing {blocks * txs:,} transfers for {blocks} blocks")
    all_txs = signer.sign(blocks * txs)
    t0 = time.monotonic()
    with tn.client(name) as c:
        for b in range(blocks):
            submit(c, all_txs[b * txs : (b + 1) * txs])
            c.call("dev.mine", {"blocks": 1})
            if (b + 1) % 100 == 0:
                dt = time.monotonic() - t0
                progress(f"sync: mined {b + 1}/{blocks} blocks on {name} ({(b + 1) / dt:.1f}/s)")
    clients = {n: tn.client(n) for n in tn.names}
    try:
        same, tips = wait_same_tip(clients, timeout)
    finally:
        for cl in clients.values():
            cl.close()
    if not same:
        raise RuntimeError(f"the 5 nodes did not converge in {timeout:.0f} s: {tips}")
    height, tip = next(iter(tips.values()))
    return {"seconds": time.monotonic() - t0, "height": height, "tip": tip}


def start_joiner(tn: Testnet, name: str) -> tuple[Path, subprocess.Popen[bytes]]:
    datadir = tn.root / name
    datadir.mkdir()
    write_key(datadir / "node.key", KeyPair.generate())
    shutil.copy(tn.root / "genesis.json", datadir / "genesis.json")
    peers = tuple(f"127.0.0.1:{n['p2p_port']}" for n in tn.nodes)
    (datadir / "config.toml").write_text(
        render_config(
            rpc_port=free_port(), p2p_port=free_port(), mining=False, peers=peers, p2p=True
        )
    )
    with open(datadir / "stderr.log", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "powernode.cli", "run", "--datadir", str(datadir)],
            cwd=REPO,
            stdout=err,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    tn.adopt(proc)
    return datadir, proc


def phase_sync(
    tn: Testnet, signer: DemoSigner, blocks: int, txs: int, timeout: float, monitor: CpuMonitor
) -> dict[str, Any]:
    built = build_chain(tn, signer, blocks, txs, timeout)
    progress(
        f"sync: chain at height {built['height']} on all 5 nodes ({built['seconds']:.0f} s); "
        "starting a 6th node"
    )
    t_spawn = time.monotonic()
    datadir, proc = start_joiner(tn, "joiner")
    monitor.pids.add(proc.pid)
    t_rpc: float | None = None
    c: RpcClient | None = None
    height = 0
    deadline = t_spawn + timeout
    last_log = t_spawn
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the joiner exited with {proc.returncode}; see {datadir}")
            if c is None:
                try:
                    c = RpcClient(endpoint_from_datadir(datadir), timeout=30)
                    c.call("node.info")
                    t_rpc = time.monotonic()
                except (RpcUnavailable, OSError, ValueError, KeyError):
                    c = None
                    time.sleep(0.05)
                    continue
            info = c.call("node.info")
            height = info["height"]
            if info["tip"] == built["tip"]:
                break
            if time.monotonic() - last_log > 5:
                last_log = time.monotonic()
                progress(f"sync: joiner at height {height} of {built['height']}")
            time.sleep(0.05)
        else:
            raise RuntimeError(
                f"the joiner reached height {height} of {built['height']} in {timeout:.0f} s"
            )
        t_done = time.monotonic()
    finally:
        if c is not None:
            c.close()
        stop_pids([proc.pid])
        proc.wait(timeout=10)
    events = log_events(datadir / "node.log", {"block.connected", "sync.started", "sync.done"})
    conn = [(ts, f) for ts, e, f in events if e == "block.connected"]
    done = [f for _, e, f in events if e == "sync.done"]
    started = [ts for ts, e, _ in events if e == "sync.started"]
    txs_total = sum(int(f.get("txs", 0)) for _, f in conn)
    out: dict[str, Any] = {
        "chain_height": built["height"],
        "chain_build_s": built["seconds"],
        "blocks": len(conn),
        "txs": txs_total,
        "spawn_to_rpc_s": (t_rpc or t_done) - t_spawn,
        "spawn_to_tip_s": t_done - t_spawn,
        "rpc_to_tip_s": t_done - (t_rpc or t_spawn),
    }
    if done:
        d = done[-1]
        secs = int(d["ms"]) / 1000
        out["node_sync_done"] = {
            "blocks": int(d["blocks"]),
            "ms": int(d["ms"]),
            "blocks_per_s": float(d["blocks_per_s"]),
        }
        out["blocks_per_s"] = int(d["blocks"]) / secs if secs else 0.0
        out["tx_per_s"] = txs_total / secs if secs else 0.0
        out["source"] = "node's sync.done line"
    elif conn:
        secs = max(conn[-1][0] - (started[0] if started else conn[0][0]), 1e-3)
        out["blocks_per_s"] = len(conn) / secs
        out["tx_per_s"] = txs_total / secs
        out["source"] = "block.connected timestamps (no sync.done line)"
    if conn:
        span = max(conn[-1][0] - conn[0][0], 1e-3)
        out["connect_span_s"] = span
    progress(
        f"sync: joiner caught up {out['blocks']} blocks / {txs_total:,} txs: "
        f"{out.get('blocks_per_s', 0):,.0f} blocks/s, {out.get('tx_per_s', 0):,.0f} tx/s "
        f"({out.get('source', '')}); start to tip {out['spawn_to_tip_s']:.1f} s"
    )
    return out


# --- d. load ----------------------------------------------------------------------------


def own_cpu() -> float:
    """CPU seconds of this process (the load generator) and its reaped children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class LoadProbe:
    """CPU of every node over the send window, by role (event loop thread,
    miner thread, signature worker processes), and a py-spy
    profile of one node's event loop during it."""

    def __init__(self, tn: Testnet, profile_node: str, profile_s: float, raw: Path) -> None:
        self.tn = tn
        self.pids = {n["name"]: int(n["pid"]) for n in tn.nodes}
        self.names = {name: thread_names(pid) for name, pid in self.pids.items()}
        self.profile_node = profile_node
        self.profile_s = profile_s
        self.raw = raw
        self.own0 = self.own1 = 0.0
        self.before: dict[str, dict[str, float]] = {}
        self.after: dict[str, dict[str, float]] = {}
        self.final: dict[str, dict[str, float]] = {}
        self.t0 = self.t1 = self.t2 = 0.0
        self.proc: subprocess.Popen[bytes] | None = None
        self._timer: threading.Timer | None = None

    def all_pids(self) -> set[int]:
        out = set(self.pids.values())
        for pid in self.pids.values():
            out.update(child_pids(pid))
        return out

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.own0 = own_cpu()
        self.before = {n: cpu_by_role(p, self.names[n]) for n, p in self.pids.items()}
        exe = pyspy_path()
        if exe and self.profile_s > 0:
            # Skip the first seconds: the mempools are still filling.
            self._timer = threading.Timer(3.0, self._record, (exe,))
            self._timer.daemon = True
            self._timer.start()

    def _record(self, exe: str) -> None:
        pid = self.pids[self.profile_node]
        cmd = [exe, "record", "-p", str(pid), "-d", str(int(self.profile_s)), "-r", "50"]
        cmd += ["--threads", "--format", "raw", "-o", str(self.raw)]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def end(self) -> None:
        self.t1 = time.monotonic()
        self.own1 = own_cpu()
        self.after = {n: cpu_by_role(p, self.names[n]) for n, p in self.pids.items()}

    def finish(self) -> None:
        """After the confirmation wait: CPU over the whole run."""
        self.t2 = time.monotonic()
        self.final = {n: cpu_by_role(p, self.names[n]) for n, p in self.pids.items()}

    def close(self, *, kill: bool = False) -> None:
        """Wait for the profiler to write its file (or, with ``kill``, end it now)."""
        if self._timer is not None:
            self._timer.cancel()
        if self.proc is not None:
            try:
                if kill:
                    self.proc.kill()
                self.proc.wait(timeout=self.profile_s + 30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def cpu(self) -> dict[str, Any]:
        wall = max(self.t1 - self.t0, 1e-6)
        out: dict[str, Any] = {"seconds": wall, "nodes": {}}
        total: dict[str, float] = {}
        for node in self.pids:
            after, before = self.after.get(node, {}), self.before.get(node, {})
            roles = {r: (after[r] - before.get(r, 0.0)) / wall for r in after}
            out["nodes"][node] = roles
            for k, v in roles.items():
                total[k] = total.get(k, 0.0) + v
        out["total_cores"] = total
        out["loadgen_cores"] = (self.own1 - self.own0) / wall
        if self.final:
            used = sum(
                v - self.before.get(n, {}).get(r, 0.0)
                for n, roles in self.final.items()
                for r, v in roles.items()
            )
            out["run_seconds"] = self.t2 - self.t0
            out["run_node_cpu_seconds"] = used
        return out


def load_config(root: Path, args: argparse.Namespace) -> LoadConfig:
    return LoadConfig(
        dir=root,
        rate=args.load_rate,
        duration=args.load_duration,
        senders=args.senders,
        batch=args.batch,
        conns=args.conns,
        settle=args.settle,
        confirm_timeout=args.confirm_timeout,
    )


class DevMiner(threading.Thread):
    """Mines one block on a node with ``dev.mine`` every ``interval`` s (on a
    fixed schedule; a late block is mined at once)."""

    def __init__(self, tn: Testnet, name: str, interval: float) -> None:
        super().__init__(name="dev-miner", daemon=True)
        self.client = tn.client(name, timeout=120)
        self.interval = interval
        self.blocks = 0
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        while not self._halt.wait(
            max(0.0, t0 + (self.blocks + 1) * self.interval - time.monotonic())
        ):
            try:
                self.client.call("dev.mine", {"blocks": 1})
                self.blocks += 1
            except (RpcError, RpcUnavailable, OSError) as exc:
                self.errors.append(str(exc))
                self.blocks += 1

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=130)
        self.client.close()


def nice_miner_threads(tn: Testnet) -> int:
    """Lower every node's miner thread to nice 19 (a per-thread priority on
    Linux), so it only gets the CPU the rest of the node leaves idle."""
    done = 0
    for n in tn.nodes:
        for tid, name in thread_names(int(n["pid"])).items():
            if name.startswith("miner"):
                os.setpriority(os.PRIO_PROCESS, tid, 19)
                done += 1
    return done


LOAD_MODES = {
    "all-mine": "all 4 nodes mine",
    "one-miner": "only node0 mines",
    "dev-mine": "no PoW: dev.mine on node0 every block_time s",
}


def phase_load(
    workdir: Path,
    args: argparse.Namespace,
    prepared: Prepared,
    *,
    mode: str,
    monitor: CpuMonitor,
    phase: Phases,
) -> dict[str, Any]:
    root = workdir / f"net4-{mode}"
    dev = mode == "dev-mine"
    with Testnet(root) as tn:
        progress(
            f"load: starting a 4-node testnet: {LOAD_MODES[mode]}, block_time {args.block_time} s"
        )
        tn.up(
            4,
            mine=not dev,
            easy=dev,
            block_time=args.block_time,
            chain_id=prepared.chain_id,
            miner_cpu=args.miner_cpu,
        )
        peers = tn.wait_peers(3, 30)
        if mode == "one-miner":
            for n in tn.names[1:]:
                with tn.client(n) as c:
                    c.call("miner.stop")
        niced = nice_miner_threads(tn) if args.nice_miners and not dev else 0
        cfg = load_config(root, args)
        probe = LoadProbe(
            tn, tn.names[0], args.profile_seconds, workdir / f"profile-{root.name}-node0.raw"
        )
        monitor.pids.update(probe.all_pids())
        pacer = DevMiner(tn, tn.names[0], args.block_time) if dev else None
        try:
            if pacer is not None:
                pacer.start()
            with phase(f"load {mode}"):
                r = run_load(
                    cfg, prepared=prepared, on_send_start=probe.start, on_send_end=probe.end
                )
                probe.finish()
        except BaseException:
            probe.close(kill=True)
            raise
        finally:
            if pacer is not None:
                pacer.stop()
        probe.close()
        r["mode"] = mode
        r["mining"] = LOAD_MODES[mode]
        r["miner_cpu"] = args.miner_cpu
        r["niced_miner_threads"] = niced
        if pacer is not None:
            r["dev_mine"] = {"blocks": pacer.blocks, "errors": pacer.errors[:5]}
        r["peers"] = peers
        r["cpu"] = probe.cpu()
        r["block_time"] = args.block_time
        if r["cpu"].get("run_node_cpu_seconds") and r["confirmed"]:
            # Every node handles every tx: CPU per tx per node, all roles.
            r["node_cpu_us_per_tx"] = 1e6 * r["cpu"]["run_node_cpu_seconds"] / r["confirmed"] / 4
        if probe.raw.exists():
            r["profile"] = summarize_pyspy_raw(probe.raw)
            r["profile"]["node"] = probe.profile_node
            r["profile"]["seconds"] = args.profile_seconds
        warn = []
        for n in tn.names:
            for _, e, f in log_events(tn.datadir(n) / "node.log", {"peer.banned", "peer.dropped"}):
                warn.append(f"{n}: {e} {f.get('peer', '')} {f.get('reason', '')}")
        r["peer_problems"] = warn
        r["reorg_events"] = 0
        per_ktx: list[float] = []
        connect_s: dict[str, float] = {}
        for n in tn.names:
            events = log_events(
                tn.datadir(n) / "node.log", {"chain.reorg", "block.connected", "block.disconnected"}
            )
            r["reorg_events"] += sum(1 for _, e, _ in events if e == "chain.reorg")
            conn = [
                (int(f["txs"]), float(f["ms"]))
                for _, e, f in events
                if e == "block.connected" and int(f.get("txs", 0)) >= 100
            ]
            per_ktx += [1000 * ms / txs for txs, ms in conn]
            connect_s[n] = sum(ms for _, ms in conn) / 1000
        r["block_connect"] = {
            "blocks": len(per_ktx),
            "ms_per_1000_txs_p50": median(per_ktx) if per_ktx else None,
            "ms_per_1000_txs_max": max(per_ktx, default=None),
            "seconds_per_node": connect_s,
        }
        progress("load: stopping the testnet")
    return r


# --- the run -------------------------------------------------------------------------


def run(
    args: argparse.Namespace, workdir: Path, results: dict[str, Any], monitor: CpuMonitor
) -> None:
    phase = Phases(monitor)
    with phase("baseline"):
        results["baseline"] = phase_baseline(args.sigs)

    if not args.skip_net5:
        with Testnet(workdir / "net5") as tn:
            progress("propagation: starting a 5-node testnet (no mining, easy target)")
            tn.up(5, mine=False, easy=True)
            peers = tn.wait_peers(4, 30)
            monitor.pids.update(tn.pids)
            for pid in tn.pids:
                monitor.pids.update(child_pids(pid))
            if min(peers.values()) < 4:
                progress(f"propagation: not fully connected after 30 s: {peers}")
            with tn.client(tn.names[0]) as c:
                chain_id = c.chain_id()
            signer = DemoSigner(tn, chain_id)
            with phase("propagation"):
                results["propagation"] = phase_propagation(
                    tn, signer, args.rounds, args.block_txs, args.step_timeout
                )
                results["propagation"]["peers"] = peers
            with phase("sync"):
                results["sync"] = phase_sync(
                    tn, signer, args.sync_blocks, args.sync_txs, args.sync_timeout, monitor
                )
            progress("stopping the 5-node testnet")

    if not args.skip_load:
        # Signed before any testnet runs, so signing has the machine to itself;
        # the variant reuses them (same chain id, the same keys funded anew).
        prepared = prepare(load_config(workdir, args), LOAD_CHAIN)
        results["load"] = phase_load(
            workdir, args, prepared, mode="all-mine", monitor=monitor, phase=phase
        )
        base = results["baseline"]["verify_per_s_2t"]
        ld = results["load"]
        ld["ratio_to_baseline"] = ld["confirmed_tx_per_s"] * 4 / base
        if args.variant != "none":
            v = phase_load(workdir, args, prepared, mode=args.variant, monitor=monitor, phase=phase)
            v["ratio_to_baseline"] = v["confirmed_tx_per_s"] * 4 / base
            results["load_variant"] = v


# --- output --------------------------------------------------------------------------


def git_state() -> dict[str, Any]:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "powernode"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except OSError:
        return {}
    return {"head": head, "dirty_files_in_powernode": len(dirty)}


def _load_rows(name: str, ld: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    c = ld["config"]
    lat = ld["latency_s"]
    rows.append(
        (
            f"{name}: offered {c['rate']:,.0f} tx/s for {c['duration_s']:.0f} s, "
            f"{c['senders']} senders, batch {c['batch']} x {c['conns_per_node']} conns/node",
            f"{ld['submitted']:,} sent",
            "",
            "",
        )
    )
    rows.append((f"{name}:   sent at", f"{ld['submit_tx_per_s']:,.0f} tx/s", "", ""))
    rej = ", ".join(f"{k} {v:,}" for k, v in ld["rejected_by_reason"].items()) or "none"
    rows.append((f"{name}:   accepted / rejected", f"{ld['accepted']:,} / {rej}", "", ""))
    rows.append(
        (
            f"{name}:   confirmed / accepted, not confirmed",
            f"{ld['confirmed']:,} / {ld['unconfirmed']:,}",
            "",
            "",
        )
    )
    if lat["p50"] is not None:
        rows.append(
            (
                f"{name}:   confirmation latency p50 / p99",
                f"{lat['p50']:.1f} / {lat['p99']:.1f} s",
                "",
                "",
            )
        )
    b = ld["blocks"]
    iv = f"{b['interval_mean_s']:.1f} s" if b["interval_mean_s"] is not None else "-"
    rows.append(
        (
            f"{name}:   blocks, txs mean / max, interval, reorged",
            f"{b['count']}, {b['txs_mean']:,.0f} / {b['txs_max']:,}, {iv}, {b['off_main_chain']}",
            "",
            "",
        )
    )
    bc = ld.get("block_connect", {})
    if bc.get("ms_per_1000_txs_p50") is not None:
        secs = bc["seconds_per_node"]
        rows.append(
            (
                f"{name}:   block connect, ms per 1,000 txs p50 (max); s per node",
                f"{bc['ms_per_1000_txs_p50']:.0f} ({bc['ms_per_1000_txs_max']:.0f}); "
                + " ".join(f"{v:.1f}" for v in secs.values()),
                "",
                "",
            )
        )
    if ld.get("node_cpu_us_per_tx"):
        cpu = ld["cpu"]
        rows.append(
            (
                f"{name}:   node CPU per confirmed tx per node (all threads + workers, "
                f"{cpu['run_node_cpu_seconds']:.0f} s over {cpu['run_seconds']:.0f} s)",
                f"{ld['node_cpu_us_per_tx']:,.0f} us",
                "",
                "",
            )
        )
    tc = ld.get("cpu", {}).get("total_cores", {})
    if tc:
        rows.append(
            (
                f"{name}:   node CPU over the send window (cores)",
                ", ".join(f"{k} {v:.2f}" for k, v in sorted(tc.items())),
                "",
                "",
            )
        )
    return rows


def print_table(results: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str, str]] = []
    b = results.get("baseline")
    if b:
        rows.append(("a Ed25519 verify, 1 thread", f"{b['verify_per_s_1t']:,.0f} /s", "", ""))
        rows.append(
            ("a Ed25519 verify, 2 threads (baseline)", f"{b['verify_per_s_2t']:,.0f} /s", "", "")
        )
        rows.append(
            (
                "a   CPU per verify (2 cores / baseline)",
                f"{2e6 / b['verify_per_s_2t']:,.0f} us",
                "",
                "",
            )
        )
    p = results.get("propagation")
    if p:
        rows.append(
            (
                f"b propagation of a {p['txs_per_block']:,}-tx block to all {p['nodes']} nodes, "
                f"p50 of {len(p['rounds'])}",
                f"{p['propagation_ms_p50']:.0f} ms",
                "",
                "",
            )
        )
        rows.append(
            (
                "b   min / max; first peer p50",
                f"{p['propagation_ms_min']:.0f} / {p['propagation_ms_max']:.0f}; "
                f"{p['first_peer_ms_p50']:.0f} ms",
                "",
                "",
            )
        )
        rows.append(
            (
                "b   dev.mine call to every tip polled, p50",
                f"{p['call_to_all_tips_ms_p50']:.0f} ms",
                "",
                "",
            )
        )
        rows.append(
            (
                "b   1,000 txs into all 5 mempools (gossip), p50",
                f"{p['mempools_filled_s_p50']:.2f} s",
                "",
                "",
            )
        )
    s = results.get("sync")
    if s:
        rows.append(
            (
                f"c late joiner: {s['blocks']} blocks, {s['txs']:,} txs",
                f"{s.get('blocks_per_s', 0):,.0f} blocks/s",
                "",
                "",
            )
        )
        rows.append(("c   tx/s while syncing", f"{s.get('tx_per_s', 0):,.0f} tx/s", "", ""))
        if "node_sync_done" in s:
            d = s["node_sync_done"]
            rows.append(
                (
                    "c   its sync.done line",
                    f"blocks={d['blocks']} ms={d['ms']} blocks_per_s={d['blocks_per_s']}",
                    "",
                    "",
                )
            )
        rows.append(
            (
                "c   process start to tip equal (RPC up after)",
                f"{s['spawn_to_tip_s']:.1f} s ({s['spawn_to_rpc_s']:.1f} s)",
                "",
                "",
            )
        )
    ld = results.get("load")
    if ld and "confirmed_tx_per_s" in ld:
        rows += _load_rows("d", ld)
        rows.append(
            (
                "d confirmed tx/s, 4 nodes mining"
                + (
                    f" (miners capped at {ld['miner_cpu']}% of a core)"
                    if ld.get("miner_cpu", 100) != 100
                    else ""
                ),
                f"{ld['confirmed_tx_per_s']:,.0f} tx/s",
                f">= {TARGET_TX_PER_S:,.0f}",
                "yes" if ld["confirmed_tx_per_s"] >= TARGET_TX_PER_S else "NO",
            )
        )
        rows.append(("d (confirmed tx/s x 4) / baseline", f"{ld['ratio_to_baseline']:.2f}", "", ""))
        if b:
            rows.append(
                (
                    f"d   the target as that ratio: ({TARGET_TX_PER_S:,.0f} x 4) / baseline",
                    f"{TARGET_TX_PER_S * 4 / b['verify_per_s_2t']:.2f}",
                    "",
                    "",
                )
            )
    v = results.get("load_variant")
    if v and "confirmed_tx_per_s" in v:
        rows += _load_rows("d'", v)
        rows.append(
            (
                f"d' confirmed tx/s, {v['mining']}",
                f"{v['confirmed_tx_per_s']:,.0f} tx/s",
                "",
                "",
            )
        )
        rows.append(("d' (confirmed tx/s x 4) / baseline", f"{v['ratio_to_baseline']:.2f}", "", ""))

    env = results["env"]
    print()
    print(
        f"powernode network benchmark: {env['cpus']} CPUs, Python {env['python']}, "
        f"cryptography {env['cryptography']}, git {env.get('git', {}).get('head', '?')} "
        f"({env.get('git', {}).get('dirty_files_in_powernode', '?')} files changed in powernode/)"
    )
    w = max([len(r[0]) for r in rows] + [20])
    vw = max([len(r[1]) for r in rows] + [10])
    print(f"{'figure':<{w}}  {'value':>{vw}}  {'target':<8}  met")
    print("-" * (w + vw + 17))
    for name, value, target, ok in rows:
        print(f"{name:<{w}}  {value:>{vw}}  {target:<8}  {ok}".rstrip())
    for key in ("load", "load_variant"):
        ld = results.get(key)
        if not ld or "cpu" not in ld:
            continue
        cpu = ld["cpu"]
        print(
            f"\n{key}: CPU cores per node thread group over the {cpu['seconds']:.0f} s send window"
        )
        roles = sorted({r for n in cpu["nodes"].values() for r in n})
        print(f"  {'node':<8}" + "".join(f"{r:>9}" for r in roles))
        for node, rs in cpu["nodes"].items():
            print(f"  {node:<8}" + "".join(f"{rs.get(r, 0.0):>9.2f}" for r in roles))
        tc = cpu["total_cores"]
        print(f"  {'total':<8}" + "".join(f"{tc.get(r, 0.0):>9.2f}" for r in roles))
        print(f"  loadgen (this process): {cpu.get('loadgen_cores', 0.0):.2f} cores")
        if ld.get("peer_problems"):
            print(f"  peer problems: {'; '.join(ld['peer_problems'][:5])}")
        print(f"  chain.reorg events in the 4 logs: {ld.get('reorg_events', 0)}")
        prof = ld.get("profile")
        if prof and prof.get("loop_samples"):
            print(
                f"\n{key}: py-spy, {prof['node']} event loop over {prof['seconds']:.0f} s "
                f"({prof['loop_samples']} samples; by thread: "
                + ", ".join(f"{k} {v}" for k, v in prof["samples_by_thread"].items())
                + ")"
            )
            print("  self (top of stack):")
            for fn, _, share in prof["loop_self"][:12]:
                print(f"    {100 * share:5.1f}%  {fn}")
            print("  inclusive (powernode code):")
            shown = 0
            for fn, _, share in prof["loop_inclusive"]:
                if share > 0.98:
                    continue
                print(f"    {100 * share:5.1f}%  {fn}")
                shown += 1
                if shown >= 12:
                    break
    load = results.get("load_phases", {})
    if load:
        busy = {k: v for k, v in load.items() if v["other_cores"] > BUSY_CORES}
        print(
            "\nother processes' CPU load per phase (cores): "
            + ", ".join(f"{k} {v['other_cores']:.2f}" for k, v in load.items())
        )
        if busy:
            print(
                f"WARNING: the machine was busy (> {BUSY_CORES} cores used by other processes) "
                f"during: {', '.join(busy)}; those figures are unreliable"
            )
    for problem in results.get("problems", []):
        print(f"PROBLEM: {problem}")
    if "error" in results:
        print(f"RUN FAILED: {results['error']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    ap.add_argument("--check", action="store_true", help="exit 1 if the tx/s target is missed")
    ap.add_argument("--budget", type=float, default=1200.0, help="hard limit in seconds")
    ap.add_argument("--sigs", type=int, default=4000, help="signatures for the baseline")
    ap.add_argument("--rounds", type=int, default=5, help="propagation: blocks")
    ap.add_argument("--block-txs", type=int, default=1000, help="propagation: txs per block")
    ap.add_argument("--step-timeout", type=float, default=60.0)
    ap.add_argument("--sync-blocks", type=int, default=500, help="sync: blocks to add")
    ap.add_argument("--sync-txs", type=int, default=20, help="sync: txs per block")
    ap.add_argument("--sync-timeout", type=float, default=180.0)
    ap.add_argument("--block-time", type=int, default=2, help="load: genesis block_time")
    # Offered above the target: the figure's window runs from the first
    # submit to the last confirmation, so it includes the drain after the
    # last send, and an offer of exactly 2,000 could never show 2,000.
    ap.add_argument("--load-rate", type=float, default=2400.0, help="load: offered tx/s")
    ap.add_argument("--load-duration", type=float, default=60.0, help="load: seconds")
    ap.add_argument("--senders", type=int, default=400, help="load: fresh sender keys")
    ap.add_argument("--batch", type=int, default=100, help="load: txs per tx.submit batch")
    ap.add_argument(
        "--conns", type=int, default=2, help="load: loadgen connections per node (own senders each)"
    )
    ap.add_argument("--settle", type=float, default=30.0, help="load: s without confirmations")
    ap.add_argument("--confirm-timeout", type=float, default=90.0)
    ap.add_argument("--profile-seconds", type=float, default=20.0, help="0: no py-spy profile")
    ap.add_argument(
        "--variant",
        choices=("dev-mine", "one-miner", "none"),
        default="dev-mine",
        help="second load run: dev.mine every block_time s (no PoW), or only node0 mines",
    )
    ap.add_argument(
        "--nice-miners",
        action="store_true",
        help="experiment: renice the nodes' miner threads to 19 before the load",
    )
    ap.add_argument(
        "--miner-cpu",
        type=int,
        default=10,
        metavar="PCT",
        help="load: cap each node's miner at PCT%% of a core (testnet.py up --miner-cpu; "
        "100: uncapped)",
    )
    ap.add_argument("--skip-net5", action="store_true", help="skip propagation and sync")
    ap.add_argument("--skip-load", action="store_true", help="skip the load phase(s)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=20.0,
        help="wait up to this many s for other processes to go quiet (0: don't)",
    )
    args = ap.parse_args(argv)
    if args.block_txs > 5 * 256:
        ap.error("--block-txs above what the 5 demo keys may have pending (1,280)")

    results: dict[str, Any] = {
        "env": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "cryptography": cryptography.__version__,
            "platform": platform.platform(),
            "git": git_state(),
        }
    }
    workdir = Path(tempfile.mkdtemp(prefix="powernode-netbench-"))
    progress(f"work dir {workdir}; budget {args.budget:.0f} s")
    started = time.monotonic()
    install_budget(args.budget)
    monitor = CpuMonitor()

    def body() -> None:
        if args.wait_quiet > 0:
            load = monitor.wait_quiet(args.wait_quiet, BUSY_CORES)
            results["env"]["other_cores_at_start"] = load
            progress(f"other processes use {load:.2f} cores")
        run(args, workdir, results, monitor)

    try:
        code = run_guarded(body, results)
    finally:
        # Every Testnet stops its nodes on leaving its block; this catches any
        # node a failure left behind under the work dir.
        left = node_pids_under(workdir)
        if left:
            progress(f"stopping {len(left)} leftover node processes")
            stop_pids(left)
        if args.keep:
            progress(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["seconds_total"] = time.monotonic() - started
    results["load_phases"] = monitor.phases
    progress(f"done in {results['seconds_total']:.1f} s")
    print_table(results)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    ld = results.get("load", {})
    if code == 0 and args.check and ld.get("confirmed_tx_per_s", 0) < TARGET_TX_PER_S:
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
