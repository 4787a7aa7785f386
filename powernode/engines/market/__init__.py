"""The electricity market engine: participants, order books per (product,
delivery slot), deterministic matching inside block execution, escrow, gate
closure. See ``handlers`` for the tx types and ``records`` for the state.
"""

from powernode.core.execution import Engine
from powernode.engines.market.clearing import begin_block
from powernode.engines.market.handlers import CancelHandler, PlaceHandler, RegisterHandler
from powernode.engines.market.params import ENGINE_NAME, GENESIS
from powernode.engines.market.records import STATE_CODECS

ENGINE = Engine(
    name=ENGINE_NAME,
    handlers=(RegisterHandler(), PlaceHandler(), CancelHandler()),
    state_codecs=STATE_CODECS,
    begin_block=begin_block,
    genesis=GENESIS,
)

__all__ = ["ENGINE"]
