"""Properties of PPAs over random streams mined into blocks.

Each example starts from the market cast with two approved solar devices
(ALICE's and CAROL's) and mines blocks of random PPA txs (proposals with and
without a device, accepts, rejects, funds, manual deliveries, confirms,
terminations; valid or not: an invalid one is a failed receipt) and meter
readings of the devices (``meter.report``, or both in one ``meter.batch``), at block times that step forward by random amounts
so deadlines lapse, confirmation windows and grace periods end and terms
close. After every block:

- money plus every escrow is conserved exactly: the balances, the market's
  escrow and the PPAs' escrows sum to the genesis money plus the rewards;
- each PPA's ``paid + owed`` is ``delivered_wh x price // 1000`` (never
  paid beyond delivered x price), ``owed > 0`` only with an empty escrow,
  delivered plus pending never exceeds the total, a closed PPA holds no
  escrow, and the escrow total is the sum of the PPAs' escrows;
- the Wh PPAs took from a reading (``allocated``) is the sum of their
  metered deliveries for it and never more than it produced, and no
  delivery moved more certificate energy than it delivered;
- the state equals that of a second ledger that connects the same blocks.

And undo lists restore every earlier state; a reorg onto a competing branch
leaves the state of a fresh replay of the winning branch.
"""

from __future__ import annotations

from collections import defaultdict
from random import Random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powernode.chain.ledger import Ledger
from powernode.core.block import Block
from powernode.engines.contracts.ppa_records import CLOSED_STATUSES
from powernode.engines.metering import queries as meter_queries
from powernode.state.apply import apply_block
from powernode.state.genesis import genesis_result
from powernode.state.registry import STATE_CODECS
from powernode.state.view import MemoryState
from tests.unit.helpers import MONO, active_blocks, ledger_factory, replay, total_supply
from tests.unit.market_helpers import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    KWH,
    REWARD,
    UNIT,
    genesis_money,
)
from tests.unit.metering_helpers import (
    AUTHORITY,
    INTERVAL,
    batch_entry,
    meter_key,
    metering_params,
)
from tests.unit.ppa_helpers import Ppas, open_ppas, propose_payload

CERTIFICATES = {"authorities": [AUTHORITY.address.hex()], "reading_window": 3_600}
PARAMS = metering_params(CERTIFICATES)
PEOPLE = (ALICE, BOB, CAROL, DAVE)
SELLERS = (ALICE, CAROL)
METERS = (meter_key(0), meter_key(1))
STEPS = (60, 300, 900, 900, 1_800, 3_600, 20_000, 90_000, 200_000)  # block time steps (s)
PRICES = (UNIT // 2, 123_457, 999, 7)


def random_action(rng: Random) -> tuple[Any, ...]:
    r = rng.random()
    if r < 0.10:
        return ("propose", rng.randrange(2), rng.randrange(4), rng.random() < 0.5,
                rng.choice((2_500, 5_000, 10_000)), rng.choice((5, 50, 500)) * KWH,
                rng.choice(PRICES), rng.choice((1, 2)), rng.choice((600, 3_600, 86_400)),
                rng.choice((3_600, 20_000, 60_000)))  # fmt: skip
    if r < 0.28:
        return ("accept", rng.randrange(100), rng.random() < 0.9)
    if r < 0.31:
        return ("reject", rng.randrange(100), rng.random() < 0.8)
    if r < 0.35:
        return ("fund", rng.randrange(100), rng.random())
    if r < 0.55:
        return ("deliver", rng.randrange(100), rng.random(), rng.randrange(3))
    if r < 0.63:
        return ("confirm", rng.randrange(100), rng.randrange(4))
    if r < 0.68:
        return ("terminate", rng.randrange(100), rng.random() < 0.5)
    if r < 0.86:
        return ("report", rng.randrange(2), rng.random(), rng.randrange(2))
    # both devices' readings of one interval in one meter.batch
    return ("batch", rng.random(), rng.random(), rng.randrange(2))


def random_stream(seed: int) -> list[tuple[int, list[Any]]]:
    rng = Random(seed)
    return [
        (rng.choice(STEPS), [random_action(rng) for _ in range(rng.randint(3, 12))])
        for _ in range(rng.randint(4, 10))
    ]


streams = st.integers(min_value=0, max_value=2**64 - 1).map(random_stream)


def _key(addr_hex: str) -> Any:
    return next(k for k in PEOPLE if k.address.hex() == addr_hex)


def queue_actions(
    m: Ppas, actions: list[Any], devices: list[bytes], ids: list[bytes], at: int
) -> None:
    """Queue one block's actions for a block at ``at``; picks index mostly
    into the PPAs at the tip in the state the action needs."""
    last = at - at % INTERVAL - INTERVAL  # the latest interval ended by then
    reported = set()
    tip = {p["id"]: p for p in m.ppas()}
    proposed = [bytes.fromhex(i) for i, p in tip.items() if p["status"] == "proposed"]
    active = [bytes.fromhex(i) for i, p in tip.items() if p["status"] == "active"]
    for a in actions:
        kind = a[0]
        if kind == "propose":
            _, s, b, bound, share, total, price, days, period, deadline = a
            seller = SELLERS[s]
            buyer = PEOPLE[b] if PEOPLE[b] != seller or b % 2 else PEOPLE[(b + 1) % 4]
            kw: dict[str, Any] = {}
            if bound:
                kw = {"device": devices[s], "share_bps": share}
            payload = propose_payload(
                buyer, total_wh=total, price=price, start=last, duration_days=days,
                period_seconds=period, accept_deadline=at + deadline, **kw,
            )  # fmt: skip
            tx = m.queue(m.ppa_tx(seller, "ppa.propose", payload))
            ids.append(tx.txid)
            continue
        if kind == "report":
            _, d, frac, back = a
            interval = last - back * INTERVAL
            if (d, interval) in reported:
                continue  # a duplicate reading is metering's business, not ours
            reported.add((d, interval))
            produced = max(1, int(250 * KWH * frac))
            m.report(SELLERS[d], METERS[d], devices[d], interval, produced=produced)
            continue
        if kind == "batch":
            _, f0, f1, back = a
            interval = last - back * INTERVAL
            entries = []
            for d, frac in enumerate((f0, f1)):
                if (d, interval) in reported:
                    continue
                reported.add((d, interval))
                produced = max(1, int(250 * KWH * frac))
                entries.append(batch_entry(METERS[d], devices[d], interval, produced))
            if entries:
                m.batch(PEOPLE[3], interval, entries)
            continue
        if not ids:
            continue
        k = a[1]
        pool = proposed if kind in ("accept", "reject") else active
        pid = pool[k % len(pool)] if pool and k % 5 else ids[k % len(ids)]
        p = m.ppa(pid) if pid.hex() in tip else None
        seller = SELLERS[0] if p is None else _key(p["seller"])
        buyer = PEOPLE[1] if p is None else _key(p["buyer"])
        if kind == "accept":
            m.accept(buyer if a[2] else PEOPLE[k % 4], pid)
        elif kind == "reject":
            m.reject(buyer if a[2] else seller, pid)
        elif kind == "fund":
            m.fund(buyer, pid, max(1, int(a[2] * 20 * UNIT)))
        elif kind == "deliver":
            left = 10 * KWH if p is None else p["total_wh"] - p["delivered_wh"] - p["pending_wh"]
            wh = max(1, int(left * a[2] * 1.1))
            m.deliver(seller, pid, wh, interval=last - a[3] * INTERVAL)
        elif kind == "confirm":
            pending = (
                [] if p is None else [d["seq"] for d in p["deliveries"] if d["status"] == "pending"]
            )
            m.confirm(buyer, pid, pending[a[2] % len(pending)] if pending and a[2] else a[2])
        elif kind == "terminate":
            m.terminate(seller if a[2] else buyer, pid)


def run_block(
    m: Ppas, dt: int, actions: list[Any], devices: list[bytes], ids: list[bytes]
) -> Block:
    at = m.now + dt
    queue_actions(m, actions, devices, ids, at)
    return m.mine(at)


def follow(follower: Ledger, block: Block) -> None:
    outcome, _ = follower.submit_block(block, now=block.header.timestamp + 3_600, mono=MONO)
    assert outcome == "connected", outcome


# --- invariants ---------------------------------------------------------------------------


def check_invariants(m: Ppas, devices: list[bytes]) -> None:
    ledger = m.ledger
    escrow = sum(p["escrow"] for p in m.ppas())
    assert escrow == m.ppa_escrow_total()
    assert (
        total_supply(ledger) + m.escrow_total() + escrow
        == genesis_money(PARAMS) + ledger.chain.height * REWARD
    )
    taken: dict[tuple[str, int], int] = defaultdict(int)
    for s in m.ppas():
        p = m.ppa(bytes.fromhex(s["id"]))
        due = p["delivered_wh"] * p["price"] // 1000
        assert p["paid"] + p["owed"] == due
        assert p["paid"] <= due
        assert p["owed"] == 0 or p["escrow"] == 0
        assert p["delivered_wh"] + p["pending_wh"] <= p["total_wh"]
        assert p["escrow"] >= 0
        if p["status"] in CLOSED_STATUSES:
            assert p["escrow"] == 0 and p["pending_wh"] == 0
        accepted = [d for d in p["deliveries"] if d["status"] != "pending"]
        assert sum(d["wh"] for d in accepted) == p["delivered_wh"]
        assert sum(d["value"] for d in accepted) == due
        assert sum(d["wh"] for d in p["deliveries"] if d["status"] == "pending") == p["pending_wh"]
        for d in p["deliveries"]:
            assert 0 <= d["cert_wh"] <= d["wh"]
            if d["kind"] == "metered":
                taken[(p["device"], d["interval_start"])] += d["wh"]
                assert p["start"] <= d["interval_start"] < p["end"]
    for (dev_hex, interval), wh in taken.items():
        device = bytes.fromhex(dev_hex)
        assert m.allocated(device, interval) == wh
        [r] = meter_queries.readings(m.state, device, interval, interval + 1)
        assert wh <= r["produced_wh"]


def assert_same_state(a: Ledger, b: Ledger) -> None:
    assert a.chain.tip.hash == b.chain.tip.hash
    assert a.chain.tip.header.state_root == b.chain.tip.header.state_root
    assert a.chain.state.data == b.chain.state.data


def open_prop(factory: Any) -> tuple[Ppas, list[bytes]]:
    m = open_ppas(factory, CERTIFICATES)
    devices = [m.active_device(s, meter) for s, meter in zip(SELLERS, METERS, strict=True)]
    return m, devices


PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(blocks=streams)
def test_invariants_hold_after_every_block(blocks: list[Any]) -> None:
    with ledger_factory() as f:
        m, devices = open_prop(f)
        follower = replay(f, PARAMS, active_blocks(m.ledger), m.now + 3_600)
        ids: list[bytes] = []
        for dt, actions in blocks:
            blk = run_block(m, dt, actions, devices, ids)
            check_invariants(m, devices)
            follow(follower, blk)
            assert_same_state(m.ledger, follower)
        fresh = replay(f, PARAMS, active_blocks(m.ledger), m.now + 3_600)
        assert_same_state(m.ledger, fresh)


def test_the_streams_reach_every_tx_type_and_state() -> None:
    """The random streams are not vacuous: over a few seeds every PPA tx
    type succeeds somewhere, and PPAs reach every state."""
    ok: set[str] = set()
    states: set[str] = set()
    kinds: set[str] = set()
    batch_events: set[str] = set()
    with ledger_factory() as f:
        for seed in range(16):
            m, devices = open_prop(f)
            ids: list[bytes] = []
            for dt, actions in random_stream(seed):
                blk = run_block(m, dt, actions, devices, ids)
                for tx in blk.txs:
                    if m.receipt(tx)["status"] == "ok":
                        ok.add(tx.type)
                    if tx.type == "meter.batch":
                        batch_events.update(e["event"] for e in m.events(tx))
                states.update(p["status"] for p in m.ppas())
            for p in m.ppas():
                kinds.update(d["kind"] for d in m.ppa(bytes.fromhex(p["id"]))["deliveries"])
    assert {"ppa.propose", "ppa.accept", "ppa.reject", "ppa.fund", "ppa.deliver",
            "ppa.confirm", "ppa.terminate"} <= ok, ok  # fmt: skip
    assert {"proposed", "lapsed", "rejected", "active", "completed", "expired",
            "defaulted", "terminated"} <= states, states  # fmt: skip
    assert {"metered", "manual"} <= kinds
    assert "ppa.delivered" in batch_events  # a batch's readings deliver too


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(blocks=streams)
def test_undo_lists_restore_every_earlier_state(blocks: list[Any]) -> None:
    with ledger_factory() as f:
        m, devices = open_prop(f)
        ids: list[bytes] = []
        for dt, actions in blocks:
            run_block(m, dt, actions, devices, ids)
        chain = active_blocks(m.ledger)
    state = MemoryState()
    g = genesis_result(PARAMS)
    state.apply_entries(g.diff, STATE_CODECS)
    root = g.state_root
    snapshots = [dict(state.data)]
    results = []
    for blk in chain:
        result = apply_block(state, root, blk, PARAMS)
        state.apply_entries(result.diff, STATE_CODECS)
        root = result.state_root
        results.append(result)
        snapshots.append(dict(state.data))
    assert state.data == m.ledger.chain.state.data
    for result, before in zip(reversed(results), reversed(snapshots[:-1]), strict=True):
        state.apply_entries(result.undo, STATE_CODECS)
        assert state.data == before


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(main=streams, branch=streams, fork=st.integers(0, 100))
def test_reorg_restores_balances_escrows_and_ppas(
    main: list[Any], branch: list[Any], fork: int
) -> None:
    with ledger_factory() as f:
        a, devices = open_prop(f)
        setup = len(active_blocks(a.ledger))
        ids_a: list[bytes] = []
        for dt, actions in main:
            run_block(a, dt, actions, devices, ids_a)
        chain = active_blocks(a.ledger)
        # keep the setup blocks; undo at least one block after them
        keep = setup + fork % (len(chain) - setup)
        b = Ppas(replay(f, PARAMS, chain[:keep], a.now + 3_600))
        ids_b = list(ids_a)
        for dt, actions in branch:
            run_block(b, dt, actions, devices, ids_b)
        sent = 0
        for _ in range(len(chain) + 3):
            mine_b = active_blocks(b.ledger)
            for blk in mine_b[keep + sent :]:
                a.ledger.submit_block(blk, now=max(a.now, b.now) + 3_600, mono=MONO)
            sent = len(mine_b) - keep
            if a.ledger.chain.tip.hash == b.ledger.chain.tip.hash:
                break
            b.mine()
        assert a.ledger.chain.tip.hash == b.ledger.chain.tip.hash
        fresh = replay(f, PARAMS, active_blocks(b.ledger), max(a.now, b.now) + 3_600)
        assert_same_state(a.ledger, fresh)
        check_invariants(Ppas(a.ledger), devices)
