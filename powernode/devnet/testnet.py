"""A local testnet: its directory (``TestnetLayout``) and starting its nodes
(``start_testnet``), for ``scripts/testnet.py``, the benchmarks and the e2e
tests. Layout of the directory::

    DIR/testnet.json        nodes (name, pid, address, ports, IP, namespace), chain
                            id, demo keys, the namespace plan and partition (netns)
    DIR/genesis.json        one genesis for all nodes
    DIR/keys/demoK.key      funded demo accounts (hex private keys)
    DIR/nodeI/              each node's data dir (node.key, genesis.json,
                            config.toml listing every other node as a peer,
                            node.log, chain.db, ...; stderr.log: only what is
                            not a log line, as the nodes run --no-log-stderr)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from powernode.client import RpcClient, read_key, write_key
from powernode.core.crypto import KeyPair
from powernode.devnet import netns
from powernode.devnet.datadir import (
    LOOPBACK,
    free_port,
    init_datadir,
    write_config,
    write_genesis,
)
from powernode.devnet.netns import NetnsPlan, NetnsRpcClient
from powernode.devnet.process import NodeExited, ProcessNode
from powernode.devnet.wait import DEFAULT_TIMEOUT, WaitTimeout

TESTNET_FILE = "testnet.json"
PORT_ATTEMPTS = 3
# The config defaults (README, "Config keys"): each namespace has its own ports.
NETNS_RPC_PORT = 8645
NETNS_P2P_PORT = 8646


class NoTestnet(Exception):
    """The directory holds no testnet (no ``testnet.json``)."""


@dataclass
class TestnetNode:
    __test__ = False  # not a pytest test class

    name: str
    pid: int | None = None
    address: str = ""  # the node key's address (hex)
    rpc_port: int = 0
    p2p_port: int = 0
    host: str = LOOPBACK  # the IP its p2p listens on
    netns: str = ""  # its network namespace ("": the host's)


@dataclass
class TestnetLayout:
    """What ``DIR/testnet.json`` records, and where things are under ``DIR``."""

    __test__ = False  # not a pytest test class

    dir: Path
    chain_id: str
    nodes: list[TestnetNode] = field(default_factory=list)
    demo_keys: list[str] = field(default_factory=list)  # key files, relative to dir
    # Set when each node runs in a network namespace of its own (``up --netns``).
    netns: NetnsPlan | None = None
    partition: list[list[str]] = field(default_factory=list)  # node names per side

    @classmethod
    def create(
        cls,
        d: Path,
        genesis: dict[str, Any],
        *,
        nodes: int,
        demo: Sequence[KeyPair] = (),
        netns: bool = False,
    ) -> TestnetLayout:
        """Write the demo keys, the genesis, one data dir per node (its key
        and genesis: ``write_configs`` adds the configs) and ``testnet.json``
        into ``d``, which must not hold a testnet yet. With ``netns``, each
        node gets a namespace and IP of its own (``start_testnet`` creates
        them)."""
        (d / "keys").mkdir(parents=True, exist_ok=True)
        demo_files = []
        for i, k in enumerate(demo):
            write_key(d / "keys" / f"demo{i}.key", k)
            demo_files.append(f"keys/demo{i}.key")
        write_genesis(d / "genesis.json", genesis)
        plan = NetnsPlan.for_dir(d) if netns else None
        tn = cls(dir=d, chain_id=genesis["chain_id"], demo_keys=demo_files, netns=plan)
        for i in range(nodes):
            name = f"node{i}"
            key = init_datadir(d / name, d / "genesis.json", config=False)
            node = TestnetNode(name=name, address=key.address.hex())
            if plan is not None:
                host = plan.node(i)
                node.host, node.netns = host.ip, host.netns
            tn.nodes.append(node)
        tn.save()
        return tn

    @classmethod
    def load(cls, d: Path) -> TestnetLayout:
        path = d / TESTNET_FILE
        if not path.exists():
            raise NoTestnet(f"no testnet in {d}")
        doc = json.loads(path.read_text())
        plan = doc.get("netns")
        return cls(
            dir=d,
            chain_id=doc["chain_id"],
            nodes=[TestnetNode(**n) for n in doc["nodes"]],
            demo_keys=list(doc.get("demo_keys", [])),
            netns=NetnsPlan(**plan) if plan else None,
            partition=[list(side) for side in doc.get("partition", [])],
        )

    def save(self) -> None:
        doc = {
            "dir": str(self.dir),
            "chain_id": self.chain_id,
            "nodes": [asdict(n) for n in self.nodes],
            "demo_keys": self.demo_keys,
            "netns": asdict(self.netns) if self.netns else None,
            "partition": self.partition,
        }
        tmp = self.dir / (TESTNET_FILE + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2))
        tmp.replace(self.dir / TESTNET_FILE)  # readers never see half a file

    def datadir(self, name: str) -> Path:
        return self.dir / name

    def node(self, which: str) -> TestnetNode:
        """A node by name (``node2``) or index (``2``)."""
        for n in self.nodes:
            if which in (n.name, n.name.removeprefix("node")):
                return n
        raise KeyError(f"no node {which!r}")

    def index(self, name: str) -> int:
        return [n.name for n in self.nodes].index(name)

    def process(self, name: str) -> ProcessNode:
        """A ``ProcessNode`` for node ``name`` (in its namespace, if any)."""
        # Log lines go to node.log only, so stderr.log is not its copy: it
        # holds what is not a log line (the one-line failure, a traceback).
        return ProcessNode(
            self.datadir(name), netns=self.node(name).netns, extra_args=("--no-log-stderr",)
        )

    def client(self, name: str, *, timeout: float = 30.0) -> RpcClient:
        """An RPC client for node ``name`` (which must be running), made in
        its namespace if it has one."""
        n = self.node(name)
        if n.netns:
            return NetnsRpcClient.for_datadir(self.datadir(name), netns=n.netns, timeout=timeout)
        return RpcClient.from_datadir(self.datadir(name), timeout=timeout)

    def read_demo_keys(self) -> list[KeyPair]:
        return [read_key(self.dir / p) for p in self.demo_keys]

    def write_configs(self, *, mining: bool, miner_cpu: int = 100) -> None:
        """Fresh ports for every node and its config, p2p on, each node
        listing all the others as bootstrap peers. In namespaces every node
        has the host to itself: the default ports, on its own IP."""
        for n in self.nodes:
            if self.netns is not None:
                n.rpc_port, n.p2p_port = NETNS_RPC_PORT, NETNS_P2P_PORT
            else:
                n.rpc_port, n.p2p_port = free_port(), free_port()
        for n in self.nodes:
            write_config(
                self.datadir(n.name),
                rpc_port=n.rpc_port,
                p2p_port=n.p2p_port,
                mining=mining,
                p2p=True,
                peers=[f"{m.host}:{m.p2p_port}" for m in self.nodes if m is not n],
                miner_cpu=miner_cpu,
                p2p_host=n.host,
            )


def _port_clash(node: ProcessNode) -> bool:
    err = node.stderr_path
    # Any case: the node's own error line says "Address already in use"
    # (strerror), aiohttp's traceback text "address already in use".
    return (
        not node.is_running()
        and err.exists()
        and "address already in use" in err.read_text().lower()
    )


def start_testnet(
    tn: TestnetLayout,
    *,
    mining: bool,
    miner_cpu: int = 100,
    timeout: float = DEFAULT_TIMEOUT,
    attempts: int = PORT_ATTEMPTS,
    log: Callable[[str], None] | None = None,
) -> list[ProcessNode]:
    """Write every node's config on fresh ports, start every node (their pids
    go into ``testnet.json``) and wait until each serves RPC.

    ``free_port`` only finds a port that was free a moment ago; another
    process can take it before the node binds it. Then every node is stopped
    and the testnet starts again on fresh ports, up to ``attempts`` times
    (``log`` hears about each retry). Any other failure stops every node
    and raises ``NodeExited`` or ``WaitTimeout``.
    """
    if tn.netns is not None:
        netns.create(tn.netns, len(tn.nodes))
        tn.partition = []
    attempt = 1
    while True:
        tn.write_configs(mining=mining, miner_cpu=miner_cpu)
        procs = [tn.process(n.name) for n in tn.nodes]
        for p in procs:  # so a clash is read from this attempt's output only
            p.stderr_path.unlink(missing_ok=True)
        for n, p in zip(tn.nodes, procs, strict=True):
            n.pid = p.spawn()
        tn.save()
        try:
            for p in procs:
                p.wait_ready(timeout)
            return procs
        except (NodeExited, WaitTimeout):
            clash = [p.name for p in procs if _port_clash(p)]
            for p in procs:
                p.stop()
            if not clash or attempt >= attempts:
                raise
            attempt += 1
            if log is not None:
                log(
                    f"testnet: a port of {', '.join(clash)} was taken meanwhile; "
                    "retrying on fresh ports"
                )
