"""The contract between the state machine and the engines.

Engines import only core, so the interfaces they program against live here:
``StateAccess`` (a journaled view they read and write), ``ExecContext`` (the
block being executed) and ``TxHandler`` (what an engine registers per tx type).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from powernode.core.params import ChainParams
from powernode.core.tx import Transaction

# A state key is (namespace, key bytes); each engine owns its namespaces.
StateKey = tuple[str, bytes]


class StateValue(Protocol):
    def to_obj(self) -> Any: ...


class StateRead(Protocol):
    def get(self, key: StateKey) -> Any: ...


class StateAccess(StateRead, Protocol):
    def put(self, key: StateKey, value: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class ExecContext:
    """What a tx may know about the block that executes it: no wall clock."""

    height: int
    timestamp: int
    miner: bytes
    params: ChainParams


# An event is a small record of what a tx did, kept in receipts: str keys,
# int/str/bytes values (bytes are shown as hex over RPC).
Event = dict[str, Any]


class TxHandler(Protocol):
    tx_type: str

    def decode(self, payload: list[Any]) -> Any:
        """Typed payload from the envelope's array; raises a typed error."""
        ...

    def max_debit(self, payload: Any, params: ChainParams) -> int:
        """Most the tx can take from its sender beyond the fee (for mempool
        affordability checks across a sender's queued txs)."""
        ...

    def precheck(self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: Any) -> None:
        """Extra admission checks against the tip state; raise to refuse."""
        ...

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: Any
    ) -> list[Event]:
        """Execute; raise a typed error to fail the tx (its writes are reverted)."""
        ...


class BlockHook(Protocol):
    """Work an engine does at the start of every block, before its txs (the
    market's expiries and gate closures). Must not fail for a valid state."""

    def __call__(self, view: StateAccess, ctx: ExecContext) -> None: ...
