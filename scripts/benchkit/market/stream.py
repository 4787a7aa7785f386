"""bench_market's order stream and pass (a), the order book alone: the seeded
stream of placements and cancels, planned against an order book, and its run
through ``OrderBook`` with no state, money or signatures."""

from __future__ import annotations

import gc
import random
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from benchkit.guard import percentile, progress
from powernode.core.crypto import KeyPair, sha256
from powernode.core.params import ChainParams
from powernode.devnet.devchain import dev_genesis
from powernode.engines.market.book import BUY, MIDPOINT, SELL, OrderBook, Resting
from powernode.engines.market.records import SOURCES
from powernode.state.genesis import parse_genesis

CHAIN_ID = "bench-market"
T0 = 1_767_268_800  # 2026-01-01 12:00 UTC: the first block's time
SLOT0 = T0 + 6 * 3600  # the first delivery slot; its gate is after the last block
TICK = 10_000  # the default price tick, micro-units per kWh
FUNDS = 10**12  # micro-units per participant
CAPACITY_W = 10**9
FEE = 10
MARKETS = {"spot": {"open_hour": 0, "close_hour": 24, "buyer_fee_bps": 5, "seller_fee_bps": 5}}
MINER = sha256(b"bench-market-miner")[:20]
P_CANCEL, P_CROSS, DEPTH = 0.25, 0.15, 5
TARGET_ENGINE, TARGET_BLOCKS = 200_000, 20_000
PLACE, CANCEL = 0, 1
SIDES = {BUY: "buy", SELL: "sell"}

# kind, participant, side, slot, energy (Wh), price, source, tif, ref (a cancel's order)
Op = tuple[int, int, int, int, int, int, str, str, int]


class Outcome(NamedTuple):
    trades: list[tuple[int, int, int, int]]  # buy op, sell op, energy, price; in order
    resting: list[tuple[int, int, int]]  # slot, op, remaining; in book priority


@dataclass
class Stream:
    keys: list[KeyPair]
    roles: list[str]
    slots: list[int]
    params: ChainParams
    oids: list[bytes]  # order ids in (a) and (b): the op index, 32 bytes
    ops: list[Op] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.owners = [k.address for k in self.keys]


def engine_step(books: dict[int, OrderBook], s: Stream, i: int, op: Op, fills: list[Any]) -> bool:
    """Op ``i`` through its book as the handlers use it; True if it rests."""
    kind, who, side, slot, energy, price, source, tif, ref = op
    book = books[slot]
    if kind == CANCEL:
        placed = s.ops[ref]
        book.remove(placed[2], placed[5], s.oids[ref])  # its side and price
        return False
    inc = Resting(s.oids[i], s.owners[who], side, price, energy, source, i, 0)
    if tif == "FOK" and book.fillable(inc) < energy:
        return False
    for r, qty, px in book.match(inc, MIDPOINT):
        fills.append((inc, r, qty, px))
    if inc.remaining and tif == "GTC":
        book.add(inc)
        return True
    return False


def make_stream(n: int, seed: int, participants: int = 200, slots: int = 4) -> Stream:
    rng = random.Random(seed)
    keys = [
        KeyPair.from_seed(sha256(b"bench-market-%d-%d" % (seed, i))) for i in range(participants)
    ]
    roles = [("producer", "consumer", "prosumer", "prosumer")[i % 4] for i in range(participants)]
    doc = dev_genesis(
        {k.address: FUNDS for k in keys},
        chain_id=CHAIN_ID,
        timestamp=T0,
        block_time=10,
        target="ff" * 32,  # blocks need no work: every nonce meets it
        markets=MARKETS,
        max_block_txs=100_000,
    )
    slot_list = [SLOT0 + 900 * k for k in range(slots)]
    s = Stream(
        keys, roles, slot_list, parse_genesis(doc), [i.to_bytes(32, "big") for i in range(n)]
    )
    who_by_side = {
        side: [i for i, r in enumerate(roles) if r != no]
        for side, no in ((BUY, "producer"), (SELL, "consumer"))
    }
    books = {slot: OrderBook() for slot in s.slots}
    mid = dict.fromkeys(s.slots, 50)  # in ticks
    live: list[int] = []  # the resting orders (op indices) and their positions in ``live``
    pos: dict[int, int] = {}
    counts = dict.fromkeys(("limit", "cross", "cancel", "rested", "fills"), 0)

    def drop(j: int) -> None:
        k, last = pos.pop(j), live.pop()
        if last != j:
            live[k], pos[last] = last, k

    for i in range(n):
        u = rng.random()
        if u < P_CANCEL and live:
            ref = live[rng.randrange(len(live))]
            op: Op = (CANCEL, *s.ops[ref][1:4], 0, 0, "", "", ref)
            drop(ref)
            counts["cancel"] += 1
        else:
            slot = s.slots[rng.randrange(slots)]
            mid[slot] = min(200, max(20, mid[slot] + rng.choice((-1, 0, 0, 1))))
            side = BUY if rng.random() < 0.5 else SELL
            sign = 1 if side == BUY else -1
            source = rng.choice(SOURCES) if side == SELL or rng.random() < 0.15 else "any"
            tif = "GTC"
            if u < P_CANCEL + P_CROSS:
                best = books[slot].head.ask_px[:1] if side == BUY else books[slot].head.bid_px[-1:]
                ticks = (best[0] // TICK if best else mid[slot]) + sign * rng.randint(0, 2)
                tif = rng.choices(("GTC", "IOC", "FOK"), (6, 3, 1))[0]
                counts["cross"] += 1
            else:
                ticks = mid[slot] - sign * rng.randint(1, DEPTH)
                counts["limit"] += 1
            who = rng.choice(who_by_side[side])
            op = (PLACE, who, side, slot, rng.randint(1, 50) * 1000, ticks * TICK, source, tif, -1)
        s.ops.append(op)
        fills: list[Any] = []
        if engine_step(books, s, i, op, fills):
            pos[i] = len(live)
            live.append(i)
            counts["rested"] += 1
        for _, r, _, _ in fills:
            if r.remaining == 0:
                drop(r.seq)
        counts["fills"] += len(fills)
    s.summary = {"orders": n, "participants": participants, "slots": slots, "seed": seed}
    s.summary |= {**counts, "resting_at_end": len(live)}
    return s


def lat_us(values: list[int] | list[float], scale: float = 1e-3) -> dict[str, float]:
    v = [x * scale for x in values]
    return {"mean_us": sum(v) / len(v), "p50_us": percentile(v, 50), "p99_us": percentile(v, 99)}


def run_engine(s: Stream, reps: int) -> tuple[dict[str, Any], Outcome]:
    """(a): best of ``reps`` timed passes, then one pass timing each order."""
    n, ops, step, clock = len(s.ops), s.ops, engine_step, time.perf_counter_ns
    best = float("inf")
    for _ in range(reps):
        books: dict[int, OrderBook] = {slot: OrderBook() for slot in s.slots}
        fills: list[Any] = []
        gc.collect()
        t0 = time.perf_counter()
        for i in range(n):
            step(books, s, i, ops[i], fills)
        best = min(best, time.perf_counter() - t0)
    books, fills, lat = {slot: OrderBook() for slot in s.slots}, [], []
    gc.collect()
    for i in range(n):
        t = clock()
        step(books, s, i, ops[i], fills)
        lat.append(clock() - t)
    fig = {"orders": n, "reps": reps, "seconds": best, "orders_per_s": n / best, **lat_us(lat)}
    progress(f"a engine alone: {fig['orders_per_s']:,.0f} orders/s (best of {reps})")
    # Resting.seq is the op index here
    trades = [
        (i.seq, r.seq, q, p) if i.side == BUY else (r.seq, i.seq, q, p) for i, r, q, p in fills
    ]
    resting = [(slot, r.seq, r.remaining) for slot in s.slots for r in books[slot].orders()]
    return fig, Outcome(trades, resting)
