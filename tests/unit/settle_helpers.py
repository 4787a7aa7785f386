"""Shared builders for the settlement tests: the certificates driver with a
short reading window, and reads of trades, positions and settlements.

Time: the genesis is at T0; the cast trades spot slot ``SLOT`` (T0 + 3600,
900 s, gate at T0 + 3300); its metering interval is ``SLOT`` itself (900 s
intervals), so a reading for it can be sent from ``SLOT_END`` and the slot
settles in the first block whose clock is past ``SETTLE_AFTER``
(slot end + reading window, strictly after).
"""

from __future__ import annotations

from typing import Any

from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction
from powernode.engines.market import queries
from powernode.engines.settlement import queries as stl_queries
from tests.unit.cert_helpers import Certs
from tests.unit.helpers import LedgerFactory
from tests.unit.market_helpers import ROLES, SLOT
from tests.unit.metering_helpers import AUTHORITY, metering_params

WINDOW = 600
SLOT_END = SLOT + 900
SETTLE_AFTER = SLOT_END + WINDOW


def bundle_ref(seq: int) -> bytes:
    """The README's rule for the ref naming a trade's settlement, restated."""
    return sha256(b"powernode-trade-settle" + seq.to_bytes(8, "big"))


class Settle(Certs):
    def trade(self, seq: int) -> dict[str, Any]:
        t = queries.trade(self.state, seq)
        assert t is not None
        return t

    def position(self, k: KeyPair) -> dict[str, Any]:
        return queries.position(self.state, k.address)

    def settlements(self, **kw: Any) -> list[dict[str, Any]]:
        return stl_queries.settlements(self.state, **kw)

    def held(self) -> int:
        return queries.held_total(self.state)

    def settle(self) -> None:
        """Mine the first block past the reading window of ``SLOT``."""
        self.mine(max(self.now + 5, SETTLE_AFTER + 1))

    def trade_(
        self, seller: KeyPair, buyer: KeyPair, energy: int, price: int = 500_000, **kw: Any
    ) -> tuple[Transaction, Transaction]:
        """A sell then a buy at the same price that cross in full."""
        s = self.place(seller, "sell", energy=energy, price=price, **kw)
        b = self.place(buyer, "buy", energy=energy, price=price, **kw)
        return s, b


def open_settle(
    factory: LedgerFactory,
    markets: dict[str, Any] | None = None,
    roles: dict[KeyPair, str] | None = None,
    **certificates: Any,
) -> Settle:
    """The certificates chain (AUTHORITY the authority) with a ``WINDOW``
    reading window, the market cast registered in block 1."""
    section = {"authorities": [AUTHORITY.address.hex()], "reading_window": WINDOW, **certificates}
    m = Settle(factory.open(metering_params(section, markets)))
    for k, role in (ROLES if roles is None else roles).items():
        m.register(k, role)
    regs = list(m.queued)
    m.mine()
    m.ok(*regs)
    return m
