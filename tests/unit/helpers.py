"""Shared builders for the unit suite: dev chain params, keys, txs, mining.

Everything here is deterministic: keys come from fixed seeds, block times from
the caller, and the dev target is trivial so a block is solved in one or two
PoW hashes.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from powernode.chain.ledger import Ledger
from powernode.chain.store import BlockStore
from powernode.core import encoding
from powernode.core.block import Block, BlockHeader, make_block
from powernode.core.crypto import KeyPair
from powernode.core.merkle import merkle_root
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction, decode_tx, sign_tx
from powernode.devnet.devchain import solve
from powernode.state.genesis import parse_genesis

CHAIN_ID = "unit"
GENESIS_TIME = 1_000
BLOCK_TIME = 5
EASY = "ff" * 32
COIN = 1_000_000
MONO = 0.0  # the orphan pool's clock; nothing in these tests expires


def key(i: int) -> KeyPair:
    """A fixed key per small integer, so failures reproduce."""
    return KeyPair.from_seed(bytes([i + 1]) * 32)


ALICE = key(0)
BOB = key(1)
CAROL = key(2)
DAVE = key(3)
MINER = key(10)
MINER_B = key(11)


def genesis_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "chain_id": CHAIN_ID,
        "timestamp": GENESIS_TIME,
        "initial_target": EASY,
        "pow_limit": EASY,
        "block_time": BLOCK_TIME,
        "dev": True,
        "allocations": {
            ALICE.address.hex(): 100 * COIN,
            BOB.address.hex(): 100 * COIN,
            CAROL.address.hex(): 100 * COIN,
        },
    }
    doc.update(overrides)
    return doc


def make_params(**overrides: Any) -> ChainParams:
    return parse_genesis(genesis_doc(**overrides))


def transfer(
    sender: KeyPair,
    to: KeyPair | bytes,
    amount: int,
    *,
    nonce: int,
    fee: int = 10,
    chain_id: str = CHAIN_ID,
) -> Transaction:
    addr = to if isinstance(to, bytes) else to.address
    return sign_tx(
        sender, chain_id=chain_id, tx_type="transfer", nonce=nonce, fee=fee, payload=[addr, amount]
    )


def tx_to_obj(tx: Transaction) -> list[Any]:
    """A tx's seven fields as the array its wire form encodes."""
    return [tx.chain_id, tx.type, tx.sender, tx.nonce, tx.fee, tx.payload, tx.signature]


def tamper_signature(tx: Transaction) -> Transaction:
    """The same tx with one signature bit flipped, re-encoded canonically."""
    obj = tx_to_obj(tx)
    sig = bytearray(obj[6])
    sig[0] ^= 0x01
    obj[6] = bytes(sig)
    return decode_tx(encoding.encode(obj))


# --- headers and blocks -------------------------------------------------------


def replace_header(header: BlockHeader, **fields: Any) -> BlockHeader:
    return header.replace(**fields)


def rebuild(block: Block, txs: Sequence[Transaction] | None = None, **fields: Any) -> Block:
    """``block`` with some header fields (and maybe its txs) replaced, re-solved.

    The tx root follows the new txs unless ``tx_root`` is given explicitly.
    """
    body = list(block.txs if txs is None else txs)
    if txs is not None and "tx_root" not in fields:
        fields["tx_root"] = merkle_root([tx.txid for tx in body])
    return make_block(solve(replace_header(block.header, **fields)), body)


def template(ledger: Ledger, now: int, miner: KeyPair = MINER) -> Block:
    """The ledger's next block, solved but not submitted."""
    b = ledger.template(miner.address, now=now)
    return make_block(solve(b.header), b.txs)


def mine(ledger: Ledger, now: int, miner: KeyPair = MINER) -> Block:
    """Mine the ledger's template at ``now`` and connect it; returns the block."""
    b = template(ledger, now, miner)
    outcome, _ = ledger.submit_block(b, now=now, mono=MONO)
    assert outcome == "connected", outcome
    return b


def total_supply(ledger: Ledger) -> int:
    return sum(v.balance for v in ledger.chain.state.namespace("acct").values())


# --- ledgers on disk ----------------------------------------------------------


class LedgerFactory:
    """Opens ledgers on fresh SQLite files and closes every store at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stores: list[BlockStore] = []
        self._n = 0

    def path(self) -> Path:
        self._n += 1
        return self.root / f"chain{self._n}.db"

    def open(self, params: ChainParams, path: Path | None = None, **kw: Any) -> Ledger:
        store = BlockStore(path if path is not None else self.path())
        store.open()
        self.stores.append(store)
        ledger = Ledger(params=params, store=store, **kw)
        ledger.load()
        return ledger

    def close_all(self) -> None:
        for s in self.stores:
            s.close()
        self.stores.clear()


@contextlib.contextmanager
def ledger_factory() -> Iterator[LedgerFactory]:
    """For hypothesis tests, where a function-scoped tmp_path cannot be reused."""
    with tempfile.TemporaryDirectory() as d:
        f = LedgerFactory(Path(d))
        try:
            yield f
        finally:
            f.close_all()


def replay(
    factory: LedgerFactory, params: ChainParams, blocks: Sequence[Block], now: int
) -> Ledger:
    """A fresh ledger that connects ``blocks`` from genesis."""
    fresh = factory.open(params)
    for b in blocks:
        outcome, _ = fresh.submit_block(b, now=now, mono=MONO)
        assert outcome == "connected", outcome
    return fresh


def active_blocks(ledger: Ledger) -> list[Block]:
    """The ledger's main chain, genesis excluded."""
    return [ledger.chain.get_block(e.hash) for e in ledger.chain.active[1:]]
