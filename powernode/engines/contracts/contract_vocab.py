"""The fixed vocabulary of declarative contracts: the conditions and actions a
``contract.create`` may name, their shapes, the bounds, and the fee rule.

Every term is a msgpack array whose first item is its tag:

    conditions  ["after", t]                      now >= t
                ["before", t]                     now < t
                ["produced_at_least", device, start, end, wh]
                ["produced_at_most",  device, start, end, wh]
                ["consumed_at_least", device, start, end, wh]
                ["consumed_at_most",  device, start, end, wh]
                ["cert_retired_for", cert_id, beneficiary]
                ["approved_by", party]
    actions     ["pay", to, amount]
                ["transfer_cert", cert_id, to]
                ["refund"]

Decoded, a term is a plain tuple ``(tag, *args)`` (tuples, so a record
decoded from the store equals the one a tx wrote). The checks here need the
payload only; those that need the chain's params (interval alignment) or the
clock live in ``contract_handlers``.
"""

from __future__ import annotations

from typing import Any

from powernode.core.crypto import ADDRESS_SIZE
from powernode.core.errors import (
    BadAmount,
    BadContractTerm,
    BadPayload,
    ContractOverdrawn,
    ContractTooLarge,
)
from powernode.core.units import MAX_MONEY

# Bounds (README "Contracts"): each is a shape rule of the payload.
MAX_CONDITIONS = 16
MAX_ACTIONS = 16
MAX_PARTIES = 8
MAX_BENEFICIARY = 128  # as a certificate claim's beneficiary
# A metered condition sums at most this many interval readings (a day of
# 15-minute intervals): execution reads one state key per interval.
MAX_RANGE_INTERVALS = 96
# Longest a contract may stay open: ten years of block time.
MAX_LIFETIME = 10 * 365 * 86_400

# The fee floor, on top of the chain's ``min_fee``: contract.create and
# contract.execute each pay at least TERM_FEE per condition and per action
# (micro-units), since each costs state reads (and writes) to evaluate.
TERM_FEE = 1_000

AFTER, BEFORE = "after", "before"
PRODUCED_AT_LEAST, PRODUCED_AT_MOST = "produced_at_least", "produced_at_most"
CONSUMED_AT_LEAST, CONSUMED_AT_MOST = "consumed_at_least", "consumed_at_most"
CERT_RETIRED_FOR, APPROVED_BY = "cert_retired_for", "approved_by"
PAY, TRANSFER_CERT, REFUND = "pay", "transfer_cert", "refund"

METERED = (PRODUCED_AT_LEAST, PRODUCED_AT_MOST, CONSUMED_AT_LEAST, CONSUMED_AT_MOST)
CONDITIONS = (AFTER, BEFORE, *METERED, CERT_RETIRED_FOR, APPROVED_BY)
ACTIONS = (PAY, TRANSFER_CERT, REFUND)

_MAX_U64 = 2**64 - 1

Term = tuple[Any, ...]


def min_fee(n_conditions: int, n_actions: int) -> int:
    """The least fee a contract.create or contract.execute of a contract with
    these counts may pay (the chain's ``min_fee`` applies as well)."""
    return TERM_FEE * (n_conditions + n_actions)


def _bad(where: str, why: str) -> BadContractTerm:
    return BadContractTerm(f"{where}: {why}")


def _uint(v: Any, where: str, what: str) -> int:
    if type(v) is not int or not 0 <= v <= _MAX_U64:
        raise _bad(where, f"{what}: expected an unsigned integer")
    return v


def _bytes(v: Any, size: int, where: str, what: str) -> bytes:
    if type(v) is not bytes or len(v) != size:
        raise _bad(where, f"{what}: expected {size} bytes")
    return v


def _arity(f: list[Any] | tuple[Any, ...], n: int, where: str, shape: str) -> None:
    if len(f) != n:
        raise _bad(where, f"expected {shape}")


def condition(v: Any, index: int, parties: tuple[bytes, ...]) -> Term:
    """One condition from its wire form; ``parties``: the contract's, which an
    ``approved_by`` must name."""
    where = f"condition {index}"
    if type(v) not in (list, tuple) or not v or type(v[0]) is not str:
        raise _bad(where, "expected an array beginning with its tag")
    tag = v[0]
    if tag in (AFTER, BEFORE):
        _arity(v, 2, where, f'["{tag}", t]')
        return (tag, _uint(v[1], where, "t"))
    if tag in METERED:
        _arity(v, 5, where, f'["{tag}", device, start, end, wh]')
        device = _bytes(v[1], 32, where, "device")
        start, end = _uint(v[2], where, "start"), _uint(v[3], where, "end")
        if start >= end:
            raise _bad(where, "start must be before end")
        return (tag, device, start, end, _uint(v[4], where, "wh"))
    if tag == CERT_RETIRED_FOR:
        _arity(v, 3, where, '["cert_retired_for", cert_id, beneficiary]')
        cert_id = _bytes(v[1], 32, where, "cert_id")
        b = v[2]
        if type(b) is not str or not 1 <= len(b) <= MAX_BENEFICIARY:
            raise _bad(where, f"beneficiary: expected 1..{MAX_BENEFICIARY} characters")
        return (tag, cert_id, b)
    if tag == APPROVED_BY:
        _arity(v, 2, where, '["approved_by", party]')
        party = _bytes(v[1], ADDRESS_SIZE, where, "party")
        if party not in parties:
            raise _bad(where, "approved_by must name one of the contract's parties")
        return (tag, party)
    raise _bad(where, f"unknown condition {tag[:32]!r} (one of {', '.join(CONDITIONS)})")


def action(v: Any, index: int) -> Term:
    where = f"action {index}"
    if type(v) not in (list, tuple) or not v or type(v[0]) is not str:
        raise _bad(where, "expected an array beginning with its tag")
    tag = v[0]
    if tag == PAY:
        _arity(v, 3, where, '["pay", to, amount]')
        to = _bytes(v[1], ADDRESS_SIZE, where, "to")
        amount = v[2]
        if type(amount) is not int or not 0 < amount <= MAX_MONEY:
            raise _bad(where, f"amount: expected 1..{MAX_MONEY}")
        return (tag, to, amount)
    if tag == TRANSFER_CERT:
        _arity(v, 3, where, '["transfer_cert", cert_id, to]')
        return (
            tag,
            _bytes(v[1], 32, where, "cert_id"),
            _bytes(v[2], ADDRESS_SIZE, where, "to"),
        )
    if tag == REFUND:
        _arity(v, 1, where, '["refund"]')
        return (tag,)
    raise _bad(where, f"unknown action {tag[:32]!r} (one of {', '.join(ACTIONS)})")


def parties(v: Any) -> tuple[bytes, ...]:
    if type(v) not in (list, tuple):
        raise BadPayload("parties: expected an array of addresses")
    if len(v) > MAX_PARTIES:
        raise ContractTooLarge(f"{len(v)} parties, at most {MAX_PARTIES}")
    out: list[bytes] = []
    for p in v:
        if type(p) is not bytes or len(p) != ADDRESS_SIZE:
            raise BadPayload(f"parties: expected {ADDRESS_SIZE}-byte addresses")
        if p in out:
            raise BadPayload("parties: an address appears twice")
        out.append(p)
    return tuple(out)


def terms(
    conds: Any, acts: Any, escrow: int, party_list: tuple[bytes, ...]
) -> tuple[tuple[Term, ...], tuple[Term, ...]]:
    """The conditions and actions of a contract, with the rules across terms:
    the counts, the pays within the escrow, no pay after a refund, no
    certificate transferred twice."""
    if type(conds) not in (list, tuple) or type(acts) not in (list, tuple):
        raise BadPayload("conditions and actions: expected arrays")
    if len(conds) > MAX_CONDITIONS:
        raise ContractTooLarge(f"{len(conds)} conditions, at most {MAX_CONDITIONS}")
    if len(acts) > MAX_ACTIONS:
        raise ContractTooLarge(f"{len(acts)} actions, at most {MAX_ACTIONS}")
    if not acts:
        raise BadPayload("actions: a contract needs at least one")
    cs = tuple(condition(c, i, party_list) for i, c in enumerate(conds))
    acs = tuple(action(a, i) for i, a in enumerate(acts))
    paid = 0
    refunded = False
    certs: set[bytes] = set()
    for i, a in enumerate(acs):
        if a[0] == PAY:
            if refunded:
                raise _bad(f"action {i}", "a pay after a refund has nothing to pay from")
            paid += a[2]
        elif a[0] == TRANSFER_CERT:
            if a[1] in certs:
                raise _bad(f"action {i}", "the certificate is transferred twice")
            certs.add(a[1])
        else:
            refunded = True
    if paid > escrow:
        raise ContractOverdrawn(f"the pays add up to {paid}, the escrow is {escrow}")
    return cs, acs


def escrow_amount(v: Any) -> int:
    if type(v) is not int or not 0 <= v <= MAX_MONEY:
        raise BadAmount(f"escrow_amount: expected 0..{MAX_MONEY}")
    return v
