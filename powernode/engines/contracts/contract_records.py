"""The declarative contracts' slice of state: record types, keys, ids.

Namespaces (key bytes after the namespace):

    ctr.c     contract id (32)                Contract
    ctr.appr  contract id (32) + party (20)   ApprovalHeight: the height of the
                                              party's contract.approve
    ctr.meta  b""                             ContractTotals

A contract's id is the id of its ``contract.create`` tx; its address (where
the certificates it may transfer are held) is
``SHA-256("powernode-contract" || id)[:20]``: no key signs for it, so only
the contract's own actions (or its cancel) move what it holds.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from powernode.core import encoding
from powernode.core.crypto import ADDRESS_SIZE, sha256
from powernode.core.execution import StateAccess, StateRead
from powernode.engines.contracts import contract_vocab as vocab

CONTRACT_NS = "ctr.c"
APPROVAL_NS = "ctr.appr"
META_NS = "ctr.meta"

OPEN, EXECUTED, CANCELLED = "open", "executed", "cancelled"
# What is stored; "expired" (open, past its expiry) is only shown.
EXPIRED = "expired"
STATUSES = (OPEN, EXECUTED, CANCELLED, EXPIRED)

_ADDRESS_TAG = b"powernode-contract"
_META_KEY = (META_NS, b"")


def contract_address(contract_id: bytes) -> bytes:
    return sha256(_ADDRESS_TAG + contract_id)[:ADDRESS_SIZE]


def approval_key(contract_id: bytes, party: bytes) -> bytes:
    return contract_id + party


class Contract(NamedTuple):
    creator: bytes
    parties: tuple[bytes, ...]
    funded: int  # the escrow taken at create
    escrow: int  # what is left of it (0 once executed or cancelled)
    expiry: int  # executable while now < expiry; cancellable from then on
    conditions: tuple[vocab.Term, ...]
    actions: tuple[vocab.Term, ...]
    status: str  # open | executed | cancelled
    created_height: int
    created_time: int
    closed_height: int  # 0 while open
    closed_txid: bytes  # the execute or cancel tx, b"" while open

    def to_obj(self) -> list[Any]:
        out: list[Any] = list(self)
        out[1] = list(self.parties)
        out[5] = [list(c) for c in self.conditions]
        out[6] = [list(a) for a in self.actions]
        return out

    @classmethod
    def from_obj(cls, obj: Any) -> Contract:
        f = encoding.as_list(obj, 12, "contract")
        parties = vocab.parties(f[1])
        conds, acts = vocab.terms(f[5], f[6], f[2], parties)
        return cls(
            encoding.as_bytes(f[0], "creator", size=ADDRESS_SIZE),
            parties,
            encoding.as_uint(f[2], "funded"),
            encoding.as_uint(f[3], "escrow"),
            encoding.as_uint(f[4], "expiry"),
            conds,
            acts,
            encoding.as_str(f[7], "status", max_len=16),
            encoding.as_uint(f[8], "created_height"),
            encoding.as_uint(f[9], "created_time"),
            encoding.as_uint(f[10], "closed_height"),
            encoding.as_bytes(f[11], "closed_txid", max_size=32),
        )

    def status_at(self, now: int) -> str:
        if self.status == OPEN and now >= self.expiry:
            return EXPIRED
        return self.status


class ApprovalHeight(int):
    """A party's approval as a state value: the height it was recorded at."""

    __slots__ = ()

    def to_obj(self) -> int:
        return int(self)

    @classmethod
    def from_obj(cls, obj: Any) -> ApprovalHeight:
        return cls(encoding.as_uint(obj, "approval height"))


class ContractTotals(NamedTuple):
    escrow: int = 0  # the sum of every contract's escrow (money held by contracts)
    contracts: int = 0  # contracts ever created

    def to_obj(self) -> list[int]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> ContractTotals:
        f = encoding.as_list(obj, 2, "contract totals")
        return cls(*(encoding.as_uint(x, "contract total") for x in f))


# --- access -------------------------------------------------------------------


def contract(view: StateRead, contract_id: bytes) -> Contract | None:
    c: Contract | None = view.get((CONTRACT_NS, contract_id))
    return c


def approved(view: StateRead, contract_id: bytes, party: bytes) -> int | None:
    """The height ``party`` approved the contract at, or None."""
    h: ApprovalHeight | None = view.get((APPROVAL_NS, approval_key(contract_id, party)))
    return None if h is None else int(h)


def totals(view: StateRead) -> ContractTotals:
    t: ContractTotals | None = view.get(_META_KEY)
    return ContractTotals() if t is None else t


def put_totals(view: StateAccess, t: ContractTotals) -> None:
    view.put(_META_KEY, t)


STATE_CODECS = {
    CONTRACT_NS: Contract.from_obj,
    APPROVAL_NS: ApprovalHeight.from_obj,
    META_NS: ContractTotals.from_obj,
}
