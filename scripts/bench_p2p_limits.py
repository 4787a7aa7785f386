"""Inbound connection limits under bursts of peers, on a real node process.

Usage::

    python scripts/bench_p2p_limits.py                  # table on stdout, progress on stderr
    python scripts/bench_p2p_limits.py --hellos 1000    # a bigger burst
    python scripts/bench_p2p_limits.py --json --check   # ... figures as JSON; exit 1 past a target

One ``powernode run`` process (dev chain, P2P on, the default ``[p2p]``
config: ``max_inbound`` 32, ``max_pending`` 8, 2 and 4 per IP) on
127.0.0.1 gets:

1. Waves of ``--hellos`` WebSocket peers (300 by default) from this host,
   each wave connecting and shaking hands at once (hello, then auth, a
   fresh node id each) while earlier waves' peers stay connected, until a
   wave gets none in: how many it held at once, by its own peak counters
   (RPC ``peer.stats``: ``peak_inbound_held`` counts handshakes under way,
   ``peak_inbound_peers`` finished ones), by RPC polling during the waves,
   and by the peers still open at the end; the rest were refused at accept
   (HTTP 503) and the reasons are counted.
2. The same burst from 127.0.0.2, which the node takes for another host
   (the peer's IP is not the socket's local IP): held to
   ``max_inbound_per_ip``.
3. A peer from 127.0.0.2 that gets itself dropped (``tx_flood``) and then
   redials as fast as it can for ``--redial-seconds``: how many redials the
   node let through (``reconnect_cooldown`` refuses them for 10 s).

``--check`` targets: every peak at most ``max_inbound``, at most
``max_inbound_per_ip`` held from the other host, no redial let through
during the cooldown.

Exit status as the other benchmarks: 0, 1 (``--check``: a target missed), 2
(a phase failed or the budget ran out), 130 on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from benchkit.cpu import Phases
from benchkit.guard import progress
from benchkit.p2p_limits import Sampler, burst, redial
from benchkit.runner import BenchRun, Row, Targets, bench_parser, parse_args, print_figures, target

from powernode.devnet.datadir import init_datadir, write_genesis
from powernode.devnet.devchain import dev_genesis
from powernode.devnet.process import ProcessNode

OTHER_HOST = "127.0.0.2"


def run(args: Any, bench: BenchRun) -> None:
    results = bench.results
    genesis = write_genesis(
        bench.workdir / "genesis.json", dev_genesis({}, chain_id="bench-p2p-limits")
    )
    datadir = bench.workdir / "node"
    init_datadir(datadir, genesis, p2p=True)
    phase = Phases(bench.monitor)
    with ProcessNode(datadir) as node:
        node.start()
        bench.monitor.pids.add(node.pid)
        info = node.call("node.info")
        address, chain_id = info["p2p"], info["chain_id"]
        genesis_hash = bytes.fromhex(info["genesis"])
        results["limits"] = {k: v for k, v in node.call("peer.stats").items() if "max" in k}
        for name, local_ip in (("this_host", ""), ("other_host", OTHER_HOST)):
            progress(f"burst of {args.hellos} from {local_ip or 'this host'}")
            with phase(f"burst {name}"), Sampler(node.rpc) as sampler:
                out = asyncio.run(
                    burst(address, chain_id, genesis_hash, args.hellos, local_ip=local_ip)
                )
            stats = node.call("peer.stats")
            out["polled_max_inbound"] = sampler.max_inbound
            out["polled_max_held"] = sampler.max_held
            out["polls"] = sampler.samples
            out["peak_inbound_held"] = stats["peak_inbound_held"]
            out["peak_inbound_peers"] = stats["peak_inbound_peers"]
            out["refused_total"] = stats["refused"]
            results[name] = out
            for w in out["waves"]:
                progress(f"  wave: +{w['new']}, held {w['held']}, {w['outcomes']}")
            progress(
                f"  held {out['held']}, peaks {stats['peak_inbound_held']}/"
                f"{stats['peak_inbound_peers']}"
            )
        progress(f"redials for {args.redial_seconds:.0f} s from {OTHER_HOST}")
        with phase("redial"):
            results["redial"] = asyncio.run(
                redial(address, chain_id, genesis_hash, args.redial_seconds, local_ip=OTHER_HOST)
            )
        progress(f"  {results['redial']}")
        results["node_alive"] = node.is_running()


def targets(results: dict[str, Any]) -> Targets:
    if "redial" not in results:
        return {}
    lim = results["limits"]
    here, other = results["this_host"], results["other_host"]
    worst = max(max(r["peak_inbound_held"], r["polled_max_held"], r["held"]) for r in (here, other))
    return {
        "inbound_peak_vs_limit": target(worst, lim["max_inbound"], at_most=True),
        "held_from_other_host": target(other["held"], lim["max_inbound_per_ip"], at_most=True),
        "redials_let_through": target(results["redial"]["accepted"], 0, at_most=True),
    }


def print_table(results: dict[str, Any]) -> None:
    rows: list[Row] = []
    lim = results.get("limits", {})
    for name, label in (("this_host", "this host"), ("other_host", f"{OTHER_HOST}")):
        r = results.get(name)
        if r is None:
            continue
        first = r["waves"][0]
        rows.append(
            (
                f"waves of {r['attempts_per_wave']} hellos at once from {label}: "
                "held / node peak since start (slots / peers)",
                f"{r['held']} / {r['peak_inbound_held']} / {r['peak_inbound_peers']}",
                f"<= {lim.get('max_inbound')}",
                "",
            )
        )
        rows.append(
            (
                f"  polled during the burst ({r['polls']} polls): max inbound / held",
                f"{r['polled_max_inbound']} / {r['polled_max_held']}",
                "",
                "",
            )
        )
        rows.append(
            (f"  first wave in {first['seconds']:.2f} s", str(first["outcomes"])[:70], "", "")
        )
        rows.append((f"  waves until full: {len(r['waves'])}", "", "", ""))
    rd = results.get("redial")
    if rd is not None:
        rows.append(
            (
                f"redials after a drop ({rd['dropped_with']}): tried / let through per s",
                f"{rd['redials_per_s']:.0f} / {rd['accepted_per_s']:.1f}",
                "",
                "",
            )
        )
    for key, t in results.get("targets", {}).items():
        rows.append((key, f"{t['value']}", t["target"], "yes" if t["met"] else "NO"))
    env = results["env"]
    print_figures(
        f"powernode P2P inbound limits: {env['cpus']} CPUs, Python {env['python']}, "
        f"max_inbound {lim.get('max_inbound')}, max_pending {lim.get('max_pending')}, "
        f"per IP {lim.get('max_pending_per_ip')}/{lim.get('max_inbound_per_ip')}",
        rows,
    )
    if "error" in results:
        print(f"RUN FAILED: {results['error']}")


def main(argv: list[str] | None = None) -> int:
    ap = bench_parser(__doc__, budget=300.0)
    ap.add_argument("--hellos", type=int, default=300, help="peers in each burst")
    ap.add_argument("--redial-seconds", type=float, default=3.0, help="length of the redial phase")
    args = parse_args(ap, argv)
    bench = BenchRun(args, workdir="powernode-p2p-limits-", git=True)
    code = bench.execute(lambda: run(args, bench))
    return bench.finish(code, print_table, targets=targets)


if __name__ == "__main__":
    sys.exit(main())
