"""Metering and certificate RPC methods: devices, meter readings, certificates,
their lineage, verification and hourly (24/7) matching.

Each method parses its params, reads the tip state through the engines' pure
query functions (engines/metering/queries.py, engines/certificates/queries.py)
and returns JSON-ready results: ids and addresses as lowercase hex, energy in
Wh, times in unix seconds.

Bad params are ``InvalidParams`` (-32602, ``invalid_params``). An unknown device or
certificate is ``NotFound`` (-32004) with the engines' own codes,
``unknown_device`` and ``unknown_cert``, in ``error.data.code``.
"""

from __future__ import annotations

from typing import Any

from powernode.chain.certproof import build_proof
from powernode.chain.ledger import Ledger
from powernode.core.errors import InvalidParams, NotFound
from powernode.engines.certificates import queries as cq
from powernode.engines.certificates.records import STATUSES as CERT_STATUSES
from powernode.engines.metering import clock
from powernode.engines.metering import queries as mq
from powernode.engines.metering.params import SOURCES, cert_params
from powernode.engines.metering.records import STATUSES as DEVICE_STATUSES
from powernode.node import rpc_params as rp
from powernode.node.rpc import Method, Params
from powernode.node.rpc_spec import (
    ADDRESS,
    HEX,
    ID32,
    LIST_LIMIT,
    LIST_MAX,
    STR,
    MethodSpec,
    Param,
    array_of,
    not_found,
    one_of,
    shape,
)
from powernode.node.rpc_spec import integer as int_schema

# approved_height and retired_height are 0 until then (Device's record).
_DEVICE = shape(
    "id:hex owner:hex kind:str source:str capacity_w:int location:str carbon_intensity:int "
    "meter_pubkey:hex status:str registered_height:int approved_height:int "
    "retired_height:int readings:int produced_wh:int consumed_wh:int last_interval:int?"
)
_READING = shape(
    "device:hex interval:int produced_wh:int consumed_wh:int relayer:hex txid:hex height:int "
    "time:int"
)
# A claim period is any u64 the retire gave: past 2^53 a decimal string.
_CLAIM = shape("beneficiary:str purpose:str period_start:amount period_end:amount retired_by:hex")
_CERT = shape(
    "id:hex owner:hex producer:hex device:hex source:str location:str carbon_intensity:int "
    "type:str interval_start:int interval_end:int interval_seconds:int wh:int remaining_wh:int "
    "status:str parent:hex? issued_txid:hex issued_height:int issued_time:int expires:int "
    "claim:obj? steps:int",
    claim=_CLAIM,
)
_STEP = shape(
    "cert:hex kind:str txid:hex height:int time:int from:hex? to:hex? wh:int other:hex? note:str"
)
_UNKNOWN_DEVICE = not_found("unknown_device", "no such device")
_UNKNOWN_CERT = not_found("unknown_cert", "no such certificate")
_CERT_ID = (Param("cert", ID32, required=True),)
_START = Param("start", int_schema(), description="interval times from (inclusive)")
_END = Param("end", int_schema(), description="interval times to (exclusive)")

CERT_SPECS = {
    "cert.params": MethodSpec(
        summary="the metering clock and the genesis certificates params",
        result=shape(
            "height:int time:int now:int authorities:list interval_seconds:int "
            "reading_window:int validity:int green_threshold:int sources:list",
            authorities=HEX,
            sources=STR,
        ),
        public=True,
    ),
    "device.get": MethodSpec(
        summary="a device by id (the txid that registered it)",
        params=(Param("device", ID32, required=True),),
        result=_DEVICE,
        errors=(_UNKNOWN_DEVICE,),
        public=True,
    ),
    "device.list": MethodSpec(
        summary="devices in order of registration",
        params=(Param("owner", ADDRESS), Param("status", one_of(DEVICE_STATUSES)), LIST_LIMIT),
        result=array_of(_DEVICE),
        public=True,
    ),
    "meter.readings": MethodSpec(
        summary="a device's readings with start <= interval < end",
        params=(Param("device", ID32, required=True), _START, _END),
        result=array_of(_READING),
        errors=(_UNKNOWN_DEVICE,),
        public=True,
    ),
    "cert.get": MethodSpec(
        summary="a certificate",
        params=_CERT_ID,
        result=_CERT,
        errors=(_UNKNOWN_CERT,),
        public=True,
    ),
    "cert.list": MethodSpec(
        summary="certificates matching every filter",
        params=(
            Param("owner", ADDRESS),
            Param("status", one_of(CERT_STATUSES)),
            Param("device", ID32),
            Param("source", one_of(SOURCES)),
            _START,
            _END,
            LIST_LIMIT,
        ),
        result=array_of(_CERT),
        public=True,
    ),
    "cert.trace": MethodSpec(
        summary="a certificate's lineage",
        params=_CERT_ID,
        result=shape("cert:hex root:hex steps:list", steps=_STEP),
        errors=(_UNKNOWN_CERT,),
        public=True,
    ),
    "cert.verify": MethodSpec(
        summary="whether a certificate is valid, and what it certifies",
        params=_CERT_ID,
        result=shape(
            "id:hex valid:bool problems:list usable:bool source:str carbon_intensity:int "
            "type:str trace_length:int interval_start:int interval_end:int location:str "
            "status:str remaining_wh:int owner:hex producer:hex device:hex wh:int expires:int "
            "root:hex claim:obj?",
            problems=STR,
            claim=_CLAIM,
        ),
        errors=(_UNKNOWN_CERT,),
        public=True,
    ),
    "cert.cfe": MethodSpec(
        summary="hour-by-hour matching of consumption with retired certificates",
        params=(
            Param("participant", ADDRESS, required=True),
            Param("start", int_schema(), required=True),
            Param("end", int_schema(), required=True),
        ),
        result=shape(
            "participant:hex start:amount end:amount intervals:list consumed_wh:int retired_wh:int "
            "matched_wh:int matched_bps:int",
            intervals=shape("interval:int consumed_wh:int retired_wh:int matched_wh:int"),
        ),
        public=True,
    ),
    "cert.tree": MethodSpec(
        summary="the whole lineage tree of a certificate's root, root first, depth first "
        f"(at most {cq.TREE_MAX_NODES} certificates and {cq.TREE_MAX_STEPS} steps)",
        params=_CERT_ID,
        result=shape(
            "root:hex cert:hex nodes:list truncated:bool",
            nodes=shape(
                "id:hex parent:hex? owner:hex wh:int remaining_wh:int status:str steps:list",
                steps=_STEP,
            ),
        ),
        errors=(_UNKNOWN_CERT,),
        public=True,
    ),
    "cert.proof": MethodSpec(
        summary="a certificate's proof file as of the tip, in hex",
        params=_CERT_ID,
        result=shape("cert:hex height:int tip:hex bytes:int proof:hex"),
        errors=(_UNKNOWN_CERT,),
        public=True,
    ),
}


def cert_methods(ledger: Ledger) -> dict[str, Method]:
    """``cert.params``, ``device.get``, ``device.list``, ``meter.readings``, ``cert.get``,
    ``cert.list``, ``cert.trace``, ``cert.tree``, ``cert.verify``, ``cert.cfe``, ``cert.proof``:
    reads of the tip state."""

    def state() -> Any:
        return ledger.chain.state

    def now() -> int:
        # The engines' clock (metering.clock) as of the tip, as the next
        # block's handlers would judge expiry and days remaining.
        return clock.at(state(), ledger.chain.tip.header.timestamp)

    def one_of(p: Params, key: str, pos: int, allowed: tuple[str, ...]) -> str | None:
        v = rp.arg(p, key, pos)
        if v is None:
            return None
        if not isinstance(v, str) or v not in allowed:
            raise InvalidParams(f"'{key}' must be one of {list(allowed)}")
        return v

    def time_range(p: Params, pos: int) -> tuple[int | None, int | None]:
        """Optional ``start`` (inclusive) and ``end`` (exclusive) interval times."""
        start = rp.opt_int(p, "start", pos)
        end = rp.opt_int(p, "end", pos + 1)
        if start is not None and end is not None and start > end:
            raise InvalidParams("'start' must not be after 'end'")
        return start, end

    def known_cert(p: Params) -> bytes:
        cid = rp.id32(p, "cert", 0, "a certificate id")
        if cq.cert(state(), cid, now()) is None:
            raise NotFound(f"no certificate {cid.hex()}", code="unknown_cert")
        return cid

    async def params(p: Params) -> Any:
        cp = cert_params(ledger.params)
        tip = ledger.chain.tip
        return {
            "height": tip.height,
            "time": tip.header.timestamp,
            "now": now(),
            "authorities": [a.hex() for a in cp.authorities],
            "interval_seconds": cp.interval_seconds,
            "reading_window": cp.reading_window,
            "validity": cp.validity,
            "green_threshold": cp.green_threshold,
            "sources": list(cp.sources),
        }

    async def device_get(p: Params) -> Any:
        did = rp.id32(p, "device", 0, "a device id (the txid that registered it)")
        found = mq.device(state(), did)
        if found is None:
            raise NotFound(f"no device {did.hex()}", code="unknown_device")
        return found

    async def device_list(p: Params) -> Any:
        owner = rp.address(p, "owner", 0, required=False)
        status = one_of(p, "status", 1, DEVICE_STATUSES)
        limit = rp.list_limit(p, LIST_MAX)
        return mq.devices(state(), owner=owner, status=status)[:limit]

    async def meter_readings(p: Params) -> Any:
        did = rp.id32(p, "device", 0, "a device id (the txid that registered it)")
        start, end = time_range(p, 1)
        if mq.device(state(), did) is None:
            raise NotFound(f"no device {did.hex()}", code="unknown_device")
        return mq.readings(state(), did, start=start, end=end)

    async def cert_get(p: Params) -> Any:
        cid = rp.id32(p, "cert", 0, "a certificate id")
        found = cq.cert(state(), cid, now())
        if found is None:
            raise NotFound(f"no certificate {cid.hex()}", code="unknown_cert")
        return found

    async def cert_list(p: Params) -> Any:
        owner = rp.address(p, "owner", 0, required=False)
        status = one_of(p, "status", 1, CERT_STATUSES)
        device = None
        if rp.arg(p, "device", 2) is not None:
            device = rp.id32(p, "device", 2, "a device id (the txid that registered it)")
        source = one_of(p, "source", 3, SOURCES)
        start, end = time_range(p, 4)
        limit = rp.list_limit(p, LIST_MAX)
        return cq.certs(
            state(),
            owner=owner,
            status=status,
            device=device,
            source=source,
            start=start,
            end=end,
            now=now(),
        )[:limit]

    async def cert_trace(p: Params) -> Any:
        return cq.trace(state(), known_cert(p))

    async def cert_tree(p: Params) -> Any:
        return cq.tree(state(), known_cert(p), now())

    async def cert_verify(p: Params) -> Any:
        return cq.verify(state(), known_cert(p), now())

    async def cert_cfe(p: Params) -> Any:
        participant = rp.address(p, "participant", 0, required=True)
        assert participant is not None
        if rp.arg(p, "start", 1) is None or rp.arg(p, "end", 2) is None:
            raise InvalidParams("'start' and 'end' are required")
        start, end = time_range(p, 1)
        assert start is not None and end is not None
        if start == end:
            raise InvalidParams("'end' must be after 'start'")
        # Only intervals with a reading or a retirement are listed, so the
        # answer is bounded by what the chain holds, not by the range.
        return cq.cfe(state(), participant, start, end)

    async def cert_proof(p: Params) -> Any:
        # The file `powernode verify-proof` checks offline (state/certproof,
        # README "Certificate proofs"), as of the tip, in hex.
        cid = known_cert(p)
        raw = build_proof(ledger.chain, cid).encode()
        tip = ledger.chain.tip
        return {
            "cert": cid.hex(),
            "height": tip.height,
            "tip": tip.hash.hex(),
            "bytes": len(raw),
            "proof": raw.hex(),
        }

    return {
        "cert.params": params,
        "device.get": device_get,
        "device.list": device_list,
        "meter.readings": meter_readings,
        "cert.get": cert_get,
        "cert.list": cert_list,
        "cert.trace": cert_trace,
        "cert.tree": cert_tree,
        "cert.verify": cert_verify,
        "cert.cfe": cert_cfe,
        "cert.proof": cert_proof,
    }
