"""Properties of declarative contracts over random streams mined into blocks.

Each example starts from the market cast with three active devices (ALICE's
solar, BOB's consumption meter, CAROL's prosumer meter) and mines a few
blocks of random contract creates (random parties, escrow, expiry, and
conditions and actions from the whole vocabulary), approvals, executions
(with the fee right or one short) and cancels, mixed with meter readings
(``meter.report`` and ``meter.batch``),
certificate transfers (some to contracts' addresses) and retirements, and
money transfers, at block times that step forward so contracts expire.
Invalid ones are failed receipts. After every block:

- money is conserved: every balance plus the market's escrow plus the
  contracts' escrow is the genesis money plus the block rewards, and the
  contracts' recorded total is the sum of their escrows (0 once closed, at
  most what was funded while open);
- an executed contract's conditions all held at its execution, as far as
  state can still tell: its approvals were recorded before it closed;
- the state equals that of a second ledger that connects the same blocks.

And a reorg onto a competing branch leaves balances, escrows, contracts and
certificates as a fresh replay of the winning branch.
"""

from __future__ import annotations

from random import Random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from powernode.chain.ledger import Ledger
from powernode.core.block import Block
from powernode.engines.contracts import contract_queries
from powernode.engines.contracts.contract_records import CONTRACT_NS
from powernode.engines.contracts.contract_vocab import TERM_FEE, min_fee
from tests.unit.cert_helpers import cert_retire_tx, cert_transfer_tx
from tests.unit.contract_helpers import (
    Contracts,
    address_of_contract,
    create_tx,
    id_tx,
    open_contracts,
)
from tests.unit.helpers import MONO, active_blocks, ledger_factory, replay, transfer
from tests.unit.market_helpers import ALICE, BOB, CAROL, DAVE, ERIN, KWH, genesis_money
from tests.unit.metering_helpers import (
    AUTHORITY,
    INTERVAL,
    batch_entry,
    batch_tx,
    meter_key,
    metering_params,
    report_tx,
)

CERTIFICATES = {"authorities": [AUTHORITY.address.hex()], "reading_window": 3600}
PARAMS = metering_params(CERTIFICATES)
PEOPLE = (ALICE, BOB, CAROL, DAVE)
SENDERS = (ALICE, BOB, CAROL, DAVE, ERIN)  # ERIN is poor: her escrows fail
METERS = (meter_key(0), meter_key(1), meter_key(2))
BENEFICIARIES = ("A", "B")
STEPS = (30, 60, 120, 300, 900, 1800)
UNIT = 1_000_000


# --- random streams -----------------------------------------------------------------------


KINDS = ("create", "create", "approve", "execute", "execute", "execute", "cancel", "report",
         "report", "batch", "deposit", "deposit", "cert_transfer", "retire", "transfer")  # fmt: skip


def random_stream(seed: int) -> list[tuple[int, list[tuple[str, int]]]]:
    rng = Random(seed)
    return [
        (
            rng.choice(STEPS),
            [(rng.choice(KINDS), rng.randrange(2**32)) for _ in range(rng.randint(3, 10))],
        )
        for _ in range(rng.randint(4, 8))
    ]


streams = st.integers(min_value=0, max_value=2**64 - 1).map(random_stream)


# --- the world ----------------------------------------------------------------------------


def open_world(factory: Any) -> tuple[Contracts, list[bytes]]:
    m = open_contracts(factory, CERTIFICATES)
    devices = [
        m.active_device(ALICE, METERS[0]),
        m.active_device(BOB, METERS[1], kind="consumption"),
        m.active_device(CAROL, METERS[2], kind="both"),
    ]
    # a few certificates to start with: the last two ended intervals
    at = m.now - m.now % INTERVAL + INTERVAL
    m.mine(at)
    reps = [
        m.report(owner, METERS[i], devices[i], at - k * INTERVAL, produced=(k + 1) * 30 * KWH)
        for k in (1, 2)
        for i, owner in ((0, ALICE), (2, CAROL))
    ]
    m.mine()
    m.ok(*reps)
    return m, devices


def pick_sender(m: Contracts, rng: Random) -> Any:
    """Anyone, ERIN included while she can still pay fees, one tx of hers a
    block (a fee she cannot pay would make the block invalid, not a failed
    receipt)."""
    return solvent(m, rng.choice(SENDERS))


def solvent(m: Contracts, k: Any) -> Any:
    if k is not ERIN:
        return k
    busy = any(tx.sender_address == ERIN.address for tx in m.queued)
    return ALICE if busy or m.balance(ERIN) < 100 * TERM_FEE else ERIN


def _key(addr_hex: str) -> Any:
    return next((k for k in SENDERS if k.address.hex() == addr_hex), None)


def random_contract(m: Contracts, rng: Random, devices: list[bytes], at: int) -> dict[str, Any]:
    """A well-formed contract (``at``: the block's time); about a third
    have no conditions, so executions get through."""
    now = at
    last = now - now % INTERVAL
    certs = m.certs()
    parties = rng.sample(PEOPLE, rng.randint(0, 3))
    escrow = rng.choice((0, UNIT, 5 * UNIT))
    conds: list[Any] = []
    for _ in range(rng.choice((0, 0, 1, 2, 3))):
        r = rng.random()
        if r < 0.2:
            conds.append(["after", now + rng.choice((-100, 0, 60, 600))])
        elif r < 0.35:
            conds.append(["before", now + rng.choice((-100, 60, 600, 6000))])
        elif r < 0.7:
            tag = rng.choice(
                ("produced_at_least", "produced_at_most", "consumed_at_least", "consumed_at_most")
            )
            start = last - rng.randint(1, 3) * INTERVAL
            end = start + rng.randint(1, 2) * INTERVAL
            wh = rng.choice((0, 10 * KWH, 50 * KWH, 200 * KWH))
            conds.append([tag, rng.choice(devices), start, end, wh])
        elif r < 0.85 and certs:
            conds.append(
                ["cert_retired_for", bytes.fromhex(rng.choice(certs)["id"]),
                 rng.choice(BENEFICIARIES)]
            )  # fmt: skip
        elif parties:
            conds.append(["approved_by", rng.choice(parties).address])
    acts: list[Any] = []
    budget = escrow
    named: set[bytes] = set()
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if r < 0.5 and budget:
            amount = rng.randint(1, budget)
            budget -= amount
            acts.append(["pay", rng.choice(PEOPLE).address, amount])
        elif r < 0.75 and certs:
            cid = bytes.fromhex(rng.choice(certs)["id"])
            if cid not in named:
                named.add(cid)
                acts.append(["transfer_cert", cid, rng.choice(PEOPLE).address])
    if not acts or rng.random() < 0.3:
        acts.append(["refund"])
    fee = min_fee(len(conds), len(acts))
    if rng.random() < 0.1:
        fee = max(fee - 1, 0)
    return {
        "parties": parties,
        "escrow": escrow,
        "expiry": now + rng.choice((-10, 300, 3600, 7200, 7200)),
        "conditions": conds,
        "actions": acts,
        "fee": fee,
    }


def queue_actions(
    m: Contracts, actions: list[tuple[str, int]], devices: list[bytes], at: int
) -> None:
    now = m.clock()
    last = now - now % INTERVAL
    contracts = m.contracts()
    for kind, seed in actions:
        rng = Random(seed)
        if kind == "create":
            sender = pick_sender(m, rng)
            m.queue(
                create_tx(sender, nonce=m.nonce(sender), **random_contract(m, rng, devices, at))
            )
            continue
        if kind == "report":
            i = rng.randrange(3)
            dev = devices[i]
            produced = rng.choice((0, 20 * KWH, 60 * KWH)) if i != 1 else 0
            consumed = rng.choice((0, 5 * KWH, 45 * KWH)) if i != 0 else 0
            relayer = rng.choice(PEOPLE)
            interval = last - rng.randint(0, 3) * INTERVAL
            m.queue(report_tx(relayer, METERS[i], dev, interval, produced, consumed,
                              nonce=m.nonce(relayer)))  # fmt: skip
            continue
        if kind == "batch":
            # some of the three devices' readings of one interval in one tx
            interval = last - rng.randint(0, 3) * INTERVAL
            entries = []
            for i in sorted(rng.sample(range(3), rng.randint(1, 3))):
                produced = rng.choice((0, 20 * KWH, 60 * KWH)) if i != 1 else 0
                consumed = rng.choice((0, 5 * KWH, 45 * KWH)) if i != 0 else 0
                entries.append(batch_entry(METERS[i], devices[i], interval, produced, consumed))
            relayer = rng.choice(PEOPLE)
            m.queue(batch_tx(relayer, interval, entries, nonce=m.nonce(relayer)))
            continue
        if kind == "transfer":
            a, b = rng.sample(PEOPLE, 2)
            m.queue(transfer(a, b, rng.randint(1, 3 * UNIT), nonce=m.nonce(a)))
            continue
        if kind == "deposit":
            # a certificate an open contract names, sent to that contract
            wanted = [(x["id"], a[1]) for x in contracts if x["status"] == "open"
                      for a in x["actions"] if a[0] == "transfer_cert"]  # fmt: skip
            if not wanted:
                continue
            xid, cert_hex = rng.choice(wanted)
            c = m.cert(bytes.fromhex(cert_hex))
            owner = _key(c["owner"])
            if owner is None or c["status"] != "active":
                continue
            target = address_of_contract(bytes.fromhex(xid))
            m.queue(cert_transfer_tx(owner, bytes.fromhex(cert_hex), target, c["remaining_wh"],
                                     nonce=m.nonce(owner)))  # fmt: skip
            continue
        if kind in ("cert_transfer", "retire"):
            certs = [c for c in m.certs(status="active") if _key(c["owner"]) is not None]
            if not certs:
                continue
            c = rng.choice(certs)
            owner = _key(c["owner"])
            cid = bytes.fromhex(c["id"])
            wh = c["remaining_wh"] if rng.random() < 0.7 else max(1, c["remaining_wh"] // 2)
            if kind == "retire":
                m.queue(cert_retire_tx(owner, cid, wh, nonce=m.nonce(owner),
                                       beneficiary=rng.choice(BENEFICIARIES)))  # fmt: skip
            else:
                to = rng.choice([p for p in PEOPLE if p is not owner])
                m.queue(cert_transfer_tx(owner, cid, to, wh, nonce=m.nonce(owner)))
            continue
        if not contracts:
            continue
        x = rng.choice(contracts)
        cid = bytes.fromhex(x["id"])
        if kind == "approve":
            parties = [k for p in x["parties"] if (k := _key(p)) is not None]
            sender = rng.choice(parties) if parties and rng.random() < 0.85 else pick_sender(m, rng)
            sender = solvent(m, sender)
            m.queue(id_tx(sender, "contract.approve", cid, nonce=m.nonce(sender)))
        elif kind == "execute":
            sender = pick_sender(m, rng)
            fee = x["min_fee"] - (1 if rng.random() < 0.1 and x["min_fee"] else 0)
            m.queue(id_tx(sender, "contract.execute", cid, nonce=m.nonce(sender), fee=fee))
        else:
            creator = _key(x["creator"])
            sender = creator if creator is not None and rng.random() < 0.85 else pick_sender(m, rng)
            sender = solvent(m, sender)
            m.queue(id_tx(sender, "contract.cancel", cid, nonce=m.nonce(sender)))


def run_block(m: Contracts, dt: int, actions: list[Any], devices: list[bytes]) -> Block:
    queue_actions(m, actions, devices, m.now + dt)
    return m.mine(m.now + dt)


def follow(follower: Ledger, block: Block) -> None:
    outcome, _ = follower.submit_block(block, now=block.header.timestamp + 3_600, mono=MONO)
    assert outcome == "connected", outcome


# --- invariants ---------------------------------------------------------------------------


def check_invariants(m: Contracts) -> None:
    state = m.state
    height = m.ledger.chain.tip.height
    assert m.money() == genesis_money(m.params) + height * m.params.block_reward
    records = [(cid, c) for (ns, cid), c in state.data.items() if ns == CONTRACT_NS]
    assert m.held() == sum(c.escrow for _, c in records)
    assert contract_queries.stats(state)["contracts"] == len(records)
    for cid, c in records:
        if c.status == "open":
            assert 0 <= c.escrow <= c.funded
        else:
            assert c.escrow == 0 and c.closed_height > 0
        if c.status == "executed":
            for cond in c.conditions:
                if cond[0] == "approved_by":
                    x = m.contract(cid)
                    assert x["approvals"][cond[1].hex()] <= c.closed_height


def view_of(ledger: Ledger) -> dict[str, Any]:
    state = ledger.chain.state
    now = ledger.chain.tip.header.timestamp
    return {
        "contracts": contract_queries.contracts(state, now=now),
        "stats": contract_queries.stats(state),
    }


def assert_same_state(a: Ledger, b: Ledger) -> None:
    assert a.chain.tip.hash == b.chain.tip.hash
    assert a.chain.tip.header.state_root == b.chain.tip.header.state_root
    assert a.chain.state.data == b.chain.state.data
    assert view_of(a) == view_of(b)


PROPERTY_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(blocks=streams)
def test_money_and_escrow_conserved_and_replay_equals(blocks: list[Any]) -> None:
    with ledger_factory() as f:
        m, devices = open_world(f)
        follower = f.open(PARAMS)
        for blk in active_blocks(m.ledger):
            follow(follower, blk)
        check_invariants(m)
        for dt, actions in blocks:
            blk = run_block(m, dt, actions, devices)
            check_invariants(m)
            follow(follower, blk)
            assert_same_state(m.ledger, follower)
        fresh = replay(f, PARAMS, active_blocks(m.ledger), m.now + 3_600)
        assert_same_state(m.ledger, fresh)


def test_the_streams_reach_every_outcome() -> None:
    """The streams are not vacuous: over a few seeds every contract tx type
    succeeds and fails, executions pay and hand over certificates, and
    cancels refund."""
    outcomes: set[tuple[str, str]] = set()
    events: set[str] = set()
    with ledger_factory() as f:
        for seed in range(16):
            m, devices = open_world(f)
            for dt, actions in random_stream(seed):
                blk = run_block(m, dt, actions, devices)
                for tx in blk.txs:
                    if not tx.type.startswith("contract."):
                        continue
                    r = m.receipt(tx)
                    outcomes.add(
                        (tx.type, r["status"] if r["status"] == "ok" else r["error"]["code"])
                    )
                    events.update(e["event"] for e in r["events"])
    for t in ("contract.create", "contract.approve", "contract.execute", "contract.cancel"):
        assert (t, "ok") in outcomes, (t, sorted(outcomes))
    for code in ("condition_failed", "contract_fee_too_low", "contract_not_open"):
        assert ("contract.execute", code) in outcomes, (code, sorted(outcomes))
    assert {"contract.paid", "contract.refunded", "contract.cert_transferred"} <= events, events


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(main=streams, branch=streams, fork=st.integers(0, 100))
def test_reorg_restores_balances_escrows_contracts_and_certificates(
    main: list[Any], branch: list[Any], fork: int
) -> None:
    with ledger_factory() as f:
        a, devices = open_world(f)
        setup = len(active_blocks(a.ledger))
        for dt, actions in main:
            run_block(a, dt, actions, devices)
        chain = active_blocks(a.ledger)
        # keep the setup blocks; undo at least one block after them
        keep = setup + fork % (len(chain) - setup)
        b = Contracts(replay(f, PARAMS, chain[:keep], a.now + 3_600))
        for dt, actions in branch:
            run_block(b, dt, actions, devices)
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
        assert_same_state(a.ledger, b.ledger)
        check_invariants(Contracts(a.ledger))


def test_term_fee_is_what_the_streams_use() -> None:
    assert min_fee(2, 3) == 5 * TERM_FEE
