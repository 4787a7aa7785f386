"""A local testnet started with ``scripts/testnet.py up`` (as a user starts
one), node log parsing, and the node processes a run left under its work dir.

A testnet is always stopped by its context manager (SIGTERM, then SIGKILL),
also when the benchmark fails or runs out of time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from benchkit.guard import progress
from benchkit.runner import REPO
from powernode.client import Endpoint, RpcClient, RpcUnavailable, endpoint_from_datadir
from powernode.devnet.process import ProcessNode, stop_pids
from powernode.devnet.testnet import TestnetLayout, TestnetNode
from powernode.devnet.wait import WaitTimeout, wait_until

TESTNET_SCRIPT = REPO / "scripts" / "testnet.py"


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


# --- node processes under a directory ------------------------------------------------


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


def stop_nodes(pids: list[int], *, timeout: float = 20.0) -> dict[int, str]:
    """``stop_pids``, saying which nodes needed a SIGKILL."""
    out = stop_pids(pids, timeout=timeout)
    for pid, how in out.items():
        if how == "killed after timeout":
            progress(f"pid {pid} ignored SIGTERM for {timeout:.0f} s; sent SIGKILL")
    return out


# --- a testnet -----------------------------------------------------------------


class Testnet:
    """A local testnet made by ``scripts/testnet.py up`` in ``root``.

    Use as a context manager: leaving the block stops every node process
    under ``root`` (SIGTERM, then SIGKILL), also when ``up`` was cut short or
    the benchmark failed, and including nodes added with ``adopt``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.layout = TestnetLayout(dir=root, chain_id="")
        self.extra: list[ProcessNode] = []

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
        self.layout = TestnetLayout.load(self.root)

    @property
    def nodes(self) -> list[TestnetNode]:
        return list(self.layout.nodes)

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def pids(self) -> list[int]:
        return [n.pid for n in self.nodes if n.pid]

    def datadir(self, name: str) -> Path:
        return self.root / name

    def endpoint(self, name: str) -> Endpoint:
        return endpoint_from_datadir(self.datadir(name))

    def client(self, name: str, *, timeout: float = 60.0) -> RpcClient:
        return RpcClient(self.endpoint(name), timeout=timeout)

    def adopt(self, node: ProcessNode) -> None:
        """Stop ``node`` (started by the caller) with the testnet."""
        self.extra.append(node)

    def peer_counts(self) -> dict[str, int]:
        """Connected peers of every node (0 for a node that does not answer)."""
        counts: dict[str, int] = {}
        for name in self.names:
            try:
                with self.client(name, timeout=10) as c:
                    peers = c.call("peer.list")
                counts[name] = sum(1 for p in peers if p.get("direction") in ("in", "out"))
            except (RpcUnavailable, OSError, ValueError):
                counts[name] = 0
        return counts

    def wait_peers(self, minimum: int, timeout: float) -> dict[str, int]:
        """Wait until every node has ``minimum`` connected peers; the counts
        (also when it timed out: the caller reports a partial mesh)."""
        counts: dict[str, int] = {}

        def meshed() -> bool:
            counts.update(self.peer_counts())
            return min(counts.values(), default=0) >= minimum

        with contextlib.suppress(WaitTimeout):
            wait_until(meshed, timeout=timeout, interval=0.2, what=f"{minimum} peers per node")
        return counts

    def stop(self, *, timeout: float = 20.0) -> dict[int, str]:
        pids = set(self.pids) | {node.pid for node in self.extra}
        if self.root.exists():
            pids |= set(node_pids_under(self.root))
        out = stop_nodes(sorted(pids), timeout=timeout)
        for node in self.extra:  # reap our own children
            node.stop(timeout=5)
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
