"""Shared builders for the certificates tests: signed cert txs, and a
``Certs`` driver (the metering driver with certificate steps and reads).

Certificates are observed through receipts and the pure query functions
of ``powernode.engines.certificates.queries`` (plus the id rules the README
states), as a client would."""

from __future__ import annotations

from typing import Any

from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction
from powernode.engines.certificates import queries
from powernode.engines.metering.params import cert_params
from tests.unit.helpers import LedgerFactory
from tests.unit.market_helpers import FEE, ROLES, market_tx
from tests.unit.metering_helpers import AUTHORITY, Metering, metering_params

PERIOD = (1_767_225_600, 1_767_312_000)  # 2026-01-01 UTC, a day of consumption


def root_id(device_id: bytes, interval_start: int) -> bytes:
    """The README's rule, restated here so the tests check it."""
    return sha256(b"powernode-cert" + device_id + interval_start.to_bytes(8, "big"))


def child_id(parent: bytes, txid: bytes) -> bytes:
    return sha256(b"powernode-cert-split" + parent + txid)


def issue_tx(
    sender: KeyPair, device_id: bytes, interval: int, wh: int, *, nonce: int, fee: int = FEE
) -> Transaction:
    return market_tx(sender, "cert.issue", [device_id, interval, wh], nonce=nonce, fee=fee)


def cert_transfer_tx(
    sender: KeyPair,
    cert_id: bytes,
    to: KeyPair | bytes,
    wh: int,
    *,
    nonce: int,
    fee: int = FEE,
) -> Transaction:
    addr = to if isinstance(to, bytes) else to.address
    return market_tx(sender, "cert.transfer", [cert_id, addr, wh], nonce=nonce, fee=fee)


def cert_retire_tx(
    sender: KeyPair,
    cert_id: bytes,
    wh: int,
    *,
    nonce: int,
    beneficiary: str = "consumer_001, Shanghai",
    purpose: str = "scope 2",
    period: tuple[int, int] = PERIOD,
    fee: int = FEE,
) -> Transaction:
    payload = [cert_id, wh, beneficiary, purpose, period[0], period[1]]
    return market_tx(sender, "cert.retire", payload, nonce=nonce, fee=fee)


class Certs(Metering):
    """The metering driver with certificate txs (queued for the next
    ``mine``) and certificate reads at the tip."""

    def issue(
        self, device_id: bytes, interval: int, wh: int, by: KeyPair = AUTHORITY, **kw: Any
    ) -> Transaction:
        return self.queue(issue_tx(by, device_id, interval, wh, nonce=self.nonce(by), **kw))

    def transfer_cert(
        self, sender: KeyPair, cert_id: bytes, to: KeyPair | bytes, wh: int, **kw: Any
    ) -> Transaction:
        tx = cert_transfer_tx(sender, cert_id, to, wh, nonce=self.nonce(sender), **kw)
        return self.queue(tx)

    def retire_cert(self, sender: KeyPair, cert_id: bytes, wh: int, **kw: Any) -> Transaction:
        return self.queue(cert_retire_tx(sender, cert_id, wh, nonce=self.nonce(sender), **kw))

    def signed(self, build: Any, sender: KeyPair, *args: Any, **kw: Any) -> Transaction:
        """A tx from ``build`` with the sender's next nonce, not queued."""
        return build(sender, *args, nonce=self.nonce(sender), **kw)

    def _clock(self) -> int:
        """The metering clock at the tip: what the queries judge expiry by."""
        tip = self.ledger.chain.tip.header.timestamp
        return max(self.market_time(), tip)

    def cert(self, cert_id: bytes) -> dict[str, Any]:
        c = queries.cert(self.state, cert_id, self._clock())
        assert c is not None, f"no certificate {cert_id.hex()}"
        return c

    def certs(self, **filters: Any) -> list[dict[str, Any]]:
        return queries.certs(self.state, now=self._clock(), **filters)

    def trace(self, cert_id: bytes) -> dict[str, Any]:
        t = queries.trace(self.state, cert_id)
        assert t is not None
        return t

    def verify(self, cert_id: bytes) -> dict[str, Any]:
        v = queries.verify(self.state, cert_id, self._clock())
        assert v is not None
        return v

    @property
    def cert_params(self) -> Any:
        return cert_params(self.params)


def open_certs(
    factory: LedgerFactory, certificates: dict[str, Any] | None = None, **overrides: Any
) -> Certs:
    """``open_metering``'s chain (the market cast registered in block 1,
    AUTHORITY the one authority), driven by ``Certs``."""
    m = Certs(factory.open(metering_params(certificates, **overrides)))
    for k, role in ROLES.items():
        m.register(k, role)
    regs = list(m.queued)
    m.mine()
    m.ok(*regs)
    return m
