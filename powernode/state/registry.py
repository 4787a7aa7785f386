"""Which engine handles each tx type and decodes each state namespace.

Later engines (market, contracts, certificates) add their ``HANDLERS`` and
``STATE_CODECS`` to the lists below; nothing else in state/ changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from powernode.core.errors import UnknownTxType
from powernode.core.execution import BlockHook, TxHandler
from powernode.engines import accounts, market

_ENGINES = (accounts, market)

HANDLERS: Mapping[str, TxHandler] = {h.tx_type: h for engine in _ENGINES for h in engine.HANDLERS}
STATE_CODECS: Mapping[str, Callable[[Any], Any]] = {
    ns: codec for engine in _ENGINES for ns, codec in engine.STATE_CODECS.items()
}

# Tx types whose handler declares its ``precheck`` a no-op (a true
# ``precheck_noop`` attribute): admission skips building the state view and
# context it would be given.
NOOP_PRECHECK: frozenset[str] = frozenset(
    t for t, h in HANDLERS.items() if getattr(h, "precheck_noop", False) is True
)

# Run at the start of every block, in this order.
BLOCK_HOOKS: tuple[BlockHook, ...] = tuple(
    hook for engine in _ENGINES if (hook := getattr(engine, "BEGIN_BLOCK", None)) is not None
)


def handler_for(tx_type: str) -> TxHandler:
    try:
        return HANDLERS[tx_type]
    except KeyError:
        raise UnknownTxType(f"unknown tx type {tx_type!r}") from None
