"""Scale curves: each cost the node pays, measured at three sizes of the
work it grows with, in one run and one table, with the ratio between sizes,
so a reader sees whether it is linear (or better).

    python scripts/bench_scale.py [--quick] [--only ROW,..] [--json]

Rows (sizes as ``A,B,C``; ``--quick`` runs small ones):

- accounts: a block of ``--block-txs`` transfers connected (warm: its txs
  admitted first) at ``--accounts`` funded accounts (genesis allocations);
  then a node process on that chain: ``account.get`` and ``node.info`` p99;
  the listings ``cert.list``, ``cert.cfe``, ``market.orders`` and
  ``market.trades`` of one participant, p50 and the node's CPU per call.
- market: a block of ``--market-block`` orders (half crossing, half resting)
  through ``apply_block`` at ``--resting`` resting orders over ``--slots``
  delivery slots.
- chain: node start-up time and RSS at ``--blocks`` blocks of
  ``--chain-txs`` transfers each (built through the node's ledger); chain.db
  bytes per transfer from the same chain.
- sync: a fresh node syncing ``--sync-blocks`` of those blocks from one peer
  (blocks/s, tx/s, the rate in each half).
- mempool: admission per tx, and a block template, at ``--pending`` pending txs.
- readings: meter readings per second through ``apply_block`` for windows of
  ``--readings`` readings on one growing state; chain.db bytes per reading.
- e2e (only with ``--only e2e``): readings per second end to end on a 4-node
  testnet (``--e2e-devices`` meters reporting one interval), then the same
  fleet's next interval as meter.batch txs of 100.

A per-item cost is linear when it stays flat (ratio about 1); a total is
linear when its ratio is at most the size ratio. The machine is shared and
noisy: the "linear" column allows 1.5x slack, compare ratios within a run.
Exit status 0; 1 with --check if a curve is worse than linear; 2 if a phase
failed or the --budget ran out; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchkit.guard import progress
from benchkit.runner import BenchRun, Targets, bench_parser, parse_args
from benchkit.scale import accounts, chains, e2e, market, mempool, readings
from benchkit.scale.common import Curve

from powernode.node.runtime import tune_gc

ROWS = ("accounts", "market", "chain", "sync", "mempool", "readings")
OPT_IN = ("e2e",)  # run only when named in --only
QUICK = {
    "accounts": "1000,2000,4000",
    "block_txs": 200,
    "resting": "500,1000,2000",
    "slots": 50,
    "market_block": 200,
    "blocks": "50,100,200",
    "chain_txs": 2,
    "sync_blocks": 200,
    "pending": "500,1000,2000",
    "probe": 200,
    "readings": "200,400,800",
    "devices": 100,
    "calls": 200,
}


def sizes(text: str) -> list[int]:
    out = [int(x) for x in text.split(",") if x.strip()]
    if len(out) < 2 or min(out) < 1 or out != sorted(out):
        raise argparse.ArgumentTypeError(f"sizes {text!r}: two or more rising positive integers")
    return out


def curves(r: dict[str, Any]) -> list[Curve]:
    out: list[Curve] = []
    if "accounts" in r:
        a = r["accounts"]
        n = tuple(x["accounts"] for x in a)
        out.append(Curve("block connect (warm)", "accounts", "ms/block", n,
                         tuple(x["connect_ms_median"] for x in a), True,
                         f"block of {a[0]['block_txs']:,} txs"))  # fmt: skip
        out.append(Curve("account.get p99", "accounts", "ms", n,
                         tuple(x["account_get"]["p99_ms"] for x in a), True))  # fmt: skip
        out.append(Curve("node.info p99", "accounts", "ms", n,
                         tuple(x["node_info"]["p99_ms"] for x in a), True))  # fmt: skip
        for key, name in (("cert_list", "cert.list p50"), ("cert_cfe", "cert.cfe p50"),
                          ("market_orders", "market.orders p50"),
                          ("market_trades", "market.trades p50")):  # fmt: skip
            if key in a[0]:
                cpu = " / ".join(f"{x[key].get('cpu_ms', 0):.2f}" for x in a)
                out.append(Curve(name, "accounts", "ms", n, tuple(x[key]["p50_ms"] for x in a),
                                 True, f"node CPU {cpu} ms a call"))  # fmt: skip
        out.append(
            Curve("node start-up", "accounts", "s", n, tuple(x["start_s"] for x in a), False)
        )
        out.append(Curve("node RSS", "accounts", "MiB", n, tuple(x["rss_mib"] for x in a), False))
    if "market" in r:
        m = r["market"]
        out.append(Curve("order block apply", "resting orders", "us/order",
                         tuple(x["resting"] for x in m), tuple(x["us_per_order"] for x in m), True,
                         f"{m[0]['slots']:,} slots, blocks of {m[0]['block_orders']:,}"))  # fmt: skip
    if "chain" in r:
        c = r["chain"]["startup"]
        n = tuple(x["blocks"] for x in c)
        out.append(Curve("node start-up", "blocks", "s", n, tuple(x["start_s"] for x in c), False))
        out.append(Curve("node RSS", "blocks", "MiB", n, tuple(x["rss_mib"] for x in c), False))
        out.append(Curve("chain.db size", "blocks", "bytes", n, tuple(x["db_bytes"] for x in c), False,
                         f"{r['chain']['txs_per_block']} transfers a block"))  # fmt: skip
    if "sync" in r:
        s = r["sync"]
        half = s["blocks"] // 2
        out.append(Curve("sync rate (each half)", "height", "ms/block", (half, s["blocks"]),
                         (1000 / s["first_half_blocks_per_s"], 1000 / s["second_half_blocks_per_s"]),
                         True, f"{s['blocks_per_s']:,.0f} blocks/s, {s['tx_per_s']:,.0f} tx/s, "
                         f"CPU/block {s['main_cpu_ms_per_block']:.2f} ms main + "
                         f"{s['workers_cpu_ms_per_block']:.2f} workers"))  # fmt: skip
    if "mempool" in r:
        p = r["mempool"]
        n = tuple(x["pending"] for x in p)
        out.append(Curve("mempool admission", "pending txs", "us/tx", n,
                         tuple(x["admit_us_per_tx"] for x in p), True))  # fmt: skip
        out.append(Curve("block template", "pending txs", "us/tx", n,
                         tuple(x["template_us_per_tx"] for x in p), True,
                         f"{p[-1]['template_txs']:,} txs at the largest"))  # fmt: skip
    if "readings" in r:
        g = r["readings"]["throughput"]
        out.append(Curve("reading apply", "readings stored", "us/reading",
                         tuple(x["stored_before"] + x["readings"] for x in g),
                         tuple(x["us_per_reading"] for x in g), True,
                         f"{g[-1]['per_s']:,.0f} readings/s at the largest"))  # fmt: skip
    return out


def fmt(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}" if v < 10 else f"{v:.1f}"


def print_table(r: dict[str, Any]) -> None:
    rows = curves(r)
    print()
    print("Scale curves (cost at each size; ratio = cost at a size / cost at the one before)")
    head = f"{'cost':<22} {'unit':<10} {'against':<16} {'sizes':<22} {'costs':<26} {'ratios':<14} linear"
    print(head)
    print("-" * len(head))
    for c in rows:
        sz = " / ".join(f"{s:,}" for s in c.sizes)
        cost = " / ".join(fmt(x) for x in c.costs)
        ratio = " / ".join(f"{x:.2f}" for x in c.ratios())
        print(f"{c.row:<22} {c.unit:<10} {c.size_name:<16} {sz:<22} {cost:<26} {ratio:<14} "
              f"{'yes' if c.linear() else 'NO'}{'  (' + c.note + ')' if c.note else ''}")  # fmt: skip
    for key, label in (("chain", "bytes_per_tx"), ("readings", "bytes_per_reading")):
        db = r.get(key, {}).get("db", {})
        if label in db:
            print(f"chain.db {label.replace('_', ' ')}: {db[label]:,.0f}")
    if "e2e" in r:
        e = r["e2e"]
        print(f"readings end to end, 4-node testnet: {e['readings_per_s']:,.0f}/s "
              f"({e['readings']:,} readings confirmed in {e['seconds']:.1f} s)")  # fmt: skip
        if "batch" in e:
            b = e["batch"]
            print(f"  the same as meter.batch txs of 100: {b['readings_per_s']:,.0f}/s "
                  f"({b['readings']:,} readings in {b['txs']} txs, {b['seconds']:.1f} s)")  # fmt: skip
    if "error" in r:
        print(f"RUN FAILED: {r['error']}")


def run(args: argparse.Namespace, bench: BenchRun) -> None:
    r, wd = bench.results, bench.workdir
    only = set(args.only.split(",")) if args.only else set(ROWS)
    r["sizes"] = {k: v for k, v in vars(args).items() if k not in ("json", "check", "keep")}
    if "mempool" in only:
        r["mempool"] = mempool.run(wd / "mempool", args.pending, args.probe, args.per_sender)
    if "market" in only:
        r["market"] = market.run(args.resting, args.slots, args.market_block, 3)
    if "readings" in only:
        r["readings"] = {"throughput": readings.throughput(args.readings, args.devices, 1000)}
        r["readings"]["db"] = readings.bytes_per_reading(wd / "readings", 100, 10)
    if "accounts" in only:
        r["accounts"] = accounts.run(wd / "accounts", args.accounts, args.block_txs, 3, args.calls)
    if "e2e" in only:
        r["e2e"] = e2e.run(wd / "e2e", args.e2e_devices, args.e2e_owners, 45.0)
    if only & {"chain", "sync"}:
        heights = sorted(
            (set(args.blocks) if "chain" in only else set())
            | ({args.sync_blocks} if "sync" in only else set())
        )
        built = chains.build(wd / "chain", heights, args.chain_txs)
        if "chain" in only:
            r["chain"] = {"startup": chains.startup(wd / "chain", built, args.blocks),
                          "db": chains.db_bytes_per_tx(built, args.blocks),
                          "txs_per_block": args.chain_txs}  # fmt: skip
        if "sync" in only:
            r["sync"] = chains.sync(wd / "chain", built, args.sync_blocks, args.sync_timeout)


def targets(r: dict[str, Any]) -> Targets:
    return {
        f"{c.row} vs {c.size_name}": {"value": c.ratios(), "target": "linear", "met": c.linear()}
        for c in curves(r)
    }


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__, budget=7200.0, check="exit 1 if a curve is worse than linear")
    ap.add_argument("--quick", action="store_true", help="small sizes (a test's run)")
    ap.add_argument("--only", default="", help=f"comma-separated rows of {','.join(ROWS)}")
    ap.add_argument("--accounts", type=sizes, default="10000,100000,1000000")
    ap.add_argument("--block-txs", type=int, default=2000)
    ap.add_argument("--calls", type=int, default=2000, help="RPC calls per latency figure")
    ap.add_argument("--resting", type=sizes, default="1000,10000,100000")
    ap.add_argument("--slots", type=int, default=1000)
    ap.add_argument("--market-block", type=int, default=2000)
    ap.add_argument("--blocks", type=sizes, default="1000,10000,100000")
    ap.add_argument("--chain-txs", type=int, default=4, help="transfers per block of the chain")
    ap.add_argument("--sync-blocks", type=int, default=50_000)
    ap.add_argument("--sync-timeout", type=float, default=3600.0)
    ap.add_argument("--pending", type=sizes, default="1000,10000,100000")
    ap.add_argument("--probe", type=int, default=1000, help="txs admitted (timed) per pool size")
    ap.add_argument("--per-sender", type=int, default=100, help="pending txs per sender")
    ap.add_argument("--readings", type=sizes, default="1000,10000,100000")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--e2e-devices", type=int, default=4000, help="meters of the e2e row")
    ap.add_argument("--e2e-owners", type=int, default=200, help="their owners (demo keys)")
    args = parse_args(ap, argv, quick=QUICK)
    if args.only and not set(args.only.split(",")) <= set(ROWS + OPT_IN):
        ap.error(f"--only: rows are {','.join(ROWS + OPT_IN)}")
    bench = BenchRun(args, workdir="powernode-scale-")
    tune_gc()  # the node process's GC settings
    code = bench.execute(lambda: run(args, bench))
    progress("rows done")
    return bench.finish(code, print_table, targets=targets)


if __name__ == "__main__":
    sys.exit(main())
