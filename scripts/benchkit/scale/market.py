"""Row: matching and block application against the number of resting
orders, spread over ``slots`` delivery slots of the spot market.

The book is built through ``apply_block`` (untimed): ``resting`` limit
orders, bids at 0.10..0.40 and asks at 0.60..0.90 per kWh, so none crosses.
Then ``reps`` blocks of ``block_orders`` orders each are timed through
``apply_block`` on the same state: half are bids at 0.95 that cross the
best asks of their slot (matching, fills, settlement escrow), half rest at
0.45/0.55 (a new price level in a deep book). The signatures are checked
ahead in the node, so ``apply_block`` checks none: the figure is the state
machine's.
"""

from __future__ import annotations

from typing import Any

from benchkit.certs import Chain
from benchkit.guard import median, progress
from powernode.core.crypto import KeyPair, sha256
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction, sign_tx
from powernode.devnet.devchain import DEV_CERTIFICATES, dev_genesis
from powernode.state.genesis import parse_genesis

CHAIN_ID = "bench-scale-market"
T0 = 1_767_268_800
SLOT0 = T0 + 6 * 3600
TICK = 10_000
FEE = 10
PARTICIPANTS = 200
DAY = 86_400


class Book:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.keys = [
            KeyPair.from_seed(sha256(b"bench-scale-mkt-%d" % i)) for i in range(PARTICIPANTS)
        ]
        self.nonces = [0] * PARTICIPANTS
        lead = (SLOT0 - T0) + 900 * slots + DAY
        doc = dev_genesis(
            {k.address: 10**13 for k in self.keys},
            chain_id=CHAIN_ID,
            timestamp=T0,
            block_time=10,
            target="ff" * 32,
            markets={"spot": {"open_hour": 0, "close_hour": 24, "max_lead_seconds": lead}},
            certificates={"authorities": [self.keys[0].address.hex()], **DEV_CERTIFICATES},
            max_block_txs=100_000,
            max_block_bytes=8 * 1024 * 1024,
        )
        self.params: ChainParams = parse_genesis(doc)

    def sign(self, who: int, kind: str, payload: list[Any]) -> Transaction:
        n = self.nonces[who]
        self.nonces[who] = n + 1
        return sign_tx(
            self.keys[who], chain_id=CHAIN_ID, tx_type=kind, nonce=n, fee=FEE, payload=payload
        )

    def order(self, i: int, side: str, ticks: int) -> Transaction:
        slot = SLOT0 + 900 * (i % self.slots)
        energy = (1 + i % 50) * 1000
        return self.sign(i % PARTICIPANTS, "order.place",
                         ["spot", side, slot, energy, ticks * TICK, "any" if side == "buy" else "solar", 0, "GTC"])  # fmt: skip


def one_size(resting: int, slots: int, block_orders: int, reps: int) -> dict[str, Any]:
    book = Book(slots)
    chain = Chain.start(book.params)
    regs = [book.sign(i, "participant.register", ["prosumer", f"zone-{i % 8}", 10**9])
            for i in range(PARTICIPANTS)]  # fmt: skip
    chain.connect(regs, T0 + 1)
    progress(f"market {resting:,} resting: signing and applying the book")
    orders = []
    for i in range(resting):
        side = "buy" if i % 2 == 0 else "sell"
        ticks = 10 + (i // 2) % 31 if side == "buy" else 60 + (i // 2) % 31
        orders.append(book.order(i, side, ticks))
    for start in range(0, len(orders), 5000):
        chain.connect(orders[start : start + 5000], T0 + 2 + start // 5000)
    if chain.failed:
        raise RuntimeError(f"market book: {chain.failed} failed receipts: {chain.failures}")
    timed: list[list[Transaction]] = []
    for r in range(reps):
        block = []
        for j in range(block_orders):
            i = resting + r * block_orders + j
            if j % 2 == 0:
                block.append(book.order(i, "buy", 95))
            else:
                block.append(
                    book.order(i, "buy" if j % 4 == 1 else "sell", 45 if j % 4 == 1 else 55)
                )
        timed.append(block)
    times = []
    at = T0 + 100
    for r, block in enumerate(timed):
        times.append(chain.connect(block, at + r) * 1000)
    if chain.failed:
        raise RuntimeError(f"market blocks: {chain.failed} failed receipts: {chain.failures}")
    out = {
        "resting": resting,
        "slots": slots,
        "block_orders": block_orders,
        "block_ms": times,
        "block_ms_median": median(times),
        "us_per_order": median(times) * 1000 / block_orders,
    }
    progress(
        f"market {resting:,} resting: block of {block_orders:,} orders {out['block_ms_median']:.1f} ms"
    )
    return out


def run(sizes: list[int], slots: int, block_orders: int, reps: int) -> list[dict[str, Any]]:
    return [one_size(n, slots, block_orders, reps) for n in sizes]
