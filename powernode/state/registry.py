"""The engines of this chain, and the lookups the state machine derives from them.

Adding an engine is one package under ``powernode/engines/`` exposing an
``ENGINE`` record (``core.execution.Engine``) and its line in ``ENGINES``
below (with the package in the import); nothing else in state/ changes. The order of ``ENGINES`` is consensus:
begin-block hooks run in it, and the genesis commits to the engines' genesis
sections in it, so a new engine goes at the end.
"""

from __future__ import annotations

from collections.abc import Mapping

from powernode.core.errors import UnknownTxType
from powernode.core.execution import BlockHook, Engine, StateCodec, TxHandler
from powernode.engines import accounts, market, metering

ENGINES: tuple[Engine, ...] = (
    accounts.ENGINE,
    market.ENGINE,
    metering.ENGINE,
)


def _unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise RuntimeError(f"two engines claim the {kind} {n!r}")
        seen.add(n)


_unique("engine name", [e.name for e in ENGINES])
_unique("tx type", [h.tx_type for e in ENGINES for h in e.handlers])
_unique("state namespace", [ns for e in ENGINES for ns in e.state_codecs])
_unique("genesis key", [e.genesis.key for e in ENGINES if e.genesis is not None])

HANDLERS: Mapping[str, TxHandler] = {h.tx_type: h for e in ENGINES for h in e.handlers}
STATE_CODECS: Mapping[str, StateCodec] = {
    ns: codec for e in ENGINES for ns, codec in e.state_codecs.items()
}
# Run at the start of every block, in this order.
BLOCK_HOOKS: tuple[BlockHook, ...] = tuple(
    e.begin_block for e in ENGINES if e.begin_block is not None
)


def handler_for(tx_type: str) -> TxHandler:
    try:
        return HANDLERS[tx_type]
    except KeyError:
        raise UnknownTxType(f"unknown tx type {tx_type!r}") from None
