"""Properties of metering and certificates over random streams mined into blocks.

Each example starts from the market cast (registered participants) and
mines a few blocks of random device registrations, approvals and
retirements, meter readings (``meter.report`` and ``meter.batch``, whose bad
entries are skipped), manual issues, transfers and retirements of
certificates (valid or not: an invalid one is a failed receipt), at block
times that step forward by random amounts so intervals end, readings come
late, and certificates expire. After every block:

- certified Wh per (device, interval) never exceeds what was metered: a
  reading's certificate is exactly its production, a manual issue is at most
  the capacity and at most the production of a reading that came before it;
  and each (device, interval) has at most one root certificate, the one its
  claim names, with the id the README gives;
- every certificate's remaining Wh plus its children's Wh is its original
  Wh, and children carry their root's origin;
- a certificate once retired never changes again;
- the state equals that of a second ledger that connects the same blocks
  (a replay of every prefix from genesis).

And undoing the blocks one by one through their results' undo lists gives
back every earlier state exactly; a reorg onto a competing branch leaves
devices, readings and certificates as a fresh replay of the winning branch.
"""

from __future__ import annotations

from collections import defaultdict
from random import Random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powernode.chain.ledger import Ledger
from powernode.core.block import Block
from powernode.engines.certificates import queries
from powernode.engines.metering import queries as meter_queries
from powernode.state.apply import apply_block
from powernode.state.genesis import genesis_result
from powernode.state.registry import STATE_CODECS
from powernode.state.view import MemoryState
from tests.unit.cert_helpers import (
    Certs,
    cert_retire_tx,
    cert_transfer_tx,
    issue_tx,
    open_certs,
    root_id,
)
from tests.unit.helpers import MONO, active_blocks, ledger_factory, replay
from tests.unit.market_helpers import ALICE, BOB, CAROL, DAVE, ERIN, KWH
from tests.unit.metering_helpers import (
    AUTHORITY,
    INTERVAL,
    approve_tx,
    batch_entry,
    batch_tx,
    meter_key,
    metering_params,
    register_device_tx,
    report_tx,
    retire_device_tx,
)

CERTIFICATES = {
    "authorities": [AUTHORITY.address.hex()],
    "validity": 4 * 3600,  # expiry bites within an example
    "reading_window": 3600,  # and so does a late reading
}
PARAMS = metering_params(CERTIFICATES)
PEOPLE = (ALICE, BOB, CAROL, DAVE)
OWNERS = (ALICE, BOB, CAROL, DAVE, DAVE, ERIN)  # ERIN is not a participant: fails
METERS = tuple(meter_key(i) for i in range(6))
KINDS = ("generation", "generation", "both", "consumption")
SOURCES = ("solar", "wind", "hydro", "thermal")
CAPACITIES = (40_000, 400_000, 1_000_000)  # 10, 100, 250 kWh per interval
STEPS = (60, 300, 600, 900, 900, 1800, 3000)  # block time steps (s)


# --- random streams (seeded, as in test_market_properties) ---------------------------------


def random_action(rng: Random) -> tuple[Any, ...]:
    r = rng.random()
    if r < 0.15:
        return ("register", rng.randrange(6), rng.randrange(6), rng.choice(KINDS),
                rng.choice(SOURCES), rng.choice(CAPACITIES), rng.choice((20, 50, 99, 100, 400)))  # fmt: skip
    if r < 0.28:
        return ("approve", rng.randrange(50), rng.random() < 0.9)
    if r < 0.30:
        return ("retire_device", rng.randrange(50), rng.random() < 0.8)
    if r < 0.45:
        return ("report", rng.randrange(50), rng.randrange(6), rng.random(), rng.random())
    if r < 0.55:
        # a batch of several devices' readings of one interval
        picks = [(rng.randrange(50), rng.random(), rng.random()) for _ in range(rng.randint(1, 4))]
        return ("batch", rng.randrange(50), rng.randrange(4), picks)
    if r < 0.68:
        return ("issue", rng.randrange(50), rng.randrange(6), rng.random(), rng.random() < 0.9)
    if r < 0.85:
        return ("transfer", rng.randrange(100), rng.randrange(4), rng.random(), rng.random() < 0.9)
    return ("retire", rng.randrange(100), rng.random(), rng.random() < 0.9)


def random_stream(seed: int) -> list[tuple[int, list[Any]]]:
    rng = Random(seed)
    return [
        (rng.choice(STEPS), [random_action(rng) for _ in range(rng.randint(3, 12))])
        for _ in range(rng.randint(4, 9))
    ]


streams = st.integers(min_value=0, max_value=2**64 - 1).map(random_stream)


# --- driving ------------------------------------------------------------------------------


def amount(frac: float, cap: int) -> int:
    """Mostly within ``cap``, sometimes exactly it, now and then one above."""
    if frac < 0.1:
        return cap + 1
    if frac < 0.25:
        return cap
    return max(1, int(cap * frac))


def queue_actions(m: Certs, actions: list[Any], devices: list[bytes]) -> None:
    """Queue one block's actions. ``devices``: ids of every device.register
    sent so far (valid or not), in order; picks index into it and into the
    certificates at the tip."""
    now = max(m.market_time(), m.ledger.chain.tip.header.timestamp)
    last = now - now % INTERVAL  # the interval under way: not ended yet
    certs = [c for c in m.certs() if c["status"] == "active"] + m.certs(status="retired")[:3]
    pending = [bytes.fromhex(d["id"]) for d in meter_queries.devices(m.state, status="pending")]
    active = [bytes.fromhex(d["id"]) for d in meter_queries.devices(m.state, status="active")]

    def pick(k: int, preferred: list[bytes]) -> bytes:
        """Mostly a device in the state the action needs; now and then any."""
        if preferred and k % 7:
            return preferred[k % len(preferred)]
        return devices[k % len(devices)]

    for a in actions:
        kind = a[0]
        if kind == "register":
            _, who, meter, dkind, source, cap, ci = a
            if dkind == "consumption":
                source = "none"
            tx = m.queue(register_device_tx(
                OWNERS[who], METERS[meter], nonce=m.nonce(OWNERS[who]), kind=dkind,
                source=source, capacity_w=cap, carbon_intensity=ci,
            ))  # fmt: skip
            devices.append(tx.txid)
            continue
        if kind in ("approve", "retire_device", "report", "batch", "issue") and not devices:
            continue
        if kind == "approve":
            _, k, by_authority = a
            by = AUTHORITY if by_authority else ALICE
            m.queue(approve_tx(by, pick(k, pending), nonce=m.nonce(by)))
        elif kind == "retire_device":
            _, k, by_owner = a
            dev = meter_queries.device(m.state, devices[k % len(devices)])
            by = PEOPLE[k % 4] if dev is None or not by_owner else _key(dev["owner"])
            m.queue(retire_device_tx(by, devices[k % len(devices)], nonce=m.nonce(by)))
        elif kind == "report":
            _, k, back, fp, fc = a
            device_id = pick(k, active)
            dev = meter_queries.device(m.state, device_id)
            if dev is None:
                continue
            cap = dev["capacity_w"] * INTERVAL // 3600
            produced = amount(fp, cap) if dev["kind"] != "consumption" else 0
            consumed = amount(fc, cap) if dev["kind"] != "generation" and fc < 0.6 else 0
            meter = next(x for x in METERS if x.pubkey.hex() == dev["meter_pubkey"])
            relayer = PEOPLE[k % 4]
            m.queue(report_tx(relayer, meter, device_id, last - back * INTERVAL, produced,
                              consumed, nonce=m.nonce(relayer)))  # fmt: skip
        elif kind == "batch":
            _, k, back, picks = a
            start = last - back * INTERVAL
            entries: dict[bytes, list[Any]] = {}
            for pk, fp, fc in picks:
                device_id = pick(pk, active)
                dev = meter_queries.device(m.state, device_id)
                if dev is None:  # an unknown device: the entry is skipped
                    entries[device_id] = batch_entry(METERS[0], device_id, start, 1)
                    continue
                cap = dev["capacity_w"] * INTERVAL // 3600
                produced = amount(fp, cap) if dev["kind"] != "consumption" else 0
                consumed = amount(fc, cap) if dev["kind"] != "generation" and fc < 0.6 else 0
                meter = next(x for x in METERS if x.pubkey.hex() == dev["meter_pubkey"])
                entries[device_id] = batch_entry(meter, device_id, start, produced, consumed)
            relayer = (*PEOPLE, ERIN)[k % 5]  # ERIN is not a participant: fails
            m.queue(batch_tx(relayer, start, list(entries.values()), nonce=m.nonce(relayer)))
        elif kind == "issue":
            _, k, back, fw, by_authority = a
            device_id = pick(k, active)
            dev = meter_queries.device(m.state, device_id)
            cap = 250 * KWH if dev is None else dev["capacity_w"] * INTERVAL // 3600
            by = AUTHORITY if by_authority else CAROL
            m.queue(issue_tx(by, device_id, last - back * INTERVAL, amount(fw, cap),
                             nonce=m.nonce(by)))  # fmt: skip
        elif kind in ("transfer", "retire") and certs:
            c = certs[a[1] % len(certs)]
            by_owner = a[-1]
            sender = _key(c["owner"]) if by_owner else PEOPLE[a[1] % 4]
            wh = amount(a[-2], c["remaining_wh"])
            cid = bytes.fromhex(c["id"])
            if kind == "transfer":
                to = PEOPLE[a[2]]
                m.queue(cert_transfer_tx(sender, cid, to, wh, nonce=m.nonce(sender)))
            else:
                m.queue(cert_retire_tx(sender, cid, wh, nonce=m.nonce(sender)))


def _key(addr_hex: str) -> Any:
    return next(k for k in (*PEOPLE, ERIN, AUTHORITY) if k.address.hex() == addr_hex)


def run_block(m: Certs, dt: int, actions: list[Any], devices: list[bytes]) -> Block:
    queue_actions(m, actions, devices)
    return m.mine(m.now + dt)


def follow(follower: Ledger, block: Block) -> None:
    outcome, _ = follower.submit_block(block, now=block.header.timestamp + 3_600, mono=MONO)
    assert outcome == "connected", outcome


# --- invariants ---------------------------------------------------------------------------


def position(m: Certs, txid: bytes) -> tuple[int, int]:
    s = m.ledger.tx_status(txid)
    return s["height"], s["index"]


def check_invariants(m: Certs, retired: dict[str, dict[str, Any]]) -> None:
    state = m.state
    all_certs = {c["id"]: c for c in m.certs()}
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    roots: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for c in all_certs.values():
        if c["parent"] is None:
            roots[(c["device"], c["interval_start"])].append(c)
        else:
            children[c["parent"]].append(c)
    issued = 0
    for (dev_hex, interval), rs in roots.items():
        # one issuance per (device, interval), under the README's id
        assert len(rs) == 1, rs
        root = rs[0]
        device_id = bytes.fromhex(dev_hex)
        assert root["id"] == root_id(device_id, interval).hex()
        issued += root["wh"]
        first = m.trace(bytes.fromhex(root["id"]))["steps"][0]
        dev = meter_queries.device(state, device_id)
        assert dev is not None
        assert root["wh"] <= dev["capacity_w"] * INTERVAL // 3600
        readings = meter_queries.readings(state, device_id, interval, interval + 1)
        if first["kind"] == "reading":
            # a reading's certificate is exactly what it metered
            assert len(readings) == 1 and readings[0]["produced_wh"] == root["wh"]
            assert first["txid"] == readings[0]["txid"]
        else:
            assert first["kind"] == "issue"
            # a manual issue is bounded by a reading that came before it
            if readings and position(m, bytes.fromhex(readings[0]["txid"])) < position(
                m, bytes.fromhex(root["issued_txid"])
            ):
                assert root["wh"] <= readings[0]["produced_wh"]
    # children sum to their parent, and carry its origin
    for cid, c in all_certs.items():
        kids = children.get(cid, [])
        assert c["remaining_wh"] + sum(k["wh"] for k in kids) == c["wh"], c
        assert 0 < c["remaining_wh"] <= c["wh"]
        for k in kids:
            for f in ("producer", "device", "source", "location", "carbon_intensity", "type",
                      "interval_start", "expires"):  # fmt: skip
                assert k[f] == c[f]
        v = m.verify(bytes.fromhex(cid))
        assert v["valid"], v["problems"]
    # a retired certificate never changes
    for cid, before in retired.items():
        assert all_certs[cid] == before
    for cid, c in all_certs.items():
        if c["status"] == "retired":
            retired.setdefault(cid, c)
    stats = queries.stats(state)
    assert stats["issued_wh"] == issued
    assert stats["certificates"] == len(all_certs)
    assert stats["retired_wh"] == sum(c["remaining_wh"] for c in retired.values())


def view_of(ledger: Ledger) -> dict[str, Any]:
    """Everything the metering and certificate queries show."""
    state = ledger.chain.state
    devices = meter_queries.devices(state)
    now = max(ledger.chain.tip.header.timestamp, 0)
    return {
        "devices": devices,
        "readings": [meter_queries.readings(state, bytes.fromhex(d["id"])) for d in devices],
        "certs": queries.certs(state, now=now),
        "traces": [
            queries.trace(state, bytes.fromhex(c["id"])) for c in queries.certs(state, now=now)
        ],
        "stats": queries.stats(state),
    }


def assert_same_state(a: Ledger, b: Ledger) -> None:
    assert a.chain.tip.hash == b.chain.tip.hash
    assert a.chain.tip.header.state_root == b.chain.tip.header.state_root
    assert a.chain.state.data == b.chain.state.data
    assert view_of(a) == view_of(b)


def open_prop(factory: Any) -> Certs:
    return open_certs(factory, CERTIFICATES)


# --- the properties -----------------------------------------------------------------------

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
        m = open_prop(f)
        follower = f.open(PARAMS)
        follow(follower, active_blocks(m.ledger)[0])
        devices: list[bytes] = []
        retired: dict[str, dict[str, Any]] = {}
        for dt, actions in blocks:
            blk = run_block(m, dt, actions, devices)
            check_invariants(m, retired)
            follow(follower, blk)
            assert_same_state(m.ledger, follower)
        fresh = replay(f, PARAMS, active_blocks(m.ledger), m.now + 3_600)
        assert_same_state(m.ledger, fresh)


def test_the_streams_reach_every_tx_type() -> None:
    """The random streams are not vacuous: over a few seeds, every tx type
    succeeds somewhere, and certificates get split and retired."""
    ok: set[str] = set()
    kinds: set[str] = set()
    batch_events: set[str] = set()
    with ledger_factory() as f:
        for seed in range(6):
            m = open_prop(f)
            devices: list[bytes] = []
            for dt, actions in random_stream(seed):
                blk = run_block(m, dt, actions, devices)
                for tx in blk.txs:
                    if m.receipt(tx)["status"] == "ok":
                        ok.add(tx.type)
                    if tx.type == "meter.batch":
                        batch_events.update(e["event"] for e in m.events(tx))
            for c in m.certs():
                kinds.update(s["kind"] for s in m.trace(bytes.fromhex(c["id"]))["steps"])
    assert {"device.register", "device.approve", "meter.report", "meter.batch", "cert.issue",
            "cert.transfer", "cert.retire"} <= ok, ok  # fmt: skip
    assert {"reading", "issue", "split", "transfer", "retire"} <= kinds, kinds
    # batches both record readings (and issue from them) and skip entries
    assert {"meter.reading", "meter.skipped", "cert.issued"} <= batch_events, batch_events


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(blocks=streams)
def test_undo_lists_restore_every_earlier_state(blocks: list[Any]) -> None:
    """Apply the blocks on a bare state, keeping each result; undo them in
    reverse through the results' undo lists: each earlier state comes back
    exactly (devices, readings, certificates, everything)."""
    with ledger_factory() as f:
        m = open_prop(f)
        devices: list[bytes] = []
        for dt, actions in blocks:
            run_block(m, dt, actions, devices)
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
    assert state.data == snapshots[0]


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(main=streams, branch=streams, fork=st.integers(0, 100))
def test_reorg_restores_devices_readings_and_certificates(
    main: list[Any], branch: list[Any], fork: int
) -> None:
    with ledger_factory() as f:
        a = open_prop(f)
        devices_a: list[bytes] = []
        for dt, actions in main:
            run_block(a, dt, actions, devices_a)
        chain = active_blocks(a.ledger)
        # keep the registrations (block 1); undo at least one block after them
        keep = 1 + fork % (len(chain) - 1)
        b = Certs(replay(f, PARAMS, chain[:keep], a.now + 3_600))
        devices_b = list(devices_a)
        for dt, actions in branch:
            run_block(b, dt, actions, devices_b)
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
        winners = active_blocks(b.ledger)
        fresh = replay(f, PARAMS, winners, max(a.now, b.now) + 3_600)
        assert_same_state(a.ledger, fresh)
        assert_same_state(a.ledger, b.ledger)
        check_invariants(Certs(a.ledger), {})
