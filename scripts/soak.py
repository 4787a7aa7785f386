"""Soak: a 4-node mining testnet under mixed load, with kill -9 and partitions.

Usage::

    python scripts/soak.py                       # 30 minutes
    python scripts/soak.py --minutes 2 --seed 7  # what CI runs

Four node processes on 127.0.0.1, started as ``scripts/testnet.py up``
starts them (each mining, its miner capped at ``--miner-cpu`` percent of a
core), take a steady stream of transfers (``--rate`` a second) and, every
``--round-every`` seconds, a round of every engine's txs: participants,
devices, approvals, PPAs proposed and accepted, contracts created and
executed, orders placed (one of them cancelled), meter readings for the
orders' slot once it ends, certificate transfers and retirements. Each tx
goes to the running nodes in turn. Every ``--event-every`` seconds comes an
event, kill -9 and partition in turn:

- kill: a random node gets SIGKILL, stays down 1 to 5 s, and is started
  again; its log must show it loaded its chain where it died (the last
  block it connected), and at or above the height it reported before;
- partition: the nodes are split 2|2 or 3|1 at random, each node bans
  (``peer.ban``) every node of the other side; the cut must hold (no links
  across) and money must add up on every node while both sides mine for 8
  to 20 s; then the heal (``peer.unban`` and ``peer.add``) must link every
  node to every other again.

After each event the miners pause until all nodes hold one tip (node0 mines a
block more if two tips tie) and these are checked: one tip and one state
root on every node; money exact (every account's balance plus the market's,
the PPAs' and the contracts' escrows equals the genesis allocations plus a
block reward per block); every tx once seen confirmed (on any node, even on
a side that lost) is confirmed on the common chain, in the same block on
every node (the txs seen since the last check and 300 older ones; every one
of them at the end); no tx twice in the chain. At the end the load stops,
what it sent gets up to ``--drain`` s to confirm, the checks run in full,
each node's memory must level off (VmRSS sampled every 5 s: the max over
the last quarter of the run must stay under ``--rss-ratio`` x the max
over 20%..45% of it, plus ``--rss-slack-mib``) and every node must stop
cleanly. The load never signs two txs with one sender and nonce (a tx a
killed node lost is sent again byte for byte), so a tx seen confirmed that
goes missing is a lost tx, not a double spend.

Output: one line per event (``[seconds] event key=value ...``), a progress
line every 15 s, then a table: events survived, txs, checks passed and
failed, RSS start/peak/end per node. Exit status 0 when every check passed,
1 when one failed, 2 when the soak itself could not run, 130 on Ctrl-C.
A temporary work dir is removed after a run that exits 0 without
``--keep``; a ``--dir`` given is never removed.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchkit.soak.checks import ChainScan, Money, Rss, Unstable, batched, confirmed_on_all
from benchkit.soak.cluster import Cluster
from benchkit.soak.load import Load, Sent

from powernode.client import RpcError, RpcUnavailable
from powernode.core.crypto import KeyPair, sha256
from powernode.devnet.devchain import (
    DEV_TARGET,
    TESTNET_CERTIFICATES,
    TESTNET_MARKETS,
    dev_genesis,
    testnet_target,
)
from powernode.devnet.process import NodeExited
from powernode.devnet.testnet import TestnetLayout
from powernode.devnet.wait import WaitTimeout
from powernode.devnet.workload import Parties

NODES = 4
FUNDS = 1_000_000 * 1_000_000
BLOCK_REWARD = 50_000_000
RSS_EVERY = 5.0
PROGRESS_EVERY = 15.0
OLD_SAMPLE = 300  # older seen-confirmed txs checked again after each event


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.t0 = time.monotonic()
        self.workdir = workdir
        self.counts = {"kills": 0, "restarts": 0, "partitions": 0, "heals": 0}
        self.passed = 0
        self.failures: list[str] = []
        self.checked: set[str] = set()
        self.scan = ChainScan()
        self.rss = Rss()
        self.rss_rows: dict[int, dict[str, Any]] = {}
        self._chain_now = (0.0, 0)
        self._last_rss = self._last_progress = 0.0
        seed = args.seed

        def key(tag: str) -> KeyPair:
            return KeyPair.from_seed(sha256(b"soak-%d-%s" % (seed, tag.encode())))

        self.parties = Parties(
            authority=key("authority"),
            producers=[key(f"producer-{i}") for i in range(2)],
            consumers=[key(f"consumer-{i}") for i in range(2)],
            meters=[],
            cmeters=[],
        )
        self.payers = [key(f"payer-{i}") for i in range(4)]
        funded = [
            self.parties.authority,
            *self.parties.producers,
            *self.parties.consumers,
            *self.payers,
        ]
        genesis = dev_genesis(
            {k.address: FUNDS for k in funded},
            chain_id="powernode-soak",
            block_time=2,
            target=testnet_target(args.miner_cpu),
            pow_limit=DEV_TARGET,
            asert_halflife=600,
            block_reward=BLOCK_REWARD,
            markets=TESTNET_MARKETS,
            certificates={
                "authorities": [self.parties.authority.address.hex()],
                **TESTNET_CERTIFICATES,
            },
            comment="soak testnet genesis written by scripts/soak.py",
        )
        self.layout = TestnetLayout.create(workdir / "testnet", genesis, nodes=NODES, demo=funded)
        self.cluster = Cluster(self.layout, miner_cpu=args.miner_cpu)
        self.load = Load(
            chain_id=genesis["chain_id"],
            rng=self.rng,
            parties=self.parties,
            payers=self.payers,
            rate=args.rate,
            round_every=args.round_every,
            seed=seed,
        )
        self.money = Money(
            addresses=[k.address.hex() for k in funded] + [n.address for n in self.layout.nodes],
            participants=[
                k.address.hex() for k in (*self.parties.producers, *self.parties.consumers)
            ],
            producers=[k.address.hex() for k in self.parties.producers],
            allocated=FUNDS * len(funded),
            block_reward=BLOCK_REWARD,
        )

    # --- output ---------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.t0

    def emit(self, event: str, **fields: Any) -> None:
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        print(f"[{self.now():7.1f}s] {event} {text}".rstrip(), flush=True)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            self.emit("check.ok", check=name, detail=detail)
        else:
            self.failures.append(f"{name}: {detail}")
            self.emit("check.FAILED", check=name, detail=detail)
        return ok

    # --- the running load -------------------------------------------------------------

    def chain_now(self) -> int:
        """The chain's metering clock (``cert.params`` now), read at most once a second."""
        at, value = self._chain_now
        if time.monotonic() - at >= 1.0:
            for i in self.cluster.alive():
                try:
                    value = int(self.cluster.call(i, "cert.params")["now"])
                    self._chain_now = (time.monotonic(), value)
                    break
                except (RpcError, RpcUnavailable, OSError):
                    continue
        return value

    def step(self) -> None:
        """One turn of the background work: the load, RSS samples, progress."""
        now = self.now()
        self.load.tick(self.cluster, now, self.chain_now)
        if now - self._last_rss >= RSS_EVERY:
            self._last_rss = now
            for i in self.cluster.alive():
                self.rss.sample(i, self.cluster.nodes[i].pid, now)
        if now - self._last_progress >= PROGRESS_EVERY:
            self._last_progress = now
            self.progress()
        time.sleep(0.02)

    def pump(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Keep the load going for ``seconds`` or until ``until()`` (asked
        every half second); whether ``until`` held."""
        end = self.now() + seconds
        asked = -1.0
        while self.now() < end:
            if until is not None and self.now() - asked >= 0.5:
                asked = self.now()
                if until():
                    return True
            self.step()
        return until is not None and until()

    def progress(self) -> None:
        heights = []
        for i in range(NODES):
            try:
                heights.append(str(self.cluster.call(i, "node.info")["height"]))
            except (RpcError, RpcUnavailable, OSError):
                heights.append("down")
        ld = self.load
        self.emit(
            "progress",
            heights=",".join(heights),
            sent=len(ld.sent),
            seen_confirmed=len(ld.seen_confirmed()),
            unconfirmed=len(ld.unconfirmed()),
            rounds=f"{ld.rounds_done}/{len(ld.rounds)}",
            checks_failed=len(self.failures),
        )

    # --- events ---------------------------------------------------------------------------

    def kill_event(self) -> None:
        alive = self.cluster.alive()
        i = alive[self.rng.randrange(len(alive))]
        seen = self.cluster.call(i, "node.info")
        offset, pid = self.cluster.kill(i)
        self.counts["kills"] += 1
        self.emit("kill", node=i, pid=pid, height=seen["height"])
        self.pump(self.rng.uniform(1.0, 5.0))
        try:
            r = self.cluster.restart(i, offset)
        except (NodeExited, WaitTimeout) as exc:
            self.check("restart after kill -9", False, f"node{i}: {exc}")
            raise
        self.counts["restarts"] += 1
        self.emit(
            "restart",
            node=i,
            ms=f"{r.ms:.0f}",
            died_at=r.died_at,
            loaded_at=r.loaded_at,
            exact=r.exact,
        )
        # A block committed as the node died may lack its log line: it loads one higher.
        at_last = r.exact or (r.loaded_at == r.died_at + 1 and r.died_hash != "")
        self.check(
            "restart at last connected block",
            at_last and r.loaded_at >= seen["height"],
            f"node{i} died at {r.died_at} {r.died_hash}, loaded {r.loaded_at} {r.loaded_hash}, "
            f"reported {seen['height']} before the kill",
        )
        self.settle_check(f"after restarting node{i}")

    def partition_event(self) -> None:
        order = list(range(NODES))
        self.rng.shuffle(order)
        small = self.rng.choice([1, 2])
        side_b, side_a = sorted(order[:small]), sorted(order[small:])
        self.cluster.partition(side_a, side_b)
        self.counts["partitions"] += 1
        self.emit("partition", side_a=side_a, side_b=side_b)
        held = self.pump(15.0, until=self.cluster.cut_holds)
        self.check("partition cuts every link across", held, f"{side_a}|{side_b}")
        self.pump(self.rng.uniform(8.0, 20.0))
        for i in side_a + side_b:
            self.money_check(i, f"on node{i} while partitioned")
        try:
            self.cluster.heal(timeout=60)
            healed = ""
        except WaitTimeout as exc:
            healed = str(exc)
        self.counts["heals"] += 1
        self.emit("heal", side_a=side_a, side_b=side_b)
        self.check("heal links every node to every other", not healed, healed)
        self.settle_check(f"after healing {side_a}|{side_b}")

    def money_check(self, i: int, when: str) -> None:
        try:
            ok, detail = self.money.check(self.cluster, i)
        except Unstable as exc:
            ok, detail = False, str(exc)
        self.check(f"money exact {when}", ok, detail)

    def reconfirmed(self, txids: list[str]) -> bool:
        """Every one of ``txids`` is confirmed on node0 (a reorg at the heal
        puts the losing side's txs back in the pools until mined again)."""
        try:
            got = batched(self.cluster, 0, [("tx.get", {"id": t}) for t in txids])
        except (RpcUnavailable, OSError):
            return False
        return all(isinstance(st, dict) and st.get("status") == "confirmed" for st in got)

    def settle_check(self, when: str, *, full: bool = False) -> None:
        seen = self.load.seen_confirmed()
        subset = self._subset(seen, full)
        # With the miners on and the load running, until the txs seen
        # confirmed are in blocks again; a tx that never is fails below.
        again = self.pump(self.args.settle_timeout, until=lambda: self.reconfirmed(list(subset)))
        if not again:
            self.emit("settle.slow", when=when, txs=len(subset))
        try:
            tips = self.cluster.settle(timeout=self.args.settle_timeout)
        except WaitTimeout as exc:
            self.check(f"one tip {when}", False, str(exc))
            self.cluster.resume_mining()
            return
        tip, root, height = tips[0]
        same = len({(t, r) for t, r, _ in tips}) == 1
        self.check(
            f"one tip and state root {when}",
            same,
            f"height={height} tip={tip[:16]} root={root[:16]}",
        )
        for i in range(NODES) if full else [0]:
            self.money_check(i, when)
        problems = confirmed_on_all(self.cluster, list(range(NODES)), subset)
        self.checked |= set(subset)
        self.check(
            f"seen-confirmed txs confirmed once {when}",
            not problems,
            f"{len(subset)} of {len(seen)} txs on {NODES} nodes"
            + (f": {problems}" if problems else ""),
        )
        dups = self.scan.duplicates(self.cluster, 0, height, full=full)
        self.check(
            f"no tx twice in the chain {when}",
            not dups,
            f"{height} blocks" + (f": {dups}" if dups else ""),
        )
        self.cluster.resume_mining()

    def _subset(self, seen: dict[str, Sent], full: bool) -> dict[str, Sent]:
        if full:
            return seen
        new = {t: s for t, s in seen.items() if t not in self.checked}
        old = [t for t in seen if t in self.checked]
        for t in self.rng.sample(old, min(OLD_SAMPLE, len(old))):
            new[t] = seen[t]
        return new

    # --- the run ------------------------------------------------------------------------------

    def run(self) -> None:
        a = self.args
        self.emit("testnet.starting", nodes=NODES, dir=self.workdir, seed=a.seed)
        self.cluster.start(timeout=60, log=lambda m: self.emit("testnet.retry", why=m))
        for i, n in enumerate(self.layout.nodes):
            self.emit(
                "node.up", node=i, pid=self.cluster.nodes[i].pid, rpc=n.rpc_port, p2p=n.p2p_port
            )
        end = a.minutes * 60
        every = a.event_every
        next_event = min(15.0, every)
        kinds = [self.kill_event, self.partition_event]
        fired = 0
        while self.now() < end:
            if self.now() >= next_event and end - self.now() > 20:
                kinds[fired % 2]()
                fired += 1
                next_event = self.now() + every
            self.step()
        self.finish()

    def finish(self) -> None:
        a = self.args
        total = self.now()
        self.emit("load.stopping", unconfirmed=len(self.load.unconfirmed()))
        self.load.stopped = True
        self.pump(a.drain, until=lambda: not self.load.unconfirmed())
        pending = len(self.load.unconfirmed())
        self.emit("load.stopped", unconfirmed=pending)
        self.settle_check("at the end", full=True)
        for i in range(NODES):
            v = self.rss.verdict(i, total, ratio=a.rss_ratio, slack_mib=a.rss_slack_mib)
            self.rss_rows[i] = v
            self.check(
                f"node{i} memory levels off",
                not v["growing"],
                f"early max {v['early'] // 1024} MiB, late max {v['late'] // 1024} MiB, "
                f"limit {v.get('limit', 0) // 1024} MiB",
            )
        codes = self.cluster.stop()
        self.check("every node stops cleanly", all(c == 0 for c in codes), f"exit codes {codes}")

    # --- the table -----------------------------------------------------------------------------

    def reorgs(self) -> int:
        return sum(n.log_text().count("chain.reorg") for n in self.cluster.nodes)

    def table(self) -> str:
        ld = self.load
        seen = ld.seen_confirmed()
        rows = [
            ("seed", str(self.args.seed)),
            ("minutes", f"{self.now() / 60:.1f}"),
            ("kill -9", str(self.counts["kills"])),
            ("restarts", str(self.counts["restarts"])),
            ("partitions", str(self.counts["partitions"])),
            ("heals", str(self.counts["heals"])),
            ("reorgs (chain.reorg lines in node logs)", str(self.reorgs())),
            ("txs submitted", str(len(ld.sent))),
            ("txs confirmed", str(len(seen))),
            ("txs unconfirmed at the end", str(len(ld.unconfirmed()))),
            ("txs given up (refused again and again)", str(len(ld.given_up))),
            (
                "engine rounds completed / given up / started",
                f"{ld.rounds_done} / {ld.rounds_given_up} / {len(ld.rounds)}",
            ),
            ("checks passed", str(self.passed)),
            ("checks failed", str(len(self.failures))),
        ]
        w = max(len(r[0]) for r in rows)
        out = ["", "soak: events survived", "-" * (w + 12)]
        out += [f"{name:<{w}}  {value:>10}" for name, value in rows]
        out.append("txs by type: " + ", ".join(f"{k} {v}" for k, v in sorted(ld.kinds.items())))
        out.append(
            "refusals by reason: "
            + (", ".join(f"{k} {v}" for k, v in sorted(ld.refused.items())) or "none")
        )
        out += [
            "",
            f"{'node':<6}{'rss start':>11}{'peak':>9}{'end':>9}{'early max':>11}{'late max':>10}  (MiB)",
        ]
        for i in range(NODES):
            v = self.rss_rows.get(i) or self.rss.verdict(i, self.now(), ratio=1.0, slack_mib=0)
            out.append(
                f"node{i:<2}{v['start'] // 1024:>11}{v['peak'] // 1024:>9}{v['end'] // 1024:>9}"
                f"{v['early'] // 1024:>11}{v['late'] // 1024:>10}"
            )
        for f in self.failures:
            out.append(f"failed: {f}")
        for g in ld.given_up[:20]:
            out.append(f"given up: {g}")
        return "\n".join(out)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    ap.add_argument(
        "--event-every",
        type=float,
        default=None,
        help="s between events (default: 20 for runs up to 5 minutes, else 45)",
    )
    ap.add_argument("--rate", type=float, default=4.0, help="transfers a second (default 4)")
    ap.add_argument(
        "--round-every", type=float, default=30.0, help="s between engine rounds (default 30)"
    )
    ap.add_argument(
        "--miner-cpu", type=int, default=25, help="percent of a core per miner (default 25)"
    )
    ap.add_argument(
        "--drain", type=float, default=90.0, help="s for the last txs to confirm (default 90)"
    )
    ap.add_argument(
        "--settle-timeout", type=float, default=60.0, help="s for the nodes to meet on one tip"
    )
    ap.add_argument(
        "--rss-ratio",
        type=float,
        default=1.25,
        help="RSS growth allowed, late/early (default 1.25)",
    )
    ap.add_argument("--rss-slack-mib", type=int, default=32, help="plus this many MiB (default 32)")
    ap.add_argument(
        "--dir", type=Path, default=None, help="work dir (default: a new temporary one)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    a = ap.parse_args(argv)
    if a.seed is None:
        a.seed = random.randrange(1 << 30)
    if a.event_every is None:
        a.event_every = 20.0 if a.minutes <= 5 else 45.0
    positive = ("minutes", "rate", "event_every", "round_every", "drain", "settle_timeout",
                "rss_ratio")  # fmt: skip
    bad = [f"--{k.replace('_', '-')}" for k in positive if not getattr(a, k) > 0]
    if bad or a.rss_slack_mib < 0 or not 1 <= a.miner_cpu <= 100:
        ap.error(
            "--minutes, --rate, --event-every, --round-every, --drain, --settle-timeout and "
            "--rss-ratio must be positive, --rss-slack-mib 0 or more, --miner-cpu 1..100"
            + (f" (not: {', '.join(bad)})" if bad else "")
        )
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    workdir = a.dir or Path(tempfile.mkdtemp(prefix="powernode-soak-"))
    soak: Soak | None = None
    code = 0
    try:
        soak = Soak(a, workdir)
        soak.run()
        code = 1 if soak.failures else 0
    except KeyboardInterrupt:
        code = 130
        print("soak: interrupted", file=sys.stderr)
    except (NodeExited, WaitTimeout, RpcError, RpcUnavailable, OSError, Unstable) as exc:
        code = 2
        print(f"soak: could not go on: {exc}", file=sys.stderr)
    finally:
        if soak is not None:
            soak.cluster.stop()
            print(soak.table(), flush=True)
            if soak.failures:
                code = code or 1
    if code == 0 and not a.keep and a.dir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"soak: work dir kept: {workdir}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
