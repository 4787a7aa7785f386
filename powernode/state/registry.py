"""The engines of this chain, and the lookups the state machine derives from them.

Adding an engine is one package under ``powernode/engines/`` exposing an
``ENGINE`` record (``core.execution.Engine``) and its line in ``ENGINES``
below (with the package in the import); nothing else in state/ changes. The order of ``ENGINES`` is consensus:
begin-block hooks run in it, and the genesis commits to the engines' genesis
sections in it, so a new engine goes at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from powernode.core.crypto import verify
from powernode.core.errors import BadMeterSignature, BadSignature, UnknownTxType
from powernode.core.execution import (
    AfterTx,
    BlockHook,
    CoSig,
    Engine,
    Precheck,
    StateCodec,
    TxHandler,
)
from powernode.core.params import CHAIN_KEYS
from powernode.core.tx import MAX_TYPE_LEN, Transaction
from powernode.engines import accounts, certificates, contracts, market, metering, settlement

ENGINES: tuple[Engine, ...] = (
    accounts.ENGINE,
    market.ENGINE,
    metering.ENGINE,
    certificates.ENGINE,
    contracts.ENGINE,
    settlement.ENGINE,
)


def _unique(kind: str, names: list[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise RuntimeError(f"two engines claim the {kind} {n!r}")
        seen.add(n)


def check_engines(engines: tuple[Engine, ...]) -> None:
    """What the registry refuses, at import (RuntimeError): two engines
    claiming one name, tx type, namespace or genesis key; a tx type no tx
    can carry (1..MAX_TYPE_LEN characters); a genesis key that is one of
    the chain's own, or a comment's (``_`` first)."""
    _unique("engine name", [e.name for e in engines])
    _unique("tx type", [h.tx_type for e in engines for h in e.handlers])
    _unique("state namespace", [ns for e in engines for ns in e.state_codecs])
    _unique("genesis key", [e.genesis.key for e in engines if e.genesis is not None])
    for e in engines:
        for h in e.handlers:
            if not 1 <= len(h.tx_type) <= MAX_TYPE_LEN:
                raise RuntimeError(
                    f"engine {e.name}: tx type {h.tx_type!r} is not 1..{MAX_TYPE_LEN} characters"
                )
        key = e.genesis.key if e.genesis is not None else None
        if key is not None and key in CHAIN_KEYS:
            raise RuntimeError(f"engine {e.name}: genesis key {key!r} is the chain's own")
        if key is not None and key.startswith("_"):
            raise RuntimeError(f"engine {e.name}: genesis key {key!r} is a comment's (a _ first)")


check_engines(ENGINES)

HANDLERS: Mapping[str, TxHandler] = {h.tx_type: h for e in ENGINES for h in e.handlers}
STATE_CODECS: Mapping[str, StateCodec] = {
    ns: codec for e in ENGINES for ns, codec in e.state_codecs.items()
}
# Run at the start of every block, in this order.
BLOCK_HOOKS: tuple[BlockHook, ...] = tuple(
    e.begin_block for e in ENGINES if e.begin_block is not None
)


# tx type -> the hooks other engines run after it (registry order).
AFTER_TX: Mapping[str, tuple[AfterTx, ...]] = {
    t: tuple(e.after_tx[t] for e in ENGINES if t in e.after_tx)
    for t in sorted({t for e in ENGINES for t in e.after_tx})
}
_unknown_after = sorted(set(AFTER_TX) - set(HANDLERS))
if _unknown_after:
    raise RuntimeError(f"after_tx hooks for unknown tx types {_unknown_after}")
# tx type -> the handler's co-signature reader, for the types that carry any.
COSIGNERS: Mapping[str, Callable[[Transaction], tuple[CoSig, ...]]] = {
    t: h.cosignatures for t, h in HANDLERS.items() if hasattr(h, "cosignatures")
}

# tx type -> the miner's looser check at the tx's place in a block, for the
# types that have one (others: their precheck).
TEMPLATE_CHECKS: Mapping[str, Precheck] = {
    t: h.template_check for t, h in HANDLERS.items() if hasattr(h, "template_check")
}
# tx type -> its weight toward max_block_txs, for the types that weigh more
# than 1 (consensus).
WEIGHTS: Mapping[str, Callable[[Any], int]] = {
    t: h.weight for t, h in HANDLERS.items() if hasattr(h, "weight")
}


def tx_weight(tx: Transaction) -> int:
    """What ``tx`` counts toward ``max_block_txs``."""
    weigh = WEIGHTS.get(tx.type)
    return 1 if weigh is None else weigh(tx.payload)


def tx_signatures(tx: Transaction) -> tuple[CoSig, ...]:
    """Every signature ``tx`` carries: its sender's first, then its
    co-signatures (what the signature workers check)."""
    own = (tx.sender, tx.signature, tx.signing_bytes())
    cosigners = COSIGNERS.get(tx.type)
    return (own,) if cosigners is None else (own, *cosigners(tx))


def verify_tx(tx: Transaction) -> None:
    """Check the sender's signature, then each co-signature; raise
    BadSignature or BadMeterSignature for the first that fails."""
    tx.verify_signature()
    cosigners = COSIGNERS.get(tx.type)
    if cosigners is None:
        return
    for pubkey, sig, msg in cosigners(tx):
        try:
            verify(pubkey, sig, msg)
        except BadSignature:
            raise BadMeterSignature(
                f"co-signature by {pubkey.hex()[:16]} does not verify"
            ) from None


def handler_for(tx_type: str) -> TxHandler:
    try:
        return HANDLERS[tx_type]
    except KeyError:
        raise UnknownTxType(f"unknown tx type {tx_type!r}") from None
