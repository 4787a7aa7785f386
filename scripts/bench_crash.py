"""Crash benchmark: ``kill -9`` a mining node under load, many times.

Usage::

    python scripts/bench_crash.py                  # 100 trials; progress on stderr, table on stdout
    python scripts/bench_crash.py --trials 10 --seed 7 --json

One node (``powernode run``, mining, a few blocks a second) on a fresh
dev chain in a temporary directory takes transfers from ``--senders`` keys
as fast as it accepts them. Each trial, after one to three new blocks under
load and a random pause (0 to 1 s, from ``--seed``), it reads the tip and
which of a sample of accepted txs are confirmed, kills the node with
SIGKILL, copies its store files as the crash left them, and starts it again.
A trial fails if any of these does not hold:

- the node restarts (the time from spawn to RPC answering is the restart
  time) at its last connected block: the crash image's tip is on its chain,
  at or above the tip read before the kill;
- every tx seen confirmed before the kill is confirmed in the same block
  after it, and no account nonce went back;
- the crash image holds exactly what a replay of its own blocks from
  genesis gives (tip and every state record), and the supply is exact
  (allocations plus a block reward per block).

Figures: trials, failures, restart time p50/p99/max, blocks, txs checked.
Exit status: 0 when every trial passed, 1 when one failed, 2 when the run
itself broke or ran out of ``--budget``, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from typing import Any

from benchkit.guard import percentile, progress
from benchkit.runner import BenchRun, Row, Targets, bench_parser, parse_args, print_figures, target

from powernode.client import RpcClient, RpcError
from powernode.core.crypto import KeyPair, sha256
from powernode.devnet.crash import Replay, ReplayMismatch, TransferLoad, snapshot_store
from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import ProcessNode
from powernode.devnet.wait import wait_until

CHAIN_ID = "powernode-bench-crash"
FUNDS = 10_000 * 1_000_000
# About one block per 4,000 PBKDF2 hashes: a few blocks a second from one miner.
TARGET = format((1 << 256) // 4000, "064x")
SAMPLE = 50  # accepted txs looked up before each kill


class TrialFailed(Exception):
    """One of the trial's checks did not hold."""


def check_trial(
    node: ProcessNode,
    seen: dict[str, Any],
    confirmed: dict[str, str],
    nonces: dict[str, int],
    image_tip: tuple[int, str],
) -> None:
    c = node.rpc
    info = c.call("node.info")
    if info["height"] < seen["height"]:
        raise TrialFailed(f"restarted at {info['height']}, below the tip {seen['height']} seen")
    if c.call("chain.block", {"height": seen["height"]})["hash"] != seen["tip"]:
        raise TrialFailed(f"the block seen at {seen['height']} is gone")
    height, tip = image_tip
    if height < seen["height"]:
        raise TrialFailed(f"the crash image ends at {height}, below the tip seen")
    if c.call("chain.block", {"height": height})["hash"] != tip:
        raise TrialFailed(f"restarted off the crash image's tip {tip[:16]} at {height}")
    calls = [("tx.get", {"id": txid}) for txid in confirmed]
    for (txid, block), st in zip(confirmed.items(), c.batch(calls), strict=True):
        if isinstance(st, RpcError) or st["status"] != "confirmed" or st["block"] != block:
            raise TrialFailed(f"tx {txid[:16]}, confirmed before the kill, is now {st}")
    calls = [("account.get", {"address": a}) for a in nonces]
    for (addr, nonce), acct in zip(nonces.items(), c.batch(calls), strict=True):
        if acct["nonce"] < nonce:
            raise TrialFailed(f"account {addr[:16]} nonce went back: {acct['nonce']} < {nonce}")


def run(args: argparse.Namespace, bench: BenchRun) -> None:
    r = bench.results
    rng = random.Random(args.seed)
    r["seed"] = args.seed
    progress(f"seed {args.seed}")
    senders = [
        KeyPair.from_seed(sha256(b"bench-crash-%d-%d" % (args.seed, i)))
        for i in range(args.senders)
    ]
    genesis = write_genesis(
        bench.workdir / "genesis.json",
        dev_genesis(
            {s.address: FUNDS for s in senders}, chain_id=CHAIN_ID, target=TARGET, block_time=1
        ),
    )
    datadir = bench.workdir / "node"
    init_datadir(datadir, genesis, mining=True)
    replay = Replay(genesis, bench.workdir / "replay.db")
    restarts: list[float] = []
    failures: list[str] = []
    checked_txs = 0
    replayed = 0
    r.update(trials=0, failures=0, restart_ms={}, failed=failures)
    with ProcessNode(datadir, name="node") as node:
        node.start()
        try:
            for trial in range(1, args.trials + 1):
                load = TransferLoad(node, senders, CHAIN_ID)
                load.start()
                start = node.call("node.info")["height"]
                blocks = rng.randint(1, 3)

                def grown(s: int = start, b: int = blocks) -> bool:
                    return node.call("node.info")["height"] >= s + b

                wait_until(
                    grown,
                    timeout=60,
                    what="blocks under load",
                )
                # A random moment to kill at, not a wait for a condition.
                time.sleep(rng.uniform(0.0, 1.0))
                seen = node.call("node.info")
                # The older two thirds of what the node took: most of those are
                # in blocks by now, the newest are still pending.
                older = load.accepted[: max(1, len(load.accepted) * 2 // 3)]
                sample = rng.sample(older, min(SAMPLE, len(older)))
                confirmed = {}
                with RpcClient(node.endpoint, timeout=30) as c:
                    got = c.batch([("tx.get", {"id": t}) for t in sample])
                    accts = c.batch(
                        [("account.get", {"address": s.address.hex()}) for s in senders]
                    )
                for txid, st in zip(sample, got, strict=True):
                    if not isinstance(st, RpcError) and st["status"] == "confirmed":
                        confirmed[txid] = st["block"]
                nonces = {s.address.hex(): a["nonce"] for s, a in zip(senders, accts, strict=True)}
                node.kill()
                load.halt.set()
                load.join(15)
                image = snapshot_store(datadir, bench.workdir / "image")
                t0 = time.monotonic()
                node.start(timeout=60)
                restarts.append(time.monotonic() - t0)
                outcome = "ok"
                try:
                    res = replay.check(image)
                    replayed += res.replayed
                    outcome = f"image height {res.height}, ok"
                    check_trial(node, seen, confirmed, nonces, (res.height, res.tip))
                    checked_txs += len(confirmed)
                except (TrialFailed, ReplayMismatch) as exc:
                    failures.append(f"trial {trial}: {exc}")
                    outcome = f"FAILED: {exc}"
                    replay.close()  # start the replay again from genesis next time
                r["trials"] = trial
                r["failures"] = len(failures)
                progress(
                    f"trial {trial}/{args.trials}: killed at height {seen['height']} "
                    f"({len(load.accepted)} txs accepted since start of trial, "
                    f"{len(confirmed)} sampled confirmed), restart "
                    f"{restarts[-1] * 1000:.0f} ms: {outcome}"
                )
        finally:
            replay.close()
            try:
                r["height"] = node.call("node.info")["height"]
            except Exception:
                r["height"] = None
    r["checked_txs"] = checked_txs
    r["replayed_blocks"] = replayed
    if restarts:
        ms = [x * 1000 for x in restarts]
        r["restart_ms"] = {
            "p50": percentile(ms, 50),
            "p99": percentile(ms, 99),
            "max": max(ms),
        }


def targets(r: dict[str, Any]) -> Targets:
    if not r.get("trials"):
        return {}
    return {
        "trials": target(r["trials"], r["args"]["trials"]),
        "failures": target(r["failures"], 0, at_most=True),
    }


def print_table(r: dict[str, Any]) -> None:
    rows: list[Row] = [("seed", str(r.get("seed")), "", "")]
    t = targets(r)
    if "trials" in t:
        rows.append(("trials (kill -9 under load)", str(r["trials"]), t["trials"]["target"], ""))
        rows.append(("failures", str(r["failures"]), "0", "yes" if t["failures"]["met"] else "NO"))
    rs = r.get("restart_ms", {})
    if rs:
        for q in ("p50", "p99", "max"):
            rows.append((f"restart time {q} (spawn to RPC)", f"{rs[q]:.0f} ms", "", ""))
    if r.get("height") is not None:
        rows.append(("blocks at the end", str(r["height"]), "", ""))
    rows.append(("txs seen confirmed, checked after a kill", str(r.get("checked_txs", 0)), "", ""))
    rows.append(("blocks replayed from crash images", str(r.get("replayed_blocks", 0)), "", ""))
    print_figures("kill -9 trials", rows)
    for f in r.get("failed", []):
        print(f"failed: {f}")
    if "error" in r:
        print(f"error: {r['error']}")


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__ or "", budget=7200.0)
    ap.add_argument("--trials", type=int, default=100, help="kill -9 trials (default 100)")
    ap.add_argument("--senders", type=int, default=6, help="keys sending transfers")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    args = parse_args(ap, argv)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    if args.trials < 1 or args.senders < 1:
        ap.error("--trials and --senders must be at least 1")
    bench = BenchRun(args, workdir="powernode-crash-")
    bench.results["args"] = vars(args)
    code = bench.execute(lambda: run(args, bench))
    code = bench.finish(code, print_table, targets=targets)
    if code == 0 and bench.results.get("failures"):
        code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
