"""Declarative contracts: contract.create / approve / execute / cancel with the
fixed vocabulary. Every typed error is shown refused at admission and as a
failed receipt (fee charged, nothing else changed) when a block holds it
anyway, or, for a malformed payload, refused everywhere (a block holding it
is invalid). Then each condition (holding and not), each action, atomicity,
the bounds, the fee, and the README's two templates end to end on a ledger.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from powernode.chain.certproof import build_proof
from powernode.core.crypto import KeyPair
from powernode.core.errors import ProofBadLineage
from powernode.core.tx import Transaction
from powernode.engines.contracts.contract_vocab import (
    MAX_ACTIONS,
    MAX_CONDITIONS,
    MAX_LIFETIME,
    MAX_PARTIES,
    MAX_RANGE_INTERVALS,
    TERM_FEE,
)
from powernode.state.certproof.verify import verify_proof
from tests.unit.cert_helpers import cert_retire_tx, child_id, root_id
from tests.unit.contract_helpers import (
    Contracts,
    address_of_contract,
    contract_fee,
    create_tx,
    id_tx,
    open_contracts,
)
from tests.unit.helpers import LedgerFactory, key
from tests.unit.market_helpers import ALICE, BOB, CAROL, DAVE, ERIN, KWH, T0, market_tx
from tests.unit.metering_helpers import AUTHORITY, INTERVAL, INTERVAL_END, METER, meter_key

UNIT = 1_000_000
DAY = 86_400
READING_WINDOW = 3_600  # short, so a slot's readings are final within a test
CONS_METER = meter_key(4)
BENEFICIARY = "consumer_001, Shanghai"  # cert_retire_tx's default


@dataclass
class World:
    """ALICE's solar device with a 100 kWh reading for interval T0 and its
    certificate ``c1`` (90 kWh left: ``retired`` is a 10 kWh part ALICE
    retired for BENEFICIARY); BOB's consumption device with a 30 kWh reading
    for T0. ALICE's contracts (parties [BOB]): ``plain`` (escrow 10, needs
    BOB's approval, pays BOB 4 then refunds), ``approved`` (the same, BOB
    approved it), ``executed`` (paid BOB 1, done), ``short`` (expired),
    ``unheld`` (would transfer c1, which it does not hold)."""

    m: Contracts
    solar: bytes
    cons: bytes
    c1: bytes
    retired: bytes
    plain: bytes
    approved: bytes
    executed: bytes
    short: bytes
    unheld: bytes
    far: int


def pay(to: KeyPair | bytes, amount: int) -> list[Any]:
    return ["pay", to if isinstance(to, bytes) else to.address, amount]


def approval_contract(far: int) -> dict[str, Any]:
    return {
        "parties": [BOB],
        "escrow": 10 * UNIT,
        "expiry": far,
        "conditions": [["approved_by", BOB.address]],
        "actions": [pay(BOB, 4 * UNIT), ["refund"]],
    }


def make_world(factory: LedgerFactory) -> World:
    m = open_contracts(
        factory, {"authorities": [AUTHORITY.address.hex()], "reading_window": READING_WINDOW}
    )
    solar = m.active_device(ALICE, METER)
    cons = m.active_device(BOB, CONS_METER, kind="consumption")
    m.mine(INTERVAL_END)
    r1 = m.report(ALICE, METER, solar, T0, produced=100 * KWH)
    r2 = m.report(BOB, CONS_METER, cons, T0, consumed=30 * KWH)
    m.mine()
    m.ok(r1, r2)
    c1 = root_id(solar, T0)
    ret = m.retire_cert(ALICE, c1, 10 * KWH)
    m.mine()
    m.ok(ret)
    now = m.clock()
    far = now + DAY
    plain = m.create(ALICE, **approval_contract(far))
    approved = m.create(ALICE, **approval_contract(far))
    executed = m.create(ALICE, parties=[BOB], escrow=UNIT, expiry=far, actions=[pay(BOB, UNIT)])
    short = m.create(ALICE, parties=[BOB], escrow=UNIT, expiry=now + 60, actions=[["refund"]])
    unheld = m.create(
        ALICE, parties=[BOB], expiry=far, actions=[["transfer_cert", c1, BOB.address]]
    )
    m.mine()
    m.ok(plain, approved, executed, short, unheld)
    a = m.approve_contract(BOB, approved.txid)
    e = m.execute_contract(CAROL, executed.txid)
    m.mine()
    m.ok(a, e)
    m.mine(now + 120)
    return World(
        m, solar, cons, c1, child_id(c1, ret.txid), plain.txid, approved.txid, executed.txid,
        short.txid, unheld.txid, far,
    )  # fmt: skip


@pytest.fixture
def w(factory: LedgerFactory) -> World:
    return make_world(factory)


def test_the_world(w: World) -> None:
    m = w.m
    assert [m.contract(c)["status"] for c in (w.plain, w.approved, w.executed, w.short)] == [
        "open", "open", "executed", "expired",
    ]  # fmt: skip
    assert m.contract(w.approved)["approvals"] == {BOB.address.hex(): 10}
    assert m.contract(w.plain)["address"] == address_of_contract(w.plain).hex()
    assert m.held() == 10 * UNIT + 10 * UNIT + UNIT  # plain, approved, short


# --- every typed error, at admission and in a block -----------------------------------------

Case = tuple[KeyPair, Callable[[World, int], Transaction], str]
ZERO = bytes(32)


def _create(sender: KeyPair, n: int, **kw: Any) -> Transaction:
    kw.setdefault("expiry", T0 + 2 * DAY)
    kw.setdefault("actions", [["refund"]])
    return create_tx(sender, nonce=n, **kw)


def _id(sender: KeyPair, tx_type: str, cid: bytes, n: int, fee: int = 10) -> Transaction:
    return id_tx(sender, tx_type, cid, nonce=n, fee=fee)


def _metered(w: World, start: int, end: int) -> list[Any]:
    return ["consumed_at_most", w.cons, start, end, KWH]


APPROVE, EXECUTE, CANCEL = "contract.approve", "contract.execute", "contract.cancel"

CASES: dict[str, Case] = {
    # contract.create
    "create_fee_low": (
        ALICE, lambda w, n: _create(ALICE, n, fee=TERM_FEE - 1), "contract_fee_too_low"),
    "create_expiry_past": (
        ALICE, lambda w, n: _create(ALICE, n, expiry=T0), "contract_bad_expiry"),
    "create_expiry_now": (
        ALICE, lambda w, n: _create(ALICE, n, expiry=w.m.clock()), "contract_bad_expiry"),
    "create_expiry_too_far": (
        ALICE, lambda w, n: _create(ALICE, n, expiry=w.m.clock() + 6 + MAX_LIFETIME),
        "contract_bad_expiry"),
    "create_range_unaligned": (
        ALICE, lambda w, n: _create(ALICE, n, conditions=[_metered(w, T0 + 1, T0 + INTERVAL)]),
        "contract_bad_range"),
    "create_range_too_long": (
        ALICE, lambda w, n: _create(
            ALICE, n, conditions=[_metered(w, T0, T0 + (MAX_RANGE_INTERVALS + 1) * INTERVAL)]),
        "contract_bad_range"),
    "create_unaffordable": (
        ERIN, lambda w, n: _create(ERIN, n, escrow=2 * UNIT), "insufficient_funds"),
    # contract.approve
    "approve_unknown": (BOB, lambda w, n: _id(BOB, APPROVE, ZERO, n), "unknown_contract"),
    "approve_not_party": (
        CAROL, lambda w, n: _id(CAROL, APPROVE, w.plain, n), "not_contract_party"),
    "approve_creator_not_party": (
        ALICE, lambda w, n: _id(ALICE, APPROVE, w.plain, n), "not_contract_party"),
    "approve_closed": (BOB, lambda w, n: _id(BOB, APPROVE, w.executed, n), "contract_not_open"),
    "approve_expired": (BOB, lambda w, n: _id(BOB, APPROVE, w.short, n), "contract_expired"),
    "approve_twice": (BOB, lambda w, n: _id(BOB, APPROVE, w.approved, n), "already_approved"),
    # contract.execute
    "execute_unknown": (
        CAROL, lambda w, n: _id(CAROL, EXECUTE, ZERO, n, 9 * TERM_FEE), "unknown_contract"),
    "execute_closed": (
        CAROL, lambda w, n: _id(CAROL, EXECUTE, w.executed, n, 9 * TERM_FEE),
        "contract_not_open"),
    "execute_fee_low": (
        CAROL, lambda w, n: _id(CAROL, EXECUTE, w.approved, n, 3 * TERM_FEE - 1),
        "contract_fee_too_low"),
    "execute_expired": (
        CAROL, lambda w, n: _id(CAROL, EXECUTE, w.short, n, 9 * TERM_FEE), "contract_expired"),
    "execute_condition": (
        CAROL, lambda w, n: _id(CAROL, EXECUTE, w.plain, n, 9 * TERM_FEE), "condition_failed"),
    "execute_action": (
        CAROL, lambda w, n: _id(CAROL, EXECUTE, w.unheld, n, 9 * TERM_FEE), "action_failed"),
    # contract.cancel
    "cancel_unknown": (ALICE, lambda w, n: _id(ALICE, CANCEL, ZERO, n), "unknown_contract"),
    "cancel_not_creator": (
        BOB, lambda w, n: _id(BOB, CANCEL, w.short, n), "not_contract_creator"),
    "cancel_closed": (ALICE, lambda w, n: _id(ALICE, CANCEL, w.executed, n), "contract_not_open"),
    "cancel_not_expired": (
        ALICE, lambda w, n: _id(ALICE, CANCEL, w.plain, n), "contract_not_expired"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_at_admission_and_failed_in_a_block(w: World, case: str) -> None:
    sender, build, code = CASES[case]
    m = w.m
    tx = build(w, m.nonce(sender))
    assert m.refused(tx) == code
    before = m.held()
    m.assert_fails_in_block(sender, tx, code)
    assert m.held() == before


def test_failed_receipts_name_the_condition_and_the_action(w: World) -> None:
    m = w.m
    tx = m.execute_contract(CAROL, w.plain)
    m.mine()
    assert m.failed(tx) == "condition_failed"
    msg = m.receipt(tx)["error"]["message"]
    assert msg.startswith("condition 0 (approved_by): ") and BOB.address.hex() in msg
    tx = m.execute_contract(CAROL, w.unheld)
    m.mine()
    assert m.failed(tx) == "action_failed"
    assert m.receipt(tx)["error"]["message"].startswith("action 0 (transfer_cert): ")


def _raw_create(w: World, parties: Any, escrow: Any, conds: Any, acts: Any) -> list[Any]:
    return [parties, escrow, w.far, conds, acts]


B = BOB.address
MALFORMED: dict[str, tuple[str, Callable[[World], list[Any]], str]] = {
    "too_many_conditions": ("contract.create", lambda w: _raw_create(
        w, [], 0, [["after", 0]] * (MAX_CONDITIONS + 1), [["refund"]]), "contract_too_large"),
    "too_many_actions": ("contract.create", lambda w: _raw_create(
        w, [], 0, [], [["refund"]] * (MAX_ACTIONS + 1)), "contract_too_large"),
    "too_many_parties": ("contract.create", lambda w: _raw_create(
        w, [key(20 + i).address for i in range(MAX_PARTIES + 1)], 0, [], [["refund"]]),
        "contract_too_large"),
    "unknown_condition": ("contract.create", lambda w: _raw_create(
        w, [], 0, [["raining"]], [["refund"]]), "bad_contract_term"),
    "unknown_action": ("contract.create", lambda w: _raw_create(
        w, [], 0, [], [["burn", 5]]), "bad_contract_term"),
    "condition_not_array": ("contract.create", lambda w: _raw_create(
        w, [], 0, ["after"], [["refund"]]), "bad_contract_term"),
    "condition_arity": ("contract.create", lambda w: _raw_create(
        w, [], 0, [["after", 1, 2]], [["refund"]]), "bad_contract_term"),
    "condition_negative_time": ("contract.create", lambda w: _raw_create(
        w, [], 0, [["before", -1]], [["refund"]]), "bad_contract_term"),
    "metered_empty_range": ("contract.create", lambda w: _raw_create(
        w, [], 0, [["produced_at_least", w.solar, T0, T0, 1]], [["refund"]]),
        "bad_contract_term"),
    "metered_short_device": ("contract.create", lambda w: _raw_create(
        w, [], 0, [["produced_at_least", w.solar[:31], T0, T0 + INTERVAL, 1]], [["refund"]]),
        "bad_contract_term"),
    "beneficiary_empty": ("contract.create", lambda w: _raw_create(
        w, [], 0, [["cert_retired_for", w.c1, ""]], [["refund"]]), "bad_contract_term"),
    "approver_not_party": ("contract.create", lambda w: _raw_create(
        w, [B], 0, [["approved_by", CAROL.address]], [["refund"]]), "bad_contract_term"),
    "pay_zero": ("contract.create", lambda w: _raw_create(
        w, [], 5, [], [["pay", B, 0]]), "bad_contract_term"),
    "pay_after_refund": ("contract.create", lambda w: _raw_create(
        w, [], 5, [], [["refund"], ["pay", B, 1]]), "bad_contract_term"),
    "cert_twice": ("contract.create", lambda w: _raw_create(
        w, [], 0, [], [["transfer_cert", w.c1, B], ["transfer_cert", w.c1, B]]),
        "bad_contract_term"),
    "refund_arity": ("contract.create", lambda w: _raw_create(
        w, [], 0, [], [["refund", B]]), "bad_contract_term"),
    "overdrawn": ("contract.create", lambda w: _raw_create(
        w, [], 5, [], [["pay", B, 3], ["pay", B, 3]]), "contract_overdrawn"),
    "no_actions": ("contract.create", lambda w: _raw_create(w, [], 0, [], []), "bad_payload"),
    "party_twice": ("contract.create", lambda w: _raw_create(
        w, [B, B], 0, [], [["refund"]]), "bad_payload"),
    "party_short": ("contract.create", lambda w: _raw_create(
        w, [B[:19]], 0, [], [["refund"]]), "bad_payload"),
    "escrow_negative": ("contract.create", lambda w: _raw_create(
        w, [], -1, [], [["refund"]]), "bad_amount"),
    "four_fields": ("contract.create", lambda w: _raw_create(w, [], 0, [], [["refund"]])[:4],
                    "bad_payload"),
    "approve_short_id": ("contract.approve", lambda w: [w.plain[:31]], "bad_payload"),
    "execute_two_fields": ("contract.execute", lambda w: [w.plain, w.plain], "bad_payload"),
    "cancel_no_id": ("contract.cancel", lambda w: [], "bad_payload"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_payloads_are_refused_everywhere(w: World, case: str) -> None:
    tx_type, payload, code = MALFORMED[case]
    m = w.m
    tx = market_tx(ALICE, tx_type, payload(w), nonce=m.nonce(ALICE), fee=40 * TERM_FEE)
    assert m.refused(tx) == code
    m.assert_block_refused(tx, code)


# --- each condition --------------------------------------------------------------------------


def run_with(w: World, conditions: list[Any], *, at: int | None = None) -> str:
    """Create a contract with ``conditions`` that pays BOB 1 unit, then
    execute it in a block (at ``at``): "ok", or the failed receipt's
    message."""
    m = w.m
    c = m.create(DAVE, parties=[BOB], escrow=UNIT, expiry=w.far, conditions=conditions,
                 actions=[pay(BOB, UNIT)])  # fmt: skip
    m.mine()
    m.ok(c)
    bob = m.balance(BOB)
    tx = m.execute_contract(CAROL, c.txid)
    m.mine(at)
    r = m.receipt(tx)
    if r["status"] == "ok":
        assert m.balance(BOB) == bob + UNIT
        assert m.contract(c.txid)["status"] == "executed"
        return "ok"
    assert r["error"]["code"] == "condition_failed"
    assert m.balance(BOB) == bob and m.contract(c.txid)["status"] == "open"
    msg: str = r["error"]["message"]
    assert msg.startswith(f"condition {len(conditions) - 1} ({conditions[-1][0]}): "), msg
    return msg


def test_after_and_before_by_block_time(w: World) -> None:
    t = w.m.clock() + 100
    assert "is before" in run_with(w, [["after", t]])
    assert run_with(w, [["after", t]], at=t) == "ok"  # now >= t holds
    t = w.m.clock() + 100
    assert run_with(w, [["before", t]]) == "ok"
    assert "is not before" in run_with(w, [["before", t]], at=t)  # now < t fails at t


def test_produced_bounds(w: World) -> None:
    one = (w.solar, T0, T0 + INTERVAL)
    assert run_with(w, [["produced_at_least", *one, 100 * KWH]]) == "ok"
    assert "less than" in run_with(w, [["produced_at_least", *one, 100 * KWH + 1]])
    assert run_with(w, [["produced_at_most", *one, 100 * KWH]]) == "ok"
    assert "more than" in run_with(w, [["produced_at_most", *one, 100 * KWH - 1]])
    two = (w.solar, T0, T0 + 2 * INTERVAL)  # T0 + INTERVAL has no reading
    assert run_with(w, [["produced_at_least", *two, 100 * KWH]]) == "ok"  # missing = 0
    assert "have no reading" in run_with(w, [["produced_at_most", *two, 10**9]])


def test_consumed_bounds(w: World) -> None:
    one = (w.cons, T0, T0 + INTERVAL)
    assert run_with(w, [["consumed_at_least", *one, 30 * KWH]]) == "ok"
    assert "less than" in run_with(w, [["consumed_at_least", *one, 30 * KWH + 1]])
    assert run_with(w, [["consumed_at_most", *one, 30 * KWH]]) == "ok"
    assert "more than" in run_with(w, [["consumed_at_most", *one, 30 * KWH - 1]])
    # a generation device consumed nothing; a device that does not exist has no readings
    assert "less than" in run_with(w, [["consumed_at_least", w.solar, T0, T0 + INTERVAL, 1]])
    assert "no reading" in run_with(w, [["consumed_at_most", ZERO, T0, T0 + INTERVAL, 1]])


def test_cert_retired_for(w: World) -> None:
    assert run_with(w, [["cert_retired_for", w.retired, BENEFICIARY]]) == "ok"
    assert "someone else" in run_with(w, [["cert_retired_for", w.retired, "someone"]])
    assert "is not retired" in run_with(w, [["cert_retired_for", w.c1, BENEFICIARY]])
    assert "no certificate" in run_with(w, [["cert_retired_for", ZERO, BENEFICIARY]])


def test_approved_by_and_the_index_of_the_failing_condition(w: World) -> None:
    m = w.m
    conds = [["after", 0], ["before", w.far], ["approved_by", BOB.address]]
    assert "has not approved" in run_with(w, conds)
    c = m.create(DAVE, parties=[CAROL, BOB], escrow=UNIT, expiry=w.far, conditions=conds,
                 actions=[pay(BOB, UNIT)])  # fmt: skip
    m.mine()
    a = m.approve_contract(CAROL, c.txid)  # the wrong party's approval does not count
    m.mine()
    m.ok(c, a)
    assert m.refused(m.signed(id_tx, CAROL, "contract.execute", c.txid, fee=5 * TERM_FEE)) == (
        "condition_failed"
    )
    a = m.approve_contract(BOB, c.txid)
    m.mine()
    x = m.execute_contract(ERIN, c.txid)  # anyone may execute
    m.mine()
    m.ok(a, x)
    assert m.contract(c.txid)["approvals"] == {
        CAROL.address.hex(): m.ledger.tx_status(a.txid)["height"] - 1,
        BOB.address.hex(): m.ledger.tx_status(a.txid)["height"],
    }


# --- each action ---------------------------------------------------------------------------


def test_pay_then_refund(w: World) -> None:
    m = w.m
    alice, bob, held = m.balance(ALICE), m.balance(BOB), m.held()
    x = m.execute_contract(CAROL, w.approved)
    m.mine()
    m.ok(x)
    assert m.balance(BOB) == bob + 4 * UNIT
    assert m.balance(ALICE) == alice + 6 * UNIT
    assert m.held() == held - 10 * UNIT
    c = m.contract(w.approved)
    assert (c["status"], c["escrow"], c["funded"]) == ("executed", 0, 10 * UNIT)
    assert c["closed_txid"] == x.txid.hex()
    a = w.approved.hex()
    assert m.events(x) == [
        {"event": "contract.executed", "contract": a},
        {"event": "contract.paid", "contract": a, "to": BOB.address.hex(), "amount": 4 * UNIT},
        {"event": "contract.refunded", "contract": a, "to": ALICE.address.hex(),
         "amount": 6 * UNIT},
    ]  # fmt: skip


def test_escrow_left_after_the_actions_goes_back_to_the_creator(w: World) -> None:
    m = w.m
    c = m.create(DAVE, escrow=5 * UNIT, expiry=w.far, actions=[pay(BOB, 2 * UNIT)])
    m.mine()
    dave = m.balance(DAVE)
    x = m.execute_contract(BOB, c.txid)
    m.mine()
    m.ok(c, x)
    assert m.balance(DAVE) == dave + 3 * UNIT
    assert m.events(x, "contract.refunded")[0]["amount"] == 3 * UNIT


def test_transfer_cert_moves_a_certificate_the_contract_holds(w: World) -> None:
    m = w.m
    c = m.create(ALICE, parties=[CAROL], expiry=w.far, conditions=[["approved_by", CAROL.address]],
                 actions=[["transfer_cert", w.c1, CAROL.address]])  # fmt: skip
    m.mine()
    m.ok(c)
    address = address_of_contract(c.txid)
    dep = m.transfer_cert(ALICE, w.c1, address, 90 * KWH)  # the whole of what it holds
    m.mine()
    m.ok(dep)
    assert m.cert(w.c1)["owner"] == address.hex()
    a = m.approve_contract(CAROL, c.txid)
    m.mine()
    x = m.execute_contract(CAROL, c.txid)
    m.mine()
    m.ok(a, x)
    assert m.cert(w.c1)["owner"] == CAROL.address.hex()
    assert m.events(x, "contract.cert_transferred") == [
        {"event": "contract.cert_transferred", "contract": c.txid.hex(), "cert": w.c1.hex(),
         "to": CAROL.address.hex(), "wh": 90 * KWH}
    ]  # fmt: skip
    last = m.trace(w.c1)["steps"][-1]
    assert (last["kind"], last["from"], last["to"], last["wh"], last["other"], last["txid"]) == (
        "contract", address.hex(), CAROL.address.hex(), 90 * KWH, c.txid.hex(), x.txid.hex(),
    )  # fmt: skip
    assert m.verify(w.c1)["valid"]
    # CAROL holds it now: she can retire it like any certificate of hers
    r = m.retire_cert(CAROL, w.c1, 90 * KWH)
    m.mine()
    m.ok(r)
    # An offline proof cannot replay a contract's hand-over: refused, with why.
    raw = build_proof(m.ledger.chain, w.c1).encode()
    with pytest.raises(ProofBadLineage, match=r"contract\.execute is not a certificate transfer"):
        verify_proof(raw, m.params)


def test_cancel_after_expiry_refunds_and_returns_certificates(w: World) -> None:
    m = w.m
    expiry = m.clock() + 600
    c = m.create(ALICE, parties=[BOB], escrow=3 * UNIT, expiry=expiry,
                 conditions=[["approved_by", BOB.address]],
                 actions=[["transfer_cert", w.c1, BOB.address], pay(BOB, UNIT)])  # fmt: skip
    m.mine()
    m.ok(c)
    dep = m.transfer_cert(ALICE, w.c1, address_of_contract(c.txid), 90 * KWH)
    m.mine()
    m.ok(dep)
    assert m.refused(m.signed(id_tx, ALICE, "contract.cancel", c.txid)) == "contract_not_expired"
    m.mine(expiry)
    assert m.contract(c.txid)["status"] == "expired"
    alice, held = m.balance(ALICE), m.held()
    x = m.cancel_contract(ALICE, c.txid)
    m.mine()
    m.ok(x)
    assert m.balance(ALICE) == alice + 3 * UNIT - x.fee
    assert m.held() == held - 3 * UNIT
    assert m.cert(w.c1)["owner"] == ALICE.address.hex()
    assert m.contract(c.txid)["status"] == "cancelled"
    assert [e["event"] for e in m.events(x)] == [
        "contract.cancelled", "contract.cert_transferred", "contract.refunded",
    ]  # fmt: skip


def test_cancel_of_a_contract_whose_certificate_left_refunds_the_money(w: World) -> None:
    m = w.m
    alice = m.balance(ALICE)
    x = m.cancel_contract(ALICE, w.short)
    m.mine()
    m.ok(x)
    assert m.balance(ALICE) == alice + UNIT - x.fee
    assert m.contract(w.short)["escrow"] == 0


# --- atomicity -------------------------------------------------------------------------------


def test_a_failing_action_changes_nothing(w: World) -> None:
    """The pay before the failing transfer_cert is undone with it: the state
    after the block equals the block with a no-op in its place."""
    m = w.m
    c = m.create(DAVE, escrow=2 * UNIT, expiry=w.far,
                 actions=[pay(BOB, UNIT), ["transfer_cert", w.c1, BOB.address]])  # fmt: skip
    m.mine()
    m.ok(c)
    bob, held = m.balance(BOB), m.held()
    tx = m.signed(id_tx, CAROL, "contract.execute", c.txid, fee=3 * TERM_FEE)
    assert m.refused(tx) == "action_failed"
    m.assert_fails_in_block(CAROL, tx, "action_failed")
    assert m.receipt(tx)["error"]["message"].startswith("action 1 (transfer_cert): ")
    assert m.receipt(tx)["events"] == []
    assert (m.balance(BOB), m.held(), m.contract(c.txid)["status"]) == (bob, held, "open")
    assert m.cert(w.c1)["owner"] == ALICE.address.hex()


def test_an_execution_that_failed_can_succeed_later(w: World) -> None:
    m = w.m
    x = m.execute_contract(CAROL, w.plain)
    m.mine()
    assert m.failed(x) == "condition_failed"
    a = m.approve_contract(BOB, w.plain)
    m.mine()
    x = m.execute_contract(CAROL, w.plain)
    m.mine()
    m.ok(a, x)
    again = m.signed(id_tx, CAROL, "contract.execute", w.plain, fee=3 * TERM_FEE)
    assert m.refused(again) == "contract_not_open"  # once only


# --- bounds and fee --------------------------------------------------------------------------


def test_the_largest_contract_is_accepted(w: World) -> None:
    m = w.m
    parties = [key(20 + i) for i in range(MAX_PARTIES - 1)] + [BOB]
    conds: list[Any] = [["after", 0]] * (MAX_CONDITIONS - 1)
    conds.append(["produced_at_least", w.solar, T0 - (MAX_RANGE_INTERVALS - 1) * INTERVAL,
                  T0 + INTERVAL, 100 * KWH])  # fmt: skip
    acts = [pay(BOB, 1)] * (MAX_ACTIONS - 1) + [["refund"]]
    c = m.create(DAVE, parties=parties, escrow=UNIT, expiry=w.far, conditions=conds, actions=acts)
    m.mine()
    m.ok(c)
    assert c.fee == TERM_FEE * (MAX_CONDITIONS + MAX_ACTIONS)
    low = m.signed(id_tx, CAROL, "contract.execute", c.txid, fee=c.fee - 1)
    assert m.refused(low) == "contract_fee_too_low"
    bob = m.balance(BOB)
    x = m.execute_contract(CAROL, c.txid)
    m.mine()
    m.ok(x)
    assert x.fee == c.fee
    assert m.balance(BOB) == bob + MAX_ACTIONS - 1


def test_the_fee_is_per_condition_and_action(w: World) -> None:
    m = w.m
    conds = [["after", 0], ["before", w.far]]
    acts = [pay(BOB, 1), ["refund"]]
    assert contract_fee(conds, acts) == 4 * TERM_FEE
    low = m.signed(create_tx, DAVE, escrow=1, expiry=w.far, conditions=conds, actions=acts,
                   fee=4 * TERM_FEE - 1)  # fmt: skip
    assert m.refused(low) == "contract_fee_too_low"
    ok = m.create(DAVE, escrow=1, expiry=w.far, conditions=conds, actions=acts)
    m.mine()
    m.ok(ok)
    assert m.contract(ok.txid)["min_fee"] == 4 * TERM_FEE


# --- queries ---------------------------------------------------------------------------------


def test_get_and_list(w: World) -> None:
    m = w.m
    c = m.contract(w.plain)
    assert c["creator"] == ALICE.address.hex() and c["parties"] == [BOB.address.hex()]
    assert c["conditions"] == [["approved_by", BOB.address.hex()]]
    assert c["actions"] == [["pay", BOB.address.hex(), 4 * UNIT], ["refund"]]
    assert (c["funded"], c["escrow"], c["expiry"], c["closed_height"]) == (
        10 * UNIT, 10 * UNIT, w.far, None,
    )  # fmt: skip
    everything = [w.plain, w.approved, w.executed, w.short, w.unheld]
    assert [x["id"] for x in m.contracts()] == sorted(x.hex() for x in everything)
    assert [x["id"] for x in m.contracts(party=BOB.address)] == [x["id"] for x in m.contracts()]
    assert m.contracts(party=CAROL.address) == []
    assert [x["id"] for x in m.contracts(status="expired")] == [w.short.hex()]
    assert [x["id"] for x in m.contracts(status="executed")] == [w.executed.hex()]
    with pytest.raises(ValueError):
        m.contracts(status="nope")


# --- the README's templates, end to end ----------------------------------------------------


def test_template_demand_response_reward(w: World) -> None:
    """DAVE (a utility) pays BOB 5 units if BOB's metered consumption over a
    two-interval slot stays at or under 40 kWh; executable once the reading
    window has closed, so the readings are final."""
    m = w.m
    slot = T0 + 4 * INTERVAL
    slot_end = slot + 2 * INTERVAL
    final = slot_end + READING_WINDOW + 1  # past the window's last second, as the README's
    reward = m.create(
        DAVE, parties=[BOB], escrow=5 * UNIT, expiry=final + DAY,
        conditions=[["after", final], ["consumed_at_most", w.cons, slot, slot_end, 40 * KWH]],
        actions=[pay(BOB, 5 * UNIT)],
    )  # fmt: skip
    m.mine()
    m.ok(reward)
    m.mine(slot_end)
    r1 = m.report(BOB, CONS_METER, w.cons, slot, consumed=15 * KWH)
    r2 = m.report(BOB, CONS_METER, w.cons, slot + INTERVAL, consumed=25 * KWH)
    m.mine()
    m.ok(r1, r2)
    early = m.signed(id_tx, BOB, "contract.execute", reward.txid, fee=3 * TERM_FEE)
    assert m.refused(early) == "condition_failed"  # the window is still open
    m.mine(final)
    bob = m.balance(BOB)
    x = m.execute_contract(BOB, reward.txid)
    m.mine()
    m.ok(x)
    assert m.balance(BOB) == bob + 5 * UNIT - x.fee


def test_template_demand_response_over_the_bound_is_refunded(w: World) -> None:
    m = w.m
    slot = T0 + 4 * INTERVAL
    slot_end = slot + INTERVAL
    final = slot_end + READING_WINDOW
    reward = m.create(
        DAVE, parties=[BOB], escrow=5 * UNIT, expiry=final + 600,
        conditions=[["after", final], ["consumed_at_most", w.cons, slot, slot_end, 40 * KWH]],
        actions=[pay(BOB, 5 * UNIT)],
    )  # fmt: skip
    m.mine()
    m.mine(slot_end)
    r = m.report(BOB, CONS_METER, w.cons, slot, consumed=41 * KWH)
    m.mine(final)
    m.ok(reward, r)
    x = m.signed(id_tx, BOB, "contract.execute", reward.txid, fee=3 * TERM_FEE)
    assert m.refused(x) == "condition_failed"
    m.mine(final + 600)
    dave = m.balance(DAVE)
    c = m.cancel_contract(DAVE, reward.txid)
    m.mine()
    m.ok(c)
    assert m.balance(DAVE) == dave + 5 * UNIT - c.fee


def test_template_green_premium(w: World) -> None:
    """CAROL (a buyer) pays ALICE (a solar producer) a 2-unit premium once
    the certificate of ALICE's next interval is retired for CAROL. The
    certificate's id is known before the reading exists (the README's root
    id rule), so the contract comes first."""
    m = w.m
    interval = T0 + INTERVAL
    cert = root_id(w.solar, interval)
    premium = m.create(
        CAROL, parties=[ALICE], escrow=2 * UNIT, expiry=w.far,
        conditions=[["cert_retired_for", cert, "CAROL Corp"]],
        actions=[pay(ALICE, 2 * UNIT)],
    )  # fmt: skip
    m.mine()
    m.ok(premium)
    m.mine(interval + INTERVAL)  # the interval has ended: its reading may come
    rep = m.report(ALICE, METER, w.solar, interval, produced=50 * KWH)
    m.mine()
    m.ok(rep)
    tr = m.transfer_cert(ALICE, cert, CAROL, 50 * KWH)
    m.mine()
    m.ok(tr)
    early = m.signed(id_tx, ALICE, "contract.execute", premium.txid, fee=2 * TERM_FEE)
    assert m.refused(early) == "condition_failed"  # transferred, not yet retired
    ret = m.queue(cert_retire_tx(CAROL, cert, 50 * KWH, nonce=m.nonce(CAROL),
                                 beneficiary="CAROL Corp"))  # fmt: skip
    m.mine()
    m.ok(ret)
    alice = m.balance(ALICE)
    x = m.execute_contract(ALICE, premium.txid)
    m.mine()
    m.ok(x)
    assert m.balance(ALICE) == alice + 2 * UNIT - x.fee
    assert m.contract(premium.txid)["status"] == "executed"


def test_admission_leaves_conditions_to_the_block_behind_a_pending_tx(w: World) -> None:
    """BOB's approval waits in the mempool; his execution right behind it
    is admitted (the approval may make its condition hold), and the block
    applies both."""
    m = w.m
    approve = id_tx(BOB, "contract.approve", w.plain, nonce=m.nonce(BOB))
    m.submit(approve)
    execute = id_tx(BOB, "contract.execute", w.plain, nonce=approve.nonce + 1, fee=3 * TERM_FEE)
    m.submit(execute)
    alone = id_tx(CAROL, "contract.execute", w.plain, nonce=m.nonce(CAROL), fee=3 * TERM_FEE)
    assert m.refused(alone) == "condition_failed"  # CAROL has nothing pending
    m.mine()
    m.ok(approve, execute)
    assert m.contract(w.plain)["status"] == "executed"
