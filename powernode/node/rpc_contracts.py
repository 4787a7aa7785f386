"""PPA and declarative contract RPC methods: ``ppa.get``, ``ppa.list``,
``contract.get``, ``contract.list``.

Each method parses its params, reads the tip state through the contracts
engine's pure query functions (engines/contracts/ppa_queries.py and
contract_queries.py) and returns JSON-ready results: ids and addresses as
lowercase hex, energy in Wh, prices in micro-units per kWh, money in
micro-units, times in unix seconds. Time-dependent fields (a PPA's days
remaining, a contract's expiry) are judged by the engines' clock, as the
next block's handlers would judge them.

Bad params are ``InvalidParams`` (-32602, ``invalid_params``). An unknown
PPA or contract is ``NotFound`` (-32004) with the engine's own code,
``unknown_ppa`` or ``unknown_contract``, in ``error.data.code``.
"""

from __future__ import annotations

from typing import Any

from powernode.chain.ledger import Ledger
from powernode.core.errors import InvalidParams, NotFound
from powernode.engines.contracts import contract_queries as kq
from powernode.engines.contracts import ppa_queries as pq
from powernode.engines.contracts.contract_records import STATUSES as CONTRACT_STATUSES
from powernode.engines.contracts.ppa_records import STATUSES as PPA_STATUSES
from powernode.engines.metering import clock
from powernode.node import rpc_params as rp
from powernode.node.rpc import Method, Params
from powernode.node.rpc_spec import (
    ADDRESS,
    HEX,
    ID32,
    INT,
    LIST_LIMIT,
    LIST_MAX,
    MethodSpec,
    Param,
    array_of,
    map_of,
    not_found,
    one_of,
    shape,
)

# A PPA as ppa.list gives it; ppa.get adds its deliveries. Its times may be
# any u64 a tx gave (past 2^53 a decimal string on the wire): amount.
_PPA_FIELDS = (
    "id:hex seller:hex buyer:hex device:hex? share_bps:int total_wh:int delivered_wh:int "
    "pending_wh:int progress_bps:int price:int paid:amount owed:amount escrow:amount "
    "start:amount end:amount duration_days:int period_seconds:int accept_deadline:amount "
    "days_remaining:int status:str shortfall_wh:int grace_until:amount "
    "terminate_requested_by:list proposed_height:int closed_time:amount deliveries_count:int"
)
_DELIVERY = shape(
    "seq:int id:hex kind:str wh:int interval_start:int status:str value:amount cert_wh:int "
    "cert:hex? height:int time:int confirm_by:int"
)
_PPA_ROW = shape(_PPA_FIELDS, terminate_requested_by=HEX)
_PPA = shape(_PPA_FIELDS + " deliveries:list", terminate_requested_by=HEX, deliveries=_DELIVERY)
# A condition or action as created: [tag, arg, ...], ids and addresses in hex.
_TERM = {"type": "array"}
_CONTRACT = shape(
    "id:hex address:hex creator:hex parties:list funded:amount escrow:amount expiry:amount "
    "conditions:list actions:list status:str approvals:obj created_height:int "
    "created_time:int closed_height:int? closed_txid:hex? min_fee:amount",
    parties=HEX,
    conditions=_TERM,
    actions=_TERM,
    approvals=map_of(INT),
)

CONTRACT_SPECS = {
    "ppa.get": MethodSpec(
        summary="a PPA by id (the txid that proposed it), by the chain's clock",
        params=(Param("id", ID32, required=True),),
        result=_PPA,
        errors=(not_found("unknown_ppa", "no such PPA"),),
        public=True,
    ),
    "ppa.list": MethodSpec(
        summary="PPAs whose seller or buyer is party",
        params=(Param("party", ADDRESS), Param("status", one_of(PPA_STATUSES)), LIST_LIMIT),
        result=array_of(_PPA_ROW),
        public=True,
    ),
    "contract.get": MethodSpec(
        summary="a contract by id (the txid that created it)",
        params=(Param("id", ID32, required=True),),
        result=_CONTRACT,
        errors=(not_found("unknown_contract", "no such contract"),),
        public=True,
    ),
    "contract.list": MethodSpec(
        summary="contracts whose creator or a party is party",
        params=(
            Param("party", ADDRESS),
            Param("status", one_of(CONTRACT_STATUSES)),
            LIST_LIMIT,
        ),
        result=array_of(_CONTRACT),
        public=True,
    ),
}


def contract_methods(ledger: Ledger) -> dict[str, Method]:
    """``ppa.get``, ``ppa.list``, ``contract.get``, ``contract.list``: reads
    of the tip state."""

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

    async def ppa_get(p: Params) -> Any:
        pid = rp.id32(p, "id", 0, "a PPA id (the txid that proposed it)")
        found = pq.get(state(), pid, now())
        if found is None:
            raise NotFound(f"no PPA {pid.hex()}", code="unknown_ppa")
        return found

    async def ppa_list(p: Params) -> Any:
        party = rp.address(p, "party", 0, required=False)
        status = one_of(p, "status", 1, PPA_STATUSES)
        limit = rp.list_limit(p, LIST_MAX)
        return pq.list_ppas(state(), party=party, status=status, now=now())[:limit]

    async def contract_get(p: Params) -> Any:
        cid = rp.id32(p, "id", 0, "a contract id (the txid that created it)")
        found = kq.get(state(), cid, now())
        if found is None:
            raise NotFound(f"no contract {cid.hex()}", code="unknown_contract")
        return found

    async def contract_list(p: Params) -> Any:
        party = rp.address(p, "party", 0, required=False)
        status = one_of(p, "status", 1, CONTRACT_STATUSES)
        limit = rp.list_limit(p, LIST_MAX)
        return kq.contracts(state(), party=party, status=status, now=now())[:limit]

    return {
        "ppa.get": ppa_get,
        "ppa.list": ppa_list,
        "contract.get": contract_get,
        "contract.list": contract_list,
    }
