"""The settlement engine: the market's trades settle against meter readings
once their slot's reading window has passed (``settle.begin_block``), paying
sellers for delivered energy, refunding buyers the rest and bundling the
delivered energy's certificates. Registered after contracts, so PPAs take
their share of a reading first. See README "Settlement".
"""

from powernode.core.execution import Engine
from powernode.engines.settlement.records import STATE_CODECS
from powernode.engines.settlement.settle import begin_block, index_device

ENGINE_NAME = "settlement"

ENGINE = Engine(
    name=ENGINE_NAME,
    handlers=(),
    state_codecs=STATE_CODECS,
    begin_block=begin_block,
    after_tx={"device.register": index_device},
)

__all__ = ["ENGINE"]
