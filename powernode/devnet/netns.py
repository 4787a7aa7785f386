"""A testnet of separate hosts on one machine: one Linux network namespace
per node, each with an address of its own on a bridge, so that peers see
each other's real IPs (per-IP limits, bans and address exchange behave as
across machines) and a partition is a cut link, not a cooperating node.

The network of a testnet directory (``NetnsPlan.for_dir``)::

    PREFIX-hub          a namespace holding the bridge br0 (br1.. while
                        partitioned) and the hub end of every link
    PREFIX-nI           node I's namespace: lo, and eth0 at 127.77.S.(10+I)/24
    PREFIX-gK           an extra host (a test's hostile peer) at 127.77.S.(200+K)
    PREFIXvI, PREFIXgK  the hub ends of those links (veth pairs)

``PREFIX`` (``pn`` and six hex digits) and ``S`` come from a hash of the
directory's absolute path, so two testnets never share a name and a crashed
run of the same directory is found and removed by the next one.

Every address is loopback (127.0.0.0/8): each namespace drops the kernel's
"all of 127/8 is local" route except 127.0.0.1 and turns on
``route_localnet``, so 127.77.S.x leave through eth0. Nothing is changed in
the host's (root) namespace; the links are created inside the hub. The host
cannot reach 127.77.x addresses (its own 127/8 route answers for them), so a
host process talks to a node's RPC (127.0.0.1 inside its namespace) from a
thread that entered the namespace (``NetnsRpcClient``); from a shell, ``ip
netns exec PREFIX-nI powernode status --datadir DIR/nodeI``.

Needs root and the ``ip`` command (iproute2).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from powernode.client import Endpoint, RpcClient, RpcUnavailable, endpoint_from_datadir

T = TypeVar("T")

CLONE_NEWNET = 0x40000000  # <sched.h>: the flag setns(2) takes for a network namespace
NETNS_DIR = Path("/run/netns")  # where `ip netns add` puts the namespace handles
BRIDGE = "br0"
NODE_HOST_BASE = 10  # node I is 127.77.S.(10+I)
GUEST_HOST_BASE = 200  # extra host K is 127.77.S.(200+K)
MAX_NODES = GUEST_HOST_BASE - NODE_HOST_BASE
MAX_GUESTS = 50
IP_TIMEOUT = 30.0  # s for one `ip` command


class NetnsError(Exception):
    """A namespace operation failed (the message says which and why)."""


def unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None if they can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespaces"
    return None


def _ip(*args: str, ok: Sequence[str] = ()) -> str:
    """Run ``ip ARGS``; an error whose message contains one of ``ok`` is
    fine (e.g. "File exists" for a route that is already there)."""
    try:
        r = subprocess.run(
            ["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise NetnsError("the 'ip' command (iproute2) is not installed") from None
    except subprocess.TimeoutExpired:
        raise NetnsError(f"'ip {' '.join(args)}' did not finish in {IP_TIMEOUT:g}s") from None
    if r.returncode != 0 and not any(s in r.stderr for s in ok):
        raise NetnsError(f"'ip {' '.join(args)}' failed: {r.stderr.strip() or r.returncode}")
    return r.stdout


def _ip_in(ns: str, command: str, *, ok: Sequence[str] = ()) -> str:
    """``ip -n NS COMMAND``: one command in namespace ``ns``, its words
    separated by spaces (names here never hold one)."""
    return _ip("-n", ns, *command.split(), ok=ok)


def list_namespaces() -> list[str]:
    """Names of the named network namespaces (``ip netns list``)."""
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


# --- entering a namespace from a thread ---------------------------------------------


def enter(name: str) -> None:
    """Move the calling thread (only it) into namespace ``name``; sockets it
    creates from then on belong there, and keep belonging there whichever
    thread uses them. Python 3.11 has no ``os.setns``: libc's is called."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        fd = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetnsError(f"no network namespace {name}: {exc.strerror}") from None
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"cannot enter network namespace {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


_thread = threading.local()  # .netns: the namespace this thread entered


def _inside(name: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on this thread once it is inside ``name``. Entered on
    the first call, not in a pool initializer: a failing initializer is
    logged with a traceback and leaves only a broken pool, where this
    raises ``NetnsError`` saying why (not root, no such namespace)."""
    if getattr(_thread, "netns", None) != name:
        enter(name)
        _thread.netns = name
    return fn(*args)


def run_in(name: str, fn: Callable[[], T]) -> T:
    """``fn()`` on a short-lived thread inside namespace ``name``."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_inside, name, fn).result()


class NetnsRpcClient(RpcClient):
    """An ``RpcClient`` for a node in namespace ``netns``: each request runs
    on one thread of this client that lives in that namespace, so the
    keep-alive connection is made (and kept) there. Closing the client ends
    the thread."""

    def __init__(self, endpoint: Endpoint, *, netns: str, timeout: float = 60.0) -> None:
        super().__init__(endpoint, timeout=timeout)
        self.netns = netns
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @classmethod
    def for_datadir(cls, datadir: Path, *, netns: str, timeout: float = 60.0) -> NetnsRpcClient:
        return cls(endpoint_from_datadir(datadir), netns=netns, timeout=timeout)

    def _post(self, body: bytes) -> Any:
        with self._lock:
            if self._pool is None:
                if not (NETNS_DIR / self.netns).exists():
                    raise RpcUnavailable(f"network namespace {self.netns} does not exist")
                self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"rpc-{self.netns}")
            pool = self._pool
        try:
            return pool.submit(_inside, self.netns, super()._post, body).result()
        except NetnsError as exc:
            raise RpcUnavailable(str(exc)) from None

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # The connection was made on the pool's thread; closing it there
            # or here is the same (a socket is not tied to a thread).
            pool.shutdown(wait=True)
        super().close()


# --- the network of one testnet ------------------------------------------------------


@dataclass(frozen=True)
class Host:
    """One namespace on the bridge: its name, its hub-side link, its IP."""

    netns: str
    link: str
    ip: str


@dataclass(frozen=True)
class NetnsPlan:
    """The names and addresses of one testnet directory's network."""

    prefix: str
    subnet: int  # S in 127.77.S.0/24

    @classmethod
    def for_dir(cls, d: Path) -> NetnsPlan:
        digest = hashlib.sha256(str(d.resolve()).encode()).hexdigest()
        return cls(prefix=f"pn{digest[:6]}", subnet=int(digest[6:8], 16))

    @property
    def hub(self) -> str:
        return f"{self.prefix}-hub"

    def node(self, i: int) -> Host:
        if not 0 <= i < MAX_NODES:
            raise NetnsError(f"a netns testnet has at most {MAX_NODES} nodes")
        return Host(
            netns=f"{self.prefix}-n{i}",
            link=f"{self.prefix}v{i}",
            ip=f"127.77.{self.subnet}.{NODE_HOST_BASE + i}",
        )

    def guest(self, k: int) -> Host:
        if not 0 <= k < MAX_GUESTS:
            raise NetnsError(f"at most {MAX_GUESTS} extra hosts")
        return Host(
            netns=f"{self.prefix}-g{k}",
            link=f"{self.prefix}g{k}",
            ip=f"127.77.{self.subnet}.{GUEST_HOST_BASE + k}",
        )

    def mine(self, names: Sequence[str]) -> list[str]:
        return [n for n in names if n.startswith(self.prefix + "-")]


def create(plan: NetnsPlan, nodes: int) -> list[Host]:
    """The hub and one namespace per node, linked to the bridge, after
    removing whatever a previous run of the same directory left behind."""
    destroy(plan)
    _ip("netns", "add", plan.hub)
    _ip_in(plan.hub, f"link add {BRIDGE} type bridge")
    _ip_in(plan.hub, f"link set {BRIDGE} up")
    hosts = [plan.node(i) for i in range(nodes)]
    for h in hosts:
        attach(plan, h)
    return hosts


def attach(plan: NetnsPlan, host: Host) -> Host:
    """Create ``host``'s namespace and link it to the hub's bridge."""
    ns = host.netns
    _ip("netns", "add", ns)
    # Made inside the hub with its peer end in the node's namespace: no
    # interface ever appears in the host's namespace.
    _ip_in(plan.hub, f"link add {host.link} type veth peer name eth0 netns {ns}")
    _ip_in(plan.hub, f"link set {host.link} master {BRIDGE}")
    _ip_in(plan.hub, f"link set {host.link} up")
    _ip_in(ns, "link set lo up")
    run_in(ns, _route_localnet)
    # The local table makes all of 127/8 this host's; keep only 127.0.0.1
    # (RPC listens there) so 127.77.x go out through eth0.
    _ip_in(ns, "route del local 127.0.0.0/8 dev lo table local")
    _ip_in(ns, "route add local 127.0.0.1 dev lo table local", ok=["File exists"])
    _ip_in(ns, f"addr add {host.ip}/24 dev eth0")
    _ip_in(ns, "link set eth0 up")
    return host


def _route_localnet() -> None:
    # Without it the kernel drops packets with a 127/8 address that arrive
    # on, or leave through, an interface other than lo. /proc/sys/net shows
    # the namespace of the thread that opens it.
    for conf in ("all", "eth0"):
        Path(f"/proc/sys/net/ipv4/conf/{conf}/route_localnet").write_text("1\n")


def exists(plan: NetnsPlan) -> bool:
    return (NETNS_DIR / plan.hub).exists()


def destroy(plan: NetnsPlan) -> list[str]:
    """Kill every process left in this plan's namespaces and delete them
    (the links go with them). Returns the names deleted; a plan with
    nothing left is fine."""
    if unavailable() is not None:
        return []
    names = plan.mine(list_namespaces())
    for ns in names:
        for pid in _ip("netns", "pids", ns).split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
    for ns in names:
        _ip("netns", "delete", ns, ok=["No such file"])
    return names


def exec_args(netns: str) -> list[str]:
    """The prefix that runs a command in ``netns``. ``ip netns exec`` execs
    the command, so the pid of the process started is the command's."""
    return ["ip", "netns", "exec", netns]


# --- partitions ----------------------------------------------------------------------


def partition(plan: NetnsPlan, groups: Sequence[Sequence[int]]) -> None:
    """Cut the network into ``groups`` of node indexes: group G's links move
    to bridge brG (group 0 stays on br0 with any extra hosts), so frames
    cross no longer between groups. Connections across the cut stall, as a
    cable pulled would leave them; ``heal`` puts every link back."""
    heal(plan)
    for g, members in enumerate(groups):
        if g == 0:
            continue
        bridge = f"br{g}"
        _ip_in(plan.hub, f"link add {bridge} type bridge")
        _ip_in(plan.hub, f"link set {bridge} up")
        for i in members:
            _ip_in(plan.hub, f"link set {plan.node(i).link} master {bridge}")


def isolate(plan: NetnsPlan, i: int) -> None:
    """Take node ``i``'s link off every bridge: it reaches no one."""
    _ip_in(plan.hub, f"link set {plan.node(i).link} nomaster")


def heal(plan: NetnsPlan) -> None:
    """Every link back on br0; the partition bridges are removed."""
    links = _ip_in(plan.hub, "-o link show").splitlines()
    for line in links:
        # "7: pn1a2b3cv0@if2: <...> ... master br1 ...": name before "@".
        name = line.split(":", 2)[1].strip().split("@", 1)[0]
        if name.startswith(plan.prefix) and f"master {BRIDGE} " not in line:
            _ip_in(plan.hub, f"link set {name} master {BRIDGE}")
    for line in links:
        name = line.split(":", 2)[1].strip().split("@", 1)[0]
        if name.startswith("br") and name != BRIDGE:
            _ip_in(plan.hub, f"link delete {name}")
