"""Shared builders for the market tests: genesis params, signed market txs, and
a ``Market`` driver that mines blocks with exactly the txs a test queued, in
the order it queued them (time priority is position in the chain, so tests
must control it), or with the ledger's mempool.

The market is observed only through its public surfaces: receipts, account
balances and the pure query functions in ``powernode.engines.market.queries``,
never through its state records.

Time: the genesis is at ``T0`` (2026-01-01 12:00 UTC, inside the default
trading hours 8-22 UTC); ``SLOT`` is the spot delivery slot an hour later, so
its gate (slot - 300 s) closes at ``T0 + 3300``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from powernode.chain.ledger import Ledger
from powernode.core.block import BLOCK_VERSION, Block, make_block, make_header
from powernode.core.crypto import KeyPair
from powernode.core.errors import PowernodeError
from powernode.core.merkle import merkle_root
from powernode.core.params import ChainParams
from powernode.core.pow import target_to_bytes
from powernode.core.tx import Transaction, sign_tx
from powernode.engines.market import queries
from powernode.state.apply import BlockResult, apply_tx, begin_block, finish_block, seal
from powernode.state.view import StateView
from tests.unit.helpers import (
    ALICE,
    BLOCK_TIME,
    BOB,
    CAROL,
    CHAIN_ID,
    DAVE,
    MINER,
    MONO,
    LedgerFactory,
    key,
    make_params,
    solve,
    transfer,
)

T0 = 1_767_268_800  # 2026-01-01 12:00:00 UTC, a multiple of 900
DAY_START = T0 - 12 * 3600  # 2026-01-01 00:00:00 UTC
HOUR = 3_600
DAY = 86_400
SLOT = T0 + HOUR  # spot slot, gate at T0 + 3300
SLOT2 = T0 + 2 * HOUR
FWD_SLOT = T0 + 2 * DAY  # forward trades slots 1 day .. 1 year ahead
RES_SLOT = T0 + HOUR  # reserve: a uniform-price call auction at the gate

KWH = 1_000  # Wh
UNIT = 1_000_000  # micro-units
FEE = 10
REWARD = 50 * UNIT  # the default block reward
FUNDS = 10_000 * UNIT  # each trader's genesis allocation
CAPACITY_W = 40_000_000  # 10,000 kWh per 15-minute slot: the max order size

ERIN = key(4)  # poor: funded with a little over one unit
ERIN_FUNDS = UNIT + 1_000
TRADERS = (ALICE, BOB, CAROL, DAVE)

# The standard cast registered by ``open_market``.
ROLES = {ALICE: "producer", BOB: "consumer", CAROL: "prosumer", DAVE: "consumer"}


def market_params(
    markets: dict[str, Any] | None = None,
    *,
    timestamp: int = T0,
    allocations: dict[str, int] | None = None,
    **overrides: Any,
) -> ChainParams:
    if allocations is None:
        allocations = {k.address.hex(): FUNDS for k in TRADERS}
        allocations[ERIN.address.hex()] = ERIN_FUNDS
    return make_params(
        timestamp=timestamp, allocations=allocations, markets=markets or {}, **overrides
    )


def genesis_money(params: ChainParams) -> int:
    return sum(amount for _, amount in params.allocations)


# --- transactions -------------------------------------------------------------


def market_tx(
    sender: KeyPair, tx_type: str, payload: list[Any], *, nonce: int, fee: int = FEE
) -> Transaction:
    return sign_tx(
        sender, chain_id=CHAIN_ID, tx_type=tx_type, nonce=nonce, fee=fee, payload=payload
    )


def register_tx(
    sender: KeyPair,
    role: str,
    *,
    nonce: int,
    capacity_w: int = CAPACITY_W,
    location: str = "zone-1",
    fee: int = FEE,
) -> Transaction:
    return market_tx(
        sender, "participant.register", [role, location, capacity_w], nonce=nonce, fee=fee
    )


def place_payload(
    side: str,
    *,
    product: str = "spot",
    slot: int = SLOT,
    energy: int = 10 * KWH,
    price: int = 500_000,
    source: str | None = None,
    expiry: int = 0,
    tif: str = "GTC",
) -> list[Any]:
    if source is None:
        source = "any" if side == "buy" else "solar"
    return [product, side, slot, energy, price, source, expiry, tif]


def place_tx(
    sender: KeyPair, side: str, *, nonce: int, fee: int = FEE, **order: Any
) -> Transaction:
    return market_tx(sender, "order.place", place_payload(side, **order), nonce=nonce, fee=fee)


def cancel_tx(sender: KeyPair, order_id: bytes, *, nonce: int, fee: int = FEE) -> Transaction:
    return market_tx(sender, "order.cancel", [order_id], nonce=nonce, fee=fee)


def cost(price: int, energy: int) -> int:
    """A trade's value: price (micro/kWh) x energy (Wh) // 1000."""
    return price * energy // 1000


def as_hex(v: Any) -> Any:
    return v.hex() if isinstance(v, bytes) else v


# --- the driver ---------------------------------------------------------------


class Market:
    """A ledger plus a queue of txs for the next block, and a clock."""

    def __init__(self, ledger: Ledger, *, now: int | None = None) -> None:
        self.ledger = ledger
        self.now = ledger.chain.tip.header.timestamp if now is None else now
        self.queued: list[Transaction] = []

    @property
    def state(self) -> Any:
        return self.ledger.chain.state

    @property
    def params(self) -> ChainParams:
        return self.ledger.params

    # --- building txs -------------------------------------------------------

    def nonce(self, sender: KeyPair) -> int:
        """The next nonce of ``sender``, counting its pending and queued txs."""
        n = self.ledger.next_nonce(sender.address)
        return n + sum(1 for tx in self.queued if tx.sender_address == sender.address)

    def queue(self, tx: Transaction) -> Transaction:
        self.queued.append(tx)
        return tx

    def register(self, sender: KeyPair, role: str, **kw: Any) -> Transaction:
        return self.queue(register_tx(sender, role, nonce=self.nonce(sender), **kw))

    def place(self, sender: KeyPair, side: str, **kw: Any) -> Transaction:
        """Queue an order; its id is the returned tx's txid."""
        return self.queue(place_tx(sender, side, nonce=self.nonce(sender), **kw))

    def cancel(self, sender: KeyPair, order_id: bytes, **kw: Any) -> Transaction:
        return self.queue(cancel_tx(sender, order_id, nonce=self.nonce(sender), **kw))

    def place_signed(self, sender: KeyPair, side: str, **kw: Any) -> Transaction:
        """An order signed with the next nonce but not queued."""
        return place_tx(sender, side, nonce=self.nonce(sender), **kw)

    # --- the mempool --------------------------------------------------------

    def submit(self, tx: Transaction, *, now: int | None = None) -> bytes:
        return self.ledger.submit_tx(tx, now=self.now if now is None else now)

    def refused(self, tx: Transaction, *, now: int | None = None) -> str:
        """The code admission refuses ``tx`` with (fails if it is admitted)."""
        with pytest.raises(PowernodeError) as info:
            self.submit(tx, now=now)
        assert tx.txid not in self.ledger.mempool.by_id
        return info.value.code

    # --- blocks -------------------------------------------------------------

    def execute(
        self, txs: Sequence[Transaction], at: int, miner: KeyPair = MINER
    ) -> tuple[BlockResult, int]:
        """Execute ``txs`` on the tip as the next block at ``at`` (consensus
        rules only, as ``apply_block`` does: no miner policy leaves anything
        out), without connecting it. Raises the typed error of a tx whose
        envelope is invalid."""
        chain = self.ledger.chain
        ctx = self.ledger.next_context(at, miner.address)
        view = StateView(chain.state)
        begin_block(view, ctx)
        receipts = [apply_tx(view, ctx, tx) for tx in txs]
        finish_block(view, ctx, sum(tx.fee for tx in txs))
        return seal(view, chain.tip.header.state_root, receipts), ctx.timestamp

    def make_block(self, txs: Sequence[Transaction], at: int, miner: KeyPair = MINER) -> Block:
        """A solved block on the tip holding exactly ``txs``, not connected."""
        result, ts = self.execute(txs, at, miner)
        chain = self.ledger.chain
        tip = chain.tip
        header = make_header(
            BLOCK_VERSION,
            tip.height + 1,
            tip.hash,
            ts,
            target_to_bytes(chain.expected_target(tip)),
            0,
            merkle_root([tx.txid for tx in txs]),
            result.state_root,
            miner.address,
        )
        return make_block(solve(header), tuple(txs))

    def connect(self, block: Block) -> Block:
        now = max(self.now, block.header.timestamp)
        outcome, _ = self.ledger.submit_block(block, now=now, mono=MONO)
        assert outcome == "connected", outcome
        self.now = now
        return block

    def mine(self, at: int | None = None, *, miner: KeyPair = MINER) -> Block:
        """Connect the next block at ``at`` (default: 5 s on). With txs queued it
        holds exactly those, in order; otherwise the mempool's template."""
        at = self.now + BLOCK_TIME if at is None else at
        if self.queued:
            txs, self.queued = self.queued, []
            return self.connect(self.make_block(txs, at, miner))
        b = self.ledger.template(miner.address, now=at)
        return self.connect(make_block(solve(b.header), b.txs))

    # --- observing ----------------------------------------------------------

    def receipt(self, tx: Transaction) -> dict[str, Any]:
        status = self.ledger.tx_status(tx.txid)
        assert status["status"] == "confirmed", status
        r: dict[str, Any] = status["receipt"]
        return r

    def ok(self, *txs: Transaction) -> None:
        for tx in txs:
            r = self.receipt(tx)
            assert r["status"] == "ok", (tx.type, r.get("error"))

    def failed(self, tx: Transaction) -> str:
        r = self.receipt(tx)
        assert r["status"] == "failed", r
        assert r["fee"] == tx.fee
        code: str = r["error"]["code"]
        return code

    def events(self, tx: Transaction, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.receipt(tx)["events"] if kind is None or e["event"] == kind]

    def balance(self, k: KeyPair) -> int:
        return self.ledger.account(k.address).balance

    def balances(self, keys: Iterable[KeyPair] = (*TRADERS, ERIN)) -> dict[KeyPair, int]:
        return {k: self.balance(k) for k in keys}

    def order(self, order: Transaction | bytes) -> dict[str, Any]:
        oid = order.txid if isinstance(order, Transaction) else order
        o = queries.order(self.state, oid)
        assert o is not None, f"no order {oid.hex()}"
        return o

    def status(self, order: Transaction | bytes) -> str:
        s: str = self.order(order)["status"]
        return s

    def book(self, product: str = "spot", slot: int = SLOT) -> dict[str, Any]:
        return queries.book(self.state, product, slot)

    def depth(self, product: str = "spot", slot: int = SLOT) -> tuple[list[Any], list[Any]]:
        """(bids, asks) as (price, energy, orders) tuples, best first."""
        b = self.book(product, slot)
        return (
            [(lv["price"], lv["energy"], lv["orders"]) for lv in b["bids"]],
            [(lv["price"], lv["energy"], lv["orders"]) for lv in b["asks"]],
        )

    def trades(self, **filters: Any) -> list[dict[str, Any]]:
        return queries.trades(self.state, **filters)

    def fills(self, **filters: Any) -> list[tuple[str, str, int, int]]:
        """Trades as (buy order id, sell order id, energy, price), oldest first."""
        return [
            (as_hex(t["buy_id"]), as_hex(t["sell_id"]), t["energy"], t["price"])
            for t in self.trades(**filters)
        ]

    def escrow_total(self) -> int:
        return queries.escrow_total(self.state)

    def settlement_escrow_total(self) -> int:
        return queries.settlement_escrow_total(self.state)

    def owed(self, k: KeyPair) -> int:
        """What ``k`` is due as the seller of its confirmed trades if they are
        delivered in full (value less seller fee): a seller is paid only when
        the slot settles (engines/settlement, test_settlement.py)."""
        me = k.address.hex()
        return sum(
            t["value"] - t["seller_fee"]
            for t in self.trades(participant=k.address)
            if t["seller"] == me and t["status"] == "confirmed"
        )

    def market_time(self) -> int:
        return queries.market_time(self.state)

    # --- asserting failures -------------------------------------------------

    def assert_fails_in_block(self, sender: KeyPair, tx: Transaction, code: str) -> Block:
        """Mine ``tx`` (after whatever is queued) in a block: it must give a
        failed receipt with ``code``, with its fee charged and nonce used and
        nothing else changed. "Nothing else" is checked as equality of state
        roots with the same block where ``tx`` is replaced by a no-op (a
        transfer of 1 to the sender itself, same nonce and fee)."""
        at = self.now + BLOCK_TIME
        before = self.ledger.account(sender.address)
        noop = transfer(sender, sender, 1, nonce=tx.nonce, fee=tx.fee)
        with_tx, _ = self.execute([*self.queued, tx], at)
        with_noop, _ = self.execute([*self.queued, noop], at)
        r = with_tx.receipts[-1]
        assert (r.ok, r.code) == (False, code), (r.ok, r.code, r.message)
        assert with_tx.state_root == with_noop.state_root
        self.queue(tx)
        block = self.mine(at)
        assert self.failed(tx) == code
        after = self.ledger.account(sender.address)
        if not any(t.sender_address == sender.address for t in block.txs[:-1]):
            assert after.nonce == before.nonce + 1
            assert after.balance == before.balance - tx.fee
        return block

    def assert_block_refused(self, tx: Transaction, code: str) -> None:
        """``tx`` cannot be in a block at all (an envelope failure): a block
        builder leaves it out, and a block holding it is invalid."""
        with pytest.raises(PowernodeError) as info:
            self.execute([tx], self.now + BLOCK_TIME)
        assert info.value.code == code
        good = self.make_block([], self.now + BLOCK_TIME)
        bad = make_block(
            solve(good.header.replace(tx_root=merkle_root([tx.txid]))),
            (tx,),
        )
        with pytest.raises(PowernodeError) as info:
            self.ledger.submit_block(bad, now=self.now + BLOCK_TIME, mono=MONO)
        assert info.value.code == "bad_tx_in_block"
        assert code in info.value.message
        assert self.ledger.chain.tip.hash != bad.hash


def open_market(
    factory: LedgerFactory,
    markets: dict[str, Any] | None = None,
    *,
    register: bool = True,
    timestamp: int = T0,
    roles: dict[KeyPair, str] | None = None,
    capacity_w: int = CAPACITY_W,
    **overrides: Any,
) -> Market:
    """A fresh ledger whose first block (at genesis + 5 s) registers the cast:
    ALICE producer, BOB consumer, CAROL prosumer, DAVE consumer (ERIN never)."""
    ledger = factory.open(market_params(markets, timestamp=timestamp, **overrides))
    m = Market(ledger)
    if register:
        for k, role in (ROLES if roles is None else roles).items():
            m.register(k, role, capacity_w=capacity_w)
        regs = list(m.queued)
        m.mine()
        m.ok(*regs)
    return m
