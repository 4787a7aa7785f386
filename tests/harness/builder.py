"""Build blocks off-line with a private ledger on the same genesis, to feed
a node crafted or competing blocks over RPC."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from powernode.chain.ledger import Ledger
from powernode.chain.store import BlockStore
from powernode.core.block import Block, make_block
from powernode.core.crypto import ZERO_ADDRESS
from powernode.core.tx import Transaction
from powernode.devnet.devchain import solve
from powernode.state.genesis import parse_genesis_json


def reheader(block: Block, **changes: object) -> Block:
    """Same txs, header fields changed, nonce re-solved."""
    return make_block(solve(block.header.replace(**changes)), block.txs)


class ChainBuilder:
    def __init__(self, genesis_path: Path, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.params = parse_genesis_json(genesis_path.read_bytes())
        self.store = BlockStore(workdir / "chain.db")
        self.store.open()
        self.ledger = Ledger(params=self.params, store=self.store)
        self.ledger.load()

    def close(self) -> None:
        self.store.close()

    def next_block(
        self,
        txs: Sequence[Transaction] = (),
        *,
        miner: bytes = ZERO_ADDRESS,
        now: int | None = None,
    ) -> Block:
        """A valid block on the builder's tip (not yet connected)."""
        now = int(time.time()) if now is None else now
        for tx in txs:
            self.ledger.submit_tx(tx, now=now)
        tmpl = self.ledger.template(miner, now=now)
        return make_block(solve(tmpl.header), tmpl.txs)

    def mine(
        self, n: int = 1, txs: Sequence[Transaction] = (), *, miner: bytes = ZERO_ADDRESS
    ) -> list[Block]:
        out = []
        for i in range(n):
            block = self.next_block(txs if i == 0 else (), miner=miner)
            self.ledger.submit_block(block, now=int(time.time()), mono=time.monotonic())
            out.append(block)
        return out
