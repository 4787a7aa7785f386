"""What the PPA part contributes to the contracts engine (see ``__init__``)."""

from __future__ import annotations

from powernode.core.execution import AfterTx, BlockHook, StateCodec, TxHandler
from powernode.engines.contracts import ppa_records

HANDLERS: tuple[TxHandler, ...] = ()
STATE_CODECS: dict[str, StateCodec] = {ppa_records.ALLOC_NS: ppa_records.AllocWh.from_obj}
BLOCK_HOOKS: tuple[BlockHook, ...] = ()
AFTER_TX: dict[str, AfterTx] = {}
