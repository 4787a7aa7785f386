"""The contract between the state machine and the engines.

Engines import only core, so the interfaces they program against live here:
``StateAccess`` (a journaled view they read and write), ``ExecContext`` (the
block being executed), ``TxHandler`` (what an engine registers per tx type)
and ``Engine`` (the one record through which an engine plugs in; the
registry in ``state/registry.py`` lists them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from powernode.core.params import ChainParams, GenesisSection
from powernode.core.tx import Transaction

# A state key is (namespace, key bytes); each engine owns its namespaces.
StateKey = tuple[str, bytes]


class StateRead(Protocol):
    def get(self, key: StateKey) -> Any: ...


class StateAccess(StateRead, Protocol):
    def put(self, key: StateKey, value: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class ExecContext:
    """What a tx may know about the block that executes it: no wall clock.
    Engines reach their typed genesis params through
    ``params.engine_params(name)``."""

    height: int
    timestamp: int
    miner: bytes
    params: ChainParams


# An event is a small record of what a tx did, kept in receipts: str keys,
# int/str/bytes values (bytes are shown as hex over RPC).
Event = dict[str, Any]

# Extra admission checks of a tx type against the tip state (mempool and
# block templates, not consensus): raise a typed error to refuse.
Precheck = Callable[[StateAccess, ExecContext, Transaction, Any], None]


class TxHandler(Protocol):
    @property
    def tx_type(self) -> str: ...

    def decode(self, payload: list[Any]) -> Any:
        """Typed payload from the envelope's array; raises a typed error."""
        ...

    def max_debit(self, payload: Any, params: ChainParams) -> int:
        """Most the tx can take from its sender beyond the fee (for mempool
        affordability checks across a sender's queued txs)."""
        ...

    @property
    def precheck(self) -> Precheck | None:
        """The tx type's admission checks, or None when it has none (then
        admission does not build the state view and context they would need)."""
        ...

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: Any
    ) -> list[Event]:
        """Execute; raise a typed error to fail the tx (its writes are reverted)."""
        ...


# A signature a tx carries besides its sender's, checked with it (a meter's
# signature over its reading): (public key, signature, signed message).
CoSig = tuple[bytes, bytes, bytes]


class CoSigned(Protocol):
    """What a handler whose tx type carries co-signatures adds (an optional
    attribute: handlers without it carry none)."""

    def cosignatures(self, tx: Transaction) -> tuple[CoSig, ...]:
        """The co-signatures in ``tx``'s payload, read without state. Must not
        raise: for a payload it cannot read it returns ``()`` (``decode``
        refuses that payload later)."""
        ...


class TemplateChecked(Protocol):
    """What a handler adds whose tx a miner should judge at its place in a
    block by a looser rule than admission's ``precheck`` (an optional
    attribute: without it the template runs ``precheck``). Miner policy, not
    consensus: a ``meter.batch`` is worth including while one entry would
    still record, though admission wants every entry to."""

    def template_check(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: Any
    ) -> None: ...


class Weighed(Protocol):
    """What a handler adds whose tx counts as more than one tx toward
    ``max_block_txs`` (an optional attribute: without it a tx counts 1).
    Consensus: a block over the limit is invalid."""

    def weight(self, payload: Any) -> int:
        """The tx's weight from its undecoded payload; must not raise (a
        payload ``decode`` refuses still gets a weight, at least 1)."""
        ...


class AfterTx(Protocol):
    """Work an engine does right after another engine's tx of one type has
    applied (certificates issued by a meter reading): same tx, same revert
    scope, so a raise fails the whole tx. Returns events for its receipt."""

    def __call__(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, payload: Any
    ) -> list[Event]: ...


class BlockHook(Protocol):
    """Work an engine does at the start of every block, before its txs (the
    market's expiries and gate closures). Must not fail for a valid state."""

    def __call__(self, view: StateAccess, ctx: ExecContext) -> None: ...


# Decodes a namespace's canonical stored form into its state value.
StateCodec = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Engine:
    """An engine as the state machine sees it.

    - ``name``: stable, unique; keys its typed params in ``ChainParams``.
    - ``handlers``: one per tx type it owns (tx types are unique chain-wide).
    - ``state_codecs``: namespace -> decoder of the stored form, for every
      namespace it writes (namespaces are unique chain-wide).
    - ``begin_block``: run at the start of every block, in registry order.
    - ``genesis``: its section of the genesis file and the parser into typed
      params, if it has one.
    - ``after_tx``: tx type (of any engine) -> hook run after such a tx
      applied, in registry order of the engines that have one.
    """

    name: str
    handlers: tuple[TxHandler, ...]
    state_codecs: Mapping[str, StateCodec] = field(default_factory=dict)
    begin_block: BlockHook | None = None
    genesis: GenesisSection | None = None
    after_tx: Mapping[str, AfterTx] = field(default_factory=dict)
