"""A local powernode testnet: N node processes on 127.0.0.1 (with ``--netns``, each on a host of its own).

    python scripts/testnet.py up --nodes 3         # keys, genesis, configs; start, connected, mining
    python scripts/testnet.py status [--json]      # height, tip, peers, mempool of every node
    python scripts/testnet.py logs [--no-follow]   # all node logs merged by time, prefixed by node
    python scripts/testnet.py kill 1               # kill -9 node1 (for experiments)
    python scripts/testnet.py restart 1            # stop (if running) and start node1 again
    python scripts/testnet.py down                 # stop every node cleanly
    python scripts/testnet.py up --netns           # (root) each node a host of its own, see below
    python scripts/testnet.py partition 0,1 2,3,4  # (--netns) cut the network in two sides
    python scripts/testnet.py isolate 2            # (--netns) cut one node off
    python scripts/testnet.py heal                 # (--netns) one network again

Every subcommand takes ``--dir`` (default ``testnet/local``). Layout::

    DIR/testnet.json        nodes, ports, pids
    DIR/genesis.json        one genesis for all nodes, funding the demo keys
    DIR/keys/demoK.key      funded demo accounts (hex private keys)
    DIR/nodeI/              each node's data dir (node.log, chain.db, ...)

With ``--netns`` every node runs in a network namespace of its own, at
127.77.S.(10+I) on a bridge (``powernode.devnet.netns``); ``down`` removes
the namespaces. Reach a node's RPC from a shell with ``ip netns exec``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from powernode.cli.common import counted
from powernode.client import RpcError, RpcUnavailable
from powernode.core.crypto import KeyPair
from powernode.devnet import netns
from powernode.devnet.devchain import (
    DEV_FUNDS,
    DEV_TARGET,
    TESTNET_CERTIFICATES,
    TESTNET_MARKETS,
    dev_genesis,
    testnet_target,
)
from powernode.devnet.netns import NetnsError, NetnsPlan
from powernode.devnet.process import NodeExited, pid_alive, stop_pids
from powernode.devnet.testnet import NoTestnet, TestnetLayout, TestnetNode, start_testnet
from powernode.devnet.wait import WaitTimeout

DEFAULT_DIR = Path("testnet/local")
RPC_TIMEOUT = 30.0  # s for a node to serve RPC after it starts


def load(d: Path) -> TestnetLayout:
    try:
        return TestnetLayout.load(d)
    except NoTestnet:
        raise SystemExit(f"testnet: no testnet in {d} (run 'up' first)") from None


# --- commands -----------------------------------------------------------------


def cmd_up(a: argparse.Namespace) -> int:
    d: Path = a.dir
    refuse_foreign_dir(d, force=a.force)
    if any(pid_alive(n.pid) for n in nodes_of(d)):
        raise SystemExit(f"testnet: {d} is already running; 'down' it first")
    if a.netns and (why := netns.unavailable()) is not None:
        raise SystemExit(f"testnet: --netns: {why}")
    if a.netns and a.nodes > netns.MAX_NODES:
        # Before DIR is replaced: a refused run deletes nothing.
        raise SystemExit(f"testnet: --netns: a netns testnet has at most {netns.MAX_NODES} nodes")
    # Namespaces a crashed earlier run of this directory left (with any
    # process still in them) go first, whichever mode this run uses.
    try:
        netns.destroy(NetnsPlan.for_dir(d))
    except NetnsError as exc:
        raise SystemExit(f"testnet: {exc}") from None
    if d.exists():
        shutil.rmtree(d)
    demo = [KeyPair.generate() for _ in range(a.accounts)]
    genesis = dev_genesis(
        {k.address: DEV_FUNDS for k in demo},
        chain_id=a.chain_id,
        block_time=a.block_time,
        target=(
            DEV_TARGET
            if a.easy
            else testnet_target(a.miner_cpu, miners=a.nodes, block_time=a.block_time)
        ),
        pow_limit=DEV_TARGET,
        asert_halflife=600,
        markets=TESTNET_MARKETS,
        certificates={
            "authorities": sorted(k.address.hex() for k in demo),
            **TESTNET_CERTIFICATES,
        },
        comment="local testnet genesis written by scripts/testnet.py",
    )
    try:
        tn = TestnetLayout.create(d, genesis, nodes=a.nodes, demo=demo, netns=a.netns)
        procs = start_testnet(
            tn, mining=not a.no_mine, miner_cpu=a.miner_cpu, timeout=RPC_TIMEOUT, log=print
        )
    except (NodeExited, WaitTimeout, NetnsError) as exc:
        raise SystemExit(f"testnet: {exc}") from None
    for n, p in zip(tn.nodes, procs, strict=True):
        info = p.call("node.info")
        p.close_rpc()
        where = f"  netns {n.netns}" if n.netns else ""
        # The web explorer is on the RPC port's / (the testnet genesis is a dev one).
        explorer = f"  explorer {info['rpc'].removesuffix('rpc')}" if info.get("explorer") else ""
        print(f"{p.name}: rpc {info['rpc']}{explorer}  p2p {info['p2p']}{where}  log {p.log_path}")
    print(
        f"testnet {a.chain_id} up in {d}: {counted(a.nodes, 'node')}, mining {'off' if a.no_mine else 'on'}"
    )
    return 0


def refuse_foreign_dir(d: Path, *, force: bool) -> None:
    """``up`` replaces DIR, so DIR must be missing, empty or a testnet this
    script made (its ``testnet.json`` loads); anything else (a typo'd
    ``--dir .``, a home directory) is refused unless ``--force``."""
    if not d.exists():
        return
    if not d.is_dir():
        raise SystemExit(f"testnet: {d} exists and is not a directory")
    if force or not any(d.iterdir()):
        return
    if nodes_of(d):
        return
    raise SystemExit(
        f"testnet: {d} is not empty and holds no testnet made by this script "
        "(no readable testnet.json); 'up' would delete it: give a new --dir, "
        "or --force to delete it anyway"
    )


def nodes_of(d: Path) -> list[TestnetNode]:
    """The nodes ``DIR/testnet.json`` records; none if it is missing or not
    what this script writes."""
    try:
        return TestnetLayout.load(d).nodes
    except (NoTestnet, OSError, ValueError, KeyError, TypeError):
        return []


def whole(lo: int = 0, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number of ``lo``..``hi`` (ASCII digits),
    refused in one line that says the range."""
    what = f" of {lo}..{hi}" if hi is not None else f" of {lo} or more" if lo else ""

    def parse(text: str) -> int:
        s = text.strip()
        if not (s.isascii() and s.isdigit()) or int(s) < lo or (hi is not None and int(s) > hi):
            raise argparse.ArgumentTypeError(f"expected a whole number{what}, not {text!r}")
        return int(s)

    return parse


def node_status(tn: TestnetLayout, n: TestnetNode) -> dict[str, Any]:
    row: dict[str, Any] = {"name": n.name, "pid": n.pid, "running": pid_alive(n.pid)}
    if n.netns:
        row.update(netns=n.netns, ip=n.host)
    if not row["running"]:
        return row
    try:
        with tn.client(n.name, timeout=5) as c:
            info = c.call("node.info")
            peers = c.call("peer.list")
    except (RpcUnavailable, RpcError, OSError, ValueError) as exc:
        row["error"] = str(exc)
        return row
    row.update(
        height=info["height"],
        tip=info["tip"],
        state_root=info["state_root"],
        peers=sum(1 for p in peers if p.get("direction") in ("in", "out")),
        mempool=info["mempool_size"],
        mempool_size=info["mempool_size"],  # node.info's name for it
        mining=info["mining"],
        rpc=info["rpc"],
    )
    return row


def cmd_status(a: argparse.Namespace) -> int:
    tn = load(a.dir)
    rows = [node_status(tn, n) for n in tn.nodes]
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    if tn.partition:
        print("partitioned: " + " | ".join(",".join(side) for side in tn.partition))
    print(f"{'node':<8}{'height':>8}  {'tip':<16}{'peers':>6}{'mempool':>9}  mining")
    for r in rows:
        if not r["running"]:
            print(f"{r['name']:<8}{'down':>8}")
        elif "error" in r:
            print(f"{r['name']:<8}{'?':>8}  {r['error']}")
        else:
            mining = "on" if r["mining"] else "off"
            print(
                f"{r['name']:<8}{r['height']:>8}  {r['tip'][:16]:<16}{r['peers']:>6}{r['mempool']:>9}  {mining}"
            )
    return 0


def line_time(line: str) -> str:
    """A log line's timestamp as it sorts (ISO 8601 UTC, fixed width), from
    a text line's first column or a JSON line's ``ts``; "" if it has none."""
    if line.startswith("{"):
        try:
            ts = json.loads(line).get("ts", "")
        except (ValueError, AttributeError):
            return ""
        return ts if isinstance(ts, str) else ""
    first = line.split(" ", 1)[0]
    return first if first[:4].isdigit() and first.endswith("Z") else ""


def merged_tail(files: dict[str, Path], lines: int) -> list[tuple[str, str]]:
    """The last ``lines`` lines of all the logs together, as (node, line) in
    time order (ties keep node order). A line without a time (a traceback's
    rest) keeps the time of the line before it, so it stays with it."""
    timed: list[tuple[str, int, int, str, str]] = []
    for order, (name, path) in enumerate(files.items()):
        if not path.exists():
            continue
        last = ""
        for i, line in enumerate(path.read_text(errors="replace").splitlines()[-lines:]):
            last = line_time(line) or last
            timed.append((last, order, i, name, line))
    timed.sort()
    return [(name, line) for _, _, _, name, line in timed[-lines:]] if lines else []


def replaced(fh: Any, path: Path) -> bool:
    """Whether ``path`` now names another file than the open ``fh``."""
    try:
        return os.stat(path).st_ino != os.fstat(fh.fileno()).st_ino
    except FileNotFoundError:
        return False


def cmd_logs(a: argparse.Namespace) -> int:
    files = {n.name: a.dir / n.name / "node.log" for n in load(a.dir).nodes}
    handles: dict[str, Any] = {}
    width = max(len(name) for name in files)
    try:
        # Earlier lines first, merged across nodes by time; then, following,
        # each line as it comes (so in time order as the nodes write them).
        for name, line in merged_tail(files, a.lines):
            print(f"[{name:<{width}}] {line}")
        for name, path in files.items():
            if path.exists():
                handles[name] = open(path, errors="replace")  # noqa: SIM115 - held while following
                handles[name].seek(0, os.SEEK_END)
        while a.follow:  # like tail -f: runs until Ctrl-C
            quiet = True
            for name, path in files.items():
                if name not in handles and path.exists():
                    handles[name] = open(path, errors="replace")  # noqa: SIM115
                fh = handles.get(name)
                for line in fh.readlines() if fh else []:
                    quiet = False
                    print(f"[{name:<{width}}] {line.rstrip()}", flush=True)
                if fh is not None and replaced(fh, path):
                    # Rotated (moved, and the node reopened its log): the
                    # old file is read to its end above, then the new one.
                    fh.close()
                    handles[name] = open(path, errors="replace")  # noqa: SIM115
            if quiet:
                time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for fh in handles.values():
            fh.close()
    return 0


def stop(n: TestnetNode) -> str:
    return stop_pids([n.pid])[n.pid] if n.pid else "not running"


def _node(tn: TestnetLayout, which: str) -> TestnetNode:
    try:
        return tn.node(which)
    except KeyError:
        raise SystemExit(f"testnet: no node {which!r}") from None


def cmd_kill(a: argparse.Namespace) -> int:
    n = _node(load(a.dir), a.node)
    if not pid_alive(n.pid):
        print(f"{n.name} is not running")
        return 1
    assert n.pid is not None
    os.kill(n.pid, signal.SIGKILL)
    print(f"{n.name} killed (SIGKILL, pid {n.pid})")
    return 0


def cmd_restart(a: argparse.Namespace) -> int:
    tn = load(a.dir)
    n = _node(tn, a.node)
    _can_netns(tn)
    print(f"{n.name}: {stop(n)}")
    node = tn.process(n.name)
    try:
        if tn.netns is not None and not netns.exists(tn.netns):
            # 'down' removed the network: build it again (whole, healed).
            netns.create(tn.netns, len(tn.nodes))
            tn.partition = []
        n.pid = node.spawn()
        tn.save()
        node.wait_ready(RPC_TIMEOUT)
    except (NodeExited, WaitTimeout, NetnsError) as exc:
        raise SystemExit(f"testnet: {exc}") from None
    info = node.call("node.info")
    node.close_rpc()
    print(f"{n.name} started (pid {n.pid}) at height {info['height']}")
    return 0


def cmd_down(a: argparse.Namespace) -> int:
    tn = load(a.dir)
    _can_netns(tn)
    ended = stop_pids([n.pid for n in tn.nodes if n.pid])
    for n in tn.nodes:
        print(f"{n.name}: {ended.get(n.pid, 'not running') if n.pid else 'not running'}")
        n.pid = None
    if tn.netns is not None:
        try:
            gone = netns.destroy(tn.netns)
        except NetnsError as exc:
            raise SystemExit(f"testnet: {exc}") from None
        print(f"network: {len(gone)} namespace{'' if len(gone) == 1 else 's'} removed")
        tn.partition = []
    tn.save()
    return 0


def _can_netns(tn: TestnetLayout) -> None:
    """A testnet of namespaces is handled only where namespaces can be."""
    if tn.netns is not None and (why := netns.unavailable()) is not None:
        raise SystemExit(f"testnet: {tn.dir} runs in network namespaces: {why}")


def _netns_plan(tn: TestnetLayout) -> NetnsPlan:
    if tn.netns is None:
        raise SystemExit("testnet: only a testnet started with 'up --netns' can be partitioned")
    _can_netns(tn)
    if not netns.exists(tn.netns):
        raise SystemExit("testnet: its network is down ('restart' a node or 'up' again)")
    return tn.netns


def cmd_partition(a: argparse.Namespace) -> int:
    tn = load(a.dir)
    plan = _netns_plan(tn)
    sides = [[_node(tn, w.strip()).name for w in side.split(",") if w.strip()] for side in a.sides]
    named = [name for side in sides for name in side]
    missing = [n.name for n in tn.nodes if n.name not in named]
    if len(sides) < 2 or any(not side for side in sides):
        raise SystemExit("testnet: name two or more sides, e.g. 'partition 0,1 2,3,4'")
    if len(set(named)) != len(named) or missing:
        raise SystemExit(
            "testnet: name every node on exactly one side"
            + (f" (missing: {', '.join(missing)})" if missing else "")
        )
    try:
        netns.partition(plan, [[tn.index(name) for name in side] for side in sides])
    except NetnsError as exc:
        raise SystemExit(f"testnet: {exc}") from None
    tn.partition = sides
    tn.save()
    print("partitioned: " + " | ".join(",".join(side) for side in sides))
    return 0


def cmd_isolate(a: argparse.Namespace) -> int:
    tn = load(a.dir)
    plan = _netns_plan(tn)
    n = _node(tn, a.node)
    try:
        netns.isolate(plan, tn.index(n.name))
    except NetnsError as exc:
        raise SystemExit(f"testnet: {exc}") from None
    # Whatever partition there was stays; the node becomes a side of its own.
    sides = tn.partition or [[m.name for m in tn.nodes]]
    sides = [[m for m in side if m != n.name] for side in sides]
    tn.partition = [side for side in sides if side] + [[n.name]]
    tn.save()
    print(f"{n.name} isolated")
    return 0


def cmd_heal(a: argparse.Namespace) -> int:
    tn = load(a.dir)
    plan = _netns_plan(tn)
    try:
        netns.heal(plan)
    except NetnsError as exc:
        raise SystemExit(f"testnet: {exc}") from None
    tn.partition = []
    tn.save()
    print("healed: one network")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help)
        sp.add_argument(
            "--dir", type=Path, default=DEFAULT_DIR, help="testnet root (default testnet/local)"
        )
        return sp

    sp = add("up", "create and start a testnet")
    sp.add_argument("--nodes", type=whole(1), default=3, help="how many nodes (1 or more)")
    sp.add_argument(
        "--force",
        action="store_true",
        help="delete --dir even if it is not empty and not a testnet this script made",
    )
    sp.add_argument("--accounts", type=whole(), default=5, help="funded demo accounts")
    sp.add_argument("--chain-id", default="powernode-testnet-7")
    sp.add_argument("--block-time", type=int, default=2)
    sp.add_argument("--no-mine", action="store_true", help="start with mining off")
    sp.add_argument(
        "--miner-cpu",
        type=whole(1, 100),
        default=100,
        metavar="PCT",
        help="cap each node's miner at PCT%% of a core (the target gets easier to match)",
    )
    sp.add_argument(
        "--easy",
        action="store_true",
        help="trivial difficulty, with --no-mine: blocks only on dev.mine (tests)",
    )
    sp.add_argument(
        "--netns",
        action="store_true",
        help="(root) each node in a network namespace of its own, at its own IP",
    )
    sp.set_defaults(fn=cmd_up)
    sp = add("status", "height, tip, peers and mempool of every node")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(fn=cmd_status)
    sp = add("logs", "all node logs, merged by time, each line prefixed by its node")
    sp.add_argument("--no-follow", dest="follow", action="store_false")
    sp.add_argument(
        "-n",
        "--lines",
        type=whole(),
        default=20,
        help="earlier lines to show first (of all nodes, by time)",
    )
    sp.set_defaults(fn=cmd_logs)
    sp = add("kill", "kill -9 one node")
    sp.add_argument("node", help="node name or index")
    sp.set_defaults(fn=cmd_kill)
    sp = add("restart", "stop (if running) and start one node")
    sp.add_argument("node", help="node name or index")
    sp.set_defaults(fn=cmd_restart)
    sp = add("down", "stop every node cleanly (and remove a --netns network)")
    sp.set_defaults(fn=cmd_down)
    sp = add("partition", "(--netns) cut the network into sides")
    sp.add_argument(
        "sides", nargs="+", metavar="SIDE", help="nodes of one side: 0,1 or node0,node1"
    )
    sp.set_defaults(fn=cmd_partition)
    sp = add("isolate", "(--netns) cut one node off every other")
    sp.add_argument("node", help="node name or index")
    sp.set_defaults(fn=cmd_isolate)
    sp = add("heal", "(--netns) end partitions and isolations: one network again")
    sp.set_defaults(fn=cmd_heal)
    args = ap.parse_args(argv)
    if args.fn is cmd_up and args.easy and not args.no_mine:
        # At a trivial target every miner finds blocks as fast as it hashes,
        # each on its own branch: hundreds of blocks a second and reorgs
        # hundreds of blocks deep, which no scripted run can rely on.
        ap.error(
            "up: --easy needs --no-mine (blocks only on dev.mine); with miners on, "
            "--block-time sets the pace"
        )
    return int(args.fn(args))


def run(argv: list[str] | None = None) -> int:
    """``main``, but a reader that goes away (``status | head -1``) ends the
    script quietly, as it ends other CLIs, instead of with a traceback."""
    try:
        try:
            return main(argv)
        finally:
            # stdout to a pipe is block-buffered: a closed pipe shows here at
            # the latest, not in the interpreter's own flush at exit
            sys.stdout.flush()
    except BrokenPipeError:
        # Nothing more can reach the reader; point stdout at /dev/null so the
        # flush at exit does not fail again, and exit as a process killed
        # by SIGPIPE would (128 + 13).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE


if __name__ == "__main__":
    sys.exit(run())
