"""Moving certificate energy without a tx of its owner: a block hook (the
settlement of a trade) or another engine's hook (a PPA delivery) bundles the
certificates of the energy it settles with that energy.

``bundle`` is the one entry point. It never raises for "nothing to move":
a settlement must not fail because a seller moved its certificates away, it
bundles only what is left, and the caller records how much that was.
"""

from __future__ import annotations

from functools import partial

from powernode.core.execution import ExecContext, StateAccess
from powernode.engines.certificates.records import (
    ACTIVE,
    Certificate,
    Step,
    add_step,
    cert,
    claimed,
    split_off,
)
from powernode.engines.metering import clock

# Step kinds a bundle records (besides the split a part move makes).
BUNDLE, PPA = "bundle", "ppa"
KINDS = (BUNDLE, PPA)

# Records built from tuples in C, not through the NamedTuple's ``_replace``:
# a settlement of thousands of trades bundles thousands of certificates.
_cert = partial(tuple.__new__, Certificate)
_step = partial(tuple.__new__, Step)


def bundle(
    view: StateAccess,
    ctx: ExecContext,
    *,
    device: bytes,
    interval: int,
    frm: bytes,
    to: bytes,
    wh: int,
    ref: bytes,
    kind: str,
) -> tuple[int, bytes | None]:
    """Move up to ``wh`` Wh of the (device, interval) certificate that ``frm``
    still holds to ``to``.

    Only the root certificate of the (device, interval) is looked at, and
    only while ``frm`` owns it and it is active and not expired: what the
    owner split off or moved away by its own txs is its own business, so a
    bundle takes what the root still holds, never chases children. A whole
    move changes the root's owner; a part splits off a child whose id is
    ``child_id(root, ref)`` (``ref`` names the settling event, so one event
    splits a root at most once). The step of kind ``kind`` carries ``ref``
    as its txid. Returns (Wh moved, the certificate that now holds them), or
    (0, None) when nothing moved.
    """
    assert kind in KINDS, f"unknown bundle kind {kind!r}"
    assert len(ref) == 32, "a bundle's ref is 32 bytes"
    if wh <= 0 or frm == to:
        return 0, None
    root = claimed(view, device, interval)
    if root is None:
        return 0, None
    c = cert(view, root)
    assert c is not None, "a claimed interval names a stored certificate"
    now = clock.now(view, ctx)
    if c.owner != frm or c.status != ACTIVE or now >= c.expires or c.remaining_wh == 0:
        return 0, None
    n = min(wh, c.remaining_wh)
    step = _step((kind, ref, ctx.height, now, frm, to, n, b"", ""))
    if n == c.remaining_wh:
        add_step(view, root, _cert((to, *c[1:])), step)  # c._replace(owner=to)
        return n, root
    cid, kid = split_off(view, root, c, to, n, ref=ref, height=ctx.height, now=now)
    add_step(view, cid, kid, step)
    return n, cid
