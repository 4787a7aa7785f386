"""Accounts: balances and nonces, and the ``transfer`` tx type.

State: namespace ``acct``, key = 20-byte address, value ``Account``. An
address never written reads as a zero account.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

from powernode.core import encoding
from powernode.core.crypto import ADDRESS_SIZE, address_hex
from powernode.core.errors import BadAmount, BadPayload, InsufficientFunds
from powernode.core.execution import Engine, Event, ExecContext, StateAccess, StateRead
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.core.units import MAX_MONEY, as_amount

ACCOUNT_NS = "acct"


class Account(NamedTuple):
    """Immutable like a frozen dataclass, but built in a third of the time:
    every tx makes three of these, so it shows in block connect time."""

    balance: int = 0
    nonce: int = 0

    def to_obj(self) -> list[int]:
        return [self.balance, self.nonce]

    @classmethod
    def from_obj(cls, obj: Any) -> Account:
        f = encoding.as_list(obj, 2, "account")
        return cls(encoding.as_uint(f[0], "balance"), encoding.as_uint(f[1], "nonce"))


ZERO_ACCOUNT = Account()

# ``Account(b, n)`` runs the NamedTuple's generated Python ``__new__``;
# ``new_account((b, n))`` builds the same tuple in C, at a fraction of the
# cost (block connect builds three per tx).
new_account = partial(tuple.__new__, Account)


def get_account(view: StateRead, addr: bytes) -> Account:
    acct = view.get((ACCOUNT_NS, addr))
    return ZERO_ACCOUNT if acct is None else acct


# credit and debit run for every transfer in every block: they read and write
# through one key tuple, without the helper above.


def credit(view: StateAccess, addr: bytes, amount: int) -> None:
    key = (ACCOUNT_NS, addr)
    acct = view.get(key)
    if acct is None:
        acct = ZERO_ACCOUNT
    balance = acct.balance + amount
    if balance > MAX_MONEY:
        raise BadAmount("credit would exceed the supply cap")
    view.put(key, new_account((balance, acct.nonce)))


def debit(view: StateAccess, addr: bytes, amount: int) -> None:
    key = (ACCOUNT_NS, addr)
    acct = view.get(key)
    if acct is None:
        acct = ZERO_ACCOUNT
    if acct.balance < amount:
        raise InsufficientFunds(f"account {address_hex(addr)} has {acct.balance}, needs {amount}")
    view.put(key, new_account((acct.balance - amount, acct.nonce)))


class TransferPayload(NamedTuple):
    """A NamedTuple for the same reason as ``Account``: one per tx admitted
    and one per tx applied."""

    to: bytes
    amount: int

    def to_obj(self) -> list[Any]:
        return [self.to, self.amount]


_new_payload = partial(tuple.__new__, TransferPayload)  # as new_account


class TransferHandler:
    tx_type = "transfer"
    precheck = None  # a transfer's admission is its envelope alone

    def decode(self, payload: list[Any]) -> TransferPayload:
        if len(payload) != 2:
            raise BadPayload("transfer payload is [to, amount]")
        to, amount = payload
        if type(to) is not bytes or len(to) != ADDRESS_SIZE:
            raise BadPayload(f"transfer to: expected a {ADDRESS_SIZE}-byte address")
        if type(amount) is not int or not 0 < amount <= MAX_MONEY:
            as_amount(amount, "transfer amount")  # raises the precise typed error
            raise BadAmount("transfer amount must be positive")
        return _new_payload((to, amount))

    def max_debit(self, payload: TransferPayload, params: ChainParams) -> int:
        return payload.amount

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: TransferPayload
    ) -> list[Event]:
        sender = tx.sender_address
        to, amount = payload
        debit(view, sender, amount)
        credit(view, to, amount)
        return [{"event": "transfer", "from": sender, "to": to, "amount": amount}]


ENGINE = Engine(
    name="accounts",
    handlers=(TransferHandler(),),
    state_codecs={ACCOUNT_NS: Account.from_obj},
)
