"""Where CPU goes: how much other processes used while a benchmark phase ran
(``CpuMonitor``, ``Phases``), and a node process's CPU by role (event loop,
miner, signature workers), from ``/proc`` and optionally ``py-spy``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchkit.guard import progress

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


# --- where a process spends its CPU ------------------------------------------------


def pyspy_path() -> str | None:
    """The py-spy executable (next to this Python, or on PATH), if installed."""
    here = Path(sys.executable).parent / "py-spy"
    if here.exists():
        return str(here)
    return shutil.which("py-spy")


def thread_names(pid: int, timeout: float = 20.0) -> dict[int, str]:
    """OS thread id -> Python thread name, from ``py-spy dump``; without
    py-spy (or if it fails), the names the OS holds: the main thread (the
    event loop) is the one whose id is the pid, and the node names its
    miner thread ``miner`` in the OS too."""
    exe = pyspy_path()
    out: dict[int, str] = {}
    if exe is not None:
        try:
            r = subprocess.run(
                [exe, "dump", "-p", str(pid)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            r = None
        for line in r.stdout.splitlines() if r is not None else ():
            # Thread 16909 (idle): "miner"
            if line.startswith("Thread ") and '"' in line:
                head, _, rest = line.partition(" (")
                tid = head.split()[1]
                name = rest.split('"')[1] if rest.count('"') >= 2 else ""
                with contextlib.suppress(ValueError):
                    out[int(tid, 0)] = name
    if out:
        return out
    return os_thread_names(pid)


def _task_files(pid: int, name: str) -> Iterator[tuple[int, str]]:
    """(thread id, text of /proc/PID/task/TID/NAME) for each thread of
    ``pid`` whose file could be read (threads come and go meanwhile)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/{name}") as f:
                yield int(tid), f.read()
        except OSError:
            continue


def os_thread_names(pid: int) -> dict[int, str]:
    """OS thread id -> name from ``/proc``, the main thread as ``MainThread``."""
    return {
        tid: "MainThread" if tid == pid else comm.strip() for tid, comm in _task_files(pid, "comm")
    }


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of ``pid``."""
    out: dict[int, float] = {}
    for tid, data in _task_files(pid, "stat"):
        fields = data[data.rfind(")") + 2 :].split()
        out[tid] = (int(fields[11]) + int(fields[12])) / _CLK
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


# --- timed phases -------------------------------------------------------------

BUSY_CORES = 0.25  # other processes' load above which a phase's figures are flagged


class Phases:
    """Records other processes' CPU load while each timed phase runs."""

    def __init__(self, monitor: CpuMonitor) -> None:
        self.monitor = monitor

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.monitor.begin()
        try:
            yield
        finally:
            load = self.monitor.end(name)
            if load["other_cores"] > BUSY_CORES:
                progress(
                    f"WARNING: other processes used {load['other_cores']:.2f} cores "
                    f"during {name}; its figures are unreliable"
                )


def print_phase_load(load: dict[str, dict[str, float]]) -> None:
    """Other processes' CPU load per phase, and a warning naming the phases
    whose figures it makes unreliable."""
    busy = {k: v for k, v in load.items() if v["other_cores"] > BUSY_CORES}
    print(
        "other processes' CPU load per phase (cores): "
        + ", ".join(f"{k} {v['other_cores']:.2f}" for k, v in load.items())
    )
    if busy:
        print(
            f"WARNING: the machine was busy (> {BUSY_CORES} cores used by other processes) "
            f"during: {', '.join(busy)}; those figures are unreliable"
        )
