"""The soak's checks, all over RPC: money (every balance plus every escrow
equals the genesis allocations plus a block reward per block), txs seen
confirmed still confirmed once on the common chain with the same answer on
every node, no tx twice in the chain, and node memory that levels off."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchkit.soak.load import Nodes, Sent
from powernode.client import RpcError

CHUNK = 500  # calls per batch (the node's batch_limit is 1000)
RECHECK_BLOCKS = 100  # deeper than any reorg a partition of the soak can cause
MIB = 1024


class Unstable(Exception):
    """The tip kept moving while a view was read."""


def batched(nodes: Nodes, i: int, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(calls), CHUNK):
        out += nodes.batch(i, calls[start : start + CHUNK])
    return out


def stable_view(
    nodes: Nodes, i: int, calls: list[tuple[str, dict[str, Any]]], tries: int = 10
) -> tuple[dict[str, Any], list[Any]]:
    """``calls`` answered at one tip (node.info before and after agree)."""
    for _ in range(tries):
        before = nodes.call(i, "node.info")
        got = batched(nodes, i, calls)
        after = nodes.call(i, "node.info")
        if before["tip"] == after["tip"]:
            return after, got
    raise Unstable(f"node{i}'s tip moved during {tries} reads")


@dataclass(frozen=True)
class Money:
    """Where money can be: the accounts the soak knows (its keys and the
    miners'), the market's order and settlement escrows per participant,
    the PPAs' and the contracts' escrows (listed by their producers)."""

    addresses: list[str]
    participants: list[str]
    producers: list[str]
    allocated: int
    block_reward: int

    def check(self, nodes: Nodes, i: int) -> tuple[bool, str]:
        calls: list[tuple[str, dict[str, Any]]] = [
            ("account.get", {"address": a}) for a in self.addresses
        ]
        calls += [("market.position", {"participant": a}) for a in self.participants]
        calls += [("ppa.list", {"party": a}) for a in self.producers]
        calls += [("contract.list", {"party": a}) for a in self.producers]
        info, got = stable_view(nodes, i, calls)
        errors = [r for r in got if isinstance(r, RpcError) and r.reason != "not_found"]
        if errors:
            return False, f"errors reading balances: {errors[:3]}"
        n, m, k = len(self.addresses), len(self.participants), len(self.producers)
        balances = sum(r["balance"] for r in got[:n])
        market = sum(
            r["order_escrow"] + r["settlement_escrow"]
            for r in got[n : n + m]
            if not isinstance(r, RpcError)
        )
        ppas = {p["id"]: p["escrow"] for lst in got[n + m : n + m + k] for p in lst}
        contracts = {c["id"]: c["escrow"] for lst in got[n + m + k :] for c in lst}
        total = balances + market + sum(ppas.values()) + sum(contracts.values())
        expected = self.allocated + self.block_reward * info["height"]
        detail = (
            f"height={info['height']} balances={balances} market_escrow={market} "
            f"ppa_escrow={sum(ppas.values())} contract_escrow={sum(contracts.values())} "
            f"total={total} expected={expected}"
        )
        return total == expected, detail


def confirmed_on_all(nodes: Nodes, idx: list[int], seen: dict[str, Sent]) -> list[str]:
    """Every tx in ``seen`` is confirmed on every node of ``idx`` (which share
    one tip), in the same block, and that block is on the main chain there."""
    problems: list[str] = []
    ids = list(seen)
    answers: dict[str, tuple[str, int]] = {}
    for i in idx:
        got = batched(nodes, i, [("tx.get", {"id": t}) for t in ids])
        heights: dict[int, str] = {}
        for t, st in zip(ids, got, strict=True):
            if isinstance(st, RpcError) or st.get("status") != "confirmed":
                status = st.reason if isinstance(st, RpcError) else st.get("status")
                problems.append(
                    f"node{i}: tx {t[:16]} ({seen[t].tx.type}) seen confirmed, now {status}"
                )
                continue
            where = (st["block"], st["height"])
            if answers.setdefault(t, where) != where:
                problems.append(f"node{i}: tx {t[:16]} in block {where}, node{idx[0]} {answers[t]}")
            heights[st["height"]] = st["block"]
        hs = sorted(heights)
        main = batched(nodes, i, [("chain.block", {"height": h}) for h in hs])
        for h, blk in zip(hs, main, strict=True):
            if isinstance(blk, RpcError) or blk["hash"] != heights[h]:
                problems.append(f"node{i}: the block at {h} holding seen txs is off the main chain")
    return problems[:20]


@dataclass
class ChainScan:
    """The main chain's tx ids by height, fetched again from ``RECHECK_BLOCKS``
    below the last tip seen (or from 1 with ``full``)."""

    blocks: dict[int, tuple[str, list[str]]] = field(default_factory=dict)

    def duplicates(self, nodes: Nodes, i: int, height: int, *, full: bool = False) -> list[str]:
        start = 1 if full or not self.blocks else max(1, max(self.blocks) - RECHECK_BLOCKS)
        for h in [h for h in self.blocks if h >= start or h > height]:
            del self.blocks[h]
        hs = list(range(start, height + 1))
        got = batched(nodes, i, [("chain.block", {"height": h}) for h in hs])
        for h, blk in zip(hs, got, strict=True):
            if isinstance(blk, RpcError):
                return [f"node{i}: no block at {h}: {blk}"]
            self.blocks[h] = (blk["hash"], blk["txs"])
        counts = Counter(t for _, txs in self.blocks.values() for t in txs)
        return [f"tx {t[:16]} is in the chain {n} times" for t, n in counts.items() if n > 1][:20]


@dataclass
class Rss:
    """VmRSS samples of every node process over the run (a restarted node
    is a new process: its samples go on under the same node)."""

    samples: dict[int, list[tuple[float, int]]] = field(default_factory=dict)

    def sample(self, i: int, pid: int, t: float) -> None:
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                self.samples.setdefault(i, []).append((t, int(line.split()[1])))
                return

    def verdict(self, i: int, total: float, *, ratio: float, slack_mib: int) -> dict[str, Any]:
        """start, peak, end (KiB); the max of an early window (20%..45% of the
        run) against a late one (the last 25%): it "keeps growing" when the
        late max is over ``ratio`` x the early max + ``slack_mib``."""
        s = self.samples.get(i, [])
        if not s:
            return {"start": 0, "peak": 0, "end": 0, "early": 0, "late": 0, "growing": False}
        early = [kb for t, kb in s if 0.2 * total <= t <= 0.45 * total] or [s[0][1]]
        late = [kb for t, kb in s if t >= 0.75 * total] or [s[-1][1]]
        limit = max(early) * ratio + slack_mib * MIB
        return {
            "start": s[0][1],
            "peak": max(kb for _, kb in s),
            "end": s[-1][1],
            "early": max(early),
            "late": max(late),
            "limit": int(limit),
            "growing": max(late) > limit,
        }
