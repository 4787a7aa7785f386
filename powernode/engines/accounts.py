"""Accounts: balances and nonces, and the ``transfer`` tx type.

State: namespace ``acct``, key = 20-byte address, value ``Account``. An
address never written reads as a zero account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from powernode.core import encoding
from powernode.core.crypto import ADDRESS_SIZE, address_hex
from powernode.core.errors import BadAmount, BadPayload, InsufficientFunds, PowernodeError
from powernode.core.execution import Event, ExecContext, StateAccess, StateRead
from powernode.core.tx import Transaction
from powernode.core.units import MAX_MONEY, as_amount

ACCOUNT_NS = "acct"


@dataclass(frozen=True, slots=True)
class Account:
    balance: int = 0
    nonce: int = 0

    def to_obj(self) -> list[int]:
        return [self.balance, self.nonce]

    @classmethod
    def from_obj(cls, obj: Any) -> Account:
        f = encoding.as_list(obj, 2, "account")
        return cls(encoding.as_uint(f[0], "balance"), encoding.as_uint(f[1], "nonce"))


ZERO_ACCOUNT = Account()


def get_account(view: StateRead, addr: bytes) -> Account:
    acct = view.get((ACCOUNT_NS, addr))
    return ZERO_ACCOUNT if acct is None else acct


def put_account(view: StateAccess, addr: bytes, acct: Account) -> None:
    view.put((ACCOUNT_NS, addr), acct)


def credit(view: StateAccess, addr: bytes, amount: int) -> None:
    acct = get_account(view, addr)
    balance = acct.balance + amount
    if balance > MAX_MONEY:
        raise BadAmount("credit would exceed the supply cap")
    put_account(view, addr, Account(balance, acct.nonce))


def debit(view: StateAccess, addr: bytes, amount: int) -> None:
    acct = get_account(view, addr)
    if acct.balance < amount:
        raise InsufficientFunds(f"account {address_hex(addr)} has {acct.balance}, needs {amount}")
    put_account(view, addr, Account(acct.balance - amount, acct.nonce))


@dataclass(frozen=True, slots=True)
class TransferPayload:
    to: bytes
    amount: int

    def to_obj(self) -> list[Any]:
        return [self.to, self.amount]


class TransferHandler:
    tx_type = "transfer"

    def decode(self, payload: list[Any]) -> TransferPayload:
        if len(payload) != 2:
            raise BadPayload("transfer payload is [to, amount]")
        try:
            to = encoding.as_bytes(payload[0], "transfer to", size=ADDRESS_SIZE)
        except PowernodeError as exc:
            raise BadPayload(exc.message) from exc
        amount = as_amount(payload[1], "transfer amount")
        if amount == 0:
            raise BadAmount("transfer amount must be positive")
        return TransferPayload(to, amount)

    def max_debit(self, payload: TransferPayload) -> int:
        return payload.amount

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: TransferPayload
    ) -> None:
        return None

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: TransferPayload
    ) -> list[Event]:
        sender = tx.sender_address
        debit(view, sender, payload.amount)
        credit(view, payload.to, payload.amount)
        return [
            {
                "event": "transfer",
                "from": address_hex(sender),
                "to": address_hex(payload.to),
                "amount": payload.amount,
            }
        ]


HANDLERS = (TransferHandler(),)
STATE_CODECS = {ACCOUNT_NS: Account.from_obj}
