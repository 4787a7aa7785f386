"""RPC bounds under hostile requests: peak RSS and event-loop stall of a real node.

Usage::

    python scripts/bench_rpc_limits.py                 # table on stdout, progress on stderr
    python scripts/bench_rpc_limits.py --sizes 4,15    # flood bodies of 4 and 15 MB only
    python scripts/bench_rpc_limits.py --json --check  # ... figures as JSON; exit 1 past a target

One ``powernode run`` process on a dev chain (mining off, the default
``[rpc]`` config unless ``--rpc KEY=VALUE`` overrides a key) gets, one at a
time, authenticated requests built to cost it as much as possible:

- flood bodies at each ``--sizes`` (MB; ``max`` is the node's
  ``max_request_bytes``): a batch of bare integers (each an invalid request
  with its own error object), a batch of ``{}``, and one call whose params
  are an array of ``{}`` or of short strings;
- 100,000 nested ``[`` and ``{"a":``; an id of ``NaN``;
- a batch of 1,000 ``chain.block`` calls (verbose, with raw) of one block of
  ``--block-txs`` transfers, mined first, so the answers add up; a batch of
  1,000 ``market.params`` calls; and a batch of 1,000 calls with long string
  ids (echoed back) filling the body.

For each: the node's peak RSS while serving it (``VmHWM`` after resetting it
through ``/proc/PID/clear_refs`` just before), the longest ``node.info`` call
made meanwhile over a second connection (how long the event loop was
blocked), the answer, and whether the node is still up. ``--check`` targets:
every peak under ``--max-peak-mb``, every stall under ``--max-stall-ms``,
the node alive throughout and every answer JSON.

Exit status as the other benchmarks: 0, 1 (``--check``: a target missed), 2
(a phase failed or the budget ran out), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from benchkit.guard import percentile, progress
from benchkit.node.rpc_limits import (
    MB,
    Measured,
    block_keys,
    call_batch,
    deep,
    fill_block,
    int_batch,
    long_id_batch,
    measure,
    nan_id,
    object_batch,
    object_params,
    string_params,
)
from benchkit.rpc import RawRpc, request_body
from benchkit.runner import BenchRun, Row, Targets, bench_parser, parse_args, print_figures, target

from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import ProcessNode
from powernode.node.config import load_config

DEPTH = 100_000
BATCH = 1_000
# Leaves room for the JSON around a flood body at ``max``.
MAX_SLACK = 1024


def parse_sizes(text: str, max_request_bytes: int) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        out.append(max_request_bytes - MAX_SLACK if part == "max" else int(float(part) * MB))
    return out


def cases(sizes: list[int], block: int, txs: int) -> list[tuple[str, Callable[[], bytes]]]:
    """(name, body builder) in the order they are sent; bodies are built one
    at a time so the benchmark holds one big body at once."""
    out: list[tuple[str, Callable[[], bytes]]] = []
    for size in sizes:
        mb = f"{size / MB:.0f} MB"
        out += [
            (f"batch of ints, {mb}", partial(int_batch, size)),
            (f"batch of {{}}, {mb}", partial(object_batch, size)),
            (f"params of {{}}, {mb}", partial(object_params, size)),
            (f"params of strings, {mb}", partial(string_params, size)),
        ]
    out += [
        (f"{DEPTH:,} nested [", lambda: deep(b"[", DEPTH)),
        (f'{DEPTH:,} nested {{"a":', lambda: deep(b'{"a":', DEPTH)),
        ("id NaN", nan_id),
        (
            f"batch of {BATCH:,} chain.block of {txs:,} txs",
            lambda: call_batch(
                "chain.block", {"height": block, "verbose": True, "raw": True}, BATCH
            ),
        ),
        (f"batch of {BATCH:,} market.params", lambda: call_batch("market.params", {}, BATCH)),
        (
            f"batch of {BATCH:,} long ids, {sizes[-1] / MB:.0f} MB",
            lambda: long_id_batch(sizes[-1], BATCH),
        ),
    ]
    return out


def set_rpc_keys(config: str, lines: list[str]) -> str:
    """``config`` with each ``KEY=VALUE`` set under ``[rpc]`` (replacing the
    key's line if the file shows it, an older node's file may not)."""
    for line in lines:
        key, _, value = (x.strip() for x in line.partition("="))
        config, n = re.subn(rf"(?m)^{re.escape(key)} = .*$", f"{key} = {value}", config, count=1)
        if not n:
            config = config.replace("[rpc]\n", f"[rpc]\n{key} = {value}\n", 1)
    return config


def idle_stall(node: ProcessNode, calls: int = 200) -> float:
    """The longest of ``calls`` node.info calls with nothing else going on (ms)."""
    conn = RawRpc(node.endpoint, timeout=30)
    body = request_body("node.info", {})
    try:
        ms: list[float] = []
        for _ in range(calls):
            t0 = time.perf_counter()
            conn.post(body)
            ms.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    return percentile(ms, 100)


def run(args: argparse.Namespace, bench: BenchRun) -> None:
    results = bench.results
    doc = dev_genesis({k.address: 1_000 * 1_000_000 for k in block_keys()})
    genesis = write_genesis(bench.workdir / "genesis.json", doc)
    with ProcessNode(bench.workdir / "node", name="node") as node:
        init_datadir(node.datadir, genesis)
        if args.rpc:
            cfg = node.datadir / "config.toml"
            cfg.write_text(set_rpc_keys(cfg.read_text(), args.rpc))
        node.start()
        max_request_bytes = _max_request_bytes(node)
        results["max_request_bytes"] = max_request_bytes
        results["rpc_overrides"] = list(args.rpc)
        progress(f"mining a block of {args.block_txs:,} txs")
        block = fill_block(node.endpoint, doc["chain_id"], args.block_txs)
        results["idle_node_info_max_ms"] = idle_stall(node)
        rows: dict[str, Any] = {}
        results["requests"] = rows
        for name, build in cases(parse_sizes(args.sizes, max_request_bytes), block, args.block_txs):
            if args.only and not any(part in name for part in args.only.split(",")):
                continue
            body = build()
            progress(f"{name}: {len(body):,} bytes")
            m = measure(
                node.endpoint, node.pid, name, body, timeout=args.timeout, alive=node.is_running
            )
            del body
            rows[name] = m.figures()
            _report(m)
            if not m.alive:
                results.setdefault("problems", []).append(f"node died on {name}")
                progress(f"node died; stderr:\n{node.stderr_tail()}")
                break
    results["node_exit_code"] = node.exit_code


def _max_request_bytes(node: ProcessNode) -> int:
    """The running node's request cap, read the way the node reads it."""
    return load_config(node.datadir).rpc.max_request_bytes


def _report(m: Measured) -> None:
    progress(
        f"  peak {m.peak_mb:,.0f} MB (from {m.rss_before_mb:,.0f}), node.info max "
        f"{m.stall_ms:,.0f} ms, {m.outcome.seconds:.2f} s, "
        f"reply {m.outcome.reply_bytes:,} bytes: {m.answer}"
    )


# --- output ------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> Targets:
    reqs = results.get("requests", {})
    if not reqs:
        return {}
    args = results["args"]
    peak = max(r["peak_rss_mb"] for r in reqs.values())
    stall = max(r["node_info_max_ms"] for r in reqs.values())
    return {
        "peak_rss_mb": target(peak, args["max_peak_mb"], at_most=True),
        "node_info_max_ms": target(stall, args["max_stall_ms"], at_most=True),
        "all_json_and_alive": target(
            float(all(r["node_alive"] and "not JSON" not in r["answer"] for r in reqs.values())),
            1.0,
        ),
    }


def print_table(results: dict[str, Any]) -> None:
    rows: list[Row] = []
    if "idle_node_info_max_ms" in results:
        rows.append(("node.info max, idle", f"{results['idle_node_info_max_ms']:.1f} ms", "", ""))
    for name, r in results.get("requests", {}).items():
        rows.append(
            (
                f"{name}: peak RSS / node.info max",
                f"{r['peak_rss_mb']:,.0f} MB / {r['node_info_max_ms']:,.0f} ms",
                "",
                "",
            )
        )
        rows.append((f"  reply {r['reply_bytes']:,} bytes", r["answer"][:70], "", ""))
    t = results.get("targets", {})
    for key, label in (
        ("peak_rss_mb", "worst peak RSS (MB)"),
        ("node_info_max_ms", "worst node.info (ms)"),
        ("all_json_and_alive", "every answer JSON, node alive"),
    ):
        if key in t:
            rows.append(
                (
                    label,
                    f"{t[key]['value']:,.1f}",
                    t[key]["target"],
                    "yes" if t[key]["met"] else "NO",
                )
            )
    env = results["env"]
    print_figures(
        f"powernode RPC limits: {env['cpus']} CPUs, Python {env['python']}, "
        f"max_request_bytes {results.get('max_request_bytes', 0):,}"
        + (f", [rpc] {' '.join(results['rpc_overrides'])}" if results.get("rpc_overrides") else ""),
        rows,
    )
    for problem in results.get("problems", []):
        print(f"PROBLEM: {problem}")
    if "error" in results:
        print(f"RUN FAILED: {results['error']}")


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__, budget=900.0, check="exit 1 if a target is missed")
    ap.add_argument(
        "--sizes", default="4,15,max", help="flood body sizes in MB, comma-separated; max: the cap"
    )
    ap.add_argument(
        "--rpc", action="append", default=[], metavar="KEY=VALUE", help="an [rpc] config line"
    )
    ap.add_argument("--only", default="", help="only the requests whose name has one of these")
    ap.add_argument("--block-txs", type=int, default=2000, help="txs in the block read back")
    ap.add_argument("--timeout", type=float, default=300.0, help="s to wait for one answer")
    ap.add_argument("--max-peak-mb", type=float, default=512.0, help="--check: peak RSS target")
    ap.add_argument("--max-stall-ms", type=float, default=2000.0, help="--check: stall target")
    args = parse_args(ap, argv)
    bench = BenchRun(args, workdir="powernode-rpc-limits-", git=True)
    bench.results["args"] = {"max_peak_mb": args.max_peak_mb, "max_stall_ms": args.max_stall_ms}
    code = bench.execute(lambda: run(args, bench))
    return bench.finish(
        code, print_table, targets=targets, problems=bench.results.get("problems", [])
    )


if __name__ == "__main__":
    sys.exit(main())
