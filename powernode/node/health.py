"""Whether a node is in sync, and what ``GET /health`` answers.

A node is syncing (geth's ``eth_syncing``) while a connected peer has
shown a chain more than ``SYNC_SLACK`` blocks above our tip, by its
handshake, the headers it sent or the blocks it relayed. The slack keeps a
node from flapping to "syncing" each time a peer relays a new block a
moment before we connect it. Pure: the caller reads the tip and the peers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SYNC_SLACK = 2

HEALTHY = 200
UNAVAILABLE = 503


@dataclass(frozen=True, slots=True)
class SyncState:
    syncing: bool
    height: int
    # The highest height a connected peer has shown; None without peers.
    best_peer_height: int | None


def sync_state(height: int, peer_heights: Iterable[int]) -> SyncState:
    best = max(peer_heights, default=None)
    return SyncState(
        syncing=best is not None and best > height + SYNC_SLACK,
        height=height,
        best_peer_height=best,
    )


@dataclass(frozen=True, slots=True)
class Health:
    status: int
    body: dict[str, Any]


def health(
    *,
    phase: str,
    sync: SyncState,
    peers: int,
    tip_age_s: int,
    max_tip_age_s: int | None = None,
) -> Health:
    """200 when serving and in sync (and, if asked, the tip is no older
    than ``max_tip_age_s``); else 503 with the first reason that applies.
    ``phase`` is the node's: ``starting``, ``serving`` or ``stopping``."""
    reason = ""
    if phase != "serving":
        reason = phase
    elif sync.syncing:
        reason = "syncing"
    elif max_tip_age_s is not None and tip_age_s > max_tip_age_s:
        reason = "tip_stale"
    body: dict[str, Any] = {
        "status": "unavailable" if reason else "ok",
        "height": sync.height,
        "best_peer_height": sync.best_peer_height,
        "syncing": sync.syncing,
        "peers": peers,
        "tip_age_s": tip_age_s,
    }
    if reason:
        body["reason"] = reason
    return Health(UNAVAILABLE if reason else HEALTHY, body)
