"""Node processes: ``ProcessNode`` starts a real ``powernode run`` on a data
dir (the README's way to run a node), waits until it serves RPC and stops it;
``pid_alive`` and ``stop_pids`` handle nodes known only by pid (a testnet's
nodes outlive the ``scripts/testnet.py`` command that started them).

Every node gets its own session, so a Ctrl-C at the terminal reaches only
the tool that started it, which stops its nodes itself (SIGTERM, the clean
stop, then SIGKILL if a node does not exit in time). Output goes to
``DATADIR/stderr.log`` (or ``stderr_path``), unbuffered, so a crash leaves
its traceback there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from powernode.client import Endpoint, RpcClient, endpoint_from_datadir
from powernode.devnet.netns import NetnsRpcClient, exec_args
from powernode.devnet.wait import DEFAULT_TIMEOUT, WaitAbort, WaitTimeout, wait_until

KILL_TIMEOUT = 10.0  # s for a SIGKILLed process to be gone


class NodeExited(WaitAbort):
    """The node process ended while we waited for it to come up."""


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file ("" if there is none)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ProcessNode:
    """A ``powernode run`` process on ``datadir`` (which ``powernode init``
    or ``init_datadir`` wrote). One process at a time; ``start`` again after
    ``stop`` or ``kill`` restarts it on the same data dir. As a context
    manager, leaving the block stops it whatever happened."""

    def __init__(
        self,
        datadir: Path,
        *,
        name: str | None = None,
        extra_args: tuple[str, ...] = (),
        stderr_path: Path | None = None,
        netns: str = "",
    ) -> None:
        self.datadir = datadir
        self.name = name or datadir.name
        self.extra_args = extra_args
        # Elsewhere than the data dir for a data dir that fills up or turns
        # read-only under the node (tests/e2e/test_storage_faults.py).
        self._stderr_path = stderr_path
        self.netns = netns  # run in this network namespace (powernode.devnet.netns)
        self.proc: subprocess.Popen[bytes] | None = None
        self._rpc: RpcClient | None = None

    @property
    def log_path(self) -> Path:
        return self.datadir / "node.log"

    @property
    def stderr_path(self) -> Path:
        return self._stderr_path or self.datadir / "stderr.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    @property
    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    # --- starting -------------------------------------------------------------------

    def spawn(self, *args: str) -> int:
        """Start the process and return its pid, without waiting for it."""
        assert not self.is_running(), f"{self.name} is already running"
        self.close_rpc()
        self._drop_stale_runtime()
        with open(self.stderr_path, "ab") as err:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [
                    *(exec_args(self.netns) if self.netns else []),
                    sys.executable,
                    "-m",
                    "powernode.cli",
                    "run",
                    "--datadir",
                    str(self.datadir),
                    *self.extra_args,
                    *args,
                ],
                stdout=err,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        return self.proc.pid

    def _drop_stale_runtime(self) -> None:
        """Remove the ``node.json`` of a node that no longer runs. A node
        killed with SIGKILL leaves it behind, and ``powernode run`` refuses
        to start while the pid in it exists, which an unreaped zombie (a
        testnet node whose starter has exited) still does."""
        runtime = self.datadir / "node.json"
        try:
            pid = json.loads(runtime.read_text())["pid"]
        except (OSError, ValueError, KeyError):
            return
        if not pid_alive(pid):
            runtime.unlink(missing_ok=True)

    def wait_ready(self, timeout: float = DEFAULT_TIMEOUT) -> Endpoint:
        """Wait until this process (not an earlier one on the data dir) serves
        RPC; ``NodeExited`` at once if it dies, ``WaitTimeout`` after
        ``timeout`` seconds."""
        wait_until(self._ready, timeout=timeout, what=f"{self.name} ({self.datadir}) to serve RPC")
        return self.endpoint

    def start(self, *args: str, timeout: float = DEFAULT_TIMEOUT) -> Endpoint:
        self.spawn(*args)
        return self.wait_ready(timeout)

    def _ready(self) -> bool:
        assert self.proc is not None, "not started"
        if self.proc.poll() is not None:
            raise NodeExited(
                f"{self.name} exited with {self.proc.returncode}; see {self.stderr_path}:\n"
                + tail(self.stderr_path)
            )
        # node.json names the pid that wrote it: a file left by an earlier
        # run on this data dir does not count.
        runtime = self.datadir / "node.json"
        if not runtime.exists() or json.loads(runtime.read_text()).get("pid") != self.proc.pid:
            return False
        try:
            self.rpc.call("node.info")
        except Exception:
            self.close_rpc()  # read the cookie again on the next try
            raise
        return True

    # --- talking to it ----------------------------------------------------------------

    @property
    def endpoint(self) -> Endpoint:
        return endpoint_from_datadir(self.datadir)

    @property
    def rpc(self) -> RpcClient:
        if self._rpc is None:
            self._rpc = (
                NetnsRpcClient(self.endpoint, netns=self.netns, timeout=30)
                if self.netns
                else RpcClient(self.endpoint, timeout=30)
            )
        return self._rpc

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.rpc.call(method, params)

    def close_rpc(self) -> None:
        if self._rpc is not None:
            self._rpc.close()
            self._rpc = None

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stderr_tail(self, lines: int = 20) -> str:
        return tail(self.stderr_path, lines)

    # --- stopping ---------------------------------------------------------------------

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = DEFAULT_TIMEOUT) -> int | None:
        """SIGTERM (the clean stop: the node saves its mempool) and wait; if
        it is still running after ``timeout`` s, SIGKILL. Returns the exit
        code (negative: the signal that ended it), None if never started."""
        self.close_rpc()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no cleanup at all (a crash, for recovery tests)."""
        self.close_rpc()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(KILL_TIMEOUT)

    def __enter__(self) -> ProcessNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- nodes known by pid -------------------------------------------------------------


def pid_alive(pid: int | None) -> bool:
    """True while ``pid`` runs. An exited child of ours is reaped here; a
    zombie counts as gone (nobody may ever reap it)."""
    if not pid:
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
    except ChildProcessError:
        pass  # not our child
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): os.kill said it exists
    return stat[stat.rfind(")") + 2 :].split(" ", 1)[0] not in ("Z", "X")


def stop_pids(pids: list[int], *, timeout: float = DEFAULT_TIMEOUT) -> dict[int, str]:
    """SIGTERM every pid at once, wait up to ``timeout`` s for them to exit,
    SIGKILL the rest (and wait until they are gone). How each one ended:
    ``not running``, ``stopped`` or ``killed after timeout``."""
    out: dict[int, str] = {}
    live: list[int] = []
    for p in pids:
        try:
            if pid_alive(p):
                os.kill(p, signal.SIGTERM)
                live.append(p)
                continue
        except ProcessLookupError:
            pass
        out[p] = "not running"
    try:
        wait_until(
            lambda: not any(pid_alive(p) for p in live),
            timeout=timeout,
            interval=0.1,
            what=f"pids {live} to exit",
        )
    except WaitTimeout:
        for p in live:
            if pid_alive(p):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
                out[p] = "killed after timeout"
        # SIGKILL cannot be ignored, but it takes effect asynchronously: wait
        # for it, so that on return the pids are gone (their ports free).
        with contextlib.suppress(WaitTimeout):
            wait_until(
                lambda: not any(pid_alive(p) for p in live),
                timeout=KILL_TIMEOUT,
                interval=0.02,
                what=f"pids {live} to die",
            )
    for p in live:
        out.setdefault(p, "stopped")
    return out
