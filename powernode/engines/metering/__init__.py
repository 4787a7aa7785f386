"""The metering engine: devices with their own meter keys, and signed meter
readings, one per (device, interval). See ``handlers`` for the tx types
(``batch`` for ``meter.batch``, many meters' readings in one tx),
``records`` for the state and ``params`` for the genesis ``certificates``
section it parses (for itself and the certificates engine).
"""

from powernode.core.execution import Engine
from powernode.engines.metering.batch import BatchHandler, BatchPayload
from powernode.engines.metering.clock import begin_block
from powernode.engines.metering.handlers import (
    ApproveHandler,
    RegisterHandler,
    ReportHandler,
    ReportPayload,
    RetireHandler,
)
from powernode.engines.metering.params import ENGINE_NAME, GENESIS, CertParams, cert_params
from powernode.engines.metering.records import STATE_CODECS, reading_message

ENGINE = Engine(
    name=ENGINE_NAME,
    handlers=(
        RegisterHandler(),
        ApproveHandler(),
        RetireHandler(),
        ReportHandler(),
        BatchHandler(),
    ),
    state_codecs=STATE_CODECS,
    begin_block=begin_block,
    genesis=GENESIS,
)

__all__ = [
    "ENGINE",
    "BatchPayload",
    "CertParams",
    "ReportPayload",
    "cert_params",
    "reading_message",
]
