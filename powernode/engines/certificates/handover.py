"""Handing over a whole certificate without a tx of its owner: a declarative
contract (engines/contracts) gives away the certificates its address holds
when it executes, or back to its creator when it is cancelled.

``unmovable`` says why a certificate cannot be handed over (so the caller can
fail with its own typed error, naming its own action), ``hand_over`` does it.
"""

from __future__ import annotations

from powernode.core.execution import ExecContext, StateAccess, StateRead
from powernode.engines.certificates.records import ACTIVE, Step, add_step, cert

# The step kind a hand-over records: from the holder (a contract's address),
# to the receiver; ``other`` names the contract, txid is its tx.
CONTRACT = "contract"


def unmovable(view: StateRead, cert_id: bytes, holder: bytes, now: int) -> str | None:
    """Why ``holder`` cannot hand over certificate ``cert_id`` at ``now``,
    or None when it can (it exists, ``holder`` owns it, it is active and not
    expired)."""
    c = cert(view, cert_id)
    if c is None:
        return f"no certificate {cert_id.hex()}"
    if c.owner != holder:
        return f"certificate {cert_id.hex()} is not held by {holder.hex()}"
    if c.status != ACTIVE:
        return f"certificate {cert_id.hex()} is retired"
    if now >= c.expires:
        return f"certificate {cert_id.hex()} expired at {c.expires}"
    return None


def hand_over(
    view: StateAccess,
    ctx: ExecContext,
    cert_id: bytes,
    to: bytes,
    *,
    now: int,
    txid: bytes,
    other: bytes,
) -> int:
    """Give the whole certificate (all its remaining Wh, same id) to ``to``;
    the caller has checked ``unmovable`` is None. Returns the Wh moved."""
    c = cert(view, cert_id)
    assert c is not None and c.status == ACTIVE, "hand_over after unmovable said yes"
    frm = c.owner
    c = c._replace(owner=to)
    add_step(
        view, cert_id, c, Step(CONTRACT, txid, ctx.height, now, frm, to, c.remaining_wh, other, "")
    )
    return c.remaining_wh
