"""The certificates' slice of state: record types, the keys they live under, ids.

Namespaces (key bytes after the namespace):

    crt.cert     cert id (32)                          Certificate
    crt.claimed  device id (32) + u64(interval start)  CertId: the root certificate
                                                       of that (device, interval)
    crt.step     cert id + u32(seq)                    Step: one entry of a
                                                       certificate's history
    crt.ret      retirer (20) + u64(interval start)    Wh: Wh retired (index for
                 + cert id                             hourly matching, cert.cfe)
    crt.meta     b""                                   CertTotals

Ids: a root certificate (from a reading or a manual issue) is
``sha256(b"powernode-cert" + device id + u64(interval start))``, so a
(device, interval) can name one root only; a child split off by a transfer
or a partial retirement is ``sha256(b"powernode-cert-split" + parent id +
txid)`` (a tx splits a certificate at most once). Every record encodes as a
msgpack array (or a bare value for the one-value records).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

from powernode.core import encoding
from powernode.core.crypto import sha256
from powernode.core.execution import StateAccess, StateRead

CERT_NS = "crt.cert"
CLAIMED_NS = "crt.claimed"
STEP_NS = "crt.step"
RET_NS = "crt.ret"
META_NS = "crt.meta"

ACTIVE, RETIRED, EXPIRED = "active", "retired", "expired"
# What is stored; "expired" is never stored, only shown (see ``status_at``).
STORED_STATUSES = (ACTIVE, RETIRED)
STATUSES = (ACTIVE, RETIRED, EXPIRED)
GREEN, RENEWABLE = "green", "renewable"

# Step kinds, in the order a certificate's history can hold them.
READING, ISSUE, SPLIT, TRANSFER, RETIRE = "reading", "issue", "split", "transfer", "retire"

_ROOT_TAG = b"powernode-cert"
_SPLIT_TAG = b"powernode-cert-split"
_META_KEY = (META_NS, b"")


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def root_id(device_id: bytes, interval_start: int) -> bytes:
    return sha256(_ROOT_TAG + device_id + u64(interval_start))


def child_id(parent_id: bytes, txid: bytes) -> bytes:
    return sha256(_SPLIT_TAG + parent_id + txid)


def claimed_key(device_id: bytes, interval_start: int) -> bytes:
    return device_id + u64(interval_start)


def step_key(cert_id: bytes, seq: int) -> bytes:
    return cert_id + u32(seq)


def ret_key(retirer: bytes, interval_start: int, cert_id: bytes) -> bytes:
    return retirer + u64(interval_start) + cert_id


class CertId(bytes):
    """A certificate id as a state value (``crt.claimed``): stored as the bytes."""

    __slots__ = ()

    def to_obj(self) -> bytes:
        return bytes(self)

    @classmethod
    def from_obj(cls, obj: Any) -> CertId:
        return cls(encoding.as_bytes(obj, "cert id", size=32))


class Wh(int):
    """An amount of energy as a state value (``crt.ret``): stored as the integer."""

    __slots__ = ()

    def to_obj(self) -> int:
        return int(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Wh:
        return cls(encoding.as_uint(obj, "wh"))


class Claim(NamedTuple):
    """What a retirement claims, kept in state so the claim itself is proven."""

    beneficiary: str  # 1..128 characters
    purpose: str  # 0..256 characters
    period_start: int  # the consumption period the energy is claimed for
    period_end: int
    retired_by: bytes  # the owner who retired it

    def to_obj(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Claim:
        f = encoding.as_list(obj, 5, "claim")
        return cls(
            encoding.as_str(f[0], "beneficiary", max_len=128),
            encoding.as_str(f[1], "purpose", max_len=256),
            encoding.as_uint(f[2], "period_start"),
            encoding.as_uint(f[3], "period_end"),
            encoding.as_bytes(f[4], "retired_by", size=20),
        )

    def to_json(self) -> dict[str, Any]:
        out = self._asdict()
        out["retired_by"] = self.retired_by.hex()
        return out


class Certificate(NamedTuple):
    owner: bytes
    producer: bytes  # the device owner when the energy was certified
    device: bytes
    source: str
    location: str
    carbon_intensity: int  # gCO2/kWh, declared by the device
    ctype: str  # green | renewable
    interval_start: int  # the generation interval
    interval_seconds: int
    wh: int  # original amount, never changes
    remaining_wh: int  # wh less what children took; what a retirement retired
    status: str  # active | retired (stored; expired is derived)
    parent: bytes  # b"" for a root
    issued_txid: bytes  # the tx that made it (reading, issue or the split)
    issued_height: int
    issued_time: int
    expires: int  # usable while now < expires
    claim: Claim | None
    steps: int  # how many Step records it has: the next step's seq

    def to_obj(self) -> list[Any]:
        out: list[Any] = list(self)
        out[17] = None if self.claim is None else self.claim.to_obj()
        return out

    @classmethod
    def from_obj(cls, obj: Any) -> Certificate:
        f = encoding.as_list(obj, 19, "certificate")
        claim = None if f[17] is None else Claim.from_obj(f[17])
        return cls._make((*f[:17], claim, f[18]))

    def status_at(self, now: int) -> str:
        """The status a reader sees: an active certificate past its expiry is expired."""
        if self.status == ACTIVE and now >= self.expires:
            return EXPIRED
        return self.status

    @property
    def interval_end(self) -> int:
        return self.interval_start + self.interval_seconds

    def to_json(self, cert_id: bytes, now: int) -> dict[str, Any]:
        return {
            "id": cert_id.hex(),
            "owner": self.owner.hex(),
            "producer": self.producer.hex(),
            "device": self.device.hex(),
            "source": self.source,
            "location": self.location,
            "carbon_intensity": self.carbon_intensity,
            "type": self.ctype,
            "interval_start": self.interval_start,
            "interval_end": self.interval_end,
            "interval_seconds": self.interval_seconds,
            "wh": self.wh,
            "remaining_wh": self.remaining_wh,
            "status": self.status_at(now),
            "parent": self.parent.hex() if self.parent else None,
            "issued_txid": self.issued_txid.hex(),
            "issued_height": self.issued_height,
            "issued_time": self.issued_time,
            "expires": self.expires,
            "claim": None if self.claim is None else self.claim.to_json(),
            "steps": self.steps,
        }


class Step(NamedTuple):
    """One entry of a certificate's history. ``frm``/``to`` are addresses or
    b"" where none applies; ``other`` is the device (reading, issue) or the
    certificate on the other side of a split, else b""."""

    kind: str
    txid: bytes
    height: int
    time: int
    frm: bytes
    to: bytes
    wh: int
    other: bytes
    note: str  # the beneficiary of a retirement, else ""

    def to_obj(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> Step:
        return cls(*encoding.as_list(obj, 9, "cert step"))

    def to_json(self, cert_id: bytes) -> dict[str, Any]:
        return {
            "cert": cert_id.hex(),
            "kind": self.kind,
            "txid": self.txid.hex(),
            "height": self.height,
            "time": self.time,
            "from": self.frm.hex() if self.frm else None,
            "to": self.to.hex() if self.to else None,
            "wh": self.wh,
            "other": self.other.hex() if self.other else None,
            "note": self.note,
        }


class CertTotals(NamedTuple):
    issued_wh: int = 0  # Wh of root certificates (splits move Wh, they do not issue)
    retired_wh: int = 0
    certificates: int = 0  # records, roots and children

    def to_obj(self) -> list[int]:
        return list(self)

    @classmethod
    def from_obj(cls, obj: Any) -> CertTotals:
        f = encoding.as_list(obj, 3, "cert totals")
        return cls(*(encoding.as_uint(x, "cert total") for x in f))


# Certificate(...) without the NamedTuple's Python __new__ (see
# accounts.new_account): every certificate tx rewrites one or two.
new_cert = partial(tuple.__new__, Certificate)


# --- access -------------------------------------------------------------------


def cert(view: StateRead, cert_id: bytes) -> Certificate | None:
    c: Certificate | None = view.get((CERT_NS, cert_id))
    return c


def claimed(view: StateRead, device_id: bytes, interval_start: int) -> bytes | None:
    """The root certificate of (device, interval), if it was certified."""
    c: CertId | None = view.get((CLAIMED_NS, claimed_key(device_id, interval_start)))
    return None if c is None else bytes(c)


def step(view: StateRead, cert_id: bytes, seq: int) -> Step | None:
    s: Step | None = view.get((STEP_NS, step_key(cert_id, seq)))
    return s


def steps(view: StateRead, cert_id: bytes, c: Certificate) -> list[Step]:
    out = []
    for seq in range(c.steps):
        s = step(view, cert_id, seq)
        assert s is not None, "a certificate's steps are stored 0..steps-1"
        out.append(s)
    return out


def totals(view: StateRead) -> CertTotals:
    t: CertTotals | None = view.get(_META_KEY)
    return CertTotals() if t is None else t


def put_totals(view: StateAccess, t: CertTotals) -> None:
    view.put(_META_KEY, t)


def add_step(view: StateAccess, cert_id: bytes, c: Certificate, s: Step) -> Certificate:
    """Append ``s`` to the history of ``c`` and write both; returns the new record."""
    n = c.steps
    view.put((STEP_NS, step_key(cert_id, n)), s)
    c = new_cert((*c[:18], n + 1))  # c._replace(steps=n + 1), in C
    view.put((CERT_NS, cert_id), c)
    return c


def split_off(
    view: StateAccess,
    parent_id: bytes,
    parent: Certificate,
    to: bytes,
    wh: int,
    *,
    ref: bytes,
    height: int,
    now: int,
) -> tuple[bytes, Certificate]:
    """Split ``wh`` off ``parent`` into a child owned by ``to``, id
    ``child_id(parent_id, ref)`` (``ref``: the splitting tx's id, or the
    settling event's for a bundle): the child carries the origin fields, and
    both record the split in their steps. Returns the child's id and record.
    Built from tuples in C rather than ``_replace``: a settlement of
    thousands of trades splits thousands of certificates."""
    cid = child_id(parent_id, ref)
    owner = parent.owner
    # parent._replace(owner=to, wh=wh, remaining_wh=wh, parent=parent_id,
    # issued_txid=ref, issued_height=height, issued_time=now, steps=0)
    child = new_cert(
        (to, *parent[1:9], wh, wh, parent[11], parent_id, ref, height, now, *parent[16:18], 0)
    )
    parent = new_cert((*parent[:10], parent.remaining_wh - wh, *parent[11:]))
    add_step(view, parent_id, parent, Step(SPLIT, ref, height, now, owner, to, wh, cid, ""))
    child = add_step(view, cid, child, Step(SPLIT, ref, height, now, owner, to, wh, parent_id, ""))
    t = totals(view)
    put_totals(view, t._replace(certificates=t.certificates + 1))
    return cid, child


STATE_CODECS = {
    CERT_NS: Certificate.from_obj,
    CLAIMED_NS: CertId.from_obj,
    STEP_NS: Step.from_obj,
    RET_NS: Wh.from_obj,
    META_NS: CertTotals.from_obj,
}
