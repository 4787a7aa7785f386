"""The settlement's slice of state.

Namespaces (key bytes after the namespace):

    stl.devs  owner (20)               Ids: the owner's devices that can generate
                                       (kind generation or both), in id order
    stl.slot  u64(slot) + seller (20)  SlotSettlement: what settling the seller's
                                       trades of that slot found and did

Block hooks write no receipts, so ``stl.slot`` (with the settled fields of
each ``mkt.trade``) is where a settlement is visible: ``market.settlement``
and ``market.trades`` show them.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from powernode.core import encoding
from powernode.core.execution import StateRead
from powernode.engines.market.records import Ids, u64

DEVS_NS = "stl.devs"
SLOT_NS = "stl.slot"


def slot_key(slot: int, seller: bytes) -> bytes:
    return u64(slot) + seller


class SlotSettlement(NamedTuple):
    height: int  # the settling block
    time: int  # the metering clock of the settling block
    metered_wh: int  # produced by the seller's active generation devices in the slot
    ppa_wh: int  # of that, taken by PPAs bound to those devices
    sold_wh: int  # the energy of the seller's trades of the slot
    delivered_wh: int  # allocated to those trades
    paid: int  # to the seller, before its fee
    refunded: int  # to buyers
    penalty: int  # moved from the seller to buyers
    bundled_wh: int  # certificate energy moved to buyers
    trades: int

    def to_obj(self) -> list[int]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> SlotSettlement:
        f = encoding.as_list(obj, 11, "slot settlement")
        return cls(*(encoding.as_uint(x, "slot settlement") for x in f))

    def to_json(self, slot: int, seller: bytes) -> dict[str, Any]:
        return {"slot": slot, "seller": seller.hex(), **self._asdict()}


def devices_of(view: StateRead, owner: bytes) -> Ids:
    d: Ids | None = view.get((DEVS_NS, owner))
    return Ids() if d is None else d


def slot_settlement(view: StateRead, slot: int, seller: bytes) -> SlotSettlement | None:
    s: SlotSettlement | None = view.get((SLOT_NS, slot_key(slot, seller)))
    return s


STATE_CODECS = {DEVS_NS: Ids.from_obj, SLOT_NS: SlotSettlement.from_obj}
