"""Shared builders for the PPA tests: signed ``ppa.*`` txs and a ``Ppas``
driver (the certificates driver with PPA steps and reads).

PPAs are observed through receipts, balances and the pure query functions
of ``powernode.engines.contracts.ppa_queries`` (plus the id rules the README
states), as a client would.

The seed's example: contract_001, producer_001 (ALICE, with a solar device)
sells consumer_001 (BOB) 1,000 kWh at 0.50 per kWh over 30 days.
"""

from __future__ import annotations

from typing import Any

from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction
from powernode.engines.contracts import ppa_queries
from powernode.engines.contracts.ppa_records import allocated
from tests.unit.cert_helpers import Certs
from tests.unit.helpers import LedgerFactory
from tests.unit.market_helpers import DAY, FEE, KWH, ROLES, T0, UNIT, market_tx
from tests.unit.metering_helpers import metering_params

PRICE = UNIT // 2  # 0.50 per kWh, in micro-units
TOTAL = 1_000 * KWH  # 1,000 kWh
DEADLINE = T0 + 6 * 3_600  # before the end of even a 1-day term


def delivery_id(ppa_id: bytes, seq: int) -> bytes:
    """The README's rule, restated here so the tests check it."""
    return sha256(b"powernode-ppa-delivery" + ppa_id + seq.to_bytes(4, "big"))


def propose_payload(
    buyer: KeyPair | bytes,
    *,
    device: bytes = b"",
    share_bps: int | None = None,
    total_wh: int = TOTAL,
    price: int = PRICE,
    start: int = T0,
    duration_days: int = 30,
    period_seconds: int = 30 * DAY,
    accept_deadline: int = DEADLINE,
) -> list[Any]:
    addr = buyer if isinstance(buyer, bytes) else buyer.address
    if share_bps is None:
        share_bps = 10_000 if device else 0
    return [
        addr, device, share_bps, total_wh, price, start, duration_days, period_seconds,
        accept_deadline,
    ]  # fmt: skip


def ppa_tx(
    sender: KeyPair, tx_type: str, payload: list[Any], *, nonce: int, fee: int = FEE
) -> Transaction:
    return market_tx(sender, tx_type, payload, nonce=nonce, fee=fee)


class Ppas(Certs):
    """The certificates driver with PPA txs (queued for the next ``mine``,
    or only signed with ``sign=True``) and PPA reads at the tip."""

    def ppa_tx(self, sender: KeyPair, tx_type: str, payload: list[Any], **kw: Any) -> Transaction:
        return ppa_tx(sender, tx_type, payload, nonce=self.nonce(sender), **kw)

    def _q(self, tx: Transaction, sign: bool) -> Transaction:
        return tx if sign else self.queue(tx)

    def propose(
        self, seller: KeyPair, buyer: KeyPair | bytes, *, sign: bool = False, **kw: Any
    ) -> Transaction:
        return self._q(self.ppa_tx(seller, "ppa.propose", propose_payload(buyer, **kw)), sign)

    def accept(self, buyer: KeyPair, pid: bytes, *, sign: bool = False) -> Transaction:
        return self._q(self.ppa_tx(buyer, "ppa.accept", [pid]), sign)

    def reject(self, buyer: KeyPair, pid: bytes, *, sign: bool = False) -> Transaction:
        return self._q(self.ppa_tx(buyer, "ppa.reject", [pid]), sign)

    def fund(self, buyer: KeyPair, pid: bytes, amount: int, *, sign: bool = False) -> Transaction:
        return self._q(self.ppa_tx(buyer, "ppa.fund", [pid, amount]), sign)

    def deliver(
        self, seller: KeyPair, pid: bytes, wh: int, interval: int = T0, *, sign: bool = False
    ) -> Transaction:
        return self._q(self.ppa_tx(seller, "ppa.deliver", [pid, wh, interval]), sign)

    def confirm(self, buyer: KeyPair, pid: bytes, seq: int, *, sign: bool = False) -> Transaction:
        return self._q(self.ppa_tx(buyer, "ppa.confirm", [pid, seq]), sign)

    def terminate(self, party: KeyPair, pid: bytes, *, sign: bool = False) -> Transaction:
        return self._q(self.ppa_tx(party, "ppa.terminate", [pid]), sign)

    # --- reads ----------------------------------------------------------------

    def ppa(self, pid: bytes | Transaction) -> dict[str, Any]:
        if isinstance(pid, Transaction):
            pid = pid.txid
        out = ppa_queries.get(self.state, pid, self._clock())
        assert out is not None, f"no PPA {pid.hex()}"
        return out

    def ppa_status(self, pid: bytes) -> str:
        s: str = self.ppa(pid)["status"]
        return s

    def ppas(self, **filters: Any) -> list[dict[str, Any]]:
        return ppa_queries.list_ppas(self.state, now=self._clock(), **filters)

    def ppa_escrow_total(self) -> int:
        return ppa_queries.stats(self.state)["escrow"]

    def allocated(self, device: bytes, interval: int) -> int:
        return allocated(self.state, device, interval)

    def proposed(self, seller: KeyPair, buyer: KeyPair, **kw: Any) -> bytes:
        """Propose and mine it; the PPA id."""
        tx = self.propose(seller, buyer, **kw)
        self.mine()
        self.ok(tx)
        return tx.txid

    def active(self, seller: KeyPair, buyer: KeyPair, **kw: Any) -> bytes:
        """Propose, accept, two blocks; the PPA id."""
        pid = self.proposed(seller, buyer, **kw)
        tx = self.accept(buyer, pid)
        self.mine()
        self.ok(tx)
        return pid


def open_ppas(
    factory: LedgerFactory, certificates: dict[str, Any] | None = None, **overrides: Any
) -> Ppas:
    """The certificates tests' chain (market cast registered in block 1,
    AUTHORITY the one authority), driven by ``Ppas``."""
    m = Ppas(factory.open(metering_params(certificates, **overrides)))
    for k, role in ROLES.items():
        m.register(k, role)
    regs = list(m.queued)
    m.mine()
    m.ok(*regs)
    return m
