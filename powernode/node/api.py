"""What the network side and the RPC see of the node: a narrow interface.

P2P, gossip and sync hand the node a block or a batch of txs and read the
chain and the mempool through ``NodeApi``; they never reach into ``Node``,
its ledger or each other's private state. ``Node`` implements it; a test can
stand in for it with anything that has these members.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from powernode.chain.chain import Chain, ChainUpdate
from powernode.chain.mempool import Mempool
from powernode.core.block import Block
from powernode.core.errors import PowernodeError
from powernode.core.tx import Transaction

# One result per submitted tx: its id if admitted, else why not.
TxResult = tuple[bytes | None, PowernodeError | None]
# A tx to admit: decoded, refused already (its error is its result), or
# still to decode (called when the admission pipeline reaches it, so the
# signature workers start on the first txs while later ones are bytes).
TxInput = Transaction | PowernodeError | Callable[[], Transaction]


class Spawn(Protocol):
    """Start a background task that its caller's owner keeps and cancels at
    stop (``P2P._spawn``)."""

    def __call__(self, coro: Coroutine[Any, Any, None], name: str) -> None: ...


class NodeApi(Protocol):
    @property
    def chain(self) -> Chain:
        """The block tree and the tip state (read only: change it through
        ``accept_block``)."""
        ...

    @property
    def mempool(self) -> Mempool:
        """The pending txs (read only: change it through ``submit_and_relay``)."""
        ...

    def decode_tx(self, raw: bytes, txid: bytes | None = None) -> Transaction:
        """A tx from its bytes, as ``core.tx.decode_tx`` gives it (with the
        ledger's fast decoder: ``chain/txdecode.py``); raises a typed error.
        ``txid``, if given, is the SHA-256 of ``raw``, already computed."""
        ...

    def accept_block(self, block: Block, *, source: str = "") -> tuple[str, ChainUpdate]:
        """Validate and store a block, activate the most-work chain and tell
        the miner and peers; ``source`` is the peer it came from, for the
        logs. Returns the outcome (``connected``, ``side``,
        ``orphan`` or ``duplicate``) and what the chain did; raises a typed
        error for an invalid block."""
        ...

    async def check_signatures(self, txs: Sequence[Transaction]) -> None:
        """Check ahead the signatures of a block's txs not in the signature
        cache (in the verify workers, off the event loop) and cache the good
        ones, so its connect finds them warm. A bad one is left for the
        connect to find: the block is refused there, as always."""
        ...

    async def submit_and_relay(
        self, txs: Sequence[TxInput], *, source: int | None = None
    ) -> list[TxResult]:
        """Admit txs to the mempool (one result per input, in order) and
        announce the admitted ones to every peer but ``source`` (a peer id).
        An input still to decode that raises a typed error gets it as its
        result."""
        ...
