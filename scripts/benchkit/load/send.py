"""loadgen's funding and sending: the testnet's nodes, the fresh senders
funded from the demo keys, and the threads that send the pre-signed batches.

Funding. Each fresh sender gets one transfer from a demo key
(``DIR/keys/demoK.key``; the demo keys take turns, at most 200 pending
each); the run waits until every node reports every funding tx confirmed
with ``FUND_DEPTH`` confirmations (a tx at the tip may be reorged away by a
rival block, and its sender's transfers refused for want of funds).

Sending. Each sender talks to one node (sender i to node i mod n, as a
wallet talks to its node), so its nonces arrive in order; each node gets its
senders' txs nonce-major (every sender's next nonce, then the next), in
``tx.submit`` batches of ``--batch``, over ``--conns`` keep-alive
connections per node (a thread each; a sender always uses the same one, so
its nonces still arrive in order), as many wallets share a node. One
connection waits for each answer before its next batch, so with one a
node's slow answer would hold back the rate. With ``--rate`` each
connection gets its share of the rate
on a fixed schedule (a late batch is sent at once, never skipped); with
``--max`` as fast as the node answers.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchkit.guard import BenchRefused, progress
from benchkit.load.sign import Batch, Log
from benchkit.rpc import RawRpc
from powernode.client import (
    Endpoint,
    RpcClient,
    RpcError,
    RpcUnavailable,
    build_transfer,
    endpoint_from_datadir,
)
from powernode.core.crypto import KeyPair
from powernode.devnet.testnet import NoTestnet, TestnetLayout
from powernode.devnet.wait import WaitTimeout, wait_until

FUND_MARGIN = 1_000_000  # one unit on top of what a sender will spend
FUND_PER_ROUND = 200  # funding txs per demo key per round (max_per_sender is 256)
FUND_DEPTH = 2  # confirmations every node must show for a funding tx


# --- per-node load and results -----------------------------------------------------


@dataclass
class NodeLoad:
    name: str
    endpoint: Endpoint
    batches: list[Batch] = field(default_factory=list)
    submitted: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    posts: int = 0
    post_seconds: float = 0.0
    post_max: float = 0.0


# --- testnet -----------------------------------------------------------------------


def testnet_nodes(d: Path, only: Sequence[str] | None = None) -> list[tuple[str, Endpoint]]:
    """(name, RPC endpoint) of every running node of the testnet in ``d``."""
    try:
        tn = TestnetLayout.load(d)
    except NoTestnet:
        raise BenchRefused(
            f"loadgen: no testnet in {d} (run 'scripts/testnet.py up' first)"
        ) from None
    out: list[tuple[str, Endpoint]] = []
    down: list[str] = []
    for n in tn.nodes:
        if only and n.name not in only:
            continue
        try:
            out.append((n.name, endpoint_from_datadir(tn.datadir(n.name))))
        except RpcUnavailable:
            down.append(n.name)
    if not out:
        # One line, the refusal: which nodes are down is all of them.
        raise BenchRefused(f"loadgen: no running node in {d}")
    for name in down:
        progress(f"loadgen: {name} is not running; skipped")
    return out


def demo_keys(d: Path) -> list[KeyPair]:
    return TestnetLayout.load(d).read_demo_keys()


# --- funding -----------------------------------------------------------------------


def wait_confirmed(
    endpoints: Sequence[tuple[str, Endpoint]], txids: list[str], timeout: float, log: Log
) -> None:
    """Until every node reports every tx in ``txids`` confirmed with
    ``FUND_DEPTH`` confirmations (tx.get in batches)."""
    clients = {name: RpcClient(ep, timeout=60) for name, ep in endpoints}
    pending = {name: list(txids) for name in clients}
    last_log = time.monotonic()

    def all_confirmed() -> bool:
        nonlocal last_log
        for name, c in clients.items():
            left = []
            for i in range(0, len(pending[name]), 500):
                chunk = pending[name][i : i + 500]
                res = c.batch([("tx.get", {"id": t}) for t in chunk])
                for t, r in zip(chunk, res, strict=True):
                    if (
                        isinstance(r, RpcError)
                        or r.get("status") != "confirmed"
                        or (r.get("confirmations") or 0) < FUND_DEPTH
                    ):
                        left.append(t)
            pending[name] = left
        if any(pending.values()) and time.monotonic() - last_log > 5:
            last_log = time.monotonic()
            worst = max(len(p) for p in pending.values())
            log(f"funding: waiting for confirmation ({worst} of {len(txids)} pending)")
        return not any(pending.values())

    try:
        wait_until(all_confirmed, timeout=timeout, interval=0.5, what="funding confirmed")
    except WaitTimeout:
        raise RuntimeError(
            f"funding not confirmed after {timeout:.0f} s: "
            + ", ".join(f"{n} {len(p)} left" for n, p in pending.items())
        ) from None
    finally:
        for c in clients.values():
            c.close()


def fund_senders(
    endpoints: Sequence[tuple[str, Endpoint]],
    funders: Sequence[KeyPair],
    senders: Sequence[KeyPair],
    amount: int,
    chain_id: str,
    timeout: float,
    log: Log,
) -> float:
    """One transfer of ``amount`` from a demo key (in turn) to each sender,
    submitted to the first node; returns once every node has them confirmed."""
    t0 = time.monotonic()
    name, ep = endpoints[0]
    with RpcClient(ep, timeout=60) as c:
        for start in range(0, len(senders), FUND_PER_ROUND * len(funders)):
            group = senders[start : start + FUND_PER_ROUND * len(funders)]
            nonces = {
                f.address: c.call("account.get", {"address": f.address.hex()})["next_nonce"]
                for f in funders
            }
            txs = []
            for i, s in enumerate(group):
                f = funders[i % len(funders)]
                txs.append(
                    build_transfer(
                        f, chain_id=chain_id, nonce=nonces[f.address], to=s.address, amount=amount
                    )
                )
                nonces[f.address] += 1
            res = c.batch([("tx.submit", {"raw": tx.raw.hex()}) for tx in txs])
            bad = [r for r in res if isinstance(r, RpcError)]
            if bad:
                raise RuntimeError(f"funding rejected by {name}: {bad[0]}")
            log(f"funding: {len(txs)} transfers from {len(funders)} demo keys sent to {name}")
            wait_confirmed(endpoints, [tx.txid.hex() for tx in txs], timeout, log)
    return time.monotonic() - t0


# --- sending -----------------------------------------------------------------------


class Sender(threading.Thread):
    """Sends one node's batches, paced or as fast as it answers."""

    def __init__(
        self,
        load: NodeLoad,
        rate: float | None,
        deadline: float | None,
        submit_times: dict[str, float],
        stop: threading.Event,
        go: threading.Event,
        t0_box: list[float],
    ) -> None:
        super().__init__(name=f"loadgen-{load.name}", daemon=True)
        self.load = load
        self.rate = rate
        self.deadline = deadline
        self.submit_times = submit_times
        self.stop_event = stop
        self.go = go
        self.t0_box = t0_box
        self.conn = RawRpc(load.endpoint, timeout=120)
        self.first = 0.0
        self.last = 0.0
        self.error: str | None = None

    def run(self) -> None:
        ld = self.load
        try:
            self.conn.call("node.info")  # connected before the clock starts
            self.go.wait()
            t0 = self.t0_box[0]
            for b in ld.batches:
                if self.stop_event.is_set():
                    break
                if self.rate:
                    wait = t0 + ld.submitted / self.rate - time.monotonic()
                    if wait > 0 and self.stop_event.wait(wait):
                        break
                start = time.monotonic()
                if self.deadline is not None and start >= self.deadline:
                    break
                data = self.conn.post(b.body)
                end = time.monotonic()
                if not self.first:
                    self.first = start
                self.last = end
                ld.posts += 1
                ld.post_seconds += end - start
                ld.post_max = max(ld.post_max, end - start)
                answers = {r.get("id"): r for r in json.loads(data)}
                for j, txid in enumerate(b.txids):
                    r = answers.get(j)
                    if r is None:
                        ld.rejected["missing_response"] += 1
                    elif "error" in r:
                        e = r["error"]
                        ld.rejected[str((e.get("data") or {}).get("code", e.get("message")))] += 1
                    else:
                        self.submit_times[txid] = start
                        ld.accepted += 1
                ld.submitted += len(b.txids)
        except Exception as exc:  # the run reports it; other nodes keep going
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.conn.close()
