"""One exception tree for every rejection, each with a stable machine code.

RPC puts ``code`` in ``error.data.code`` and logs print it as ``reason=``; the
codes are a public contract, so never rename one, only add. Every code the
node can return or log is a class here (the README lists them all, and a
test keeps the two equal), and ``bans_peer`` on the class says whether data
refused with it proves that the peer who sent it misbehaved.
"""

from __future__ import annotations

from typing import ClassVar


class PowernodeError(Exception):
    """Base of every typed error. ``code`` is stable; the message is for humans.

    ``code=`` gives an instance another class's code: a wrapper that names
    the inner rule (an InvalidBlock for a tx whose signature fails carries
    ``bad_signature``)."""

    code: str = "error"
    # Data refused with this error proves its sender broke a rule no honest
    # node breaks (bad PoW, a bad signature, malformed bytes), so the peer is
    # banned; data that is merely stale or early (a spent nonce, a block from
    # the near future) costs the peer nothing.
    bans_peer: ClassVar[bool] = False

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
    bans_peer = True


class FloatNotAllowed(DecodeError):
    code = "float_not_allowed"


class Oversize(DecodeError):
    code = "oversize"


# --- transactions -------------------------------------------------------------


class InvalidTransaction(PowernodeError):
    code = "invalid_tx"


class BadSignature(InvalidTransaction):
    code = "bad_signature"
    bans_peer = True


class BadMeterSignature(BadSignature):
    """A co-signature in the payload (a meter's, over its reading) fails."""

    code = "bad_meter_signature"


class WrongChain(InvalidTransaction):
    code = "wrong_chain"
    bans_peer = True


class NonceTooLow(InvalidTransaction):
    code = "nonce_too_low"


class NonceTooHigh(InvalidTransaction):
    code = "nonce_too_high"


class InsufficientFunds(InvalidTransaction):
    code = "insufficient_funds"


class BadAmount(InvalidTransaction):
    code = "bad_amount"
    bans_peer = True


class UnknownTxType(InvalidTransaction):
    code = "unknown_tx_type"
    bans_peer = True


class OversizeTx(InvalidTransaction):
    code = "oversize_tx"
    bans_peer = True


class BadPayload(InvalidTransaction):
    code = "bad_payload"
    bans_peer = True


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


# --- metering -----------------------------------------------------------------


class MeteringError(InvalidTransaction):
    """A device or meter-reading tx the metering engine refuses; each subclass
    names the rule."""

    code = "metering_rejected"


class MeterKeyInUse(MeteringError):
    """The meter key already belongs to a device that is not retired."""

    code = "meter_key_in_use"


class NotAuthority(MeteringError):
    """The sender is not one of the genesis ``certificates.authorities``."""

    code = "not_authority"


class UnknownDevice(MeteringError):
    code = "unknown_device"


class DeviceNotPending(MeteringError):
    code = "device_not_pending"


class NotDeviceOwner(MeteringError):
    """Only the device's owner or an authority may retire it."""

    code = "not_device_owner"


class DeviceRetired(MeteringError):
    code = "device_retired"


class WrongMeterKey(MeteringError):
    """The reading names a meter key other than the device's."""

    code = "wrong_meter_key"


class DeviceNotActive(MeteringError):
    code = "device_not_active"


class IntervalNotAligned(MeteringError):
    code = "interval_not_aligned"


class IntervalNotEnded(MeteringError):
    code = "interval_not_ended"


class ReadingTooLate(MeteringError):
    """The interval ended more than ``reading_window`` seconds ago."""

    code = "reading_too_late"


class DuplicateReading(MeteringError):
    code = "duplicate_reading"


class WrongDeviceKind(MeteringError):
    """Production from a consumption-only device, or consumption from a
    generation-only one."""

    code = "wrong_device_kind"


class ReadingAboveCapacity(MeteringError):
    code = "reading_above_capacity"


# --- certificates -------------------------------------------------------------


class CertificateError(InvalidTransaction):
    """A certificate tx the certificates engine refuses; each subclass names
    the rule (a manual issue also meets the metering codes for the device
    and the interval)."""

    code = "cert_rejected"


class SourceNotCertified(CertificateError):
    """The device's source is not one of the genesis ``certificates.sources``."""

    code = "source_not_certified"


class CertAboveMetered(CertificateError):
    """A manual issue of more Wh than the interval's reading metered."""

    code = "cert_above_metered"


class AlreadyCertified(CertificateError):
    """The (device, interval) already has its certificate (one issuance each)."""

    code = "already_certified"


class UnknownCert(CertificateError):
    code = "unknown_cert"


class NotCertOwner(CertificateError):
    code = "not_cert_owner"


class CertRetired(CertificateError):
    """A retired certificate never moves again."""

    code = "cert_retired"


class CertExpired(CertificateError):
    """The certificate's validity ended (by the metering clock)."""

    code = "cert_expired"


class CertAmountTooLarge(CertificateError):
    code = "cert_amount_too_large"


# --- power purchase agreements ------------------------------------------------


class PpaError(InvalidTransaction):
    """A PPA tx the contracts engine refuses; each subclass names the rule (a
    proposal naming a device also meets the metering codes for it:
    ``unknown_device``, ``not_device_owner``, ``wrong_device_kind``,
    ``device_retired``; an accept or fund the buyer cannot pay is
    ``insufficient_funds``)."""

    code = "ppa_rejected"


class UnknownPpa(PpaError):
    code = "unknown_ppa"


class PpaSameParty(PpaError):
    """A PPA's buyer is its seller (the proposer)."""

    code = "ppa_same_party"


class PpaNotParty(PpaError):
    """The sender is not the party this tx type is for (the buyer accepts,
    rejects, funds and confirms; the seller delivers; either terminates)."""

    code = "ppa_not_party"


class PpaWrongState(PpaError):
    """The PPA's state does not allow the tx (accepting an active one,
    funding a completed one, ...)."""

    code = "ppa_wrong_state"


class PpaDeadlinePassed(PpaError):
    """A proposal whose acceptance deadline is not after the clock, or an
    accept at or after the deadline."""

    code = "ppa_deadline_passed"


class PpaDeviceBound(PpaError):
    """A manual ``ppa.deliver`` for a PPA whose deliveries come from its
    device's readings."""

    code = "ppa_device_bound"


class PpaOutsideTerm(PpaError):
    """A delivery for an interval outside the PPA's term, or one that has
    not started by the clock."""

    code = "ppa_outside_term"


class PpaAboveTotal(PpaError):
    """A delivery beyond the PPA's total (delivered and pending counted)."""

    code = "ppa_above_total"


class PpaUnknownDelivery(PpaError):
    code = "ppa_unknown_delivery"


class PpaDeliveryNotPending(PpaError):
    """A confirm of a delivery already accepted (confirmed, auto-accepted, metered)."""

    code = "ppa_delivery_not_pending"


class PpaAlreadyTerminating(PpaError):
    """A party sends ``ppa.terminate`` a second time while waiting for the other."""

    code = "ppa_already_terminating"


# --- declarative contracts ----------------------------------------------------


class ContractError(InvalidTransaction):
    """A declarative contract tx (``contract.*``) the contracts engine
    refuses; each subclass names the rule."""

    code = "contract_rejected"


class ContractTooLarge(BadPayload):
    """More conditions, actions or parties than the bounds allow: the tx is
    malformed (refused by the mempool, and a block holding it is invalid)."""

    code = "contract_too_large"


class BadContractTerm(BadPayload):
    """A condition or action outside the fixed vocabulary, or with arguments
    of the wrong shape (the message names its index); malformed, as above."""

    code = "bad_contract_term"


class ContractOverdrawn(BadPayload):
    """The contract's pay actions add up to more than its escrow."""

    code = "contract_overdrawn"


class ContractFeeTooLow(ContractError):
    """The fee is below the contract's minimum (a fee per condition and action)."""

    code = "contract_fee_too_low"


class ContractBadExpiry(ContractError):
    code = "contract_bad_expiry"


class ContractBadRange(ContractError):
    """A metered condition's interval range is not aligned to the metering
    interval, or spans more intervals than the bound."""

    code = "contract_bad_range"


class UnknownContract(ContractError):
    code = "unknown_contract"


class ContractNotOpen(ContractError):
    """The contract was executed or cancelled already."""

    code = "contract_not_open"


class ContractExpired(ContractError):
    code = "contract_expired"


class ContractNotExpired(ContractError):
    code = "contract_not_expired"


class NotContractCreator(ContractError):
    code = "not_contract_creator"


class NotContractParty(ContractError):
    code = "not_contract_party"


class AlreadyApproved(ContractError):
    code = "already_approved"


class ConditionFailed(ContractError):
    """A condition does not hold; the message begins ``condition <index>``."""

    code = "condition_failed"


class ActionFailed(ContractError):
    """An action cannot apply; the message begins ``action <index>``."""

    code = "action_failed"


# --- blocks -------------------------------------------------------------------


class InvalidBlock(PowernodeError):
    code = "invalid_block"


class BadPow(InvalidBlock):
    code = "bad_pow"
    bans_peer = True


class BadTarget(InvalidBlock):
    code = "bad_target"
    bans_peer = True


class BadMerkleRoot(InvalidBlock):
    code = "bad_merkle_root"
    bans_peer = True


class BadStateRoot(InvalidBlock):
    code = "bad_state_root"
    bans_peer = True


class TimeTooNew(InvalidBlock):
    code = "time_too_new"


class TimeTooOld(InvalidBlock):
    code = "time_too_old"
    bans_peer = True


class BadHeight(InvalidBlock):
    code = "bad_height"
    bans_peer = True


class OversizeBlock(InvalidBlock):
    code = "oversize_block"
    bans_peer = True


class DuplicateTx(InvalidBlock):
    code = "duplicate_tx"
    bans_peer = True


class BadTxInBlock(InvalidBlock):
    """A transaction inside a block failed envelope validation; the inner code
    is kept in the message so operators can see why."""

    code = "bad_tx_in_block"
    bans_peer = True


class ParentInvalid(InvalidBlock):
    code = "parent_invalid"
    bans_peer = True


class KnownInvalid(InvalidBlock):
    """A block this node already found invalid, sent again."""

    code = "known_invalid"
    bans_peer = True


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


class Replaced(MempoolError):
    """Why a pending tx left the pool: a tx with the same sender and nonce
    paying more took its place (``tx.get`` and the ``tx`` subscription say
    it was dropped with this code)."""

    code = "replaced"


class NotFound(PowernodeError):
    code = "not_found"


class GenesisError(PowernodeError):
    code = "bad_genesis"


class ConfigError(PowernodeError):
    code = "bad_config"


class BackupFailed(PowernodeError):
    """``node.backup`` could not write its copy (the file exists without
    ``force``, a relative path, a folder that is missing, a full disk): the
    node itself is not harmed and keeps running."""

    code = "backup_failed"


# --- storage ------------------------------------------------------------------


class StorageError(PowernodeError):
    """The data dir failed the node: a file it cannot read or write, or one
    that is not what it should be. The node stops on it (README, "Storage
    faults"): ``path`` names the file and ``fix`` says what the operator
    does; the message is the one line ``powernode run`` prints."""

    code = "storage_failed"

    def __init__(self, problem: str, *, path: str, fix: str) -> None:
        super().__init__(f"{path}: {problem} ({self.code}); {fix}")
        self.path = path
        self.problem = problem
        self.fix = fix


class DiskFull(StorageError):
    code = "disk_full"


class ReadOnlyStorage(StorageError):
    code = "read_only"


class StoreCorrupt(StorageError):
    """``chain.db`` is damaged: not a database, truncated, or failing
    SQLite's checks."""

    code = "store_corrupt"


class StoreUnusable(StorageError):
    """``chain.db`` is not a store this node can use, though it may be sound:
    a directory, another program's database, a newer schema, a lock held."""

    code = "store_unusable"


# --- node and RPC -------------------------------------------------------------


class InvalidParams(PowernodeError):
    """An RPC call's params are missing, of the wrong type or out of range
    (JSON-RPC -32602). ``code=`` may name the rule more precisely (e.g.
    ``unknown_market``)."""

    code = "invalid_params"


# The JSON-RPC envelope's own errors: the stable codes the server puts in
# error.data.code beside the standard numbers (rpc.py).


class ParseError(PowernodeError):
    """The body is not JSON, or not UTF-8, or nests too deep (-32700)."""

    code = "parse_error"


class InvalidRequest(PowernodeError):
    """Not a JSON-RPC 2.0 request object, or an empty batch (-32600)."""

    code = "invalid_request"


class RequestTooLarge(InvalidRequest):
    """A body past ``[rpc] max_request_bytes`` or ``max_values`` (-32600)."""

    code = "request_too_large"


class BatchTooLarge(InvalidRequest):
    """A batch of more than ``[rpc] batch_limit`` calls (-32600)."""

    code = "batch_too_large"


class Unauthorized(InvalidRequest):
    """No valid cookie or token (-32600, HTTP 401)."""

    code = "unauthorized"


class MethodNotFound(PowernodeError):
    """No method of that name (-32601)."""

    code = "method_not_found"


class ResponseTooLarge(PowernodeError):
    """A batch call not run: the batch's answer was already past
    ``[rpc] max_response_bytes`` (-32003)."""

    code = "response_too_large"


class MiningFailed(PowernodeError):
    """``dev.mine`` found no nonce within its budget (the chain is not easy
    enough to mine on demand)."""

    code = "mining_failed"


class NotDevMode(PowernodeError):
    """A dev-only call (``dev.mine``) on a chain whose genesis is not ``dev``."""

    code = "not_dev_mode"


class P2pDisabled(PowernodeError):
    """A peer call on a node whose config has ``[p2p] enabled = false``."""

    code = "p2p_disabled"


class WebSocketOnly(PowernodeError):
    """``subscribe`` or ``unsubscribe`` over HTTP POST: notifications need the
    WebSocket (``GET /rpc`` upgraded)."""

    code = "websocket_only"


class SubscriptionLimit(PowernodeError):
    """A WebSocket client already holds ``[rpc] ws_max_subscriptions``."""

    code = "subscription_limit"


class BadInput(PowernodeError):
    """Something typed on the command line that the CLI refuses before it
    signs or sends anything."""

    code = "bad_input"


# --- certificate proofs (powernode verify-proof) ------------------------------


class BadProof(PowernodeError):
    """A certificate proof file that is not one: wrong magic or version, not
    canonical msgpack, a field of the wrong type, or beyond a size bound.
    Every proof error below is a BadProof too, so a caller can catch them all."""

    code = "bad_proof"


class ProofWrongChain(BadProof):
    """The proof names another chain id or genesis hash than the genesis file."""

    code = "proof_wrong_chain"


class ProofBrokenLink(BadProof):
    """Its headers do not link: a height out of sequence, a ``prev_hash`` that
    is not the previous header's hash, or a tx at a height with no header."""

    code = "proof_broken_link"


class ProofBadHeader(BadProof):
    """A header fails its PoW, its ASERT target, or its time rules."""

    code = "proof_bad_header"


class ProofBadBranch(BadProof):
    """A tx's Merkle branch does not lead to its block's ``tx_root``."""

    code = "proof_bad_branch"


class ProofBadSignature(BadProof):
    """A lineage tx's signature or meter co-signature does not verify."""

    code = "proof_bad_signature"


class ProofBadLineage(BadProof):
    """Replaying the lineage txs does not make the certificate: a tx the
    certificate rules refuse, one that touches none of its ancestry, or a
    lineage that never reaches the certificate."""

    code = "proof_bad_lineage"


class ProofTooLittleWork(BadProof):
    """Valid, but less work or fewer confirmations than the verifier asked for."""

    code = "proof_too_little_work"


# --- peers --------------------------------------------------------------------


class ProtocolError(PowernodeError):
    """The peer broke the protocol; the node disconnects it (and bans it if
    ``bans_peer``). Logged as ``reason=``, never returned by RPC."""

    code = "protocol_error"
    bans_peer = True


class Malformed(ProtocolError):
    code = "malformed_frame"


class OversizeFrame(ProtocolError):
    code = "oversize_frame"


class WrongNetwork(ProtocolError):
    """Another chain, genesis or protocol version: not misbehaviour, just not us."""

    code = "wrong_network"
    bans_peer = False


class VersionMismatch(WrongNetwork):
    """A hello of another protocol version: refused before the rest of it is
    read (its layout may differ), with both versions named in the log."""

    code = "version_mismatch"

    def __init__(self, message: str = "", *, ours: int = 0, theirs: int = 0) -> None:
        super().__init__(message or f"protocol version {theirs}, we speak {ours}")
        self.ours = ours
        self.theirs = theirs


class BadAuth(ProtocolError):
    """The peer's ``auth`` signature does not verify against the node id its
    hello claims: it does not hold that id's key. Banned by IP (never by the
    id it claimed, which may be an honest node's)."""

    code = "bad_auth"


class Unexpected(ProtocolError):
    code = "unexpected_message"


class Flood(ProtocolError):
    code = "flood"


class TxFlood(ProtocolError):
    """Too many of the peer's txs came unasked or were refused for their fee
    (``mempool_full``, ``fee_too_low``, ``replacement_underpriced``): the
    peer was slowed, kept on, and is disconnected. Not banned: an honest
    node whose pool takes cheaper txs than ours relays such txs too."""

    code = "tx_flood"
    bans_peer = False


class BadHeaders(ProtocolError):
    """A ``headers`` batch whose headers do not link one to the next."""

    code = "bad_headers"


class Stalling(ProtocolError):
    """The peer's handshake claimed more than our chain (work or height) and
    it sent no headers backing the claim in time, or it sent none of the
    blocks its headers announced two rounds in a row: it holds the sync
    (and our ``syncing`` state) for nothing. Disconnected, not banned, as
    Bitcoin Core and geth drop a stalling peer: an honest node may be slow."""

    code = "stalling"
    bans_peer = False


class UnconnectingHeaders(ProtocolError):
    """Too many ``headers`` batches in a row that link to no block we know."""

    code = "unconnecting_headers"


def all_codes() -> dict[str, type[PowernodeError]]:
    """Every code of the tree in this module, to the class that owns it: for
    the docs, the test that keeps them unique and the README's list."""
    out: dict[str, type[PowernodeError]] = {}
    stack: list[type[PowernodeError]] = [PowernodeError]
    while stack:
        cls = stack.pop()
        # Only this module's classes: what other modules (or tests) derive
        # must not change the public list with the import order.
        if cls.__module__ == __name__:
            out[cls.code] = cls
        stack.extend(cls.__subclasses__())
    return out


_OWNERS = all_codes()


def proves_misbehaviour(exc: PowernodeError) -> bool:
    """Whether data refused with ``exc`` proves its sender misbehaved: the
    ``bans_peer`` of the class that owns the error's code, so a wrapper
    carrying an inner code (an InvalidBlock with ``bad_signature``) is judged
    as that code, and a block refused for being early is not."""
    return _OWNERS.get(exc.code, type(exc)).bans_peer
