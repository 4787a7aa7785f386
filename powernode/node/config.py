"""Node configuration: ``config.toml`` in the data dir, loaded once, typed.

Every key is optional; the defaults below are what ``powernode init`` writes.
Unknown keys are an error so a typo is not silently ignored. Every value is
checked at load, with the stdlib only: its type against the default's,
every number against its range in ``RANGES``, and the strings that must
parse (hosts, peers, the mining address, log format and levels); an error
names the key (``config [rpc] port: expected an integer 0..65535, not 70000``).
A validation library (pydantic, attrs validators) would swap the table of
ranges for as many field annotations and add a compiled dependency, and its
error texts would still need rewriting into this one-line form.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from powernode.core.crypto import parse_address
from powernode.core.errors import ConfigError, DecodeError
from powernode.node.logging_setup import CATEGORIES, LEVELS

DEFAULT_RPC_PORT = 8645
DEFAULT_P2P_PORT = 8646
DEFAULT_METRICS_PORT = 8647


@dataclass(frozen=True, slots=True)
class RpcConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_RPC_PORT
    # A fixed token, accepted besides the per-start cookie (optional).
    token: str = ""
    # What one request may make the node hold (README, "Request bounds";
    # node/rpc.py). A block.submit of the largest block is 16 MiB of hex.
    max_request_bytes: int = 64 * 1024 * 1024
    # Calls in one batch (geth's BatchRequestLimit).
    batch_limit: int = 1000
    # A batch's answer: no call runs once it is past this (geth's
    # BatchResponseMaxSize).
    max_response_bytes: int = 25 * 1024 * 1024
    # Nesting of the request's JSON: the methods take flat params, so a
    # batch of calls nests 3 deep.
    max_depth: int = 64
    # JSON values (keys included) in one request: a batch of 1000 tx.submit
    # calls counts 11,001. Parsed, a value costs up to ~100 bytes.
    max_values: int = 100_000
    # WebSocket push (node/rpc_ws.py): clients at once, subscriptions per
    # client, and messages queued for one client before it is dropped as
    # too slow (each a notice or an answer).
    ws_max_clients: int = 100
    ws_max_subscriptions: int = 100
    ws_queue: int = 1000


@dataclass(frozen=True, slots=True)
class MiningConfig:
    enabled: bool = False
    # Reward address (hex); empty means the node key's address.
    address: str = ""
    # Seconds between template rebuilds while the mempool changes.
    refresh: int = 2
    # Share of one core the miner thread may use (1..100), like a CPU limit
    # on a miner: several nodes mining on one small machine leave cores to
    # verify and apply txs. ASERT follows the lower hash rate.
    cpu_percent: int = 100


# [log] level, in any case.
LOG_LEVELS = LEVELS


@dataclass(frozen=True, slots=True)
class LogConfig:
    format: str = "text"  # text | json
    level: str = "info"
    # "category=level" pairs, as bitcoind's -debug=net (logging_setup.CATEGORIES).
    levels: tuple[str, ...] = ()
    # Rotate node.log past this size (0: never; logrotate and SIGHUP instead).
    max_bytes: int = 0
    backups: int = 5

    @property
    def category_levels(self) -> dict[str, str]:
        return dict(pair.split("=", 1) for pair in self.levels)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """The Prometheus endpoint, opt-in as geth's --metrics, on its own port."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = DEFAULT_METRICS_PORT


# [explorer] enabled: "auto" (on for a dev genesis), true or false.
EXPLORER_AUTO = "auto"


@dataclass(frozen=True, slots=True)
class ExplorerConfig:
    """The web explorer on the RPC port (node/explorer_http.py): read-only,
    and no-auth callers may then call the public RPC methods."""

    enabled: bool | str = EXPLORER_AUTO
    # Host names (the Host header, port aside) a no-auth request may name,
    # besides the RPC's bound address and localhost: a page on another name
    # that resolves here (DNS rebinding) is refused. "*" accepts any.
    hosts: tuple[str, ...] = ()
    # What one caller without auth may make the node hold or do: far below
    # the [rpc] bounds, which are sized for block.submit and bulk tools. The
    # explorer's own batches are a few kB and under 50 calls.
    max_request_bytes: int = 64 * 1024
    batch_limit: int = 50
    max_response_bytes: int = 4 * 1024 * 1024
    # No-auth POST /rpc requests being served at once; one more is HTTP 503.
    max_parallel: int = 16
    # No-auth WebSocket clients at once (within [rpc] ws_max_clients), so
    # slots stay free for authenticated tools.
    ws_max_clients: int = 20
    # Bytes queued (answers and notices) for one no-auth WebSocket client;
    # past it the client is dropped as too slow.
    ws_queue_bytes: int = 8 * 1024 * 1024

    def on(self, *, dev: bool) -> bool:
        """Whether the explorer is served, given the genesis's ``dev`` flag:
        ``auto`` means every dev chain and the local testnet, never a real one."""
        return dev if self.enabled == EXPLORER_AUTO else self.enabled is True


@dataclass(frozen=True, slots=True)
class MempoolConfig:
    max_bytes: int = 64 * 1024 * 1024
    max_per_sender: int = 256


@dataclass(frozen=True, slots=True)
class P2pConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_P2P_PORT
    enabled: bool = False
    # Static bootstrap peers, "host:port".
    peers: tuple[str, ...] = ()
    max_outbound: int = 8
    # Inbound connections held at once, handshakes under way included.
    max_inbound: int = 32
    # Inbound handshakes under way at once (each also holds an inbound slot).
    max_pending: int = 8
    # Per remote IP, for peers on another host (README, "Peer protocol":
    # peers on this host are exempt): handshakes and connections held.
    max_pending_per_ip: int = 2
    max_inbound_per_ip: int = 4
    # Seconds a peer we dropped must wait before it may connect again.
    reconnect_cooldown: int = 10
    handshake_timeout: int = 10
    ping_interval: int = 15
    ban_seconds: int = 3600
    max_frame_bytes: int = 9 * 1024 * 1024
    max_blocks_in_flight: int = 64


# [rpc] keys that bound what one request can cost (all positive integers).
RPC_LIMITS = (
    "max_request_bytes",
    "batch_limit",
    "max_response_bytes",
    "max_depth",
    "max_values",
    "ws_max_clients",
    "ws_max_subscriptions",
    "ws_queue",
)

_PORT = (0, 65535)  # 0: any free port (the one bound is in node.json)
_BYTES = (1, 2**40)
# Each integer key's range, by [section] and key; the README's config table
# gives the same. Upper bounds keep a value within what the code it reaches
# can take (a timer, a count of processes), far above any real setting.
RANGES: dict[tuple[str, str], tuple[int, int]] = {
    ("", "verify_processes"): (1, 64),
    ("rpc", "port"): _PORT,
    ("rpc", "max_request_bytes"): _BYTES,
    ("rpc", "batch_limit"): (1, 10**9),
    ("rpc", "max_response_bytes"): _BYTES,
    ("rpc", "max_depth"): (1, 10_000),
    ("rpc", "max_values"): (1, 10**9),
    ("rpc", "ws_max_clients"): (1, 10**6),
    ("rpc", "ws_max_subscriptions"): (1, 10**6),
    ("rpc", "ws_queue"): (1, 10**7),
    ("explorer", "max_request_bytes"): (1, 2**30),
    ("explorer", "batch_limit"): (1, 10**6),
    ("explorer", "max_response_bytes"): (1, 2**40),
    ("explorer", "max_parallel"): (1, 10**6),
    ("explorer", "ws_max_clients"): (1, 10**6),
    ("explorer", "ws_queue_bytes"): (1, 2**40),
    ("mining", "refresh"): (1, 3600),
    ("mining", "cpu_percent"): (1, 100),
    ("log", "max_bytes"): (0, 2**50),
    ("log", "backups"): (1, 1000),
    ("metrics", "port"): _PORT,
    ("mempool", "max_bytes"): _BYTES,
    ("mempool", "max_per_sender"): (1, 10**6),
    ("p2p", "port"): _PORT,
    ("p2p", "max_outbound"): (0, 1000),
    ("p2p", "max_inbound"): (1, 10_000),
    ("p2p", "max_pending"): (1, 10_000),
    ("p2p", "max_pending_per_ip"): (1, 10_000),
    ("p2p", "max_inbound_per_ip"): (1, 10_000),
    ("p2p", "reconnect_cooldown"): (0, 86_400),
    ("p2p", "handshake_timeout"): (1, 3600),
    ("p2p", "ping_interval"): (1, 86_400),
    ("p2p", "ban_seconds"): (1, 10**8),
    ("p2p", "max_frame_bytes"): (1, 2**32),
    ("p2p", "max_blocks_in_flight"): (1, 10_000),
}

# Old top-level key -> the key that replaced it. An old key still loads, and
# the node logs one ``config.deprecated`` line for it at start.
DEPRECATED_KEYS = {"verify_threads": "verify_processes"}


@dataclass(frozen=True, slots=True)
class NodeConfig:
    datadir: Path
    genesis: str = "genesis.json"
    # Signature-check worker processes (verify.py).
    verify_processes: int = 2
    # SQLite's quick_check of chain.db at every start (README, "Storage
    # faults"): about half of what the rest of a start costs at 10,000 blocks.
    check_db: bool = True
    rpc: RpcConfig = field(default_factory=RpcConfig)
    mining: MiningConfig = field(default_factory=MiningConfig)
    log: LogConfig = field(default_factory=LogConfig)
    mempool: MempoolConfig = field(default_factory=MempoolConfig)
    p2p: P2pConfig = field(default_factory=P2pConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    explorer: ExplorerConfig = field(default_factory=ExplorerConfig)
    # (old key, new key) for each deprecated key the file used.
    deprecated: tuple[tuple[str, str], ...] = ()

    @property
    def genesis_path(self) -> Path:
        p = Path(self.genesis)
        return p if p.is_absolute() else self.datadir / p

    @property
    def db_path(self) -> Path:
        return self.datadir / "chain.db"

    @property
    def mempool_path(self) -> Path:
        return self.datadir / "mempool.dat"

    @property
    def log_path(self) -> Path:
        return self.datadir / "node.log"

    @property
    def cookie_path(self) -> Path:
        return self.datadir / ".cookie"

    @property
    def key_path(self) -> Path:
        return self.datadir / "node.key"

    @property
    def runtime_path(self) -> Path:
        """Written while the node runs: pid and the RPC URL actually bound."""
        return self.datadir / "node.json"


_SECTIONS: dict[str, type] = {
    "rpc": RpcConfig,
    "mining": MiningConfig,
    "log": LogConfig,
    "mempool": MempoolConfig,
    "p2p": P2pConfig,
    "metrics": MetricsConfig,
    "explorer": ExplorerConfig,
}


# A key's type in the words of the file the operator wrote (TOML's), not
# Python's ("int", "True").
_TOML_TYPES: dict[type, str] = {int: "an integer", str: "a string", bool: "true or false"}


def _toml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return repr(value)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"config [{where}]: unknown keys {unknown}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        default = getattr(cls(), key) if where != "" else None
        if cls is ExplorerConfig and key == "enabled":
            # The one key of two types: checked by _check_strings.
            kwargs[key] = value
            continue
        if isinstance(default, tuple):
            if not isinstance(value, list):
                raise ConfigError(
                    f"config [{where}] {key}: expected a list, not {_toml_text(value)}"
                )
            value = tuple(value)
        elif default is not None and type(value) is not type(default):
            raise ConfigError(
                f"config [{where}] {key}: expected {_TOML_TYPES.get(type(default), 'a value')}, "
                f"not {_toml_text(value)}"
            )
        kwargs[key] = value
    return cls(**kwargs)


def load_config(datadir: Path) -> NodeConfig:
    path = datadir / "config.toml"
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    top: dict[str, Any] = {"datadir": datadir}
    deprecated: list[tuple[str, str]] = []
    for old, new in DEPRECATED_KEYS.items():
        if old in data:
            if new in data:
                raise ConfigError(f"config: both {old} and {new} are set; keep only {new}")
            data[new] = data.pop(old)
            deprecated.append((old, new))
    for key, value in data.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"config [{key}] must be a table")
            top[key] = _build(_SECTIONS[key], value, key)
        elif key == "genesis":
            if not isinstance(value, str):
                raise ConfigError(
                    f"config genesis: expected a string (a path), not {_toml_text(value)}"
                )
            top[key] = value
        elif key == "check_db":
            if type(value) is not bool:
                raise ConfigError(
                    f"config check_db: expected true or false, not {_toml_text(value)}"
                )
            top[key] = value
        elif key == "verify_processes":
            if type(value) is not int:
                written = next((o for o, n in deprecated if n == key), key)
                raise ConfigError(f"config {written}: expected an integer, not {_toml_text(value)}")
            top[key] = value
        else:
            raise ConfigError(f"config: unknown key {key!r}")
    cfg = NodeConfig(**top, deprecated=tuple(deprecated))
    for (section, key), (lo, hi) in RANGES.items():
        value = getattr(getattr(cfg, section) if section else cfg, key)
        if not lo <= value <= hi:
            written = next((o for o, n in deprecated if n == key), key)
            name = f"[{section}] {written}" if section else written
            raise ConfigError(f"config {name}: expected an integer {lo}..{hi}, not {value}")
    _check_strings(cfg)
    if cfg.log.format.lower() not in ("text", "json"):
        raise ConfigError(f"config [log] format: expected 'text' or 'json', not {cfg.log.format!r}")
    check_ports(cfg)
    # Checked here, not left to logging.setLevel, whose ValueError would
    # end `powernode run` in a traceback.
    if cfg.log.level.lower() not in LOG_LEVELS:
        raise ConfigError(
            f"config [log] level: expected {', '.join(LOG_LEVELS)}, not {cfg.log.level!r}"
        )
    _check_log(cfg.log)
    return cfg


def _check_strings(cfg: NodeConfig) -> None:
    """The string values that must say something: hosts, peers, the genesis
    path and the mining address."""
    for section in ("rpc", "p2p", "metrics"):
        host = getattr(cfg, section).host
        if not host.strip() or any(c.isspace() for c in host):
            raise ConfigError(f"config [{section}] host: expected a host name or IP, not {host!r}")
    if not cfg.genesis.strip():
        raise ConfigError("config genesis: expected a path, not an empty string")
    enabled = cfg.explorer.enabled
    if type(enabled) is not bool and enabled != EXPLORER_AUTO:
        raise ConfigError(
            f'config [explorer] enabled: expected "auto", true or false, not {enabled!r}'
        )
    for name in cfg.explorer.hosts:
        if not _is_host_name(name):
            raise ConfigError(
                f"config [explorer] hosts: {name!r} is not a host name "
                "(a name or IP without a port, an IPv6 address without brackets)"
            )
    for peer in cfg.p2p.peers:
        if not isinstance(peer, str) or not is_host_port(peer):
            raise ConfigError(f"config [p2p] peers: {peer!r} is not 'host:port' (port 1..65535)")
    if cfg.mining.address:
        try:
            parse_address(cfg.mining.address)
        except DecodeError as exc:
            raise ConfigError(
                f'config [mining] address: {exc.message} (40 hex digits, or "" for the node key\'s)'
            ) from None


def _is_host_name(name: Any) -> bool:
    """A Host header's host as the RPC server compares it (port and IPv6
    brackets stripped): an entry with a port or brackets would never match."""
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        return False
    if ":" in name:
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return False
        return True
    return not any(c in name for c in "[]/@")


def is_host_port(text: str) -> bool:
    """A peer address as the config and the peer RPCs take it: ``host:port``,
    a port in 1..65535, no spaces in the host."""
    host, sep, port = text.rpartition(":")
    return (
        bool(sep and host.strip("[]"))
        and not any(c.isspace() for c in host)
        and port.isascii()
        and port.isdigit()
        and 1 <= int(port) <= 65535
    )


def check_ports(cfg: NodeConfig) -> None:
    """Two of the node's listeners on one host and port: the second would
    fail to bind, blamed on whichever started first, so name both here
    (ConfigError). ``run --metrics`` checks again after enabling metrics."""
    seen: dict[tuple[str, int], str] = {}
    for name, on, host, port in (
        ("[rpc] port", True, cfg.rpc.host, cfg.rpc.port),
        ("[p2p] port", cfg.p2p.enabled, cfg.p2p.host, cfg.p2p.port),
        ("[metrics] port", cfg.metrics.enabled, cfg.metrics.host, cfg.metrics.port),
    ):
        if not on or port == 0:
            continue
        other = seen.setdefault((host.lower(), port), name)
        if other != name:
            raise ConfigError(
                f"config {name}: {port} is also {other} on {host}; each listener needs "
                f"a port of its own"
            )


def _check_log(log: LogConfig) -> None:
    for pair in log.levels:
        category, _, level = pair.partition("=") if isinstance(pair, str) else ("", "", "")
        if category not in CATEGORIES or level.lower() not in LOG_LEVELS:
            raise ConfigError(
                f"config [log] levels: {pair!r} is not category=level; categories "
                f"{', '.join(CATEGORIES)}; levels {', '.join(LOG_LEVELS)}"
            )
