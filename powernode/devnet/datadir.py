"""A node's data dir as ``powernode init`` writes it: node key, genesis file
and ``config.toml``; and free loopback ports for its listeners.

The config text is the documented file format (README, "Config keys"), written
here rather than next to the loader in ``powernode.node.config`` so that the
dev tools write data dirs without importing the node shell; the unit tests
load what ``render_config`` writes with the node's loader.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from powernode.client import write_key
from powernode.core.crypto import KeyPair

LOOPBACK = "127.0.0.1"


# Ports picked below the kernel's ephemeral range, in a band this wide.
PORT_BAND = 12_000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Ports this process handed out (its nodes may not have bound them yet).
_handed: set[int] = set()


def _ephemeral_low() -> int:
    """The lowest port the kernel hands out as a connection's source port
    (Linux; 32768 where it cannot be read)."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nothing listens on right now, picked below the ephemeral
    range: a port the kernel chose (bind to 0) is one it also hands out as
    the source port of outgoing connections, so between this call and the
    node's bind one of this machine's own connections could take it (a test
    suite makes thousands). Another process can still bind it first;
    ``scripts/testnet.py up`` retries on fresh ports when that happens."""
    top = _ephemeral_low()
    bottom = max(1024, top - PORT_BAND)
    rng = random.SystemRandom()
    if len(_handed) > PORT_BAND // 2:
        _handed.clear()
    for _ in range(64):
        port = rng.randrange(bottom, top)
        if port in _handed:
            continue  # not bound yet, maybe: two listeners must not get one port
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed.add(port)
        return port
    with socket.socket() as s:  # a crowded band: any port the kernel gives
        s.bind((host, 0))
        return int(s.getsockname()[1])


def render_config(
    *,
    rpc_port: int,
    p2p_port: int,
    mining: bool = False,
    peers: Sequence[str] = (),
    p2p: bool = False,
    miner_cpu: int = 100,
    p2p_host: str = LOOPBACK,
) -> str:
    """The config file ``powernode init`` writes, with every key shown."""
    peer_list = ", ".join(f'"{p}"' for p in peers)
    return f"""# powernode node configuration (see README, "Operating a node")
genesis = "genesis.json"
verify_processes = 2    # signature-check worker processes
check_db = true         # check chain.db (SQLite quick_check) at every start

[rpc]
host = "127.0.0.1"
port = {rpc_port}
# token = ""            # a fixed token, accepted besides the per-start .cookie
# Bounds on one request (README, "Request bounds"): what a client can make the node hold.
max_request_bytes = 67108864   # body; longer is refused (HTTP 413)
batch_limit = 1000             # calls in one batch
max_response_bytes = 26214400  # a batch's answer; no call runs once past it
max_depth = 64                 # nesting of the request's JSON
max_values = 100000            # JSON values, keys included
# WebSocket push on GET /rpc (README, "Push subscriptions").
ws_max_clients = 100           # WebSocket clients at once
ws_max_subscriptions = 100     # subscriptions per client
ws_queue = 1000                # messages queued for a client; past it a notice drops it

[mining]
enabled = {str(mining).lower()}
address = ""            # reward address (hex); empty = this node's key
refresh = 2
cpu_percent = {miner_cpu}      # share of one core the miner thread may use (1..100)

[log]
format = "text"         # text | json
level = "info"
levels = []             # per category, e.g. ["net=debug", "rpc=warning"]
max_bytes = 0           # rotate node.log past this size (0: never)
backups = 5             # rotated files kept (node.log.1 ..)

[mempool]
max_bytes = 67108864
max_per_sender = 256

[p2p]
enabled = {str(p2p).lower()}
host = "{p2p_host}"
port = {p2p_port}
peers = [{peer_list}]    # bootstrap peers, "host:port"
max_outbound = 8
max_inbound = 32        # inbound connections held, handshakes included
max_pending = 8         # inbound handshakes under way
max_pending_per_ip = 2  # per IP of a peer on another host
max_inbound_per_ip = 4
reconnect_cooldown = 10 # s a peer we dropped waits to connect again
handshake_timeout = 10  # s
ping_interval = 15      # s
ban_seconds = 3600      # how long misbehaving peers are refused
max_frame_bytes = 9437184
max_blocks_in_flight = 64

[metrics]
enabled = false         # Prometheus /metrics (also `powernode run --metrics`)
host = "127.0.0.1"
port = 8647

[explorer]
enabled = "auto"        # the web explorer at http://RPC-HOST:PORT/: "auto" (dev chains), true, false
"""


def write_genesis(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def init_datadir(
    datadir: Path,
    genesis: Path,
    *,
    key: KeyPair | None = None,
    config: bool = True,
    mining: bool = False,
    p2p: bool = False,
    peers: Sequence[str] = (),
    miner_cpu: int = 100,
) -> KeyPair:
    """What ``powernode init --genesis GENESIS`` writes, with a chosen (or
    fresh) node key and free loopback ports; returns the node key. With
    ``config=False`` the config is left to ``write_config`` (a testnet
    writes its nodes' configs once it has every node's ports)."""
    datadir.mkdir(parents=True, exist_ok=True)
    key = key or KeyPair.generate()
    write_key(datadir / "node.key", key)
    shutil.copyfile(genesis, datadir / "genesis.json")
    if config:
        write_config(datadir, mining=mining, p2p=p2p, peers=peers, miner_cpu=miner_cpu)
    return key


def write_config(
    datadir: Path,
    *,
    rpc_port: int | None = None,
    p2p_port: int | None = None,
    mining: bool = False,
    p2p: bool = False,
    peers: Sequence[str] = (),
    miner_cpu: int = 100,
    p2p_host: str = LOOPBACK,
) -> tuple[int, int]:
    """(Re)write ``datadir/config.toml``, on free ports unless given; returns
    the (rpc, p2p) ports."""
    rpc_port = rpc_port or free_port()
    p2p_port = p2p_port or free_port()
    (datadir / "config.toml").write_text(
        render_config(
            rpc_port=rpc_port,
            p2p_port=p2p_port,
            mining=mining,
            peers=peers,
            p2p=p2p,
            miner_cpu=miner_cpu,
            p2p_host=p2p_host,
        )
    )
    return rpc_port, p2p_port
