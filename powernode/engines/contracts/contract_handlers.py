"""The declarative contracts' tx types.

Payloads (msgpack arrays, in this order):

    contract.create   [parties, escrow_amount, expiry, conditions, actions]
    contract.approve  [contract_id]
    contract.execute  [contract_id]
    contract.cancel   [contract_id]

The vocabulary of conditions and actions is ``contract_vocab``'s. A contract
is judged over state and block time only (the metering clock): meter
readings (engines/metering), certificate claims (engines/certificates) and
approvals recorded here. Every rule of a tx type runs in one check function
that admission (``precheck``, against the tip) and ``apply`` both call, so
the two cannot drift; ``contract.execute`` checks every condition and every
action before it writes anything, and a raise reverts the tx's writes
anyway, so an execution applies whole or not at all.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from powernode.core.errors import (
    ActionFailed,
    AlreadyApproved,
    BadPayload,
    ConditionFailed,
    ContractBadExpiry,
    ContractBadRange,
    ContractExpired,
    ContractFeeTooLow,
    ContractNotExpired,
    ContractNotOpen,
    NotContractCreator,
    NotContractParty,
    UnknownContract,
)
from powernode.core.execution import Event, ExecContext, StateAccess, StateRead
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.engines.accounts import credit, debit
from powernode.engines.certificates import handover
from powernode.engines.certificates.records import RETIRED, cert
from powernode.engines.contracts import contract_vocab as vocab
from powernode.engines.contracts.contract_records import (
    APPROVAL_NS,
    CANCELLED,
    CONTRACT_NS,
    EXECUTED,
    OPEN,
    ApprovalHeight,
    Contract,
    approval_key,
    approved,
    contract,
    contract_address,
    put_totals,
    totals,
)
from powernode.engines.market.handlers import settled
from powernode.engines.metering import clock
from powernode.engines.metering import records as meter_records
from powernode.engines.metering.params import cert_params


def _contract_id(payload: list[Any], tx_type: str) -> bytes:
    if len(payload) != 1:
        raise BadPayload(f"{tx_type} payload is [contract_id]")
    cid = payload[0]
    if type(cid) is not bytes or len(cid) != 32:
        raise BadPayload("contract_id: expected 32 bytes")
    return cid


def _check_fee(tx: Transaction, c_or_p: Any) -> None:
    need = vocab.min_fee(len(c_or_p.conditions), len(c_or_p.actions))
    if tx.fee < need:
        raise ContractFeeTooLow(
            f"fee {tx.fee} below {need}: {vocab.TERM_FEE} per condition and per action"
        )


# --- contract.create ------------------------------------------------------------


class CreatePayload(NamedTuple):
    parties: tuple[bytes, ...]
    escrow: int
    expiry: int
    conditions: tuple[vocab.Term, ...]
    actions: tuple[vocab.Term, ...]


def _check_create(view: StateRead, ctx: ExecContext, tx: Transaction, p: CreatePayload) -> int:
    """The rules of a create that need the chain (README order); returns now."""
    _check_fee(tx, p)
    now = clock.now(view, ctx)
    if p.expiry <= now:
        raise ContractBadExpiry(f"expiry {p.expiry} is not after now ({now})")
    if p.expiry > now + vocab.MAX_LIFETIME:
        raise ContractBadExpiry(
            f"expiry {p.expiry} is more than {vocab.MAX_LIFETIME} s after now ({now})"
        )
    size = cert_params(ctx.params).interval_seconds
    for i, c in enumerate(p.conditions):
        if c[0] not in vocab.METERED:
            continue
        start, end = c[2], c[3]
        if start % size or end % size:
            raise ContractBadRange(
                f"condition {i}: [{start}, {end}) is not aligned to the {size} s interval"
            )
        if (end - start) // size > vocab.MAX_RANGE_INTERVALS:
            raise ContractBadRange(
                f"condition {i}: {(end - start) // size} intervals, "
                f"at most {vocab.MAX_RANGE_INTERVALS}"
            )
    return now


class CreateHandler:
    tx_type = "contract.create"

    def decode(self, payload: list[Any]) -> CreatePayload:
        if len(payload) != 5:
            raise BadPayload(
                "contract.create payload is [parties, escrow_amount, expiry, conditions, actions]"
            )
        parties_v, escrow_v, expiry, conds, acts = payload
        parties = vocab.parties(parties_v)
        escrow = vocab.escrow_amount(escrow_v)
        if type(expiry) is not int or not 0 <= expiry < 2**64:
            raise BadPayload("expiry: expected an unsigned integer")
        cs, acs = vocab.terms(conds, acts, escrow, parties)
        return CreatePayload(parties, escrow, expiry, cs, acs)

    def max_debit(self, payload: CreatePayload, params: ChainParams) -> int:
        return payload.escrow

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: CreatePayload
    ) -> None:
        _check_create(view, ctx, tx, payload)

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: CreatePayload
    ) -> list[Event]:
        now = _check_create(view, ctx, tx, p)
        creator = tx.sender_address
        if p.escrow:
            debit(view, creator, p.escrow)
        cid = tx.txid
        view.put(
            (CONTRACT_NS, cid),
            Contract(
                creator=creator,
                parties=p.parties,
                funded=p.escrow,
                escrow=p.escrow,
                expiry=p.expiry,
                conditions=p.conditions,
                actions=p.actions,
                status=OPEN,
                created_height=ctx.height,
                created_time=now,
                closed_height=0,
                closed_txid=b"",
            ),
        )
        t = totals(view)
        put_totals(view, t._replace(escrow=t.escrow + p.escrow, contracts=t.contracts + 1))
        return [
            {"event": "contract.created", "contract": cid, "address": contract_address(cid),
             "escrow": p.escrow, "expiry": p.expiry}
        ]  # fmt: skip


# --- shared lookups -----------------------------------------------------------------


def _open_contract(view: StateRead, cid: bytes, own_records: bool) -> Contract | None:
    """The contract, which must exist and be open. None when it does not
    exist and ``own_records`` is off (an earlier pending tx of the sender
    may create it: the block decides)."""
    c = contract(view, cid)
    if c is None:
        if not own_records:
            return None
        raise UnknownContract(f"no contract {cid.hex()}")
    return c


def _require_open(c: Contract) -> None:
    if c.status != OPEN:
        raise ContractNotOpen(f"the contract is {c.status}")


# --- contract.approve ------------------------------------------------------------


class IdPayload(NamedTuple):
    contract_id: bytes


def _check_approve(
    view: StateRead, ctx: ExecContext, tx: Transaction, p: IdPayload, own: bool = True
) -> Contract | None:
    c = _open_contract(view, p.contract_id, own)
    if c is None:
        return None
    sender = tx.sender_address
    if sender not in c.parties:
        raise NotContractParty("only a party of the contract may approve it")
    _require_open(c)
    now = clock.now(view, ctx)
    if now >= c.expiry:
        raise ContractExpired(f"the contract expired at {c.expiry} (now {now})")
    if approved(view, p.contract_id, sender) is not None:
        raise AlreadyApproved("this party approved the contract already")
    return c


class ApproveHandler:
    tx_type = "contract.approve"

    def decode(self, payload: list[Any]) -> IdPayload:
        return IdPayload(_contract_id(payload, self.tx_type))

    def max_debit(self, payload: IdPayload, params: ChainParams) -> int:
        return 0

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: IdPayload
    ) -> None:
        _check_approve(view, ctx, tx, payload, settled(view, tx))

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: IdPayload
    ) -> list[Event]:
        _check_approve(view, ctx, tx, p)
        sender = tx.sender_address
        view.put((APPROVAL_NS, approval_key(p.contract_id, sender)), ApprovalHeight(ctx.height))
        return [{"event": "contract.approved", "contract": p.contract_id, "party": sender}]


# --- contract.execute ------------------------------------------------------------


def _metered(view: StateRead, device: bytes, start: int, end: int, size: int, produced: bool
             ) -> tuple[int, int]:  # fmt: skip
    """(Wh summed over the readings of the intervals in [start, end), how
    many of those intervals have no reading)."""
    total = missing = 0
    for interval in range(start, end, size):
        r = meter_records.reading(view, device, interval)
        if r is None:
            missing += 1
        else:
            total += r.produced_wh if produced else r.consumed_wh
    return total, missing


def condition_holds(
    view: StateRead, ctx: ExecContext, cid: bytes, c: vocab.Term, now: int
) -> str | None:
    """None if condition ``c`` of contract ``cid`` holds now, else why not."""
    tag = c[0]
    if tag == vocab.AFTER:
        return None if now >= c[1] else f"now ({now}) is before {c[1]}"
    if tag == vocab.BEFORE:
        return None if now < c[1] else f"now ({now}) is not before {c[1]}"
    if tag in vocab.METERED:
        _, device, start, end, bound = c
        produced = tag.startswith("produced")
        size = cert_params(ctx.params).interval_seconds
        total, missing = _metered(view, device, start, end, size, produced)
        what = "produced" if produced else "consumed"
        if tag.endswith("at_least"):
            return None if total >= bound else f"{total} Wh {what}, less than {bound}"
        # An upper bound is proven by readings, never by their absence.
        if missing:
            return f"{missing} interval(s) in [{start}, {end}) have no reading"
        return None if total <= bound else f"{total} Wh {what}, more than {bound}"
    if tag == vocab.CERT_RETIRED_FOR:
        _, cert_id, beneficiary = c
        crt = cert(view, cert_id)
        if crt is None:
            return f"no certificate {cert_id.hex()}"
        if crt.status != RETIRED or crt.claim is None:
            return f"certificate {cert_id.hex()} is not retired"
        if crt.claim.beneficiary != beneficiary:
            return f"certificate {cert_id.hex()} is retired for someone else"
        return None
    assert tag == vocab.APPROVED_BY, tag
    if approved(view, cid, c[1]) is None:
        return f"{c[1].hex()} has not approved"
    return None


def _check_execute(
    view: StateRead, ctx: ExecContext, tx: Transaction, p: IdPayload, own: bool = True
) -> tuple[Contract, int] | None:
    """Every rule of an execution, in README order: the contract, the fee,
    the expiry, each condition, then each action's precondition. Returns
    (contract, now), or None (unknown contract, ``own`` off). With ``own``
    off, the conditions and actions are not judged either: an earlier
    pending tx of the sender (its approval, say) may change them."""
    cid = p.contract_id
    c = _open_contract(view, cid, own)
    if c is None:
        return None
    _require_open(c)
    _check_fee(tx, c)
    now = clock.now(view, ctx)
    if now >= c.expiry:
        raise ContractExpired(f"the contract expired at {c.expiry} (now {now})")
    if not own:
        return c, now
    for i, cond in enumerate(c.conditions):
        why = condition_holds(view, ctx, cid, cond, now)
        if why is not None:
            raise ConditionFailed(f"condition {i} ({cond[0]}): {why}")
    address = contract_address(cid)
    for i, a in enumerate(c.actions):
        if a[0] == vocab.TRANSFER_CERT:
            why = handover.unmovable(view, a[1], address, now)
            if why is not None:
                raise ActionFailed(f"action {i} (transfer_cert): {why}")
    return c, now


def _close(
    view: StateAccess, ctx: ExecContext, tx: Transaction, cid: bytes, c: Contract, status: str,
    events: list[Event],
) -> None:  # fmt: skip
    """Return what is left of the escrow to the creator and close the contract."""
    if c.escrow:
        credit(view, c.creator, c.escrow)
        events.append(
            {"event": "contract.refunded", "contract": cid, "to": c.creator, "amount": c.escrow}
        )
    t = totals(view)
    put_totals(view, t._replace(escrow=t.escrow - c.escrow))
    view.put(
        (CONTRACT_NS, cid),
        c._replace(escrow=0, status=status, closed_height=ctx.height, closed_txid=tx.txid),
    )


class ExecuteHandler:
    tx_type = "contract.execute"

    def decode(self, payload: list[Any]) -> IdPayload:
        return IdPayload(_contract_id(payload, self.tx_type))

    def max_debit(self, payload: IdPayload, params: ChainParams) -> int:
        return 0

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: IdPayload
    ) -> None:
        _check_execute(view, ctx, tx, payload, settled(view, tx))

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: IdPayload
    ) -> list[Event]:
        checked = _check_execute(view, ctx, tx, p)
        assert checked is not None
        c, now = checked
        cid = p.contract_id
        events: list[Event] = [{"event": "contract.executed", "contract": cid}]
        escrow = c.escrow
        for a in c.actions:
            tag = a[0]
            if tag == vocab.PAY:
                # Within the escrow: the pays' sum was bounded at create.
                escrow -= a[2]
                credit(view, a[1], a[2])
                events.append({"event": "contract.paid", "contract": cid, "to": a[1],
                               "amount": a[2]})  # fmt: skip
            elif tag == vocab.TRANSFER_CERT:
                wh = handover.hand_over(view, ctx, a[1], a[2], now=now, txid=tx.txid, other=cid)
                events.append({"event": "contract.cert_transferred", "contract": cid,
                               "cert": a[1], "to": a[2], "wh": wh})  # fmt: skip
            else:
                if escrow:
                    credit(view, c.creator, escrow)
                    events.append({"event": "contract.refunded", "contract": cid,
                                   "to": c.creator, "amount": escrow})  # fmt: skip
                escrow = 0
        t = totals(view)
        put_totals(view, t._replace(escrow=t.escrow - (c.escrow - escrow)))
        _close(view, ctx, tx, cid, c._replace(escrow=escrow), EXECUTED, events)
        return events


# --- contract.cancel -------------------------------------------------------------


def _check_cancel(
    view: StateRead, ctx: ExecContext, tx: Transaction, p: IdPayload, own: bool = True
) -> tuple[Contract, int] | None:
    c = _open_contract(view, p.contract_id, own)
    if c is None:
        return None
    if tx.sender_address != c.creator:
        raise NotContractCreator("only the contract's creator may cancel it")
    _require_open(c)
    now = clock.now(view, ctx)
    if now < c.expiry:
        raise ContractNotExpired(f"the contract expires at {c.expiry} (now {now})")
    return c, now


class CancelHandler:
    tx_type = "contract.cancel"

    def decode(self, payload: list[Any]) -> IdPayload:
        return IdPayload(_contract_id(payload, self.tx_type))

    def max_debit(self, payload: IdPayload, params: ChainParams) -> int:
        return 0

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: IdPayload
    ) -> None:
        _check_cancel(view, ctx, tx, payload, settled(view, tx))

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: IdPayload
    ) -> list[Event]:
        checked = _check_cancel(view, ctx, tx, p)
        assert checked is not None
        c, now = checked
        cid = p.contract_id
        events: list[Event] = [{"event": "contract.cancelled", "contract": cid}]
        # The certificates its transfer_cert actions name, still held by it
        # and still movable, go back to the creator (in action order); any
        # other certificate sent to its address stays there.
        address = contract_address(cid)
        for a in c.actions:
            if a[0] == vocab.TRANSFER_CERT and handover.unmovable(view, a[1], address, now) is None:
                wh = handover.hand_over(
                    view, ctx, a[1], c.creator, now=now, txid=tx.txid, other=cid
                )
                events.append({"event": "contract.cert_transferred", "contract": cid,
                               "cert": a[1], "to": c.creator, "wh": wh})  # fmt: skip
        _close(view, ctx, tx, cid, c, CANCELLED, events)
        return events


HANDLERS = (CreateHandler(), ApproveHandler(), ExecuteHandler(), CancelHandler())
