"""Test harness: genesis files, node processes, in-process nodes, waiting.

In the spirit of Bitcoin Core's functional test framework: a node wrapper
that starts the real ``powernode`` command the README way, kills or stops it,
and keeps its data dir and log for the post-mortem; helpers that wait on a
condition with a timeout instead of sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from powernode.client import Endpoint, RpcClient, RpcUnavailable, endpoint_from_datadir, write_key
from powernode.core.crypto import KeyPair
from powernode.node.config import render_config

T = TypeVar("T")

TRIVIAL_TARGET = "0fff" + "ff" * 30
# About one block per 4,000 PBKDF2 hashes: a few blocks a second from one miner.
MODERATE_TARGET = format((1 << 256) // 4000, "064x")
HARD_TARGET = "00000fff" + "ff" * 28


def wait_until(cond: Callable[[], T], *, timeout: float = 30.0, what: str = "condition") -> T:
    """Poll ``cond`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = cond()
        except Exception as exc:  # the node may still be coming up
            last_exc = exc
            result = None
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_exc!r})"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def genesis_doc(
    allocations: dict[bytes, int],
    *,
    target: str = TRIVIAL_TARGET,
    dev: bool = True,
    chain_id: str = "powernode-test",
    block_time: int = 2,
    timestamp: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "chain_id": chain_id,
        "timestamp": int(time.time()) - 60 if timestamp is None else timestamp,
        "block_time": block_time,
        "initial_target": target,
        "pow_limit": target,
        "asert_halflife": 3600,
        "max_future": 7200,
        "block_reward": 50_000_000,
        "dev": dev,
        "allocations": {a.hex(): v for a, v in allocations.items()},
        **extra,
    }


def write_genesis(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


def init_datadir(
    datadir: Path, genesis: Path, *, mining: bool = False, key: KeyPair | None = None
) -> KeyPair:
    """What ``powernode init --genesis`` does, with a chosen key and ports."""
    datadir.mkdir(parents=True, exist_ok=True)
    key = key or KeyPair.generate()
    write_key(datadir / "node.key", key)
    (datadir / "genesis.json").write_bytes(genesis.read_bytes())
    (datadir / "config.toml").write_text(
        render_config(rpc_port=free_port(), p2p_port=free_port(), mining=mining)
    )
    return key


class ProcessNode:
    """A ``powernode run`` process on a data dir."""

    def __init__(self, datadir: Path, *, extra_args: tuple[str, ...] = ()) -> None:
        self.datadir = datadir
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self._rpc: RpcClient | None = None

    @property
    def log_path(self) -> Path:
        return self.datadir / "node.log"

    def start(self, *args: str, timeout: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.close_rpc()
        stderr = open(self.datadir / "stderr.log", "ab")  # noqa: SIM115 - closed by the child's exit
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "powernode.cli",
                "run",
                "--datadir",
                str(self.datadir),
                *self.extra_args,
                *args,
            ],
            stdout=stderr,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        stderr.close()
        wait_until(self._ready, timeout=timeout, what=f"node in {self.datadir} to serve RPC")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"node exited with {self.proc.returncode}; see {self.datadir / 'stderr.log'}"
            )
        runtime = self.datadir / "node.json"
        if not runtime.exists() or json.loads(runtime.read_text()).get("pid") != self.proc.pid:  # type: ignore[union-attr]
            return False
        self.rpc.call("node.info")
        return True

    @property
    def endpoint(self) -> Endpoint:
        return endpoint_from_datadir(self.datadir)

    @property
    def rpc(self) -> RpcClient:
        if self._rpc is None:
            self._rpc = RpcClient(self.endpoint, timeout=30)
        return self._rpc

    def close_rpc(self) -> None:
        if self._rpc is not None:
            self._rpc.close()
            self._rpc = None

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.rpc.call(method, params)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the clean stop."""
        assert self.proc is not None
        self.close_rpc()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all."""
        assert self.proc is not None
        self.close_rpc()
        self.proc.kill()
        self.proc.wait(10)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ensure_stopped(self) -> None:
        self.close_rpc()
        if self.is_running():
            try:
                self.stop(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def rpc_alive(node: ProcessNode) -> bool:
    try:
        node.call("node.info")
        return True
    except RpcUnavailable:
        return False
