"""Output of ``scripts/bench_network.py``: the table (with the per-node CPU
and profile sections)."""

from __future__ import annotations

from typing import Any

from benchkit.cpu import print_phase_load
from benchkit.net.common import TARGET_TX_PER_S
from benchkit.runner import Row, print_figures

# Rows of each profile table: what summarize_pyspy_raw keeps (its top).
PROFILE_ROWS = 15

# --- output --------------------------------------------------------------------------


def _load_rows(name: str, ld: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    c = ld["config"]
    lat = ld["latency_s"]
    rows.append(
        (
            f"{name}: offered {c['rate']:,.0f} tx/s for {c['duration_s']:.0f} s, "
            f"{c['senders']} senders, batch {c['batch']} x {c['conns_per_node']} conns/node",
            f"{ld['submitted']:,} sent",
            "",
            "",
        )
    )
    rows.append((f"{name}:   sent at", f"{ld['submit_tx_per_s']:,.0f} tx/s", "", ""))
    rej = ", ".join(f"{k} {v:,}" for k, v in ld["rejected_by_reason"].items()) or "none"
    rows.append((f"{name}:   accepted / rejected", f"{ld['accepted']:,} / {rej}", "", ""))
    rows.append(
        (
            f"{name}:   confirmed / accepted, not confirmed",
            f"{ld['confirmed']:,} / {ld['unconfirmed']:,}",
            "",
            "",
        )
    )
    if lat["p50"] is not None:
        rows.append(
            (
                f"{name}:   confirmation latency p50 / p99",
                f"{lat['p50']:.1f} / {lat['p99']:.1f} s",
                "",
                "",
            )
        )
    b = ld["blocks"]
    iv = f"{b['interval_mean_s']:.1f} s" if b["interval_mean_s"] is not None else "-"
    rows.append(
        (
            f"{name}:   blocks, txs mean / max, interval, reorged",
            f"{b['count']}, {b['txs_mean']:,.0f} / {b['txs_max']:,}, {iv}, {b['off_main_chain']}",
            "",
            "",
        )
    )
    bc = ld.get("block_connect", {})
    if bc.get("ms_per_1000_txs_p50") is not None:
        secs = bc["seconds_per_node"]
        rows.append(
            (
                f"{name}:   block connect, ms per 1,000 txs p50 (max); s per node",
                f"{bc['ms_per_1000_txs_p50']:.0f} ({bc['ms_per_1000_txs_max']:.0f}); "
                + " ".join(f"{v:.1f}" for v in secs.values()),
                "",
                "",
            )
        )
    if ld.get("node_cpu_us_per_tx"):
        cpu = ld["cpu"]
        rows.append(
            (
                f"{name}:   node CPU per confirmed tx per node (all threads + workers, "
                f"{cpu['run_node_cpu_seconds']:.0f} s over {cpu['run_seconds']:.0f} s)",
                f"{ld['node_cpu_us_per_tx']:,.0f} us",
                "",
                "",
            )
        )
    if ld.get("node_cpu_us_per_tx_by_role"):
        by_role = ld["node_cpu_us_per_tx_by_role"]
        rows.append(
            (
                f"{name}:   the same by thread group (us); without the miner's hashing",
                ", ".join(f"{k} {v:,.0f}" for k, v in sorted(by_role.items()))
                + f"; {ld['node_cpu_us_per_tx_without_miner']:,.0f} us",
                "",
                "",
            )
        )
    tc = ld.get("cpu", {}).get("total_cores", {})
    if tc:
        rows.append(
            (
                f"{name}:   node CPU over the send window (cores)",
                ", ".join(f"{k} {v:.2f}" for k, v in sorted(tc.items())),
                "",
                "",
            )
        )
    return rows


def print_table(results: dict[str, Any]) -> None:
    rows: list[Row] = []
    b = results.get("baseline")
    if b:
        rows.append(("a Ed25519 verify, 1 thread", f"{b['verify_per_s_1t']:,.0f} /s", "", ""))
        rows.append(
            ("a Ed25519 verify, 2 threads (baseline)", f"{b['verify_per_s_2t']:,.0f} /s", "", "")
        )
        rows.append(
            (
                "a   CPU per verify (2 cores / baseline)",
                f"{2e6 / b['verify_per_s_2t']:,.0f} us",
                "",
                "",
            )
        )
    p = results.get("propagation")
    if p:
        rows.append(
            (
                f"b propagation of a {p['txs_per_block']:,}-tx block to all {p['nodes']} nodes, "
                f"p50 of {len(p['rounds'])}",
                f"{p['propagation_ms_p50']:.0f} ms",
                "",
                "",
            )
        )
        rows.append(
            (
                "b   min / max; first peer p50",
                f"{p['propagation_ms_min']:.0f} / {p['propagation_ms_max']:.0f}; "
                f"{p['first_peer_ms_p50']:.0f} ms",
                "",
                "",
            )
        )
        rows.append(
            (
                "b   dev.mine call to every tip polled, p50",
                f"{p['call_to_all_tips_ms_p50']:.0f} ms",
                "",
                "",
            )
        )
        rows.append(
            (
                "b   1,000 txs into all 5 mempools (gossip), p50",
                f"{p['mempools_filled_s_p50']:.2f} s",
                "",
                "",
            )
        )
    s = results.get("sync")
    if s:
        rows.append(
            (
                f"c late joiner: {s['blocks']} blocks, {s['txs']:,} txs",
                f"{s.get('blocks_per_s', 0):,.0f} blocks/s",
                "",
                "",
            )
        )
        rows.append(("c   tx/s while syncing", f"{s.get('tx_per_s', 0):,.0f} tx/s", "", ""))
        if "node_sync_done" in s:
            d = s["node_sync_done"]
            rows.append(
                (
                    "c   its sync.done line",
                    f"blocks={d['blocks']} ms={d['ms']} blocks_per_s={d['blocks_per_s']}",
                    "",
                    "",
                )
            )
        rows.append(
            (
                "c   process start to tip equal (RPC up after)",
                f"{s['spawn_to_tip_s']:.1f} s ({s['spawn_to_rpc_s']:.1f} s)",
                "",
                "",
            )
        )
    ld = results.get("load")
    if ld and "confirmed_tx_per_s" in ld:
        rows += _load_rows("d", ld)
        rows.append(
            (
                "d confirmed tx/s, 4 nodes mining"
                + (
                    f" (miners capped at {ld['miner_cpu']}% of a core)"
                    if ld.get("miner_cpu", 100) != 100
                    else ""
                ),
                f"{ld['confirmed_tx_per_s']:,.0f} tx/s",
                f">= {TARGET_TX_PER_S:,.0f}",
                "yes" if ld["confirmed_tx_per_s"] >= TARGET_TX_PER_S else "NO",
            )
        )
        rows.append(("d (confirmed tx/s x 4) / baseline", f"{ld['ratio_to_baseline']:.2f}", "", ""))
        if b:
            rows.append(
                (
                    f"d   the target as that ratio: ({TARGET_TX_PER_S:,.0f} x 4) / baseline",
                    f"{TARGET_TX_PER_S * 4 / b['verify_per_s_2t']:.2f}",
                    "",
                    "",
                )
            )
    v = results.get("load_variant")
    if v and "confirmed_tx_per_s" in v:
        rows += _load_rows("d'", v)
        rows.append(
            (
                f"d' confirmed tx/s, {v['mining']}",
                f"{v['confirmed_tx_per_s']:,.0f} tx/s",
                "",
                "",
            )
        )
        rows.append(("d' (confirmed tx/s x 4) / baseline", f"{v['ratio_to_baseline']:.2f}", "", ""))

    env = results["env"]
    print_figures(
        f"powernode network benchmark: {env['cpus']} CPUs, Python {env['python']}, "
        f"cryptography {env['cryptography']}, git {env.get('git', {}).get('head', '?')} "
        f"({env.get('git', {}).get('dirty_files_in_powernode', '?')} files changed in powernode/)",
        rows,
    )
    for key in ("load", "load_variant"):
        ld = results.get(key)
        if not ld or "cpu" not in ld:
            continue
        cpu = ld["cpu"]
        print(
            f"\n{key}: CPU cores per node thread group over the {cpu['seconds']:.0f} s send window"
        )
        roles = sorted({r for n in cpu["nodes"].values() for r in n})
        print(f"  {'node':<8}" + "".join(f"{r:>9}" for r in roles))
        for node, rs in cpu["nodes"].items():
            print(f"  {node:<8}" + "".join(f"{rs.get(r, 0.0):>9.2f}" for r in roles))
        tc = cpu["total_cores"]
        print(f"  {'total':<8}" + "".join(f"{tc.get(r, 0.0):>9.2f}" for r in roles))
        print(f"  loadgen (this process): {cpu.get('loadgen_cores', 0.0):.2f} cores")
        if ld.get("peer_problems"):
            print(f"  peer problems: {'; '.join(ld['peer_problems'][:5])}")
        print(f"  chain.reorg events in the 4 logs: {ld.get('reorg_events', 0)}")
        mn = ld.get("miners")
        if mn and mn.get("expected_interval_s"):
            print(
                "  miners' PoW hashes/s while mining: "
                + ", ".join(f"{n} {v:,.0f}" for n, v in mn["hashes_per_s"].items())
                + f"; genesis target's interval at that rate {mn['expected_interval_s']:.2f} s"
                f" (block_time {mn['genesis_block_time']} s)"
            )
        prof = ld.get("profile")
        if prof and prof.get("loop_samples"):
            print(
                f"\n{key}: py-spy, {prof['node']} event loop over {prof['seconds']:.0f} s "
                f"({prof['loop_samples']} samples; by thread: "
                + ", ".join(f"{k} {v}" for k, v in prof["samples_by_thread"].items())
                + ")"
            )
            print("  self (top of stack):")
            for fn, _, share in prof["loop_self"][:PROFILE_ROWS]:
                print(f"    {100 * share:5.1f}%  {fn}")
            print("  inclusive (powernode code):")
            shown = 0
            for fn, _, share in prof["loop_inclusive"]:
                if share > 0.98:
                    continue
                print(f"    {100 * share:5.1f}%  {fn}")
                shown += 1
                if shown >= PROFILE_ROWS:
                    break
    load = results.get("load_phases", {})
    if load:
        print()
        print_phase_load(load)
    for problem in results.get("problems", []):
        print(f"PROBLEM: {problem}")
    if "error" in results:
        print(f"RUN FAILED: {results['error']}")
