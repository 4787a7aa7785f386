"""The tx envelope rules, written once: what every tx must meet, whatever its
type, before its engine runs.

In order: the chain id, a known tx type, a payload its engine can decode, the
fee floor, the nonce, and the fee's affordability. A block applies them with
``queued=False`` (the nonce must be the account's next, the balance must
cover the fee); the mempool with ``queued=True``, where a tx may wait behind
its sender's pending ones, so a nonce ahead of the account's is allowed and
affordability (of the fee plus the tx's most possible debit, on top of the
sender's pending txs) is the pool's to judge. Everything else the mempool
adds is a pool rule (nonce window, replacement, pending cost).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

from powernode.core.errors import (
    FeeTooLow,
    InsufficientFunds,
    NonceTooHigh,
    NonceTooLow,
    WrongChain,
)
from powernode.core.execution import StateRead, TxHandler
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.core.units import show_units
from powernode.engines.accounts import ACCOUNT_NS, ZERO_ACCOUNT, Account
from powernode.state.registry import HANDLERS, handler_for


class Envelope(NamedTuple):
    """What checking the envelope found, for the caller to go on with."""

    handler: TxHandler
    payload: Any
    sender: bytes
    account: Account  # the sender's account in the state checked against
    # What the sender must be able to pay: the fee, and (queued) the most
    # the tx can debit beyond it.
    cost: int


# Envelope(...) without the NamedTuple's Python __new__ (as accounts.new_account):
# one is made for every tx admitted, templated and applied.
_new_envelope = partial(tuple.__new__, Envelope)


def check_envelope(
    state: StateRead, params: ChainParams, tx: Transaction, *, queued: bool = False
) -> Envelope:
    """The envelope rules for ``tx`` against ``state``; raises the typed error
    of the first one it breaks."""
    if tx.chain_id != params.chain_id:
        raise WrongChain(f"tx is for chain {tx.chain_id!r}, this is {params.chain_id!r}")
    handler = HANDLERS.get(tx.type) or handler_for(tx.type)
    payload = handler.decode(tx.payload)
    fee = tx.fee
    if fee < params.min_fee:
        raise FeeTooLow(f"fee {show_units(fee)} below the minimum {show_units(params.min_fee)}")
    sender = tx.sender_address
    acct = state.get((ACCOUNT_NS, sender)) or ZERO_ACCOUNT
    if tx.nonce < acct.nonce:
        raise NonceTooLow(f"nonce {tx.nonce} already used (account nonce {acct.nonce})")
    if queued:
        return _new_envelope(
            (handler, payload, sender, acct, fee + handler.max_debit(payload, params))
        )
    if tx.nonce > acct.nonce:
        raise NonceTooHigh(f"nonce {tx.nonce} ahead of account nonce {acct.nonce}")
    if acct.balance < fee:
        raise InsufficientFunds(
            f"balance {show_units(acct.balance)} cannot pay fee {show_units(fee)}"
        )
    return _new_envelope((handler, payload, sender, acct, fee))
