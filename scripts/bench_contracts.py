"""Contracts and settlement benchmark.

    python scripts/bench_contracts.py [--trades N] [--sellers S] [--reps R] [--json] [--check]

Settlement (``benchkit/settlement.py``): N trades of one spot slot, made
through the market handlers with the sellers' device readings in (untimed),
settled by the settlement engine's block hook at the first block past the
slot's reading window: each trade's delivered energy, payment, refund,
penalty and certificate bundle. Timed alone (best of R, garbage collector
off, as the node tunes it), then the state diff of what it wrote. Target:
10,000 trades in under 1 s. (PPA deliveries and contract executions per
second through block application are the contracts helper's phases.)

Checks: every trade settled, money plus escrows conserved, no trade bundles
more certificate energy than was delivered. Exit status 0; 1 with --check
if a target is missed; 2 if a check failed.
"""

from __future__ import annotations

import argparse
import json
import sys

from benchkit.settlement import bench_settlement

TARGET_SETTLE_SECONDS = 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--trades", type=int, default=10_000)
    ap.add_argument("--sellers", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    a = ap.parse_args(argv)
    fig = bench_settlement(a.trades, a.sellers, a.reps)
    met = fig["hook_seconds"] < TARGET_SETTLE_SECONDS or a.trades < 10_000
    print(f"settlement of {fig['trades']:,} trades ({fig['sellers']} sellers) in one block hook")
    print(f"  hook            {fig['hook_seconds']:.3f} s  ({fig['trades_per_s']:,.0f} trades/s)"
          f"  target < {TARGET_SETTLE_SECONDS:.0f} s for 10,000: {'met' if met else 'MISSED'}")  # fmt: skip
    print(f"  state diff      {fig['diff_seconds']:.3f} s  ({fig['changed_keys']:,} keys)")
    print(f"  outcomes        {fig['statuses']}")
    print(f"  setup           {fig['setup_seconds']} s (untimed)")
    if a.json:
        print(json.dumps(fig, indent=2))
    if fig["problems"]:
        for p in fig["problems"]:
            print(f"problem: {p}", file=sys.stderr)
        return 2
    return 1 if a.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
