"""A node process started the README way, and finding and stopping node
processes by pid.

Everything talks to 127.0.0.1 only. A node started here is always stopped by
its context manager (SIGTERM, then SIGKILL if it does not exit in time), also
when the benchmark fails or runs out of time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from benchkit.guard import progress
from powernode.client import Endpoint, RpcClient, RpcUnavailable, endpoint_from_datadir

REPO = Path(__file__).resolve().parent.parent.parent


# --- free ports ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
