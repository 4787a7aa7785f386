"""The contracts engine: power purchase agreements (``ppa_*`` modules) and
declarative contracts (``contract_*`` modules), one package because both
hold escrow for parties and read the meter readings and certificates of the
engines registered before it.

Each part contributes its handlers, state codecs, block hook and after-tx
hooks through the tuples below; the engine record joins them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from powernode.core.execution import (
    AfterTx,
    BlockHook,
    Engine,
    Event,
    ExecContext,
    StateAccess,
    StateCodec,
    TxHandler,
)
from powernode.core.tx import Transaction
from powernode.engines.contracts import contract, ppa

ENGINE_NAME = "contracts"

# Handlers of each part, in a fixed order (tx types are unique chain-wide).
_HANDLERS: tuple[TxHandler, ...] = (*ppa.HANDLERS, *contract.HANDLERS)

# Namespace -> decoder of every part.
_CODECS: dict[str, StateCodec] = {**ppa.STATE_CODECS, **contract.STATE_CODECS}

# The parts' block hooks, run in this order inside the engine's one hook.
_BLOCK_HOOKS: tuple[BlockHook, ...] = (*ppa.BLOCK_HOOKS,)

# tx type -> the parts' hooks after it, in this order.
_AFTER_TX: dict[str, tuple[AfterTx, ...]] = {}
for _t, _h in ppa.AFTER_TX.items():
    _AFTER_TX.setdefault(_t, ())
    _AFTER_TX[_t] = (*_AFTER_TX[_t], _h)


def _begin_block(view: StateAccess, ctx: ExecContext) -> None:
    for hook in _BLOCK_HOOKS:
        hook(view, ctx)


def _chain_after(hooks: tuple[AfterTx, ...]) -> AfterTx:
    if len(hooks) == 1:
        return hooks[0]

    def run(view: StateAccess, ctx: ExecContext, tx: Transaction, payload: Any) -> list[Event]:
        events: list[Event] = []
        for h in hooks:
            events.extend(h(view, ctx, tx, payload))
        return events

    return run


_AFTER: Mapping[str, AfterTx] = {t: _chain_after(hs) for t, hs in sorted(_AFTER_TX.items())}

ENGINE = Engine(
    name=ENGINE_NAME,
    handlers=_HANDLERS,
    state_codecs=_CODECS,
    begin_block=_begin_block if _BLOCK_HOOKS else None,
    after_tx=_AFTER,
)

__all__ = ["ENGINE"]
