"""``certificates.moves.bundle``: moving a (device, interval)'s certificate
energy without a tx of its owner (a settlement or a PPA delivery). Run here
directly over a view of the tip state, as a block hook would."""

from __future__ import annotations

from typing import Any

from powernode.core.crypto import sha256
from powernode.core.execution import ExecContext
from powernode.engines.certificates import records
from powernode.engines.certificates.moves import bundle
from powernode.state.view import StateView
from tests.unit.cert_helpers import Certs, child_id, open_certs, root_id
from tests.unit.helpers import MINER, LedgerFactory
from tests.unit.market_helpers import ALICE, BOB, CAROL, KWH, T0
from tests.unit.metering_helpers import INTERVAL_END, METER


def _ctx(m: Certs) -> ExecContext:
    tip = m.ledger.chain.tip
    return ExecContext(tip.height + 1, tip.header.timestamp, MINER.address, m.params)


def _world(factory: LedgerFactory) -> tuple[Certs, bytes, StateView, ExecContext]:
    m = open_certs(factory)
    dev = m.active_device(ALICE, METER)
    m.mine(INTERVAL_END)
    rep = m.report(ALICE, METER, dev, T0, produced=100 * KWH)
    m.mine()
    m.ok(rep)
    view = StateView(m.state)
    return m, dev, view, _ctx(m)


REF1 = sha256(b"test-ref-1")
REF2 = sha256(b"test-ref-2")


def test_bundle_part_then_rest_then_nothing(factory: LedgerFactory) -> None:
    _, dev, view, ctx = _world(factory)
    root = root_id(dev, T0)
    kw: dict[str, Any] = {"device": dev, "interval": T0, "kind": "bundle"}
    moved, cid = bundle(view, ctx, frm=ALICE.address, to=BOB.address, wh=30 * KWH, ref=REF1, **kw)
    assert (moved, cid) == (30 * KWH, child_id(root, REF1))
    assert cid is not None
    kid = records.cert(view, cid)
    assert kid is not None and kid.owner == BOB.address and kid.wh == 30 * KWH
    steps = records.steps(view, cid, kid)
    assert [s.kind for s in steps] == ["split", "bundle"] and steps[1].txid == REF1
    parent = records.cert(view, root)
    assert parent is not None and parent.remaining_wh == 70 * KWH and parent.owner == ALICE.address
    # More than is left: the rest moves, the root itself changes hands.
    moved, cid = bundle(
        view, ctx, frm=ALICE.address, to=CAROL.address, wh=500 * KWH, ref=REF2, **kw
    )
    assert (moved, cid) == (70 * KWH, root)
    parent = records.cert(view, root)
    assert parent is not None and parent.owner == CAROL.address
    # ALICE holds nothing of it any more: nothing moves, nothing raises.
    assert bundle(view, ctx, frm=ALICE.address, to=BOB.address, wh=1, ref=REF1, **kw) == (0, None)
    # No certificate for that interval at all.
    kw["interval"] = T0 + 900
    assert bundle(view, ctx, frm=ALICE.address, to=BOB.address, wh=1, ref=REF1, **kw) == (0, None)


def test_bundle_after_the_owner_moved_part_away(factory: LedgerFactory) -> None:
    m, dev, _, _ = _world(factory)
    root = root_id(dev, T0)
    tx = m.transfer_cert(ALICE, root, CAROL, 80 * KWH)
    m.mine()
    m.ok(tx)
    view = StateView(m.state)
    ctx = _ctx(m)
    moved, cid = bundle(
        view, ctx, device=dev, interval=T0, frm=ALICE.address, to=BOB.address,
        wh=50 * KWH, ref=REF1, kind="ppa",
    )  # fmt: skip
    assert (moved, cid) == (20 * KWH, root)
    c = records.cert(view, root)
    assert (
        c is not None and c.owner == BOB.address and records.steps(view, root, c)[-1].kind == "ppa"
    )
