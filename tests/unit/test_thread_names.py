"""Thread names in the OS: the node names its miner thread (so ``top -H``
and the benchmarks' CPU split without py-spy can tell it from the event
loop), and the benchmarks read the names back from /proc."""

from __future__ import annotations

import importlib
import os
import sys
import threading
from pathlib import Path

import pytest

from powernode.node.runtime import name_os_thread

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")


def _in_thread(name: str) -> tuple[int, str]:
    got: list[tuple[int, str]] = []

    def run() -> None:
        name_os_thread(name)
        tid = threading.get_native_id()
        got.append((tid, Path(f"/proc/self/task/{tid}/comm").read_text().strip()))

    t = threading.Thread(target=run)
    t.start()
    t.join(10)
    return got[0]


def test_a_thread_is_named_in_the_os() -> None:
    assert _in_thread("miner")[1] == "miner"
    # the OS keeps 15 bytes of a name
    assert _in_thread("a-very-long-thread-name")[1] == "a-very-long-thr"


def test_the_benchmarks_read_the_names_without_py_spy() -> None:
    if str(SCRIPTS) not in sys.path:
        sys.path.append(str(SCRIPTS))
    cpu = importlib.import_module("benchkit.cpu")
    ready, done = threading.Event(), threading.Event()
    tids: list[int] = []

    def run() -> None:
        name_os_thread("miner")
        tids.append(threading.get_native_id())
        ready.set()
        done.wait(10)

    t = threading.Thread(target=run)
    t.start()
    try:
        assert ready.wait(10)
        names = cpu.os_thread_names(os.getpid())
        assert names[os.getpid()] == "MainThread"
        assert names[tids[0]] == "miner"
        assert cpu.thread_role(names[tids[0]]) == "miner"
        assert cpu.thread_role(names[os.getpid()]) == "loop"
    finally:
        done.set()
        t.join(10)
