"""What the declarative contracts part contributes to the contracts engine
(see ``__init__``): its tx types and state codecs. It has no block hook (an
expired contract waits for its creator's ``contract.cancel``) and no
after-tx hook."""

from __future__ import annotations

from powernode.core.execution import StateCodec, TxHandler
from powernode.engines.contracts import contract_handlers, contract_records

HANDLERS: tuple[TxHandler, ...] = contract_handlers.HANDLERS
STATE_CODECS: dict[str, StateCodec] = dict(contract_records.STATE_CODECS)
