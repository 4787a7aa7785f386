"""The frame every benchmark main shares (bench_node, bench_network,
bench_market; loadgen, not a benchmark, shares only ``guard``): the common
arguments, the machine it ran on, waiting for the machine to go quiet, a work
directory, the guarded run under a time budget, the output (a table on
stdout, then the figures as JSON with ``--json``) and the exit status. Each
main only adds its own arguments, its phases, its table and its targets::

    ap = bench_parser(__doc__, budget=175.0)
    ap.add_argument("--senders", type=int, default=200)
    args = parse_args(ap, argv)
    bench = BenchRun(args, workdir="powernode-bench-")
    code = bench.execute(lambda: run(args, bench))
    return bench.finish(code, print_table, targets=targets)

Exit status: 0 when every phase ran (with ``--check``: and every target was
met, else 1), 2 when a phase failed, a problem was recorded or the budget ran
out, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nacl

from benchkit.cpu import BUSY_CORES, CpuMonitor
from benchkit.guard import install_budget, progress, run_guarded

REPO = Path(__file__).resolve().parent.parent.parent

Row = tuple[str, str, str, str]  # figure, value, target, met
Targets = dict[str, dict[str, Any]]  # name -> {"value", "target", "met"}


def bench_parser(
    doc: str, *, budget: float, check: str = "exit 1 if a target is missed"
) -> argparse.ArgumentParser:
    """The first arguments of every benchmark; the caller adds its own, then
    parses with ``parse_args`` (which adds the last common ones)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true", help="also print the figures as JSON")
    ap.add_argument("--check", action="store_true", help=check)
    ap.add_argument("--budget", type=float, default=budget, help="hard limit in seconds")
    return ap


def parse_args(
    ap: argparse.ArgumentParser,
    argv: list[str] | None,
    *,
    workdir: bool = True,
    quick: dict[str, Any] | None = None,
) -> argparse.Namespace:
    """Add ``--keep`` (for a benchmark with a work dir) and ``--wait-quiet``,
    parse. With ``quick`` (the benchmark has ``--quick``), ``--quick`` makes
    those values the defaults: an option given on the command line keeps
    its value."""
    if workdir:
        ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=20.0,
        help="wait up to this many s for other processes to go quiet (0: don't)",
    )
    args = ap.parse_args(argv)
    if quick and args.quick:
        ap.set_defaults(**quick)
        args = ap.parse_args(argv)
    return args


def git_state() -> dict[str, Any]:
    """The commit measured, and how many files under powernode/ differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "powernode"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except OSError:
        return {}
    return {"head": head, "dirty_files_in_powernode": len(dirty)}


def _version(dist: str) -> str:
    """An installed distribution's version; "-" when it is not installed (the
    node no longer needs ``cryptography``; the benchmarks compare with it)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def machine(*, git: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "cryptography": _version("cryptography"),
        "pynacl": nacl.__version__,
        "platform": platform.platform(),
    }
    if git:
        out["git"] = git_state()
    return out


class BenchRun:
    """One run of a benchmark main: ``results`` (the JSON output, starting
    with the machine under ``env``), the ``monitor`` of other processes' CPU
    load, and a temporary ``workdir`` (with ``workdir`` given as its prefix)
    that is removed afterwards unless ``--keep``."""

    def __init__(self, args: argparse.Namespace, *, workdir: str = "", git: bool = False) -> None:
        self.args = args
        self.results: dict[str, Any] = {"env": machine(git=git)}
        self.monitor = CpuMonitor()
        self._workdir = Path(tempfile.mkdtemp(prefix=workdir)) if workdir else None
        self.started = time.monotonic()

    @property
    def workdir(self) -> Path:
        assert self._workdir is not None, "no work dir: BenchRun(args, workdir=PREFIX)"
        return self._workdir

    def execute(
        self, body: Callable[[], None], *, cleanup: Callable[[Path], None] | None = None
    ) -> int:
        """Run ``body`` within ``--budget`` seconds, after waiting up to
        ``--wait-quiet`` seconds for a quiet machine; an abort, Ctrl-C or a
        crash becomes an exit status and an ``error`` entry. ``cleanup`` then
        gets the work dir, before it is removed."""
        if self._workdir is not None:
            progress(f"work dir {self._workdir}; budget {self.args.budget:.0f} s")
        install_budget(self.args.budget)

        def guarded() -> None:
            if self.args.wait_quiet > 0:
                load = self.monitor.wait_quiet(self.args.wait_quiet, BUSY_CORES)
                self.results["env"]["other_cores_at_start"] = load
                progress(f"other processes use {load:.2f} cores")
            body()

        try:
            return run_guarded(guarded, self.results)
        finally:
            if self._workdir is not None:
                if cleanup is not None:
                    cleanup(self._workdir)
                if self.args.keep:
                    progress(f"work dir kept: {self._workdir}")
                else:
                    shutil.rmtree(self._workdir, ignore_errors=True)

    def finish(
        self,
        code: int,
        print_table: Callable[[dict[str, Any]], None],
        *,
        targets: Callable[[dict[str, Any]], Targets],
        problems: Sequence[str] = (),
        phases_key: str = "load",
    ) -> int:
        """Record the time, the phases' load and the targets; print the table
        (and the JSON); the exit status."""
        r = self.results
        r["seconds_total"] = time.monotonic() - self.started
        r[phases_key] = self.monitor.phases
        r["targets"] = targets(r)
        progress(f"done in {r['seconds_total']:.1f} s")
        print_table(r)
        if self.args.json:
            print(json.dumps(r, indent=2, default=str))
        if code == 0 and problems:
            code = 2
        if code == 0 and self.args.check and not all(t["met"] for t in r["targets"].values()):
            code = 1
        return code


def target(value: float, goal: float, *, at_most: bool = False) -> dict[str, Any]:
    """One entry of ``Targets``: ``value`` against ``goal`` (>=, or <=)."""
    met = value <= goal if at_most else value >= goal
    return {"value": value, "target": f"{'<=' if at_most else '>='} {goal}", "met": met}


def print_figures(title: str, rows: Sequence[Row]) -> None:
    """The figures table: one row per figure, its value, target and whether met."""
    print()
    print(title)
    w = max([len(r[0]) for r in rows] + [20])
    v = max([len(r[1]) for r in rows] + [10])
    print(f"{'figure':<{w}}  {'value':>{v}}  {'target':<8}  met")
    print("-" * (w + v + 17))
    for name, value, goal, ok in rows:
        print(f"{name:<{w}}  {value:>{v}}  {goal:<8}  {ok}".rstrip())
