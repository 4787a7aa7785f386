"""What the PPA part contributes to the contracts engine (see ``__init__``):
its tx types, state namespaces, block hook (lapse, auto-accept, default,
close, judged by block time) and the delivery hooks after ``meter.report``
and ``meter.batch``."""

from __future__ import annotations

from powernode.core.execution import AfterTx, BlockHook, StateCodec, TxHandler
from powernode.engines.contracts import ppa_flow, ppa_handlers, ppa_records

HANDLERS: tuple[TxHandler, ...] = ppa_handlers.HANDLERS
STATE_CODECS: dict[str, StateCodec] = dict(ppa_records.STATE_CODECS)
BLOCK_HOOKS: tuple[BlockHook, ...] = (ppa_flow.begin_block,)
AFTER_TX: dict[str, AfterTx] = {
    "meter.report": ppa_flow.deliver_from_reading,
    "meter.batch": ppa_flow.deliver_from_batch,
}
