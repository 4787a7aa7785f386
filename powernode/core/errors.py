"""One exception tree for every rejection, each with a stable machine code.

RPC puts ``code`` in ``error.data.code`` and logs print it as ``reason=``; the
codes are a public contract, so never rename one, only add.
"""

from __future__ import annotations


class PowernodeError(Exception):
    """Base of every typed error. ``code`` is stable; the message is for humans."""

    code: str = "error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message or self.code)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


# --- decoding -----------------------------------------------------------------


class DecodeError(PowernodeError):
    """Bytes that are not a canonical encoding of what was expected."""

    code = "malformed"


class FloatNotAllowed(DecodeError):
    code = "float_not_allowed"


class Oversize(DecodeError):
    code = "oversize"


# --- transactions -------------------------------------------------------------


class InvalidTransaction(PowernodeError):
    code = "invalid_tx"


class BadSignature(InvalidTransaction):
    code = "bad_signature"


class WrongChain(InvalidTransaction):
    code = "wrong_chain"


class NonceTooLow(InvalidTransaction):
    code = "nonce_too_low"


class NonceTooHigh(InvalidTransaction):
    code = "nonce_too_high"


class InsufficientFunds(InvalidTransaction):
    code = "insufficient_funds"


class BadAmount(InvalidTransaction):
    code = "bad_amount"


class UnknownTxType(InvalidTransaction):
    code = "unknown_tx_type"


class OversizeTx(InvalidTransaction):
    code = "oversize_tx"


class BadPayload(InvalidTransaction):
    code = "bad_payload"


class FeeTooLow(InvalidTransaction):
    code = "fee_too_low"


# --- market -------------------------------------------------------------------


class MarketError(InvalidTransaction):
    """A market tx the market refuses; each subclass names the rule."""

    code = "market_rejected"


class NotRegistered(MarketError):
    code = "not_registered"


class WrongRole(MarketError):
    code = "wrong_role"


class UnknownMarket(MarketError):
    code = "unknown_market"


class OrderBelowMin(MarketError):
    code = "order_below_min"


class OrderAboveMax(MarketError):
    code = "order_above_max"


class PriceOffTick(MarketError):
    code = "price_off_tick"


class PriceOutOfRange(MarketError):
    code = "price_out_of_range"


class SlotNotAligned(MarketError):
    code = "slot_not_aligned"


class SlotOutOfRange(MarketError):
    """The slot is not one the product trades (too near for a forward, too far
    for spot)."""

    code = "slot_out_of_range"


class GateClosed(MarketError):
    code = "gate_closed"


class MarketClosed(MarketError):
    """Outside the market's trading hours, judged by block time."""

    code = "market_closed"


class CapacityExceeded(MarketError):
    code = "capacity_exceeded"


class BadExpiry(MarketError):
    code = "bad_expiry"


class TifNotSupported(MarketError):
    code = "tif_not_supported"


class OrderNotFound(MarketError):
    code = "order_not_found"


class NotOrderOwner(MarketError):
    code = "not_order_owner"


class OrderNotOpen(MarketError):
    code = "order_not_open"


# --- blocks -------------------------------------------------------------------


class InvalidBlock(PowernodeError):
    code = "invalid_block"


class BadPow(InvalidBlock):
    code = "bad_pow"


class BadTarget(InvalidBlock):
    code = "bad_target"


class BadMerkleRoot(InvalidBlock):
    code = "bad_merkle_root"


class BadStateRoot(InvalidBlock):
    code = "bad_state_root"


class TimeTooNew(InvalidBlock):
    code = "time_too_new"


class TimeTooOld(InvalidBlock):
    code = "time_too_old"


class BadHeight(InvalidBlock):
    code = "bad_height"


class OversizeBlock(InvalidBlock):
    code = "oversize_block"


class DuplicateTx(InvalidBlock):
    code = "duplicate_tx"


class BadTxInBlock(InvalidBlock):
    """A transaction inside a block failed envelope validation; the inner code
    is kept in the message so operators can see why."""

    code = "bad_tx_in_block"


class ParentInvalid(InvalidBlock):
    code = "parent_invalid"


class InternalFault(InvalidBlock):
    """Executing a block or tx raised something no rule names (a bug in this
    node). The block is set aside like an invalid one, so the node does not
    retry it forever, and the peer that sent it is not blamed."""

    code = "internal_error"


# --- pool and lookups ---------------------------------------------------------


class MempoolError(PowernodeError):
    code = "mempool_rejected"


class MempoolFull(MempoolError):
    code = "mempool_full"


class AlreadyKnown(MempoolError):
    code = "already_known"


class ReplacementUnderpriced(MempoolError):
    code = "replacement_underpriced"


class NotFound(PowernodeError):
    code = "not_found"


class GenesisError(PowernodeError):
    code = "bad_genesis"


class ConfigError(PowernodeError):
    code = "bad_config"


def all_codes() -> dict[str, type[PowernodeError]]:
    """Every code defined above, for docs and for the test that keeps them unique."""
    out: dict[str, type[PowernodeError]] = {}
    stack: list[type[PowernodeError]] = [PowernodeError]
    while stack:
        cls = stack.pop()
        out[cls.code] = cls
        stack.extend(cls.__subclasses__())
    return out
