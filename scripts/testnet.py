"""A local powernode testnet: N node processes on 127.0.0.1.

    python scripts/testnet.py up --nodes 3         # keys, genesis, configs; start, connected, mining
    python scripts/testnet.py status [--json]      # height, tip, peers, mempool of every node
    python scripts/testnet.py logs [--no-follow]   # all node logs merged, prefixed by node
    python scripts/testnet.py kill 1               # kill -9 node1 (for experiments)
    python scripts/testnet.py restart 1            # stop (if running) and start node1 again
    python scripts/testnet.py down                 # stop every node cleanly

Every subcommand takes ``--dir`` (default ``testnet/local``). Layout::

    DIR/testnet.json        nodes, ports, pids
    DIR/genesis.json        one genesis for all nodes, funding the demo keys
    DIR/keys/demoK.key      funded demo accounts (hex private keys)
    DIR/nodeI/              each node's data dir (node.log, chain.db, ...)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from powernode.cli import ALWAYS_OPEN_MARKETS
from powernode.client import RpcClient, RpcError, RpcUnavailable, write_key
from powernode.core.crypto import KeyPair
from powernode.node.config import render_config

DEFAULT_DIR = Path("testnet/local")
DEMO_FUNDS = 1_000_000 * 1_000_000
# Roughly one block every couple of seconds for a few mining nodes on two
# cores; ASERT moves it toward block_time from there.
TESTNET_TARGET = format((1 << 256) // 60_000, "064x")


def testnet_target(miner_cpu: int) -> str:
    """TESTNET_TARGET made easier in proportion to a miner CPU cap, so
    capped miners find blocks about as often."""
    target = min(int(TESTNET_TARGET, 16) * 100 // miner_cpu, int("0fff" + "ff" * 30, 16))
    return format(target, "064x")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_state(d: Path) -> dict[str, Any]:
    path = d / "testnet.json"
    if not path.exists():
        raise SystemExit(f"testnet: no testnet in {d} (run 'up' first)")
    return dict(json.loads(path.read_text()))


def save_state(d: Path, state: dict[str, Any]) -> None:
    tmp = d / "testnet.json.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(d / "testnet.json")


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # a zombie child of ours is not alive
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def start_node(d: Path, node: dict[str, Any]) -> int:
    datadir = d / node["name"]
    runtime = datadir / "node.json"
    runtime.unlink(missing_ok=True)
    with open(datadir / "stderr.log", "ab") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "powernode.cli", "run", "--datadir", str(datadir)],
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
    node["pid"] = proc.pid
    return proc.pid


def wait_rpc(d: Path, node: dict[str, Any], timeout: float = 30.0) -> RpcClient:
    datadir = d / node["name"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(node.get("pid")):
            raise SystemExit(f"testnet: {node['name']} exited; see {datadir / 'stderr.log'}")
        try:
            client = RpcClient.from_datadir(datadir, timeout=10)
            client.call("node.info")
            return client
        except (RpcUnavailable, RpcError, OSError, ValueError, KeyError):
            time.sleep(0.1)
    raise SystemExit(f"testnet: {node['name']} did not answer RPC within {timeout:.0f}s")


def stop_node(node: dict[str, Any], *, timeout: float = 30.0) -> str:
    pid = node.get("pid")
    if not alive(pid):
        return "not running"
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return "stopped"
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return "killed after timeout"


# --- commands -----------------------------------------------------------------


PORT_ATTEMPTS = 3


def write_configs(d: Path, nodes: list[dict[str, Any]], a: argparse.Namespace) -> None:
    """Fresh ports for every node and its config, each listing the others."""
    for n in nodes:
        n["rpc_port"], n["p2p_port"] = free_port(), free_port()
    for n in nodes:
        peers = tuple(f"127.0.0.1:{m['p2p_port']}" for m in nodes if m is not n)
        (d / n["name"] / "config.toml").write_text(
            render_config(
                rpc_port=n["rpc_port"],
                p2p_port=n["p2p_port"],
                mining=not a.no_mine,
                peers=peers,
                p2p=True,
                miner_cpu=a.miner_cpu,
            )
        )


def node_info(d: Path, n: dict[str, Any]) -> dict[str, Any]:
    client = wait_rpc(d, n)
    try:
        return dict(client.call("node.info"))
    finally:
        client.close()


def port_clash(d: Path, n: dict[str, Any]) -> bool:
    err = d / n["name"] / "stderr.log"
    return not alive(n.get("pid")) and err.exists() and "address already in use" in err.read_text()


def cmd_up(a: argparse.Namespace) -> int:
    d: Path = a.dir
    if (d / "testnet.json").exists():
        state = load_state(d)
        if any(alive(n.get("pid")) for n in state["nodes"]):
            raise SystemExit(f"testnet: {d} is already running; 'down' it first")
    if d.exists():
        shutil.rmtree(d)
    (d / "keys").mkdir(parents=True)
    demo = [KeyPair.generate() for _ in range(a.accounts)]
    for i, k in enumerate(demo):
        write_key(d / "keys" / f"demo{i}.key", k)
    genesis = {
        "_comment": "local testnet genesis written by scripts/testnet.py",
        "chain_id": a.chain_id,
        "timestamp": int(time.time()) - 60,
        "block_time": a.block_time,
        "initial_target": "0fff" + "ff" * 30 if a.easy else testnet_target(a.miner_cpu),
        "pow_limit": "0fff" + "ff" * 30,
        "asert_halflife": 600,
        "max_future": 7200,
        "block_reward": 50_000_000,
        "dev": True,
        "allocations": {k.address.hex(): DEMO_FUNDS for k in demo},
        # Market defaults, but trading around the clock so the demo runs at any hour.
        "markets": {k: dict(v) for k, v in ALWAYS_OPEN_MARKETS.items()},
    }
    (d / "genesis.json").write_text(json.dumps(genesis, indent=2) + "\n")
    nodes: list[dict[str, Any]] = [{"name": f"node{i}", "pid": None} for i in range(a.nodes)]
    for n in nodes:
        datadir = d / n["name"]
        datadir.mkdir()
        key = KeyPair.generate()
        write_key(datadir / "node.key", key)
        n["address"] = key.address.hex()
        shutil.copy(d / "genesis.json", datadir / "genesis.json")
    state = {
        "dir": str(d),
        "chain_id": a.chain_id,
        "nodes": nodes,
        "demo_keys": [f"keys/demo{i}.key" for i in range(a.accounts)],
    }
    # free_port() only finds a port that was free a moment ago; another
    # process can take it before the node binds it. Then every node is
    # stopped and the testnet starts again on fresh ports.
    for attempt in range(1, PORT_ATTEMPTS + 1):
        write_configs(d, nodes, a)
        for n in nodes:  # so a clash is read from this attempt's output only
            (d / n["name"] / "stderr.log").unlink(missing_ok=True)
        for n in nodes:
            start_node(d, n)
        save_state(d, state)
        try:
            infos = [node_info(d, n) for n in nodes]
            break
        except SystemExit:
            clash = [n["name"] for n in nodes if port_clash(d, n)]
            for n in nodes:
                stop_node(n)
            if not clash or attempt == PORT_ATTEMPTS:
                raise
            print(
                f"testnet: a port of {', '.join(clash)} was taken meanwhile; retrying on fresh ports"
            )
    for n, info in zip(nodes, infos, strict=True):
        print(
            f"{n['name']}: rpc {info['rpc']}  p2p {info['p2p']}  log {d / n['name'] / 'node.log'}"
        )
    print(f"testnet {a.chain_id} up in {d}: {a.nodes} nodes, mining {'off' if a.no_mine else 'on'}")
    return 0


def node_status(d: Path, n: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"name": n["name"], "pid": n.get("pid"), "running": alive(n.get("pid"))}
    if not row["running"]:
        return row
    try:
        with RpcClient.from_datadir(d / n["name"], timeout=5) as c:
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
        mining=info["mining"],
        rpc=info["rpc"],
    )
    return row


def cmd_status(a: argparse.Namespace) -> int:
    state = load_state(a.dir)
    rows = [node_status(a.dir, n) for n in state["nodes"]]
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
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


def cmd_logs(a: argparse.Namespace) -> int:
    state = load_state(a.dir)
    files = {n["name"]: a.dir / n["name"] / "node.log" for n in state["nodes"]}
    handles: dict[str, Any] = {}
    width = max(len(name) for name in files)
    try:
        for name, path in files.items():
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-a.lines :] if a.lines else []
                for line in lines:
                    print(f"[{name:<{width}}] {line}")
                handles[name] = open(path, errors="replace")  # noqa: SIM115 - held while following
                handles[name].seek(0, os.SEEK_END)
        while a.follow:
            quiet = True
            for name, path in files.items():
                if name not in handles and path.exists():
                    handles[name] = open(path, errors="replace")  # noqa: SIM115
                fh = handles.get(name)
                for line in fh.readlines() if fh else []:
                    quiet = False
                    print(f"[{name:<{width}}] {line.rstrip()}", flush=True)
            if quiet:
                time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for fh in handles.values():
            fh.close()
    return 0


def _node(state: dict[str, Any], which: str) -> dict[str, Any]:
    for n in state["nodes"]:
        if which in (n["name"], n["name"].removeprefix("node")):
            return dict(n)
    raise SystemExit(f"testnet: no node {which!r}")


def _update(state: dict[str, Any], node: dict[str, Any]) -> None:
    state["nodes"] = [node if n["name"] == node["name"] else n for n in state["nodes"]]


def cmd_kill(a: argparse.Namespace) -> int:
    state = load_state(a.dir)
    n = _node(state, a.node)
    if not alive(n.get("pid")):
        print(f"{n['name']} is not running")
        return 1
    os.kill(n["pid"], signal.SIGKILL)
    print(f"{n['name']} killed (SIGKILL, pid {n['pid']})")
    return 0


def cmd_restart(a: argparse.Namespace) -> int:
    state = load_state(a.dir)
    n = _node(state, a.node)
    print(f"{n['name']}: {stop_node(n)}")
    start_node(a.dir, n)
    _update(state, n)
    save_state(a.dir, state)
    client = wait_rpc(a.dir, n)
    info = client.call("node.info")
    client.close()
    print(f"{n['name']} started (pid {n['pid']}) at height {info['height']}")
    return 0


def cmd_down(a: argparse.Namespace) -> int:
    state = load_state(a.dir)
    for n in state["nodes"]:
        print(f"{n['name']}: {stop_node(n)}")
        n["pid"] = None
    save_state(a.dir, state)
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
    sp.add_argument("--nodes", type=int, default=3)
    sp.add_argument("--accounts", type=int, default=5, help="funded demo accounts")
    sp.add_argument("--chain-id", default="powernode-testnet-2")
    sp.add_argument("--block-time", type=int, default=2)
    sp.add_argument("--no-mine", action="store_true", help="start with mining off")
    sp.add_argument(
        "--miner-cpu",
        type=int,
        default=100,
        choices=range(1, 101),
        metavar="PCT",
        help="cap each node's miner at PCT%% of a core (the target gets easier to match)",
    )
    sp.add_argument("--easy", action="store_true", help="trivial difficulty (tests)")
    sp.set_defaults(fn=cmd_up)
    sp = add("status", "height, tip, peers and mempool of every node")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(fn=cmd_status)
    sp = add("logs", "all node logs, merged, each line prefixed by its node")
    sp.add_argument("--no-follow", dest="follow", action="store_false")
    sp.add_argument("-n", "--lines", type=int, default=20, help="earlier lines to show first")
    sp.set_defaults(fn=cmd_logs)
    sp = add("kill", "kill -9 one node")
    sp.add_argument("node", help="node name or index")
    sp.set_defaults(fn=cmd_kill)
    sp = add("restart", "stop (if running) and start one node")
    sp.add_argument("node", help="node name or index")
    sp.set_defaults(fn=cmd_restart)
    sp = add("down", "stop every node cleanly")
    sp.set_defaults(fn=cmd_down)
    args = ap.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
