"""One debug line per engine for each block connected: what its txs did.

Block execution (state/, engines/) is pure and logs nothing, so the
engines' log categories (market, metering, certs, contracts, accounts) are
fed from here, after the fact, from the receipts of the blocks a chain
update connected. Nothing is read unless one of those loggers is at debug.
"""

from __future__ import annotations

import logging
from collections import Counter

from powernode.chain.chain import ChainUpdate
from powernode.logkit import emit
from powernode.state.registry import ENGINES

# Each engine logs under its own name (logging_setup.CATEGORIES maps the
# categories onto these loggers).
LOGGERS: dict[str, logging.Logger] = {
    e.name: logging.getLogger(f"powernode.{e.name}") for e in ENGINES if e.handlers
}
ENGINE_OF: dict[str, str] = {h.tx_type: e.name for e in ENGINES for h in e.handlers}


def log_engine_blocks(update: ChainUpdate) -> None:
    wanted = {name for name, lg in LOGGERS.items() if lg.isEnabledFor(logging.DEBUG)}
    if not wanted or not update.connected:
        return
    for block, result in update.connected:
        txs: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        events: dict[str, Counter[str]] = {}
        for tx, receipt in zip(block.txs, result.receipts, strict=True):
            engine = ENGINE_OF.get(tx.type, "")
            if engine not in wanted:
                continue
            txs[engine] += 1
            if not receipt.ok:
                failed[engine] += 1
            counts = events.setdefault(engine, Counter())
            counts.update(str(e.get("event", "")) for e in receipt.events)
        for engine, n in txs.items():
            emit(
                LOGGERS[engine],
                "engine.block",
                logging.DEBUG,
                engine=engine,
                height=block.height,
                txs=n,
                failed=failed[engine],
                events=" ".join(f"{k}={v}" for k, v in sorted(events[engine].items())),
            )
