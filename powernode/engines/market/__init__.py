"""The electricity market engine: participants, order books per (product,
delivery slot), deterministic matching inside block execution, escrow, gate
closure. See ``handlers`` for the tx types and ``records`` for the state.
"""

from powernode.engines.market.clearing import begin_block
from powernode.engines.market.handlers import CancelHandler, PlaceHandler, RegisterHandler
from powernode.engines.market.records import STATE_CODECS

HANDLERS = (RegisterHandler(), PlaceHandler(), CancelHandler())
BEGIN_BLOCK = begin_block

__all__ = ["BEGIN_BLOCK", "HANDLERS", "STATE_CODECS"]
