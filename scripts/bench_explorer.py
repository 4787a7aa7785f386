"""Explorer page load: the node's web explorer front page in a real headless
Chromium, against a running testnet, with a baseline page loaded the same way
in the same run.

    python scripts/bench_explorer.py [--dir testnet/local] [--loads 20] [--json]

Uses node0 of the testnet running in ``--dir`` (``scripts/testnet.py up``);
when none runs there, it starts one of ``--nodes`` nodes (``--miner-cpu``
25, as ``scripts/quickstart``) in a temporary directory and stops it at the
end. One Chromium (``tests/harness/browser.py``; ``$CHROMIUM`` or
/usr/bin/chromium), its cache disabled, so every load fetches every file as
a first visit does. Each round loads, after ``about:blank``:

- the baseline: ``GET /health`` on the same port (a small JSON document
  the node answers without auth; a navigation to the node and back, no
  script);
- the explorer's front page ``GET /`` (index.html, its modules and style,
  one batched JSON-RPC call, the WebSocket): its navigation timing
  (``responseEnd``, ``DOMContentLoaded``, the load event) and the time until
  the page marks itself ready (``body[data-state=ready]``, recorded by a
  script injected at document start), all from navigation start.

It prints the median (and p90) of ``--loads`` rounds, the load event's
ratio to the baseline's, the bytes the page transferred and its request
count, and any request to anything but the node. Target: the front page's
load event under 300 ms (median); ``--check`` exits 1 if missed or if the
page requested anything elsewhere. Exit status 2 if a load failed or the
``--budget`` ran out, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchkit.guard import BenchRefused, median, percentile, progress
from benchkit.runner import (
    REPO,
    BenchRun,
    Row,
    Targets,
    bench_parser,
    parse_args,
    print_figures,
    target,
)

from powernode.client import RpcClient

# The harness lives with the tests (the explorer test drives the same
# Chromium); the repository root makes ``tests`` importable from here.
sys.path.insert(0, str(REPO))
from tests.harness.browser import Browser, chromium_path

TARGET_LOAD_MS = 300.0

# Injected before the page's scripts: the time the page first says it is
# ready, in the navigation's own clock (performance.now() starts there).
READY_PROBE = """
new MutationObserver(() => {
  if (window.__pnReadyAt === undefined && document.body
      && document.body.dataset.state === "ready") {
    window.__pnReadyAt = performance.now();
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-state"]});
"""

# What the current document transferred: itself and every resource, bytes.
TRANSFER_JS = """(() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  return {bytes: (nav ? nav.transferSize : 0) + res.reduce((n, r) => n + r.transferSize, 0),
          resources: res.length};
})()"""


def running_node0(d: Path) -> str | None:
    """node0's ``host:port`` if a testnet in ``d`` answers, else None."""
    try:
        state = json.loads((d / "testnet.json").read_text())
        node0 = state["nodes"][0]
        with RpcClient.from_datadir(d / node0["name"]) as c:
            c.call("node.info")
        return f"{node0['host']}:{node0['rpc_port']}"
    except Exception:
        return None


def testnet(*args: str, d: Path) -> None:
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "testnet.py"), *args, "--dir", str(d)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    if r.returncode != 0:
        raise RuntimeError(f"testnet.py {args[0]} failed: {r.stderr.strip() or r.stdout.strip()}")


def load(
    b: Browser, url: str, *, ready: bool, errors: list[str], favicon_errors: list[str]
) -> dict[str, float]:
    """One cold load of ``url``: its timings in ms (and ``ready`` for the
    explorer); what the browser reported as errors meanwhile is added to
    ``errors`` (or ``favicon_errors``)."""
    b.goto("about:blank")
    seen = len(b.console)
    b.goto(url, timeout=60)
    fig: dict[str, float] = {}
    if ready:
        state = b.wait_for(
            "['ready', 'error'].includes(document.body.dataset.state)"
            " && document.body.dataset.state",
            timeout=60,
            what="the explorer's front page to be ready",
        )
        if state != "ready":
            error = b.evaluate("document.querySelector('[data-field=error]')?.textContent")
            raise RuntimeError(f"the front page shows an error: {error}")
        fig["ready"] = float(b.evaluate("window.__pnReadyAt"))
        moved = b.evaluate(TRANSFER_JS)
        fig["bytes"] = float(moved["bytes"])
        fig["requests"] = float(moved["resources"]) + 1
    t = b.navigation_timing()
    for e in b.console[seen:]:
        if e.is_error:
            # Chromium's own icon request for the icon-less baseline may be
            # reported late, in the next page's window: it is the baseline's.
            (favicon_errors if e.url.endswith("/favicon.ico") else errors).append(str(e))
    fig |= {
        "response_end": t.response_end,
        "dom_content_loaded": t.dom_content_loaded,
        "load_event": t.load_event,
    }
    return fig


def summary(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    return {
        key: {
            "median": median([r[key] for r in runs]),
            "p90": percentile([r[key] for r in runs], 90),
        }
        for key in runs[0]
    }


def measure(args: argparse.Namespace, bench: BenchRun) -> None:
    r = bench.results
    if chromium_path() is None:
        raise BenchRefused("no Chromium here: install the chromium package, or set $CHROMIUM")
    host = running_node0(args.dir)
    if host is None:
        d = bench.workdir / "tn"
        progress(f"no testnet running in {args.dir}: starting {args.nodes} node(s) in {d}")
        testnet("up", "--nodes", str(args.nodes), "--miner-cpu", str(args.miner_cpu), d=d)
        host = running_node0(d)
        if host is None:
            raise RuntimeError(f"the testnet started in {d} does not answer")
        r["testnet"] = {"started": True, "nodes": args.nodes}
    else:
        progress(f"using the testnet running in {args.dir}")
        r["testnet"] = {"started": False, "dir": str(args.dir)}
    base = f"http://{host}/"
    r["url"] = base
    with Browser() as b:
        b.call(lambda a: a.send("Network.setCacheDisabled", {"cacheDisabled": True}))
        b.add_init_script(READY_PROBE)
        errors: list[str] = []
        # The baseline is a JSON document without an icon, so Chromium asks
        # the node for /favicon.ico (404); the explorer declares its icon.
        favicon: list[str] = []
        load(b, base, ready=True, errors=errors, favicon_errors=favicon)  # warm-up, not counted
        baseline: list[dict[str, float]] = []
        front: list[dict[str, float]] = []
        bench.monitor.begin()
        for i in range(args.loads):
            # Interleaved, so a busy moment of the machine hits both alike.
            baseline.append(
                load(b, base + "health", ready=False, errors=errors, favicon_errors=favicon)
            )
            front.append(load(b, base, ready=True, errors=errors, favicon_errors=favicon))
            if (i + 1) % 5 == 0 or i + 1 == args.loads:
                progress(
                    f"{i + 1}/{args.loads} rounds: front page load {front[-1]['load_event']:.0f} ms,"
                    f" ready {front[-1]['ready']:.0f} ms; baseline {baseline[-1]['load_event']:.0f} ms"
                )
        bench.monitor.end("loads")
        elsewhere = sorted(
            {u for u in b.requests if not u.startswith((base, f"ws://{host}/", "about:"))}
        )
    r["loads"] = args.loads
    r["baseline_health"] = summary(baseline)
    r["front_page"] = summary(front)
    r["ratio_load_to_baseline"] = (
        r["front_page"]["load_event"]["median"] / r["baseline_health"]["load_event"]["median"]
    )
    r["requests_elsewhere"] = elsewhere
    r["console_errors"] = errors
    r["baseline_favicon_errors"] = len(favicon)


def targets(r: dict[str, Any]) -> Targets:
    if "front_page" not in r:
        return {}
    return {
        "front_page_load_ms": target(
            r["front_page"]["load_event"]["median"], TARGET_LOAD_MS, at_most=True
        ),
        "requests_elsewhere": target(len(r["requests_elsewhere"]), 0, at_most=True),
    }


def print_table(r: dict[str, Any]) -> None:
    if "front_page" not in r:
        return
    f, base = r["front_page"], r["baseline_health"]
    t = r["targets"]

    def ms(x: dict[str, float]) -> str:
        return f"{x['median']:.0f} ms (p90 {x['p90']:.0f})"

    rows: list[Row] = [
        ("baseline /health: responseEnd", ms(base["response_end"]), "", ""),
        ("baseline /health: load event", ms(base["load_event"]), "", ""),
        ("front page: responseEnd", ms(f["response_end"]), "", ""),
        ("front page: DOMContentLoaded", ms(f["dom_content_loaded"]), "", ""),
        (
            "front page: load event",
            ms(f["load_event"]),
            "<= 300",
            "yes" if t["front_page_load_ms"]["met"] else "NO",
        ),
        ("front page: ready (data-state)", ms(f["ready"]), "", ""),
        ("load event / baseline's", f"{r['ratio_load_to_baseline']:.1f}x", "", ""),
        ("front page: transferred", f"{f['bytes']['median'] / 1024:.1f} KiB", "", ""),
        ("front page: requests", f"{f['requests']['median']:.0f}", "", ""),
        (
            "requests elsewhere",
            str(len(r["requests_elsewhere"])),
            "0",
            "yes" if t["requests_elsewhere"]["met"] else "NO",
        ),
    ]
    print_figures(
        f"explorer front page, {r['loads']} cold loads each (median, p90), {r['url']}", rows
    )
    for u in r["requests_elsewhere"]:
        print(f"  requested elsewhere: {u}")
    for e in r["console_errors"]:
        print(f"  console: {e}")


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__ or "", budget=600.0, check="exit 1 if the 300 ms target is missed")
    ap.add_argument("--dir", type=Path, default=Path("testnet/local"))
    ap.add_argument("--loads", type=int, default=20, help="rounds of one load each")
    ap.add_argument("--nodes", type=int, default=3, help="nodes of a testnet it starts")
    ap.add_argument("--miner-cpu", type=int, default=25, help="of a testnet it starts")
    args = parse_args(ap, argv)
    if args.loads < 1:
        ap.error("--loads must be at least 1")
    bench = BenchRun(args, workdir="powernode-bench-explorer-")

    def stop_testnet(workdir: Path) -> None:
        if (workdir / "tn" / "testnet.json").exists():
            progress("stopping the testnet it started")
            testnet("down", d=workdir / "tn")

    code = bench.execute(lambda: measure(args, bench), cleanup=stop_testnet)
    return bench.finish(code, print_table, targets=targets)


if __name__ == "__main__":
    sys.exit(main())
