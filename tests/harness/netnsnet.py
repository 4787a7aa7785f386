"""A testnet of separate hosts for e2e tests: ``scripts/testnet.py up
--netns`` as a user runs it, each node in a network namespace of its own
(``powernode.devnet.netns``), plus extra hosts for hostile clients.

``require_netns()`` skips a test only when namespaces cannot work here (not
root, or the kernel refuses them); as root without ``ip`` it installs
iproute2 first (CI runs as root).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from powernode.client import RpcClient, RpcError
from powernode.devnet import netns
from powernode.devnet.datadir import init_datadir, write_config
from powernode.devnet.netns import Host, NetnsPlan
from powernode.devnet.process import ProcessNode
from powernode.devnet.testnet import TestnetLayout
from powernode.devnet.wait import wait_until
from tests.harness.packages import apt_install

ROOT = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT = 120.0

Tip = tuple[str, str, int]  # a node's (tip hash, state root, height)


def require_netns() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs these tests as root)")
    # Like the project's other system packages: installed when missing, and
    # looked for under the install lock (another worker may be installing it).
    apt_install("iproute2", lambda: shutil.which("ip") is not None, timeout=600)
    probe = f"pnprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"network namespaces unavailable here: {r.stderr.strip()}")
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, check=False)


def run_testnet_raw(d: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "testnet.py"), *args, "--dir", str(d)],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )


def run_testnet(d: Path, *args: str) -> str:
    r = run_testnet_raw(d, *args)
    assert r.returncode == 0, r.stderr + r.stdout
    return r.stdout


class NetnsTestnet:
    """``n`` nodes in namespaces under ``d``; ``close`` stops them and removes
    every namespace (the testnet's and the extra hosts'), whatever happened."""

    def __init__(self, d: Path) -> None:
        self.d = d
        self.plan = NetnsPlan.for_dir(d)
        self._clients: dict[int, RpcClient] = {}
        self.guests: list[Host] = []
        self.guest_nodes: list[ProcessNode] = []

    def up(self, nodes: int, *extra: str) -> NetnsTestnet:
        run_testnet(self.d, "up", "--netns", "--nodes", str(nodes), *extra)
        self.layout = TestnetLayout.load(self.d)
        return self

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()
        self.stop_guest_nodes()
        try:
            run_testnet(self.d, "down")
        finally:
            netns.destroy(self.plan)  # the extra hosts too, and after a failed 'down'

    # --- nodes ----------------------------------------------------------------------

    @property
    def n(self) -> int:
        return len(self.layout.nodes)

    def rpc(self, i: int) -> RpcClient:
        if i not in self._clients:
            self._clients[i] = self.layout.client(f"node{i}")
        return self._clients[i]

    def forget(self, i: int) -> None:
        """Drop node ``i``'s client: a restarted node has a new RPC cookie."""
        c = self._clients.pop(i, None)
        if c is not None:
            c.close()

    def ip(self, i: int) -> str:
        return self.layout.nodes[i].host

    def p2p(self, i: int) -> str:
        n = self.layout.nodes[i]
        return f"{n.host}:{n.p2p_port}"

    def linked_ips(self, i: int) -> set[str]:
        """IPs of node ``i``'s connected peers."""
        return linked(self.rpc(i).call("peer.list"))

    def linked_ips_of(self, node: ProcessNode) -> set[str]:
        """IPs of a guest node's connected peers."""
        return linked(node.call("peer.list"))

    def inbound_from(self, i: int, ip: str) -> int:
        """How many inbound connections node ``i`` holds from ``ip``."""
        peers = self.rpc(i).call("peer.list")
        return sum(1 for p in peers if p.get("direction") == "in" and host_of(p["address"]) == ip)

    def peer_ids(self, i: int, ip: str) -> set[int]:
        """Node ``i``'s connection ids to peers at ``ip``: a replaced
        connection gets a new id."""
        peers = self.rpc(i).call("peer.list")
        return {
            int(p["id"])
            for p in peers
            if p.get("direction") in ("in", "out") and host_of(p["address"]) == ip
        }

    def banned(self, i: int) -> list[str]:
        """What node ``i`` lists as banned (addresses or ids, as it keys them)."""
        peers = self.rpc(i).call("peer.list")
        return [str(p["address"]) for p in peers if p.get("direction") == "banned"]

    def meshed(self) -> bool:
        """Every node connected to every other node's IP."""
        return all(
            self.linked_ips(i) >= {self.ip(j) for j in range(self.n) if j != i}
            for i in range(self.n)
        )

    def tips(self, nodes: list[int] | None = None) -> list[Tip]:
        out = []
        for i in range(self.n) if nodes is None else nodes:
            info = self.rpc(i).call("node.info")
            out.append((info["tip"], info["state_root"], info["height"]))
        return out

    def converged(self, nodes: list[int] | None = None) -> Tip | None:
        """The one (tip, state root, height) of ``nodes`` (all), or None."""
        tips = set(self.tips(nodes))
        return next(iter(tips)) if len(tips) == 1 else None

    def tx_status(self, i: int, txid: str) -> str:
        try:
            return str(self.rpc(i).call("tx.get", {"id": txid})["status"])
        except RpcError as exc:
            if exc.reason == "not_found":
                return "unknown"
            raise

    def log(self, i: int) -> str:
        return (self.d / f"node{i}" / "node.log").read_text(errors="replace")

    # --- extra hosts ------------------------------------------------------------------

    def guest(self) -> Host:
        """A new host on the bridge with an IP of its own, for a client."""
        host = netns.attach(self.plan, self.plan.guest(len(self.guests)))
        self.guests.append(host)
        return host

    def start_node_in(self, host: Host, peers: list[int]) -> ProcessNode:
        """An honest node process on ``host`` (several may share one: each
        gets its own ports) with nodes ``peers`` as its bootstrap peers;
        started, not waited for."""
        k = len(self.guest_nodes)  # never reused: a stopped node keeps its dir and ports
        datadir = self.d / f"guest{k}"
        init_datadir(datadir, self.d / "genesis.json", config=False)
        write_config(
            datadir,
            rpc_port=9000 + k,
            p2p_port=9100 + k,
            p2p=True,
            p2p_host=host.ip,
            peers=[self.p2p(i) for i in peers],
        )
        node = ProcessNode(datadir, netns=host.netns)
        self.guest_nodes.append(node)
        node.spawn()
        return node

    def stop_guest_nodes(self) -> None:
        for node in self.guest_nodes:
            node.stop()

    def hostile(self, host: Host, action: str, target: int, *args: str) -> dict[str, Any]:
        """Run ``tests.harness.hostile_peer ACTION`` against node ``target``
        from ``host``; its JSON result."""
        info = self.rpc(target).call("node.info")
        r = subprocess.run(
            [
                *netns.exec_args(host.netns),
                sys.executable,
                "-m",
                "tests.harness.hostile_peer",
                action,
                self.p2p(target),
                "--ip",
                host.ip,
                "--chain-id",
                info["chain_id"],
                "--genesis",
                info["genesis"],
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert r.returncode == 0, r.stderr + r.stdout
        return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def linked(peers: list[dict[str, Any]]) -> set[str]:
    """The IPs in a ``peer.list`` answer that are connected (in or out)."""
    return {host_of(p["address"]) for p in peers if p.get("direction") in ("in", "out")}


def host_of(address: str) -> str:
    """The IP of ``ip:port`` (an address without a port is returned as is)."""
    return address.rsplit(":", 1)[0] if ":" in address else address


@contextmanager
def meshed_testnet(d: Path, nodes: int = 3) -> Iterator[NetnsTestnet]:
    """A netns testnet of ``nodes`` non-mining nodes, each connected to the
    others on their own IPs; torn down (namespaces too) on exit."""
    require_netns()
    net = NetnsTestnet(d)
    try:
        net.up(nodes, "--no-mine", "--easy")
        wait_until(net.meshed, timeout=60, what=f"{nodes} nodes connected on their IPs")
        yield net
    finally:
        net.close()
