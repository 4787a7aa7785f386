"""Phase d of ``scripts/bench_network.py``: sustained load on a 4-node testnet
(``LoadProbe`` for the nodes' CPU and a py-spy profile, ``DevMiner`` for the
``dev-mine`` variant, ``phase_load`` for one run)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from loadgen import run_load

from benchkit.cpu import (
    CpuMonitor,
    Phases,
    child_pids,
    cpu_by_role,
    pyspy_path,
    summarize_pyspy_raw,
    thread_names,
)
from benchkit.guard import median, progress
from benchkit.load.sign import LoadConfig, Prepared
from benchkit.net.testnet import Testnet, log_events
from powernode.client import RpcError, RpcUnavailable
from powernode.core.pow import block_work

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
        self.pids = {n.name: n.pid for n in tn.nodes if n.pid}
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
        # --gil: samples of the thread holding the GIL only, so time spent
        # waiting (for the verify workers, a core, a socket) is not counted
        # as work.
        cmd += ["--threads", "--gil", "--format", "raw", "-o", str(self.raw)]
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
            by_role: dict[str, float] = {}
            for n, roles in self.final.items():
                for r, v in roles.items():
                    by_role[r] = by_role.get(r, 0.0) + v - self.before.get(n, {}).get(r, 0.0)
            out["run_cpu_seconds_by_role"] = by_role
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
    for pid in tn.pids:
        for tid, name in thread_names(pid).items():
            if name.startswith("miner"):
                os.setpriority(os.PRIO_PROCESS, tid, 19)
                done += 1
    return done


LOAD_MODES = {
    "all-mine": "all 4 nodes mine",
    "one-miner": "only node0 mines",
    "dev-mine": "no PoW: dev.mine on node0 every block_time s",
}


def miner_rates(tn: Testnet) -> dict[str, Any]:
    """Each node's PoW hashes per second while it mined (its miner stopped
    over RPC: the ``miner.started`` to ``miner.stopped hashes=`` lines of its
    log), and the block interval the genesis target gives at their sum: what
    ``testnet_target`` is calibrated against (powernode/devnet/devchain.py)."""
    rates: dict[str, float] = {}
    for n in tn.names:
        with tn.client(n) as c:
            c.call("miner.stop")
        events = log_events(tn.datadir(n) / "node.log", {"miner.started", "miner.stopped"})
        started = [t for t, e, _ in events if e == "miner.started"]
        stopped = [(t, int(f.get("hashes", 0))) for t, e, f in events if e == "miner.stopped"]
        if started and stopped and stopped[-1][0] > started[0]:
            rates[n] = stopped[-1][1] / (stopped[-1][0] - started[0])
    genesis = json.loads((tn.root / "genesis.json").read_text())
    work = block_work(int(genesis["initial_target"], 16))
    total = sum(rates.values())
    return {
        "hashes_per_s": rates,
        "work_per_block": work,
        "expected_interval_s": work / total if total else None,
        "genesis_block_time": genesis["block_time"],
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
        if not dev:
            r["miners"] = miner_rates(tn)
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
            # By role: the miner's hashing is a share of a core per node
            # (--miner-cpu), spent whatever the load, so it is shown apart
            # and left out of the per-tx figure that follows the txs.
            by_role = {
                role: 1e6 * secs / r["confirmed"] / 4
                for role, secs in r["cpu"]["run_cpu_seconds_by_role"].items()
            }
            r["node_cpu_us_per_tx_by_role"] = by_role
            r["node_cpu_us_per_tx_without_miner"] = sum(
                v for role, v in by_role.items() if role != "miner"
            )
        if probe.raw.exists():
            r["profile"] = summarize_pyspy_raw(probe.raw)
            r["profile"]["node"] = probe.profile_node
            r["profile"]["seconds"] = args.profile_seconds
            if args.profile_out is not None:
                shutil.copyfile(probe.raw, args.profile_out)
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
