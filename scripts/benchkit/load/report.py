"""loadgen's summary of a run: the numbers, and the table.

The summary counts a tx confirmed if it is on the final main chain of the
highest node; confirmed tx/s is over the window from the first submit to the
last confirmation, and latency is submit (the start of its batch's POST) to
confirmation.
"""

from __future__ import annotations

import itertools
import sys
from collections import Counter
from typing import Any

from benchkit.guard import percentile
from benchkit.load.send import NodeLoad, Sender
from benchkit.load.sign import LoadConfig
from benchkit.load.track import SeenBlock, Tracker

# --- summary -----------------------------------------------------------------------


def summarize(
    cfg: LoadConfig,
    loads: list[NodeLoad],
    senders: list[Sender],
    tracker: Tracker,
    chain: list[SeenBlock],
    submit_times: dict[str, float],
    start: float,
    send_end: float,
) -> dict[str, Any]:
    rejected: Counter[str] = Counter()
    for ld in loads:
        rejected.update(ld.rejected)
    conf_at = {t: b.seen for b in chain for t in b.txids if t in submit_times}
    lat = [at - submit_times[t] for t, at in conf_at.items()]
    confirmed = len(lat)
    first_submit = min(submit_times.values(), default=start)
    last_conf = max(conf_at.values(), default=first_submit)
    window = max(last_conf - first_submit, 1e-6)
    submitted = sum(ld.submitted for ld in loads)
    accepted = sum(ld.accepted for ld in loads)
    send_window = max(send_end - start, 1e-6)
    ours = [b for b in chain if any(t in submit_times for t in b.txids)]
    sizes = [len(b.txids) for b in chain]
    intervals = [b.seen - a.seen for a, b in itertools.pairwise(chain)]
    out: dict[str, Any] = {
        "submitted": submitted,
        "accepted": accepted,
        "rejected": sum(rejected.values()),
        "rejected_by_reason": dict(rejected.most_common()),
        "confirmed": confirmed,
        "unconfirmed": accepted - confirmed,
        "send_seconds": send_window,
        "submit_tx_per_s": submitted / send_window,
        "window_seconds": window,
        "confirmed_tx_per_s": confirmed / window,
        "latency_s": {
            "p50": percentile(lat, 50) if lat else None,
            "p99": percentile(lat, 99) if lat else None,
            "max": max(lat) if lat else None,
            "min": min(lat) if lat else None,
        },
        "blocks": {
            "count": len(chain),
            "with_our_txs": len(ours),
            "txs_mean": sum(sizes) / len(sizes) if sizes else 0,
            "txs_max": max(sizes, default=0),
            "interval_mean_s": sum(intervals) / len(intervals) if intervals else None,
            "final_height": chain[-1].height if chain else tracker.floor,
            "off_main_chain": len(tracker.blocks) - len(chain),
        },
        "nodes": {
            ld.name: {
                "submitted": ld.submitted,
                "accepted": ld.accepted,
                "rejected": dict(ld.rejected),
                "posts": ld.posts,
                "post_ms_mean": 1000 * ld.post_seconds / ld.posts if ld.posts else None,
                "post_ms_max": 1000 * ld.post_max,
                "error": s.error,
            }
            for ld, s in zip(loads, senders, strict=True)
        },
        "tracker": {"polls": tracker.polls, "errors": dict(tracker.errors)},
    }
    return out


# --- output --------------------------------------------------------------------------


def print_summary(r: dict[str, Any], file: Any = sys.stdout) -> None:
    c = r["config"]
    mode = f"target {c['rate']:,.0f} tx/s" if c["rate"] else "as fast as possible"
    print(
        f"\nloadgen: {len(c['nodes'])} nodes, {c['senders']} senders ({c['sender_keys']}), "
        f"batch {c['batch']}, {mode}",
        file=file,
    )
    rows: list[tuple[str, str]] = []
    if "submitted" in r:
        rows += [
            ("submitted", f"{r['submitted']:,}"),
            ("  over", f"{r['send_seconds']:.1f} s = {r['submit_tx_per_s']:,.0f} tx/s"),
            ("accepted", f"{r['accepted']:,}"),
            ("rejected", f"{r['rejected']:,}"),
        ]
        rows += [(f"  {k}", f"{v:,}") for k, v in r["rejected_by_reason"].items()]
        rows += [
            ("confirmed (on the final main chain)", f"{r['confirmed']:,}"),
            ("accepted, not confirmed", f"{r['unconfirmed']:,}"),
            ("window: first submit to last confirmation", f"{r['window_seconds']:.1f} s"),
            ("confirmed tx/s", f"{r['confirmed_tx_per_s']:,.0f}"),
        ]
        lat = r["latency_s"]
        if lat["p50"] is not None:
            rows.append(
                (
                    "confirmation latency p50 / p99 (max)",
                    f"{lat['p50']:.2f} / {lat['p99']:.2f} s ({lat['max']:.2f})",
                )
            )
        b = r["blocks"]
        interval = f"{b['interval_mean_s']:.2f} s" if b["interval_mean_s"] is not None else "-"
        rows.append(
            (
                "blocks: count, txs mean / max, interval",
                f"{b['count']}, {b['txs_mean']:,.0f} / {b['txs_max']:,}, {interval}",
            )
        )
        rows.append(
            (
                "blocks seen but not on the final chain (reorged)",
                f"{b['off_main_chain']}",
            )
        )
        for name, nd in r["nodes"].items():
            mean = f"{nd['post_ms_mean']:.0f}" if nd["post_ms_mean"] is not None else "-"
            rows.append(
                (
                    f"  {name}: accepted / submitted, POST ms mean (max)",
                    f"{nd['accepted']:,} / {nd['submitted']:,}, {mean} ({nd['post_ms_max']:.0f})",
                )
            )
            if nd["error"]:
                rows.append((f"  {name}: sender error", nd["error"]))
    for k in ("funding_s", "presign_s"):
        if k in r:
            rows.append((k.replace("_s", " (s)"), f"{r[k]:.1f}"))
    w = max(len(a) for a, _ in rows) if rows else 20
    for a, b_ in rows:
        print(f"{a:<{w}}  {b_}", file=file)
    if "error" in r:
        print(f"RUN FAILED: {r['error']}", file=file)
