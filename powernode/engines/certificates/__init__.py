"""The certificates engine: renewable energy certificates issued from meter
readings (or by an authority), split on transfer, retired for a beneficiary,
traced and verified. See ``handlers`` for the tx types and the issuance
rule, ``records`` for the state and ids, ``queries`` for the read side.
"""

from powernode.core.execution import Engine
from powernode.engines.certificates.handlers import (
    IssueHandler,
    RetireHandler,
    TransferHandler,
    issue_from_batch,
    issue_from_reading,
)
from powernode.engines.certificates.records import STATE_CODECS

ENGINE_NAME = "certificates"

ENGINE = Engine(
    name=ENGINE_NAME,
    handlers=(IssueHandler(), TransferHandler(), RetireHandler()),
    state_codecs=STATE_CODECS,
    # The genesis `certificates` section is the metering engine's (it owns
    # the params both engines read, through metering.params.cert_params).
    after_tx={"meter.report": issue_from_reading, "meter.batch": issue_from_batch},
)

__all__ = ["ENGINE"]
