"""``meter.batch``: many meters' signed readings of one interval in one tx.

Payload (msgpack array):

    meter.batch  [interval_start, [[device_id, produced_wh, consumed_wh, meter_pubkey,
                                    meter_sig], ...]]

1..``MAX_BATCH_READINGS`` entries, device ids strictly ascending (bytewise),
each field as in ``meter.report``. A data hub collects readings its meters
signed (each meter signs exactly what it would sign for a ``meter.report``)
and relays them at once: one envelope, one fee, one nonce, one receipt for
up to a hundred readings, which is where the per-reading cost falls.

Each entry is a reading as if a ``meter.report`` had carried it: the same
rule functions (``check_reading``), the same writer (``record_reading``),
and the other engines' per-reading work through their ``meter.batch``
hooks, which take each entry with production this tx recorded
(``produced_entries``) to the function they run for a ``meter.report``.
Admission refuses the whole tx for the first entry that breaks a rule; in a
block such an entry is skipped (``meter.skipped``) and the others count; the
miner takes a batch while one entry would still record (``template_check``).
A batch weighs its entries toward ``max_block_txs`` (``weight``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any, NamedTuple

from powernode.core.crypto import PUBKEY_SIZE, SIG_SIZE
from powernode.core.errors import BadPayload, NotRegistered, PowernodeError
from powernode.core.execution import CoSig, Event, ExecContext, StateAccess, StateRead
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.engines.market.handlers import settled
from powernode.engines.market.records import PART_NS
from powernode.engines.metering import clock
from powernode.engines.metering.handlers import (
    ID_SIZE,
    ReportPayload,
    check_reading,
    record_reading,
)
from powernode.engines.metering.params import cert_params
from powernode.engines.metering.records import READING_NS, reading_key, reading_message

TX_TYPE = "meter.batch"
# A tx's co-signatures are counted in one byte of the signature workers'
# framing: the sender's plus 100 fit. 100 entries also fit MAX_TX_BYTES.
MAX_BATCH_READINGS = 100

_MAX_U64 = 2**64 - 1
_SHAPE = (
    f"meter.batch payload is [interval_start, readings]; readings 1..{MAX_BATCH_READINGS} entries "
    "[device_id (32 bytes), produced_wh, consumed_wh, meter_pubkey (32 bytes), "
    "meter_sig (64 bytes)], device ids strictly ascending"
)


# ReportPayload(...) built in C: a batch decodes up to 100.
_new_entry = partial(tuple.__new__, ReportPayload)


class BatchPayload(NamedTuple):
    interval_start: int
    # Each entry as the meter.report it stands for (same interval for all).
    readings: tuple[ReportPayload, ...]


def _uint(v: Any) -> bool:
    return type(v) is int and 0 <= v <= _MAX_U64


def parse_batch(payload: Any) -> BatchPayload | None:
    """The typed payload, or None if it is malformed (``cosignatures`` must not
    raise; ``decode`` turns None into BadPayload)."""
    if type(payload) is not list or len(payload) != 2:
        return None
    start, raw = payload
    if not _uint(start) or type(raw) is not list or not 1 <= len(raw) <= MAX_BATCH_READINGS:
        return None
    out: list[ReportPayload] = []
    last = b""
    for e in raw:
        if type(e) is not list or len(e) != 5:
            return None
        did, produced, consumed, pubkey, sig = e
        # Strictly ascending ids: no device twice, and one order for a set.
        if type(did) is not bytes or len(did) != ID_SIZE or did <= last:
            return None
        if not (_uint(produced) and _uint(consumed)):
            return None
        if type(pubkey) is not bytes or len(pubkey) != PUBKEY_SIZE:
            return None
        if type(sig) is not bytes or len(sig) != SIG_SIZE:
            return None
        out.append(_new_entry((did, start, produced, consumed, pubkey, sig)))
        last = did
    return BatchPayload(start, tuple(out))


def _check_sender(view: StateRead, sender: bytes) -> None:
    if view.get((PART_NS, sender)) is None:
        raise NotRegistered("register as a market participant before relaying a batch")


def produced_entries(view: StateRead, tx: Transaction, p: BatchPayload) -> Iterator[ReportPayload]:
    """The entries of ``p`` with production that ``tx`` stored as readings
    (not skipped), in order: what the certificates and PPA hooks after a
    batch act on. Production is tested first, so a consumption meter's entry
    costs the hooks no state lookup."""
    txid = tx.txid
    for e in p.readings:
        if not e.produced_wh:
            continue
        r = view.get((READING_NS, reading_key(e.device_id, e.interval_start)))
        if r is not None and r.txid == txid:
            yield e


def _naming(i: int, e: ReportPayload, exc: PowernodeError) -> PowernodeError:
    """``exc`` (same class and code) with its message naming the entry."""
    return type(exc)(f"entry {i} (device {e.device_id.hex()}): {exc.message}", code=exc.code)


class BatchHandler:
    tx_type = TX_TYPE

    def decode(self, payload: list[Any]) -> BatchPayload:
        p = parse_batch(payload)
        if p is None:
            raise BadPayload(_SHAPE)
        return p

    def cosignatures(self, tx: Transaction) -> tuple[CoSig, ...]:
        p = parse_batch(tx.payload)
        if p is None:
            return ()
        chain_id = tx.chain_id
        out = []
        for e in p.readings:
            msg = reading_message(
                chain_id, e.device_id, e.interval_start, e.produced_wh, e.consumed_wh
            )
            out.append((e.meter_pubkey, e.meter_sig, msg))
        return tuple(out)

    def max_debit(self, payload: BatchPayload, params: ChainParams) -> int:
        return 0

    def weight(self, payload: Any) -> int:
        # Its entries: max_block_txs was set for txs of one reading at most.
        # A payload decode refuses is weighed by what it holds, at least 1.
        if type(payload) is list and len(payload) == 2 and type(payload[1]) is list:
            return max(1, len(payload[1]))
        return 1

    def precheck(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: BatchPayload
    ) -> None:
        """Admission: every entry must pass against the tip; the first that
        fails refuses the whole tx."""
        self._check_sender_settled(view, tx)
        cp = cert_params(ctx.params)
        now = clock.now(view, ctx)
        for i, e in enumerate(p.readings):
            try:
                check_reading(view, cp, now, e)
            except PowernodeError as exc:
                raise _naming(i, e, exc) from None

    def template_check(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: BatchPayload
    ) -> None:
        """The miner's rule at the batch's place in the block: worth including
        while one entry would still record (the block skips the others), so
        a cheap tx that makes one entry a duplicate cannot get the whole batch
        dropped unpaid; refused, with its first entry's error, only when
        every entry would be skipped."""
        self._check_sender_settled(view, tx)
        cp = cert_params(ctx.params)
        now = clock.now(view, ctx)
        first: PowernodeError | None = None
        for i, e in enumerate(p.readings):
            try:
                check_reading(view, cp, now, e)
            except PowernodeError as exc:
                if first is None:
                    first = _naming(i, e, exc)
                continue
            return
        if first is not None:
            raise first

    @staticmethod
    def _check_sender_settled(view: StateAccess, tx: Transaction) -> None:
        # The sender's registration may still be pending with an earlier tx
        # of its own: then only the block judges it (as device.register).
        if settled(view, tx):
            _check_sender(view, tx.sender_address)

    def apply(
        self, view: StateAccess, ctx: ExecContext, tx: Transaction, p: BatchPayload
    ) -> list[Event]:
        _check_sender(view, tx.sender_address)
        cp = cert_params(ctx.params)
        now = clock.now(view, ctx)
        events: list[Event] = []
        for e in p.readings:
            try:
                check_reading(view, cp, now, e)
            except PowernodeError as exc:
                events.append(
                    {"event": "meter.skipped", "device": e.device_id,
                     "interval": e.interval_start, "code": exc.code}
                )  # fmt: skip
                continue
            events.append(record_reading(view, ctx, tx, now, e))
        return events
