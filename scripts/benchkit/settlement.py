"""bench_contracts' settlement phase: N trades of one slot settled in one
block hook.

Setup (untimed), through the real handlers and hooks on a ``StateView`` over
a ``MemoryState`` (no tx envelopes or signatures): ``--sellers`` producers,
each with an approved solar device, and as many consumers; N trades of 1 kWh
in one spot slot (a sell and a crossing buy each, sellers and buyers taken
in turn); then each device's reading for the slot, which issues its
certificate. A seller's reading covers a share of what it sold that
cycles through 100%, 60% and 0%, so the trades end completed, partial and
undelivered and most deliveries bundle a part of a certificate.

Timed: the settlement engine's block hook alone, at the first block past the
slot's reading window, on a fresh view (best of ``reps``), then the view's
state diff of what it wrote (the block's share of sealing). Checks: every
trade is settled, money plus escrows is conserved, each trade's bundled Wh
are at most its delivered Wh.
"""

from __future__ import annotations

import gc
import time
from typing import Any, NamedTuple, cast

from powernode.core.crypto import KeyPair, sha256
from powernode.core.execution import ExecContext
from powernode.core.tx import Transaction
from powernode.devnet.devchain import ALWAYS_OPEN_MARKETS, dev_genesis
from powernode.engines.accounts import ACCOUNT_NS
from powernode.engines.market import queries
from powernode.engines.market.records import TRADE_NS
from powernode.engines.metering.records import reading_message
from powernode.engines.settlement.settle import begin_block as settle_hook
from powernode.state.apply import begin_block
from powernode.state.genesis import genesis_result, parse_genesis
from powernode.state.registry import AFTER_TX, HANDLERS
from powernode.state.view import MemoryState, StateView

T0 = 1_767_268_800  # 2026-01-01 12:00 UTC
SLOT = T0 + 3_600
WINDOW = 600
MINER = b"\x07" * 20
CHAIN_ID = "bench-settlement"
KWH = 1_000
PRICE = 500_000
SHARES = (100, 60, 0)  # percent of what a seller sold that its meter reads


class FakeTx(NamedTuple):
    """What the handlers and hooks read of a tx: no envelope, no signature."""

    sender_address: bytes
    txid: bytes
    chain_id: str = CHAIN_ID


def _key(tag: str, i: int) -> KeyPair:
    return KeyPair.from_seed(sha256(f"bench-settle-{tag}-{i}".encode()))


class World(NamedTuple):
    state: MemoryState
    params: Any
    trades: int
    sellers: list[KeyPair]
    buyers: list[KeyPair]


def build(n: int, sellers: int) -> World:
    sk = [_key("seller", i) for i in range(sellers)]
    bk = [_key("buyer", i) for i in range(sellers)]
    auth = _key("authority", 0)
    funds = {k.address: 10**12 for k in (*sk, *bk, auth)}
    doc = dev_genesis(
        funds,
        chain_id=CHAIN_ID,
        timestamp=T0,
        markets=ALWAYS_OPEN_MARKETS,
        certificates={
            "authorities": [auth.address.hex()],
            "interval_seconds": 900,
            "reading_window": WINDOW,
        },
        max_block_txs=100_000,
    )
    params = parse_genesis(doc)
    state = MemoryState()
    state.apply_values(genesis_result(params).changed)
    seq = 0

    def apply(
        view: StateView, ctx: ExecContext, who: KeyPair, kind: str, payload: list[Any]
    ) -> bytes:
        nonlocal seq
        seq += 1
        txid = sha256(b"bench-settle-tx" + seq.to_bytes(8, "big"))
        tx = cast(Transaction, FakeTx(who.address, txid))
        h = HANDLERS[kind]
        p = h.decode(payload)
        h.apply(view, ctx, tx, p)
        for hook in AFTER_TX.get(kind, ()):
            hook(view, ctx, tx, p)
        return txid

    def block(height: int, ts: int) -> tuple[StateView, ExecContext]:
        ctx = ExecContext(height, ts, MINER, params)
        view = StateView(state)
        begin_block(view, ctx)
        return view, ctx

    # 1: participants and devices; 2: approvals
    view, ctx = block(1, T0 + 10)
    for k in sk:
        apply(view, ctx, k, "participant.register", ["producer", "Beijing", 10**12])
    for k in bk:
        apply(view, ctx, k, "participant.register", ["consumer", "Shanghai", 10**12])
    meters = [_key("meter", i) for i in range(sellers)]
    devices = []
    for k, m in zip(sk, meters, strict=True):
        payload = ["generation", "solar", 10**12, "Beijing", 50, m.pubkey]
        devices.append(apply(view, ctx, k, "device.register", payload))
    state.apply_values(view.changed())
    view, ctx = block(2, T0 + 20)
    for d in devices:
        apply(view, ctx, auth, "device.approve", [d])
    state.apply_values(view.changed())
    # 3..: the trades, in blocks of 5,000 orders
    sold = [0] * sellers
    height, ts = 3, T0 + 30
    for start in range(0, n, 2_500):
        view, ctx = block(height, ts)
        for i in range(start, min(n, start + 2_500)):
            s, b = i % sellers, (i // sellers) % sellers
            order = ["spot", "sell", SLOT, KWH, PRICE, "solar", 0, "GTC"]
            apply(view, ctx, sk[s], "order.place", order)
            apply(
                view, ctx, bk[b], "order.place", ["spot", "buy", SLOT, KWH, PRICE, "any", 0, "GTC"]
            )
            sold[s] += KWH
        state.apply_values(view.changed())
        height, ts = height + 1, ts + 5
    # the readings, once the slot's interval has ended
    view, ctx = block(height, SLOT + 900 + 10)
    for i, (k, m, d) in enumerate(zip(sk, meters, devices, strict=True)):
        # (+ 500 Wh on a partial share: one trade of it is delivered in part)
        share = SHARES[i % len(SHARES)]
        wh = sold[i] * share // 100 + (500 if 0 < share < 100 else 0)
        msg = reading_message(CHAIN_ID, d, SLOT, wh, 0)
        apply(view, ctx, k, "meter.report", [d, SLOT, wh, 0, m.pubkey, m.sign(msg)])
    state.apply_values(view.changed())
    return World(state, params, n, sk, bk)


def money(state: MemoryState) -> int:
    held = sum(v.balance for v in state.namespace(ACCOUNT_NS).values())
    return held + queries.held_total(state)


def bench_settlement(n: int = 10_000, sellers: int = 100, reps: int = 3) -> dict[str, Any]:
    t0 = time.perf_counter()
    w = build(n, sellers)
    setup = time.perf_counter() - t0
    trades = len(w.state.namespace(TRADE_NS))
    assert trades == n, f"setup made {trades} trades, not {n}"
    ctx = ExecContext(10_000, SLOT + 900 + WINDOW + 1, MINER, w.params)
    best = float("inf")
    view = StateView(w.state)
    for _ in range(reps):
        view = StateView(w.state)
        gc.collect()
        gc.disable()
        try:
            t = time.perf_counter()
            settle_hook(view, ctx)
            best = min(best, time.perf_counter() - t)
        finally:
            gc.enable()
    t = time.perf_counter()
    changed = view.changed()
    view.diff(changed)
    diff_s = time.perf_counter() - t
    before = money(w.state)
    after_state = MemoryState(w.state.snapshot())
    after_state.apply_values(changed)
    problems = []
    if money(after_state) != before:
        problems.append(f"money {money(after_state)} != {before}")
    statuses: dict[str, int] = {}
    for t_ in queries.trades(after_state, limit=None):
        statuses[t_["status"]] = statuses.get(t_["status"], 0) + 1
        if t_["bundled_wh"] > t_["delivered_wh"]:
            problems.append(f"trade {t_['seq']} bundled more than delivered")
    if statuses.get("confirmed"):
        problems.append(f"{statuses['confirmed']} trades not settled")
    return {
        "trades": n,
        "sellers": sellers,
        "setup_seconds": round(setup, 2),
        "hook_seconds": best,
        "trades_per_s": n / best,
        "diff_seconds": diff_s,
        "changed_keys": len(changed),
        "statuses": statuses,
        "problems": problems,
    }
