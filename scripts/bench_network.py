"""Network benchmark: signature baseline, block propagation, late-joiner sync,
sustained confirmed tx/s of a mining testnet under load.

Usage::

    python scripts/bench_network.py            # progress on stderr, table on stdout
    python scripts/bench_network.py --json     # ... and the figures as JSON after the table
    python scripts/bench_network.py --check    # exit 1 if the tx/s target is missed

What it measures, in one run (every testnet is started with
``scripts/testnet.py up`` in a temporary directory, on 127.0.0.1 only):

a. Baseline: raw Ed25519 verifies per second on 1 and 2 threads, exactly as
   ``scripts/bench_node.py`` measures it (its ``bench_baseline``; best of 3).
   The 2-thread figure is *the baseline*.
b. Propagation: a 5-node testnet (``up --nodes 5 --no-mine --easy``). Each
   round puts 1,000 signed transfers into node0's mempool, waits until every
   node's mempool holds them (gossip), then ``dev.mine``s one block on node
   ``round mod 5`` and polls every node's tip until all are that block. The
   figure is from the node logs: the ``block.connected`` line of that hash on
   the mining node to the same line on the last node to connect it
   (timestamps with milliseconds, one machine, one clock). p50 over
   ``--rounds`` blocks; the poll-based time (dev.mine call to the last tip
   seen) is shown too.
c. Late-joiner sync: on the same testnet, ``--sync-blocks`` more blocks of
   ``--sync-txs`` transfers each are mined on node0 (so the chain holds at
   least 500 blocks with txs), then a 6th node is started with a fresh data
   dir, the same genesis and the five as bootstrap peers. Figures: its own
   ``sync.done`` line (blocks, ms, blocks/s) and tx/s over the same time
   (txs counted from its ``block.connected`` lines), and the wall time from
   process start to its tip equal to the others'.
d. Sustained load: a 4-node testnet with mining on (``up --nodes 4
   --block-time B --miner-cpu PCT``: each node's miner thread capped at PCT%
   of a core, 10 by default, with the target eased to match, so four miners
   leave the two cores to the txs; ``--miner-cpu 100`` mines flat out); ``scripts/loadgen.py`` (in process) funds ``--senders``
   fresh keys, then offers ``--load-rate`` tx/s for ``--load-duration`` s,
   spread over the 4 nodes, and tracks confirmations. Figures: confirmed
   tx/s (first submit to last confirmation), latency p50/p99, reorged
   blocks, and the ratio (confirmed tx/s x nodes) / baseline: every node
   verifies every tx once, so this is the share of the machine's signature
   capacity that ends up as confirmed txs. Where the time goes: CPU seconds
   of each node's threads (event loop, miner, verify workers) over the send
   window, the CPU per confirmed tx per node by thread group, and the same
   without the miner's hashing (a share of a core per node, spent whatever
   the load, so it is not a per-tx cost), and with py-spy installed a
   sampled profile of node0's event loop (``--profile-seconds``; samples
   taken while the loop holds the GIL, so waiting is not counted as work). Then, by ``--variant``, the same load runs again
   on a fresh 4-node testnet: ``dev-mine`` (the default) starts it with
   ``--no-mine --easy`` and mines one block on node0 with ``dev.mine`` every
   block_time s: no hashing threads, no forks, the same block interval, so
   it shows what the tx pipeline itself sustains; ``one-miner``: only node0
   mines (normal target); ``none`` skips it. ``--nice-miners`` (an
   experiment, off by default) renices the miner threads to 19 first.

The machine must be otherwise idle for the figures to mean anything: the run
waits (up to ``--wait-quiet`` s) for other processes to go quiet and records
how many cores other processes used during each phase.

The whole run is bounded by ``--budget`` seconds; every node process is
stopped (SIGTERM, then SIGKILL) on every exit path. Exit status: 0 when every
phase ran (with ``--check``: and the target was met, else 1), 2 when a phase
failed or the budget ran out, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from benchkit.cpu import Phases, child_pids
from benchkit.guard import progress
from benchkit.load.sign import prepare
from benchkit.net.common import TARGET_TX_PER_S, DemoSigner
from benchkit.net.load import load_config, phase_load
from benchkit.net.propagation import phase_propagation
from benchkit.net.report import print_table
from benchkit.net.sync import phase_sync
from benchkit.net.testnet import Testnet, node_pids_under, stop_nodes
from benchkit.node.baseline import transfer_baseline
from benchkit.runner import BenchRun, Targets, bench_parser, parse_args, target

LOAD_CHAIN = "powernode-netbench"


# --- the run -------------------------------------------------------------------------


def run(args: argparse.Namespace, bench: BenchRun) -> None:
    results, monitor, workdir = bench.results, bench.monitor, bench.workdir
    phase = Phases(monitor)
    with phase("baseline"):
        results["baseline"] = transfer_baseline(args.sigs)

    if not args.skip_net5:
        with Testnet(workdir / "net5") as tn:
            progress("propagation: starting a 5-node testnet (no mining, easy target)")
            tn.up(5, mine=False, easy=True)
            peers = tn.wait_peers(4, 30)
            monitor.pids.update(tn.pids)
            for pid in tn.pids:
                monitor.pids.update(child_pids(pid))
            if min(peers.values()) < 4:
                progress(f"propagation: not fully connected after 30 s: {peers}")
            with tn.client(tn.names[0]) as c:
                chain_id = c.chain_id()
            signer = DemoSigner(tn, chain_id)
            with phase("propagation"):
                results["propagation"] = phase_propagation(
                    tn, signer, args.rounds, args.block_txs, args.step_timeout
                )
                results["propagation"]["peers"] = peers
            with phase("sync"):
                results["sync"] = phase_sync(
                    tn, signer, args.sync_blocks, args.sync_txs, args.sync_timeout, monitor
                )
            progress("stopping the 5-node testnet")

    if not args.skip_load:
        # Signed before any testnet runs, so signing has the machine to itself;
        # the variant reuses them (same chain id, the same keys funded anew).
        prepared = prepare(load_config(workdir, args), LOAD_CHAIN)
        results["load"] = phase_load(
            workdir, args, prepared, mode="all-mine", monitor=monitor, phase=phase
        )
        base = results["baseline"]["verify_per_s_2t"]
        ld = results["load"]
        ld["ratio_to_baseline"] = ld["confirmed_tx_per_s"] * 4 / base
        if args.variant != "none":
            v = phase_load(workdir, args, prepared, mode=args.variant, monitor=monitor, phase=phase)
            v["ratio_to_baseline"] = v["confirmed_tx_per_s"] * 4 / base
            results["load_variant"] = v


def targets(results: dict[str, Any]) -> Targets:
    ld = results.get("load", {})
    if "confirmed_tx_per_s" not in ld:
        return {}
    return {"confirmed_tx_per_s": target(ld["confirmed_tx_per_s"], TARGET_TX_PER_S)}


def stop_leftovers(workdir: Path) -> None:
    """Every Testnet stops its nodes on leaving its block; this catches any
    node a failure left behind under the work dir."""
    left = node_pids_under(workdir)
    if left:
        progress(f"stopping {len(left)} leftover node processes")
        stop_nodes(left)


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__, budget=1200.0, check="exit 1 if the tx/s target is missed")
    ap.add_argument("--sigs", type=int, default=4000, help="signatures for the baseline")
    ap.add_argument("--rounds", type=int, default=5, help="propagation: blocks")
    ap.add_argument("--block-txs", type=int, default=1000, help="propagation: txs per block")
    ap.add_argument("--step-timeout", type=float, default=60.0)
    ap.add_argument("--sync-blocks", type=int, default=500, help="sync: blocks to add")
    ap.add_argument("--sync-txs", type=int, default=20, help="sync: txs per block")
    ap.add_argument("--sync-timeout", type=float, default=180.0)
    ap.add_argument("--block-time", type=int, default=2, help="load: genesis block_time")
    # Offered above the target: the figure's window runs from the first
    # submit to the last confirmation, so it includes the drain after the
    # last send, and an offer of exactly 4,000 could never show 4,000.
    ap.add_argument("--load-rate", type=float, default=4400.0, help="load: offered tx/s")
    ap.add_argument("--load-duration", type=float, default=60.0, help="load: seconds")
    ap.add_argument("--senders", type=int, default=400, help="load: fresh sender keys")
    ap.add_argument("--batch", type=int, default=100, help="load: txs per tx.submit batch")
    ap.add_argument(
        "--conns", type=int, default=2, help="load: loadgen connections per node (own senders each)"
    )
    ap.add_argument("--settle", type=float, default=30.0, help="load: s without confirmations")
    ap.add_argument("--confirm-timeout", type=float, default=90.0)
    ap.add_argument("--profile-seconds", type=float, default=20.0, help="0: no py-spy profile")
    ap.add_argument(
        "--profile-out",
        type=Path,
        default=None,
        metavar="FILE",
        help="keep node0's raw py-spy profile (collapsed stacks) in FILE",
    )
    ap.add_argument(
        "--variant",
        choices=("dev-mine", "one-miner", "none"),
        default="dev-mine",
        help="second load run: dev.mine every block_time s (no PoW), or only node0 mines",
    )
    ap.add_argument(
        "--nice-miners",
        action="store_true",
        help="experiment: renice the nodes' miner threads to 19 before the load",
    )
    ap.add_argument(
        "--miner-cpu",
        type=int,
        default=10,
        metavar="PCT",
        help="load: cap each node's miner at PCT%% of a core (testnet.py up --miner-cpu; "
        "100: uncapped)",
    )
    ap.add_argument("--skip-net5", action="store_true", help="skip propagation and sync")
    ap.add_argument("--skip-load", action="store_true", help="skip the load phase(s)")
    args = parse_args(ap, argv)
    if args.block_txs > 5 * 256:
        ap.error("--block-txs above what the 5 demo keys may have pending (1,280)")
    bench = BenchRun(args, workdir="powernode-netbench-", git=True)
    code = bench.execute(lambda: run(args, bench), cleanup=stop_leftovers)
    return bench.finish(code, print_table, targets=targets, phases_key="load_phases")


if __name__ == "__main__":
    sys.exit(main())
