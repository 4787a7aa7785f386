"""Helpers shared by the benchmark scripts: progress output, a runtime budget,
a node process started the README way, a minimal raw JSON-RPC connection and
small statistics.

Everything talks to 127.0.0.1 only. A node started here is always stopped by
its context manager (SIGTERM, then SIGKILL if it does not exit in time), also
when the benchmark fails or runs out of time.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import urlsplit

from powernode.client import Endpoint, RpcClient, RpcUnavailable, endpoint_from_datadir

REPO = Path(__file__).resolve().parent.parent
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


class CpuMonitor:
    """How much CPU other processes used while a phase ran.

    Foreign load = machine busy time - this process (and reaped children) -
    tracked node processes. A node that exits during a phase is still counted:
    its time moves into this process's children time when it is reaped.
    """

    def __init__(self) -> None:
        self.pids: set[int] = set()
        self.phases: dict[str, dict[str, float]] = {}
        self._start: tuple[float, float, float, float] | None = None

    def _sample(self) -> tuple[float, float, float, float]:
        busy, steal = _system_cpu()
        own = _process_cpu(os.getpid()) + sum(_process_cpu(p) for p in self.pids)
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
