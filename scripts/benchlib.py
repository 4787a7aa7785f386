"""Helpers shared by the benchmark scripts: progress output, a runtime budget,
a node process started the README way, a testnet started with
``scripts/testnet.py up``, node log parsing, a minimal raw JSON-RPC connection
and small statistics.

Everything talks to 127.0.0.1 only. A node started here is always stopped by
its context manager (SIGTERM, then SIGKILL if it does not exit in time), also
when the benchmark fails or runs out of time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import urlsplit

from powernode.client import Endpoint, RpcClient, RpcUnavailable, endpoint_from_datadir

REPO = Path(__file__).resolve().parent.parent
TESTNET_SCRIPT = REPO / "scripts" / "testnet.py"
_T0 = time.monotonic()


# --- progress ----------------------------------------------------------------


def progress(msg: str) -> None:
    """One progress line on stderr, stamped with the seconds since start."""
    print(f"[{time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --- runtime budget ------------------------------------------------------------


class BenchAborted(Exception):
    """The run hit its time budget or was told to stop (SIGTERM)."""


_aborting = False


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    _abort("time budget exhausted")


def _on_term(signum: int, frame: FrameType | None) -> None:
    _abort(f"stopped by signal {signum}")


def _abort(reason: str) -> None:
    global _aborting
    if _aborting:  # already unwinding: let the cleanup finish
        return
    _aborting = True
    raise BenchAborted(reason)


def install_budget(seconds: float) -> None:
    """Raise BenchAborted in the main thread after ``seconds`` (or on SIGTERM),
    so ``finally`` blocks get to stop any node process."""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def run_guarded(body: Callable[[], None], record: dict[str, Any]) -> int:
    """Run a benchmark body; turn an abort, Ctrl-C or a crash into an exit
    code (0, 2 or 130) and an ``error`` entry in ``record``, and always
    cancel the time budget."""
    try:
        body()
        return 0
    except BenchAborted as exc:
        record["error"] = f"aborted: {exc}"
        return 2
    except KeyboardInterrupt:
        record["error"] = "interrupted"
        return 130
    except Exception as exc:
        traceback.print_exc()
        record["error"] = f"{type(exc).__name__}: {exc}"
        return 2
    finally:
        cancel_budget()


def cancel_budget() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)


# --- statistics ----------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(s)))
    return s[rank - 1]


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- machine load --------------------------------------------------------------

_CLK = os.sysconf("SC_CLK_TCK")


def _system_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    busy = v[0] + v[1] + v[2] + v[5] + v[6]
    steal = v[7] if len(v) > 7 else 0
    return busy / _CLK, steal / _CLK


def _process_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its reaped children; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = data[data.rfind(")") + 2 :].split()
    return sum(int(x) for x in fields[11:15]) / _CLK


def _descendants(pids: set[int]) -> set[int]:
    """Live descendants of ``pids``: a node's signature worker processes."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    data = f.read()
            except OSError:
                continue
            parent[int(entry)] = int(data[data.rfind(")") + 2 :].split()[1])
    found: set[int] = set()
    frontier = set(pids)
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found |= frontier
    return found


class CpuMonitor:
    """How much CPU other processes used while a phase ran.

    Foreign load = machine busy time - this process (and reaped children) -
    tracked node processes and their live children (the node's signature
    workers). A node that exits during a phase is still counted: its time
    moves into this process's children time when it is reaped.
    """

    def __init__(self) -> None:
        self.pids: set[int] = set()
        self.phases: dict[str, dict[str, float]] = {}
        self._start: tuple[float, float, float, float] | None = None

    def _sample(self) -> tuple[float, float, float, float]:
        busy, steal = _system_cpu()
        tracked = self.pids | _descendants(self.pids)
        own = _process_cpu(os.getpid()) + sum(_process_cpu(p) for p in tracked)
        return time.monotonic(), busy, steal, own

    def begin(self) -> None:
        self._start = self._sample()

    def end(self, phase: str) -> dict[str, float]:
        assert self._start is not None
        t0, busy0, steal0, own0 = self._start
        t1, busy1, steal1, own1 = self._sample()
        wall = max(t1 - t0, 1e-6)
        out = {
            "seconds": wall,
            "own_cores": (own1 - own0) / wall,
            "other_cores": max(0.0, (busy1 - busy0) - (own1 - own0)) / wall,
            "steal_cores": (steal1 - steal0) / wall,
        }
        self.phases[phase] = out
        self._start = None
        return out

    def other_load(self, seconds: float = 1.0) -> float:
        """Cores used by other processes over the next ``seconds``."""
        self.begin()
        time.sleep(seconds)
        return self.end("_probe")["other_cores"]

    def wait_quiet(self, limit: float, max_other: float) -> float:
        """Wait up to ``limit`` seconds for other processes to use less than
        ``max_other`` cores; returns the last measured load."""
        deadline = time.monotonic() + limit
        load = self.other_load()
        while load > max_other and time.monotonic() < deadline:
            progress(f"machine busy: other processes use {load:.2f} cores; waiting")
            load = self.other_load()
        self.phases.pop("_probe", None)
        return load


# --- raw JSON-RPC --------------------------------------------------------------


class RawRpc:
    """One keep-alive HTTP connection that POSTs pre-encoded JSON-RPC bodies.

    The benchmarks build request bodies before timing and parse answers after
    it, so the client spends as little CPU as possible (it shares the machine
    with the node).
    """

    def __init__(self, endpoint: Endpoint, *, timeout: float = 60.0) -> None:
        parts = urlsplit(endpoint.url)
        self._path = parts.path or "/rpc"
        self._conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout
        )
        self._headers = {"Content-Type": "application/json", "Authorization": endpoint.auth}

    def post(self, body: bytes) -> bytes:
        self._conn.request("POST", self._path, body=body, headers=self._headers)
        resp = self._conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
        return data

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        ).encode()
        doc = json.loads(self.post(body))
        if "error" in doc:
            raise RuntimeError(f"{method}: {doc['error']}")
        return doc["result"]

    def close(self) -> None:
        self._conn.close()


def request_body(method: str, params: dict[str, Any], id_: int = 1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}).encode()


# --- a node process ------------------------------------------------------------


class NodeProcess:
    """``powernode init --genesis`` then ``powernode run`` in its own session.

    Use as a context manager: leaving the block always stops the process.
    """

    def __init__(self, datadir: Path, genesis: Path, *, name: str = "node") -> None:
        self.datadir = datadir
        self.genesis = genesis
        self.name = name
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0
        self._log: Any = None
        self.exit_code: int | None = None

    @property
    def stderr_path(self) -> Path:
        return self.datadir / "stderr.log"

    def _cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "powernode.cli", *args]

    def start(self, *, ready_timeout: float = 30.0) -> Endpoint:
        self.port = free_port()
        subprocess.run(
            self._cli(
                "init",
                "--datadir",
                str(self.datadir),
                "--genesis",
                str(self.genesis),
                "--rpc-port",
                str(self.port),
                "--p2p-port",
                str(free_port()),
            ),
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            timeout=30,
        )
        self._log = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self._cli("run", "--datadir", str(self.datadir)),
            cwd=REPO,
            stdout=self._log,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C at the terminal is ours to handle
        )
        self.pid = self.proc.pid
        return self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> Endpoint:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} while starting:\n"
                    + self.stderr_tail()
                )
            try:
                ep = endpoint_from_datadir(self.datadir)
                with RpcClient(ep, timeout=5.0) as c:
                    c.call("node.info")
                return ep
            except (RpcUnavailable, OSError, ValueError, KeyError):
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} RPC not ready after {timeout}s:\n" + self.stderr_tail())

    def stderr_tail(self, lines: int = 20) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, term_timeout: float = 20.0) -> int | None:
        """SIGTERM (a clean stop: the node saves its mempool), then SIGKILL."""
        proc = self.proc
        if proc is None:
            return self.exit_code
        try:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=term_timeout)
                except subprocess.TimeoutExpired:
                    progress(f"{self.name} (pid {proc.pid}) ignored SIGTERM; sending SIGKILL")
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
                except ProcessLookupError:
                    pass
            self.exit_code = proc.returncode
        finally:
            self.proc = None
            if self._log is not None:
                self._log.close()
                self._log = None
        return self.exit_code

    def __enter__(self) -> NodeProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- processes by pid --------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone: it may never be
    reaped if its parent exited and nobody reaps orphans)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = data[data.rfind(")") + 2 :].split(" ", 1)[0]
    return state not in ("Z", "X")


def node_pids_under(root: Path) -> list[int]:
    """Pids of ``powernode run --datadir DIR`` processes whose DIR lies under
    ``root``: the nodes a benchmark started there, found even if it was cut
    short before it could record their pids."""
    root = root.resolve()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"powernode.cli" not in args or b"--datadir" not in args:
            continue
        i = args.index(b"--datadir")
        if i + 1 >= len(args):
            continue
        datadir = Path(args[i + 1].decode(errors="replace"))
        if not datadir.is_absolute():
            try:
                datadir = Path(os.readlink(entry / "cwd")) / datadir
            except OSError:
                continue
        if datadir.resolve().is_relative_to(root):
            found.append(int(entry.name))
    return found


def stop_pids(pids: list[int], *, term_timeout: float = 20.0) -> dict[int, str]:
    """SIGTERM every pid at once, wait up to ``term_timeout`` s, SIGKILL the
    rest. Returns how each one ended."""
    out: dict[int, str] = {}
    live = [p for p in pids if pid_alive(p)]
    for p in pids:
        if p not in live:
            out[p] = "not running"
    for p in live:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            out[p] = "stopped"
    deadline = time.monotonic() + term_timeout
    while time.monotonic() < deadline:
        for p in live:
            if p not in out and not pid_alive(p):
                out[p] = "stopped"
        if all(p in out for p in live):
            return out
        time.sleep(0.1)
    for p in live:
        if p not in out:
            progress(f"pid {p} ignored SIGTERM for {term_timeout:.0f} s; sending SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
            out[p] = "killed"
    return out


# --- node logs -----------------------------------------------------------------


def parse_log_line(line: str) -> tuple[float, str, dict[str, str]] | None:
    """(unix time, event, fields) of a text-format node log line, e.g.
    ``2026-11-23T18:41:09.365Z INFO  chain block.connected height=1 hash=1d84..``;
    None for anything else. Field values stay strings."""
    parts = line.split()
    if len(parts) < 4 or not parts[0].endswith("Z"):
        return None
    try:
        ts = (
            dt.datetime.strptime(parts[0], "%Y-%m-%dT%H:%M:%S.%fZ")
            .replace(tzinfo=dt.UTC)
            .timestamp()
        )
    except ValueError:
        return None
    fields: dict[str, str] = {}
    for p in parts[4:]:
        k, sep, v = p.partition("=")
        if sep:
            fields[k] = v.strip('"')
    return ts, parts[3], fields


def log_events(
    path: Path, events: set[str] | None = None
) -> list[tuple[float, str, dict[str, str]]]:
    """Every parsed line of a node log (only ``events`` if given), in order."""
    out: list[tuple[float, str, dict[str, str]]] = []
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        rec = parse_log_line(line)
        if rec is not None and (events is None or rec[1] in events):
            out.append(rec)
    return out


# --- a testnet -----------------------------------------------------------------


class Testnet:
    """A local testnet made by ``scripts/testnet.py up`` in ``root``.

    Use as a context manager: leaving the block stops every node process
    under ``root`` (SIGTERM, then SIGKILL), also when ``up`` was cut short or
    the benchmark failed, and including processes added with ``adopt``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state: dict[str, Any] = {}
        self.extra: list[subprocess.Popen[bytes]] = []

    def up(
        self,
        nodes: int,
        *,
        mine: bool = True,
        easy: bool = False,
        block_time: int | None = None,
        accounts: int | None = None,
        chain_id: str | None = None,
        miner_cpu: int = 100,
        timeout: float = 180.0,
    ) -> None:
        cmd = [sys.executable, str(TESTNET_SCRIPT), "up", "--dir", str(self.root)]
        cmd += ["--nodes", str(nodes)]
        if not mine:
            cmd.append("--no-mine")
        if easy:
            cmd.append("--easy")
        if block_time is not None:
            cmd += ["--block-time", str(block_time)]
        if accounts is not None:
            cmd += ["--accounts", str(accounts)]
        if chain_id is not None:
            cmd += ["--chain-id", chain_id]
        if miner_cpu != 100:
            cmd += ["--miner-cpu", str(miner_cpu)]
        for attempt in (1, 2):
            r = subprocess.run(
                cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
            )
            if r.returncode == 0:
                break
            problem = f"testnet up failed ({r.returncode}):\n{r.stdout}{r.stderr}"
            for err in sorted(self.root.glob("*/stderr.log")):
                lines = err.read_text(errors="replace").splitlines()
                if any("Error" in line or "Traceback" in line for line in lines):
                    problem += f"\n--- {err}:\n" + "\n".join(lines[-15:])
            if attempt == 2:
                raise RuntimeError(problem)
            progress(problem + "\nretrying once")
            self.stop()
        self.state = json.loads((self.root / "testnet.json").read_text())

    @property
    def nodes(self) -> list[dict[str, Any]]:
        return list(self.state.get("nodes", []))

    @property
    def names(self) -> list[str]:
        return [n["name"] for n in self.nodes]

    @property
    def pids(self) -> list[int]:
        return [int(n["pid"]) for n in self.nodes if n.get("pid")]

    def datadir(self, name: str) -> Path:
        return self.root / name

    def endpoint(self, name: str) -> Endpoint:
        return endpoint_from_datadir(self.datadir(name))

    def client(self, name: str, *, timeout: float = 60.0) -> RpcClient:
        return RpcClient(self.endpoint(name), timeout=timeout)

    def adopt(self, proc: subprocess.Popen[bytes]) -> None:
        self.extra.append(proc)

    def wait_peers(self, minimum: int, timeout: float) -> dict[str, int]:
        """Wait until every node has ``minimum`` connected peers; the counts."""
        deadline = time.monotonic() + timeout
        counts: dict[str, int] = {}
        while True:
            for name in self.names:
                try:
                    with self.client(name, timeout=10) as c:
                        peers = c.call("peer.list")
                    counts[name] = sum(1 for p in peers if p.get("direction") in ("in", "out"))
                except (RpcUnavailable, OSError, ValueError):
                    counts[name] = 0
            if min(counts.values(), default=0) >= minimum or time.monotonic() > deadline:
                return counts
            time.sleep(0.2)

    def stop(self, *, term_timeout: float = 20.0) -> dict[int, str]:
        pids = set(self.pids) | {p.pid for p in self.extra}
        if self.root.exists():
            pids |= set(node_pids_under(self.root))
        out = stop_pids(sorted(pids), term_timeout=term_timeout)
        for p in self.extra:  # reap our own children
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        self.extra.clear()
        return out

    def __enter__(self) -> Testnet:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- where a process spends its CPU ------------------------------------------------


def pyspy_path() -> str | None:
    """The py-spy executable (next to this Python, or on PATH), if installed."""
    here = Path(sys.executable).parent / "py-spy"
    if here.exists():
        return str(here)
    return shutil.which("py-spy")


def thread_names(pid: int, timeout: float = 20.0) -> dict[int, str]:
    """OS thread id -> Python thread name, from ``py-spy dump`` (empty if
    py-spy is missing or fails)."""
    exe = pyspy_path()
    if exe is None:
        return {}
    try:
        r = subprocess.run(
            [exe, "dump", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {}
    out: dict[int, str] = {}
    for line in r.stdout.splitlines():
        # Thread 16909 (idle): "miner"
        if line.startswith("Thread ") and '"' in line:
            head, _, rest = line.partition(" (")
            tid = head.split()[1]
            name = rest.split('"')[1] if rest.count('"') >= 2 else ""
            with contextlib.suppress(ValueError):
                out[int(tid, 0)] = name
    return out


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rfind(")") + 2 :].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / _CLK
    return out


def child_pids(pid: int) -> list[int]:
    """Live child processes of ``pid`` (e.g. a node's signature workers)."""
    out: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            data = (entry / "stat").read_text()
        except OSError:
            continue
        fields = data[data.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(pid):
            out.append(int(entry.name))
    return out


def cpu_by_role(pid: int, names: dict[int, str]) -> dict[str, float]:
    """CPU seconds so far of a node process, by role: its threads grouped
    with ``thread_role`` (``names`` from ``thread_names``), its live child
    processes as ``workers``, and children it has reaped in ``workers`` too."""
    out: dict[str, float] = {}
    for tid, secs in thread_cpu(pid).items():
        role = thread_role(names.get(tid, ""))
        out[role] = out.get(role, 0.0) + secs
    for child in child_pids(pid):
        out["workers"] = out.get("workers", 0.0) + _process_cpu(child)
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
        fields = data[data.rfind(")") + 2 :].split()
        out["workers"] = out.get("workers", 0.0) + (int(fields[13]) + int(fields[14])) / _CLK
    except (OSError, IndexError, ValueError):
        pass
    return out


def thread_role(name: str) -> str:
    """Group a node's Python thread names: event loop, miner, verify workers."""
    if name == "MainThread":
        return "loop"
    if name.startswith("miner"):
        return "miner"
    if name.startswith(("verify", "sig")):
        return "verify"
    return "other"


def summarize_pyspy_raw(path: Path, top: int = 15) -> dict[str, Any]:
    """Aggregate a ``py-spy record --threads --format raw`` file: samples per
    thread, and for the event loop thread the functions with the most samples
    on top of the stack (self) and anywhere in it (inclusive, powernode code
    only). A function is ``file:function``; line numbers are dropped."""
    threads: dict[str, int] = {}
    loop_self: dict[str, int] = {}
    loop_incl: dict[str, int] = {}
    loop_total = 0
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return {}

    def fn(frame: str) -> str:
        name, _, where = frame.partition(" (")
        file = where.rsplit(":", 1)[0]
        return f"{file}:{name}"

    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        thread = frames[0].split(": ", 1)[-1]
        threads[thread] = threads.get(thread, 0) + n
        if thread != "MainThread" or len(frames) < 2:
            continue
        loop_total += n
        leaf = fn(frames[-1])
        loop_self[leaf] = loop_self.get(leaf, 0) + n
        for f in {fn(fr) for fr in frames[1:]}:
            if f.startswith("powernode/"):
                loop_incl[f] = loop_incl.get(f, 0) + n

    def ranked(d: dict[str, int]) -> list[tuple[str, int, float]]:
        items = sorted(d.items(), key=lambda kv: -kv[1])[:top]
        return [(k, v, v / loop_total if loop_total else 0.0) for k, v in items]

    return {
        "samples_by_thread": threads,
        "loop_samples": loop_total,
        "loop_self": ranked(loop_self),
        "loop_inclusive": ranked(loop_incl),
    }
