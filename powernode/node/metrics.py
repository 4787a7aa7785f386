"""Prometheus metrics of one node, served at ``/metrics`` on their own port.

Opt-in, as geth's ``--metrics`` (``[metrics] enabled``). Each node has its
own ``CollectorRegistry``, never the client's global one, so several nodes
in one process (the integration tests) keep their figures apart.

Two kinds of figures. Events are counted where the node already handles
them (blocks a chain update connected or undid, each tx admitted or
refused, each RPC call), through the few methods below. Everything that is
state (height, mempool, peers, the engines' totals) is read at scrape time
by ``_StateCollector``, so no other module keeps a copy up to date. The
engines' counts by status take one pass over the tip state per scrape.
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from powernode.chain.chain import ChainUpdate
from powernode.chain.ledger import Ledger
from powernode.engines.certificates import queries as cert_queries
from powernode.engines.contracts import contract_queries, contract_records, ppa_queries, ppa_records
from powernode.engines.contracts.contract_records import CONTRACT_NS
from powernode.engines.contracts.ppa_records import PPA_NS
from powernode.engines.market import queries as market_queries
from powernode.engines.metering import records as metering_records
from powernode.engines.metering.records import DEVICE_NS, READING_NS
from powernode.engines.settlement.queries import pending as pending_slots
from powernode.engines.settlement.records import SLOT_NS
from powernode.logkit import emit
from powernode.node.api import TxResult
from powernode.node.health import sync_state
from powernode.node.miner import Miner
from powernode.node.p2p import P2P
from powernode.node.p2p_gossip import REASK_REASONS
from powernode.node.urls import http_url
from powernode.node.verify import Verifier

log = logging.getLogger("powernode.metrics")

# Seconds; a block connect on the testnet takes 1-200 ms (README, "Benchmarks").
CONNECT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


@dataclass(frozen=True, slots=True)
class Watched:
    """What the state collector reads at scrape time."""

    ledger: Ledger
    miner: Miner
    verifier: Verifier
    p2p: P2P | None
    version: str
    started_mono: float


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.blocks_connected = Counter(
            "powernode_blocks_connected", "Blocks connected to the main chain", registry=r
        )
        self.blocks_reorged = Counter(
            "powernode_blocks_reorged", "Blocks undone by reorgs", registry=r
        )
        self.reorgs = Counter(
            "powernode_reorgs", "Reorgs (chain updates that undid blocks)", registry=r
        )
        self.connect_seconds = Histogram(
            "powernode_block_connect_seconds",
            "Time to validate, execute and store one block",
            buckets=CONNECT_BUCKETS,
            registry=r,
        )
        self.txs_accepted = Counter(
            "powernode_txs_accepted", "Txs admitted to the mempool (RPC and peers)", registry=r
        )
        self.txs_rejected = Counter(
            "powernode_txs_rejected", "Txs refused, by error code", ["code"], registry=r
        )
        self.rpc_calls = Counter(
            "powernode_rpc_calls", "RPC calls run, by method", ["method"], registry=r
        )
        self.rpc_seconds = Histogram(
            "powernode_rpc_seconds",
            "Time to run one RPC call (or a batch's tx.submit calls together), by method",
            ["method"],
            buckets=RPC_BUCKETS,
            registry=r,
        )
        self._state: _StateCollector | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- events ----------------------------------------------------------

    def chain_updated(self, update: ChainUpdate) -> None:
        self.blocks_connected.inc(len(update.connected))
        if update.disconnected:
            self.blocks_reorged.inc(len(update.disconnected))
            self.reorgs.inc()

    def txs_done(self, results: Sequence[TxResult]) -> None:
        accepted = 0
        for txid, err in results:
            if txid is not None:
                accepted += 1
            elif err is not None:
                self.txs_rejected.labels(err.code).inc()
        if accepted:
            self.txs_accepted.inc(accepted)

    def rpc_call(self, method: str, seconds: float, calls: int) -> None:
        self.rpc_calls.labels(method).inc(calls)
        self.rpc_seconds.labels(method).observe(seconds)

    # --- state and serving -------------------------------------------------

    def watch(self, watched: Watched) -> None:
        """Read this node's state at every scrape from now on."""
        if self._state is None:
            self._state = _StateCollector(watched)
            self.registry.register(self._state)

    def scrape(self) -> bytes:
        return generate_latest(self.registry)

    async def start(self, host: str, port: int) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        self.url = http_url(host, runner.addresses[0][1], "metrics")
        emit(log, "metrics.listening", url=self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        return web.Response(body=self.scrape(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> Metric:
    if labels is None:
        return GaugeMetricFamily(name, doc, value=value)
    g = GaugeMetricFamily(name, doc, labels=list(labels))
    g.add_metric(list(labels.values()), value)
    return g


# A contract past its expiry stays stored as open until a tx closes it:
# `expired` is judged by the clock at read time, never stored.
_CONTRACT_STORED_STATUSES = (
    contract_records.OPEN,
    contract_records.EXECUTED,
    contract_records.CANCELLED,
)


def _by_status(name: str, doc: str, counts: Tally[str]) -> Metric:
    g = GaugeMetricFamily(name, doc, labels=["status"])
    for status, n in sorted(counts.items()):
        g.add_metric([status], n)
    return g


class _StateCollector(Collector):
    def __init__(self, w: Watched) -> None:
        self.w = w
        # (monotonic s, miner hashes) at the last scrape, for the hash rate.
        self._hashes_at = (time.monotonic(), w.miner.hashes)
        self._hash_rate = 0.0

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        w = self.w
        chain = w.ledger.chain
        tip = chain.tip
        now = time.time()
        yield _gauge(
            "powernode_info",
            "Version and chain",
            1,
            {"version": w.version, "chain_id": w.ledger.params.chain_id},
        )
        yield _gauge(
            "powernode_uptime_seconds",
            "Seconds since the node started",
            time.monotonic() - w.started_mono,
        )
        yield _gauge("powernode_height", "Height of the tip", tip.height)
        yield _gauge(
            "powernode_tip_timestamp_seconds", "The tip's block timestamp", tip.header.timestamp
        )
        yield _gauge(
            "powernode_tip_age_seconds",
            "Seconds since the tip's timestamp",
            max(0.0, now - tip.header.timestamp),
        )
        yield from self._peers(tip.height)
        pool = w.ledger.mempool
        yield _gauge("powernode_mempool_txs", "Txs in the mempool", len(pool))
        yield _gauge("powernode_mempool_bytes", "Bytes of the mempool's txs", pool.total_bytes)
        yield _gauge(
            "powernode_mempool_min_fee_rate",
            "Fee per 1000 bytes a tx must pay to enter now",
            pool.min_fee_rate(int(now)),
        )
        yield _gauge(
            "powernode_verify_queue_txs",
            "Txs waiting for the signature workers",
            w.verifier.queued_txs,
        )
        yield from self._miner()
        yield from self._engines()

    def _peers(self, height: int) -> Iterator[Metric]:
        p2p = self.w.p2p
        peers = list(p2p.peers.values()) if p2p is not None else []
        g = GaugeMetricFamily(
            "powernode_peers", "Connected peers, by direction", labels=["direction"]
        )
        for direction in ("in", "out"):
            g.add_metric([direction], sum(1 for p in peers if p.direction == direction))
        yield g
        mono = time.monotonic()
        banned = p2p.bans.in_force(mono) if p2p is not None else 0
        yield _gauge("powernode_peers_banned", "Peers under a ban", banned)
        sync = sync_state(height, (p.height for p in peers))
        yield _gauge(
            "powernode_syncing", "1 while a peer shows a chain ahead of ours", int(sync.syncing)
        )
        best = GaugeMetricFamily(
            "powernode_best_peer_height", "The highest height a peer has shown"
        )
        if sync.best_peer_height is not None:
            best.add_metric([], sync.best_peer_height)
        yield best
        reasked = CounterMetricFamily(
            "powernode_tx_reasked",
            "Txs asked again of another peer, by why the first request failed",
            labels=["reason"],
        )
        counts = p2p.tx_reasked if p2p is not None else {}
        for reason in REASK_REASONS:
            reasked.add_metric([reason], counts.get(reason, 0))
        yield reasked

    def _miner(self) -> Iterator[Metric]:
        miner = self.w.miner
        hashes = miner.hashes
        mono = time.monotonic()
        since, before = self._hashes_at
        # Over at least a second, so two scrapes close together do not
        # make a rate out of one check interval.
        if mono - since >= 1.0:
            self._hash_rate = (hashes - before) / (mono - since)
            self._hashes_at = (mono, hashes)
        yield _gauge("powernode_mining", "1 while the miner runs", int(miner.running))
        c = CounterMetricFamily("powernode_miner_hashes", "PoW hashes tried since start")
        c.add_metric([], hashes)
        yield c
        yield _gauge(
            "powernode_miner_hash_rate",
            "Hashes per second since the previous scrape",
            self._hash_rate,
        )

    def _engines(self) -> Iterator[Metric]:
        state = self.w.ledger.chain.state
        m = market_queries.stats(state)
        yield _gauge("powernode_market_trades", "Trades matched on the main chain", m["trades"])
        yield _gauge("powernode_market_volume_wh", "Energy traded (Wh)", m["volume_wh"])
        yield _gauge("powernode_market_value", "Money traded (micro-units)", m["value"])
        yield _gauge(
            "powernode_market_open_orders", "Orders resting in the books", m["open_orders"]
        )
        # Every status a record can be stored with starts at 0, so each
        # series exists from the first scrape (a dashboard or an alert on
        # powernode_devices{status="active"} sees 0, not an absent series).
        devices = Tally(dict.fromkeys(metering_records.STATUSES, 0))
        ppas = Tally(dict.fromkeys(ppa_records.STATUSES, 0))
        contracts = Tally(dict.fromkeys(_CONTRACT_STORED_STATUSES, 0))
        # Counts are namespace sizes; counts by status read that namespace
        # only (never the accounts or the readings themselves).
        readings = len(state.namespace(READING_NS))
        settlements = len(state.namespace(SLOT_NS))
        for tally, ns in ((devices, DEVICE_NS), (ppas, PPA_NS), (contracts, CONTRACT_NS)):
            for value in state.namespace(ns).values():
                tally[value.status] += 1
        yield _by_status("powernode_devices", "Metering devices, by status", devices)
        yield _gauge("powernode_meter_readings", "Meter readings on chain", readings)
        c = cert_queries.stats(state)
        yield _gauge("powernode_certificates", "Certificates (splits included)", c["certificates"])
        yield _gauge("powernode_certificates_issued_wh", "Energy certified (Wh)", c["issued_wh"])
        yield _gauge(
            "powernode_certificates_retired_wh",
            "Energy of retired certificates (Wh)",
            c["retired_wh"],
        )
        yield _by_status("powernode_ppas", "Power purchase agreements, by status", ppas)
        p = ppa_queries.stats(state)
        yield _gauge(
            "powernode_ppa_delivered_wh", "Energy delivered under PPAs (Wh)", p["delivered_wh"]
        )
        yield _gauge("powernode_ppa_paid", "Money paid under PPAs (micro-units)", p["paid"])
        yield _gauge("powernode_ppa_escrow", "Money PPAs hold in escrow (micro-units)", p["escrow"])
        yield _by_status("powernode_contracts", "Contracts, by status", contracts)
        k = contract_queries.stats(state)
        yield _gauge(
            "powernode_contract_escrow", "Money contracts hold in escrow (micro-units)", k["escrow"]
        )
        yield _gauge("powernode_settlements", "(slot, seller) settlements done", settlements)
        yield _gauge(
            "powernode_settlement_pending_slots",
            "Slots with trades still to settle",
            len(pending_slots(state)),
        )
