"""Shared builders for the declarative contract tests: signed ``contract.*``
txs, and a ``Contracts`` driver (the certificates driver with contract steps
and reads).

Contracts are observed through receipts, balances and the pure query
functions of ``powernode.engines.contracts.contract_queries``, as a client
would; the contract address rule is restated here so the tests check it."""

from __future__ import annotations

from typing import Any

from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction
from powernode.engines.contracts import contract_queries as queries
from powernode.engines.contracts import ppa_queries
from powernode.engines.contracts.contract_vocab import TERM_FEE
from powernode.engines.market import queries as market_queries
from tests.unit.cert_helpers import Certs, open_certs
from tests.unit.helpers import LedgerFactory
from tests.unit.market_helpers import market_tx


def address_of_contract(contract_id: bytes) -> bytes:
    """The README's rule: SHA-256("powernode-contract" || id)[:20]."""
    return sha256(b"powernode-contract" + contract_id)[:20]


def addr(who: KeyPair | bytes) -> bytes:
    return who if isinstance(who, bytes) else who.address


def contract_fee(conditions: list[Any], actions: list[Any]) -> int:
    return TERM_FEE * (len(conditions) + len(actions))


def create_tx(
    sender: KeyPair,
    *,
    nonce: int,
    parties: list[KeyPair | bytes] = (),  # type: ignore[assignment]
    escrow: int = 0,
    expiry: int,
    conditions: list[Any] = (),  # type: ignore[assignment]
    actions: list[Any],
    fee: int | None = None,
) -> Transaction:
    conditions, actions = list(conditions), list(actions)
    payload = [[addr(p) for p in parties], escrow, expiry, conditions, actions]
    if fee is None:
        fee = contract_fee(conditions, actions)
    return market_tx(sender, "contract.create", payload, nonce=nonce, fee=fee)


def id_tx(
    sender: KeyPair, tx_type: str, contract_id: bytes, *, nonce: int, fee: int = 10
) -> Transaction:
    return market_tx(sender, tx_type, [contract_id], nonce=nonce, fee=fee)


class Contracts(Certs):
    """The certificates driver with contract txs (queued for the next
    ``mine``) and contract reads at the tip."""

    def create(self, sender: KeyPair, **kw: Any) -> Transaction:
        """Queue a contract.create; the contract's id is the tx's txid."""
        return self.queue(create_tx(sender, nonce=self.nonce(sender), **kw))

    def approve_contract(self, sender: KeyPair, cid: bytes, **kw: Any) -> Transaction:
        return self.queue(id_tx(sender, "contract.approve", cid, nonce=self.nonce(sender), **kw))

    def execute_contract(self, sender: KeyPair, cid: bytes, **kw: Any) -> Transaction:
        if "fee" not in kw:
            c = self.contract(cid)
            kw["fee"] = c["min_fee"]
        return self.queue(id_tx(sender, "contract.execute", cid, nonce=self.nonce(sender), **kw))

    def cancel_contract(self, sender: KeyPair, cid: bytes, **kw: Any) -> Transaction:
        return self.queue(id_tx(sender, "contract.cancel", cid, nonce=self.nonce(sender), **kw))

    def contract(self, cid: bytes) -> dict[str, Any]:
        c = queries.get(self.state, cid, self._clock())
        assert c is not None, f"no contract {cid.hex()}"
        return c

    def contracts(self, **filters: Any) -> list[dict[str, Any]]:
        return queries.contracts(self.state, now=self._clock(), **filters)

    def held(self) -> int:
        """Money held by contracts."""
        return queries.stats(self.state)["escrow"]

    def money(self) -> int:
        """Every account balance plus every escrow: the market's order and
        settlement escrows, the PPAs' and the declarative contracts'."""
        state = self.state
        total = sum(v.balance for v in state.namespace("acct").values())
        return (
            total
            + self.held()
            + market_queries.escrow_total(state)
            + market_queries.settlement_escrow_total(state)
            + ppa_queries.stats(state)["escrow"]
        )

    def clock(self) -> int:
        return self._clock()


def open_contracts(
    factory: LedgerFactory, certificates: dict[str, Any] | None = None, **overrides: Any
) -> Contracts:
    """``open_certs``'s chain (the market cast registered in block 1,
    AUTHORITY the one authority), driven by ``Contracts``."""
    m = open_certs(factory, certificates, **overrides)
    return Contracts(m.ledger, now=m.now)
