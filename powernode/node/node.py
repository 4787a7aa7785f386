"""The node: lifecycle, and the operations RPC and P2P call into.

``Node`` opens the store and the ledger, restores the mempool, starts the
signature workers, P2P, the RPC server (whose method tables it joins here)
and the miner, in that order; stop runs the same steps backwards (an
AsyncExitStack), so a SIGINT or SIGTERM leaves the store closed cleanly and
the mempool saved. Between start and stop it admits txs (``submit_txs``,
pipelined with the signature workers) and blocks (``accept_block``) and tells
the miner and peers what changed. P2P sees it only through ``NodeApi``
(api.py).

A storage fault (the store's, or node.log's: a full disk, a read-only mount,
a damaged ``chain.db``) stops the node: the first one is kept, the node
stops as on SIGTERM, and ``run`` raises it, for ``powernode run`` to print
as its one line. The store refuses every write after its first fault, so
nothing is written around it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack, nullcontext
from typing import Any, TypeVar

from powernode.chain.chain import Chain, ChainUpdate
from powernode.chain.ledger import Checked, Ledger
from powernode.chain.mempool import Mempool
from powernode.chain.storage_faults import fix_store, from_os_error
from powernode.chain.store import BlockStore
from powernode.chain.templates import TEMPLATE_SLICE
from powernode.core.block import Block, make_block
from powernode.core.crypto import KeyPair, parse_address
from powernode.core.errors import (
    BadSignature,
    ConfigError,
    DecodeError,
    GenesisError,
    MiningFailed,
    PowernodeError,
    StorageError,
    StoreCorrupt,
)
from powernode.core.hextext import from_hex
from powernode.core.pow import pow_hash
from powernode.core.tx import Transaction
from powernode.logkit import emit
from powernode.node.api import TxInput, TxResult
from powernode.node.config import NodeConfig
from powernode.node.engine_log import log_engine_blocks
from powernode.node.health import health, sync_state
from powernode.node.logging_setup import reopen_log_files, watch_log_file
from powernode.node.metrics import NodeMetrics, Watched
from powernode.node.miner import Miner
from powernode.node.p2p import P2P
from powernode.node.p2p_key import P2P_KEY_FILE
from powernode.node.rpc import PublicBounds, RpcServer
from powernode.node.rpc_certs import CERT_SPECS, cert_methods
from powernode.node.rpc_contracts import CONTRACT_SPECS, contract_methods
from powernode.node.rpc_explorer import EXPLORER_SPECS, explorer_methods
from powernode.node.rpc_market import MARKET_SPECS, market_methods
from powernode.node.rpc_methods import (
    CHAIN_SPECS,
    LOG_SPECS,
    NODE_SPECS,
    PEER_SPECS,
    SUBMIT_SPECS,
    VERSION,
    chain_methods,
    log_methods,
    node_methods,
    peer_methods,
    submit_methods,
)
from powernode.node.rpc_ops import OPS_SPECS, ops_methods
from powernode.node.rpc_spec import MethodSpec
from powernode.node.rpc_ws import PUSH_SPECS, PushHub, http_methods
from powernode.node.runtime import freeze_loaded_objects, tune_gc
from powernode.node.verify import Verifier
from powernode.state.genesis import parse_genesis_json
from powernode.state.registry import verify_tx

log = logging.getLogger("powernode.node")
# Tx admission lines (the "mempool" log category).
txlog = logging.getLogger("powernode.mempool")

# Txs per pipeline stage in submit_txs.
_PIPE_CHUNK = 128
# How often a reindex logs its progress.
REINDEX_EVERY_S = 1.0
# A reindex commits its blocks in runs, as sync does (node/p2p_sync.py's
# RUN_BLOCKS, RUN_MS): the commit is shared out, and a crash loses one run.
REINDEX_RUN_BLOCKS = 64
REINDEX_RUN_S = 0.25


def load_node_key(config: NodeConfig) -> KeyPair:
    try:
        return KeyPair.from_seed(from_hex(config.key_path.read_text().strip()))
    except FileNotFoundError as exc:
        raise ConfigError(f"no node key at {config.key_path}; run 'powernode init'") from exc
    except OSError as exc:  # a directory, unreadable
        raise ConfigError(f"cannot read the node key {config.key_path}: {exc.strerror}") from exc
    except (ValueError, DecodeError) as exc:  # not text, not hex, not 32 bytes
        raise ConfigError(f"{config.key_path} is not a hex key") from exc


def listen_error(section: str, host: str, port: int, exc: Exception) -> ConfigError:
    """A listener that cannot bind, told as the config keys to change (an
    OSError from aiohttp, e.g. the port in use, or the OverflowError of a
    port past 65535)."""
    reason = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
    reason = reason.rstrip(".")
    return ConfigError(
        f"config [{section}] host/port: cannot listen on {host}:{port}: {reason}; "
        "choose another in config.toml"
    )


def now_s() -> int:
    return int(time.time())


class Node:
    def __init__(self, config: NodeConfig, *, reindex: bool = False) -> None:
        self.config = config
        # ``powernode run --reindex``: rebuild the state from the stored blocks.
        self.reindex = reindex
        self.stopping = asyncio.Event()
        self._stack = AsyncExitStack()
        self._ledger: Ledger | None = None
        self.miner: Miner | None = None
        self.verifier = Verifier(config.verify_processes)
        self.rpc_url = ""
        self.mining_address = b""
        self.rpc: RpcServer | None = None
        self.p2p: P2P | None = None
        # WebSocket subscriptions (rpc_ws.py); told of blocks and txs.
        self.push: PushHub | None = None
        self.metrics = NodeMetrics()
        self.started_mono = time.monotonic()
        self.serving = False
        self._stopped = False
        # The first storage fault, which stops the node (``fail``).
        self.failure: StorageError | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def ledger(self) -> Ledger:
        """The chain ledger: block tree, tip state and mempool (once started)."""
        if self._ledger is None:
            raise RuntimeError("node not started")
        return self._ledger

    # --- NodeApi: what P2P sees -------------------------------------------

    @property
    def chain(self) -> Chain:
        return self.ledger.chain

    @property
    def mempool(self) -> Mempool:
        return self.ledger.mempool

    def decode_tx(self, raw: bytes, txid: bytes | None = None) -> Transaction:
        ledger = self._ledger  # not the property: this runs for every tx received
        if ledger is None:
            raise RuntimeError("node not started")
        return ledger.decoder.decode(raw, txid)

    async def check_signatures(self, txs: Sequence[Transaction]) -> None:
        cache = self.ledger.sigcache
        todo = cache.missing(txs)
        if todo:
            cache.add_checked(todo, await self.verifier.bad_indexes(todo))

    # --- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        self._loop = asyncio.get_running_loop()
        watch_log_file(lambda exc, path: self.fail(from_os_error(exc, path)))
        for old, new in cfg.deprecated:
            emit(log, "config.deprecated", logging.WARNING, key=old, use=new)
        try:
            params = parse_genesis_json(cfg.genesis_path.read_bytes())
        except FileNotFoundError as exc:
            raise ConfigError(f"genesis file {cfg.genesis_path} not found") from exc
        except OSError as exc:
            raise ConfigError(
                f"cannot read genesis file {cfg.genesis_path}: {exc.strerror}"
            ) from exc
        except GenesisError as exc:  # its message names the key; this adds the file
            raise GenesisError(f"{cfg.genesis_path}: {exc.message}") from exc
        key = load_node_key(cfg)
        try:
            self.mining_address = (
                parse_address(cfg.mining.address) if cfg.mining.address else key.address
            )
        except DecodeError as exc:
            raise ConfigError(f"config [mining] address: {exc.message}") from exc

        self.verifier.start()
        self._stack.callback(self.verifier.stop)

        store = BlockStore(cfg.db_path, on_fault=self.fail)
        t0 = time.perf_counter()
        store.open(check=cfg.check_db)
        # What the start's integrity check cost (README, "Storage faults").
        emit(log, "store.opened", check=cfg.check_db, ms=(time.perf_counter() - t0) * 1000)
        self._stack.callback(store.close)
        ledger = self._ledger = Ledger(
            params=params,
            store=store,
            verify_batch=self.verifier.verify_blocking,
            mempool_bytes=cfg.mempool.max_bytes,
            max_per_sender=cfg.mempool.max_per_sender,
        )
        ledger.chain.connect_observer = self.metrics.connect_seconds.observe
        t0 = time.perf_counter()
        if self.reindex:
            ledger.chain.reset_for_reindex()
            emit(log, "reindex.started", blocks=store.block_count())
            ledger.chain.connect_observer = ReindexProgress(
                ledger.chain, self.metrics, commit=store.commit_batch
            )
            ledger.chain.keep_connected = False
            ledger.chain.recheck_blocks = True
        try:
            # A reindex commits in runs, as sync does (ReindexProgress ends
            # each): one commit per run, not per block.
            with store.batch() if self.reindex else nullcontext():
                ledger.load()
        except DecodeError as exc:  # bytes SQLite kept intact, but wrong
            raise StoreCorrupt(
                f"holds data that does not decode ({exc.message})",
                path=str(cfg.db_path),
                fix=fix_store(cfg.db_path),
            ) from exc
        tip = ledger.chain.tip
        if self.reindex:
            ledger.chain.connect_observer = self.metrics.connect_seconds.observe
            ledger.chain.keep_connected = True
            ledger.chain.recheck_blocks = False
            emit(
                log,
                "reindex.done",
                height=tip.height,
                state_root=tip.header.state_root,
                s=round(time.perf_counter() - t0, 3),
            )
        emit(
            log,
            "chain.loaded",
            chain=params.chain_id,
            height=tip.height,
            hash=tip.hash,
            ms=(time.perf_counter() - t0) * 1000,
        )
        freeze_loaded_objects()
        restored = ledger.load_mempool(cfg.mempool_path, now=now_s())
        emit(log, "mempool.loaded", txs=restored)
        self._stack.callback(self._save_mempool)

        if cfg.p2p.enabled:
            self.p2p = P2P(self, cfg.p2p, key_path=cfg.datadir / P2P_KEY_FILE)
            try:
                await self.p2p.start()
            except (OSError, OverflowError) as exc:
                raise listen_error("p2p", cfg.p2p.host, cfg.p2p.port, exc) from exc
            self._stack.push_async_callback(self.p2p.stop)
        # Built before the RPC starts (miner.start and miner.stop need it),
        # started after, and stopped before the RPC server goes.
        self.miner = Miner(
            loop=asyncio.get_running_loop(),
            make_template=self._template,
            on_found=self._on_mined,
            refresh=float(cfg.mining.refresh),
            state_key=lambda: (ledger.chain.tip.hash, ledger.mempool.version),
            cpu_share=cfg.mining.cpu_percent / 100,
        )
        await self._start_metrics(ledger, self.miner)
        await self._start_rpc(ledger, self.miner)
        self._stack.push_async_callback(self._stop_miner)
        if cfg.mining.enabled:
            self.miner.start()
        self.serving = True
        emit(log, "node.started", rpc=self.rpc_url, pid=os.getpid(), dev=params.dev)

    async def stop(self) -> None:
        self.serving = False
        self._stopped = True
        emit(log, "node.stopping")
        await self._stack.aclose()
        emit(log, "node.stopped")

    def fail(self, fault: StorageError) -> None:
        """Stop the node for a storage fault; ``run`` raises the first one
        once the node has stopped. Called by the store and by node.log's
        handler, from any thread."""
        if self.failure is not None:
            return
        self.failure = fault
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.stopping.set)

    async def run(self) -> None:
        """Start, serve until SIGINT/SIGTERM, an RPC ``node.stop`` or a
        storage fault, stop; then raise the fault, if there was one."""
        loop = asyncio.get_running_loop()
        # Put back once the node has stopped (the loop's removal would leave
        # SIGTERM's default, which kills a process still tearing down): for
        # `powernode run`, SIGTERM as an interrupt, the clean stop.
        before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        # SIGHUP reopens node.log (after logrotate moved it), as daemons do.
        loop.add_signal_handler(signal.SIGHUP, _reopen_logs)
        try:
            await self.start()
            await self.stopping.wait()
        except StorageError:
            raise
        except Exception:
            # A start cut short by a storage fault fails on something else
            # (its caller saw the fault as a refusal): the fault is the cause.
            if self.failure is None:
                raise
        finally:
            await self.stop()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            for sig, handler in before.items():
                if handler is not None:
                    signal.signal(sig, handler)
        if self.failure is not None:
            raise self.failure

    async def _start_rpc(self, ledger: Ledger, miner: Miner) -> None:
        cfg = self.config
        cookie = RpcServer.new_cookie()
        explorer = cfg.explorer.on(dev=ledger.params.dev)
        methods = _join(
            node_methods(
                ledger=ledger,
                explorer=explorer,
                miner=miner,
                p2p=self.p2p,
                mining_address=self.mining_address,
                rpc_url=lambda: self.rpc_url,
                stop=self.stopping.set,
                started_mono=self.started_mono,
            ),
            log_methods(),
            chain_methods(self, ledger, self.mine_now),
            peer_methods(self.p2p),
            market_methods(ledger),
            cert_methods(ledger),
            contract_methods(ledger),
            explorer_methods(ledger),
            ops_methods(cfg.db_path, self.stopping.is_set),
            http_methods(),
        )
        self.rpc = RpcServer(
            methods=methods,
            batch_methods=submit_methods(self),
            cookie=cookie,
            token=cfg.rpc.token,
            max_request_bytes=cfg.rpc.max_request_bytes,
            batch_limit=cfg.rpc.batch_limit,
            max_response_bytes=cfg.rpc.max_response_bytes,
            max_depth=cfg.rpc.max_depth,
            max_values=cfg.rpc.max_values,
            specs=method_specs(),
            version=VERSION,
            on_call=self.metrics.rpc_call,
            health=self._health,
            explorer=explorer,
            public=PublicBounds(
                max_request_bytes=cfg.explorer.max_request_bytes,
                batch_limit=cfg.explorer.batch_limit,
                max_response_bytes=cfg.explorer.max_response_bytes,
                max_parallel=cfg.explorer.max_parallel,
                hosts=cfg.explorer.hosts,
            ),
        )
        self._stack.push_async_callback(self.rpc.stop)
        push = self.push = PushHub(
            rpc=self.rpc,
            tx_status=ledger.tx_status,
            state=lambda: ledger.chain.state,
            max_clients=cfg.rpc.ws_max_clients,
            max_subscriptions=cfg.rpc.ws_max_subscriptions,
            queue_size=cfg.rpc.ws_queue,
            public_max_clients=cfg.explorer.ws_max_clients,
            public_queue_bytes=cfg.explorer.ws_queue_bytes,
        )
        self.rpc.websocket = push.handle
        ledger.on_dropped = push.tx_dropped
        # Runs before rpc.stop: clients get a close frame, not a cut socket.
        self._stack.push_async_callback(push.stop)
        try:
            await self.rpc.start(cfg.rpc.host, cfg.rpc.port)
        except (OSError, OverflowError) as exc:
            raise listen_error("rpc", cfg.rpc.host, cfg.rpc.port, exc) from exc
        self.rpc_url = self.rpc.url
        if explorer:
            emit(log, "explorer.enabled", url=self.rpc_url.removesuffix("rpc"))
        self._stack.callback(self._remove_runtime_files)
        runtime = {
            "pid": os.getpid(),
            "rpc": self.rpc_url,
            "p2p": self.p2p.listen if self.p2p else "",
        }
        if self.metrics.url:
            runtime["metrics"] = self.metrics.url
        path = cfg.cookie_path
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(f"__cookie__:{cookie}")
            path = cfg.runtime_path
            path.write_text(json.dumps(runtime))
        except OSError as exc:
            raise from_os_error(exc, path) from exc

    async def _start_metrics(self, ledger: Ledger, miner: Miner) -> None:
        self.metrics.watch(
            Watched(
                ledger=ledger,
                miner=miner,
                verifier=self.verifier,
                p2p=self.p2p,
                version=VERSION,
                started_mono=self.started_mono,
            )
        )
        cfg = self.config.metrics
        if not cfg.enabled:
            return
        self._stack.push_async_callback(self.metrics.stop)
        try:
            await self.metrics.start(cfg.host, cfg.port)
        except (OSError, OverflowError) as exc:
            raise listen_error("metrics", cfg.host, cfg.port, exc) from exc

    def _health(self, max_tip_age: int | None) -> tuple[int, dict[str, Any]]:
        tip = self.ledger.chain.tip
        peers = list(self.p2p.peers.values()) if self.p2p is not None else []
        h = health(
            phase=self._phase(),
            sync=sync_state(tip.height, (p.height for p in peers)),
            peers=len(peers),
            tip_age_s=max(0, now_s() - tip.header.timestamp),
            max_tip_age_s=max_tip_age,
        )
        return h.status, h.body

    def _phase(self) -> str:
        if self.stopping.is_set() or self._stopped:
            return "stopping"
        return "serving" if self.serving else "starting"

    def _remove_runtime_files(self) -> None:
        for p in (self.config.cookie_path, self.config.runtime_path):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:  # a read-only mount: the next start replaces them
                emit(log, "node.cleanup_failed", logging.WARNING, file=p, error=exc.strerror)

    def _save_mempool(self) -> None:
        path = self.config.mempool_path
        if self.failure is not None:
            # The ledger in memory may be ahead of the store (a block the
            # store refused): mempool.dat is left as the last clean stop
            # wrote it, and is checked again at the next start anyway.
            emit(log, "mempool.save_failed", logging.WARNING, file=path, reason=self.failure.code)
            return
        try:
            n = self.ledger.save_mempool(path)
        except OSError as exc:
            fault = from_os_error(exc, path)
            emit(
                log,
                "mempool.save_failed",
                logging.WARNING,
                file=path,
                reason=fault.code,
                error=exc.strerror,
            )
            return
        emit(log, "mempool.saved", txs=n)

    async def _stop_miner(self) -> None:
        if self.miner is not None and self.miner.running:
            await asyncio.to_thread(self.miner.stop)

    # --- mining -------------------------------------------------------------

    async def _template(self) -> Block:
        # Built in slices, the loop free in between (a peer's block that
        # arrives meanwhile pauses the miner and connects; the next slice
        # then starts a builder on the new tip). Bounded, so a pool that
        # keeps filling cannot keep the miner waiting.
        ledger, now = self.ledger, now_s()
        for _ in range(ledger.params.max_block_txs // TEMPLATE_SLICE + 1):
            if ledger.templates.extend(self.mining_address, now=now, limit=TEMPLATE_SLICE):
                break
            await asyncio.sleep(0)
        return ledger.template(self.mining_address, now=now)

    def _on_mined(self, block: Block) -> None:
        # Found on our tip: it goes to the peers before its connect here (a
        # block found on a tip that moved meanwhile is only stored, unsent).
        # The connect waits one turn of the loop, so the peers' writers the
        # push woke put it on the wire first (they are ahead in the queue).
        if self.p2p is not None and block.header.prev_hash == self.ledger.chain.tip.hash:
            self.p2p.push_mined(block)
            asyncio.get_running_loop().call_soon(self._connect_mined, block)
        else:
            self._connect_mined(block)

    def _connect_mined(self, block: Block) -> None:
        try:
            outcome, _ = self.accept_block(block)
        except PowernodeError as exc:
            emit(log, "block.mined_rejected", logging.WARNING, hash=block.hash, reason=exc.code)
            return
        emit(
            log,
            "block.mined",
            height=block.height,
            hash=block.hash,
            txs=len(block.txs),
            outcome=outcome,
        )

    def accept_block(self, block: Block, *, source: str = "") -> tuple[str, ChainUpdate]:
        ledger = self.ledger
        tip_before = ledger.chain.tip
        # Only for a mempool subscriber: the ids of the txs that leave the
        # pool during the update (which of them the blocks confirmed is known
        # only against them). Recorded as they leave, not by a copy of the
        # pool per block.
        pool = ledger.mempool
        if self.push is not None and self.push.wants_mempool:
            pool.left = set()
        # A peer's block on our tip: the miner stops hashing on the old tip
        # now, not after the connect (hundreds of ms for a big block under
        # load), since a block it found meanwhile could only compete with
        # this one at the same height and cost someone a reorg.
        paused = (
            bool(source) and self.miner is not None and block.header.prev_hash == tip_before.hash
        )
        if paused and self.miner is not None:
            self.miner.new_tip()
        try:
            outcome, update = ledger.submit_block(
                block, now=now_s(), mono=time.monotonic(), source=source
            )
        finally:
            pool_left, pool.left = pool.left, None
        self.metrics.chain_updated(update)
        log_engine_blocks(update)
        tip_moved = ledger.chain.tip is not tip_before
        if tip_moved and self.miner is not None and not paused:
            self.miner.new_tip()
        if update and self.p2p is not None:
            # A block with no peer source was made here (mined, or submitted
            # over RPC): no peer has it, so it goes out whole.
            made_here = None if source else block
            self.p2p.chain_updated(update, tip_moved=tip_moved, made_here=made_here)
        if update and self.push is not None:
            self.push.chain_updated(update, tip_before, ledger.chain.tip)
            if pool_left is not None:
                self.push.pool_changed(update, pool_left, pool.by_id)
        if update.disconnected:
            emit(
                log,
                "chain.reorg",
                logging.WARNING,
                undone=len(update.disconnected),
                applied=len(update.connected),
                height=ledger.chain.height,
                hash=ledger.chain.tip.hash,
            )
        return outcome, update

    async def mine_now(self, blocks: int, address: bytes | None = None) -> list[bytes]:
        """Dev mode: mine ``blocks`` blocks at once on the current tip."""
        hashes = []
        for _ in range(blocks):
            tmpl = self.ledger.template(address or self.mining_address, now=now_s())
            nonce = await asyncio.to_thread(_solve, tmpl, 1_000_000)
            if nonce is None:
                raise MiningFailed("no nonce found; is this a dev chain?")
            block = make_block(tmpl.header.with_nonce(nonce), tmpl.txs)
            self.accept_block(block)
            hashes.append(block.hash)
        return hashes

    # --- transactions -------------------------------------------------------

    async def submit_txs(self, txs: Sequence[TxInput]) -> list[TxResult]:
        """Admit many txs; one result per input, in order."""
        return (await self._admit(txs))[1]

    async def _admit(
        self, txs: Sequence[TxInput]
    ) -> tuple[list[Transaction | PowernodeError], list[TxResult]]:
        """``submit_txs``, and each input as admission saw it (decoded, or
        the error that refused it).

        Pipelined in chunks: while the worker processes check one chunk's
        signatures, the loop decodes and runs the state checks of the next,
        so the loop's work and the verification overlap instead of taking
        turns (an input still to decode is decoded when its chunk comes, so
        the workers start after one chunk, not after the whole batch).
        """
        ledger = self.ledger
        seen: list[Transaction | PowernodeError] = []
        results: list[TxResult] = [(None, None)] * len(txs)
        in_flight: list[
            tuple[list[tuple[int, Checked]], list[Transaction], asyncio.Future[set[int]]]
        ] = []
        check, add, sigcache = ledger.check_tx, ledger.add_checked, ledger.sigcache
        try:
            now = now_s()
            for start in range(0, len(txs), _PIPE_CHUNK):
                chunk: list[tuple[int, Checked]] = []
                for i in range(start, min(start + _PIPE_CHUNK, len(txs))):
                    item = txs[i]
                    if callable(item):
                        try:
                            item = item()
                        except PowernodeError as exc:
                            item = exc
                    seen.append(item)
                    if isinstance(item, PowernodeError):
                        results[i] = (None, item)
                        continue
                    try:
                        chunk.append((i, check(item, now=now)))
                    except PowernodeError as exc:
                        results[i] = (None, exc)
                todo = sigcache.missing([c.tx for _, c in chunk])
                checks = asyncio.ensure_future(self.verifier.bad_indexes(todo))
                in_flight.append((chunk, todo, checks))
                # Let the verifier start on this chunk before checking the next.
                await asyncio.sleep(0)
            for chunk, todo, fut in in_flight:
                bad = await fut
                bad_ids = {todo[j].txid for j in bad}
                now = now_s()
                for i, c in chunk:
                    if bad_ids and c.tx.txid in bad_ids:
                        results[i] = (None, _signature_error(c.tx))
                        continue
                    try:
                        results[i] = (add(c, now=now), None)
                    except PowernodeError as exc:
                        results[i] = (None, exc)
        finally:
            # Cut short (the caller was cancelled): the checks still queued
            # end with it rather than run for nobody.
            for _, _, fut in in_flight:
                fut.cancel()
        return seen, results

    async def submit_and_relay(
        self, txs: Sequence[TxInput], *, source: int | None = None
    ) -> list[TxResult]:
        """``submit_txs``, then announce what was admitted to peers (except
        the one it came from)."""
        seen, results = await self._admit(txs)
        self._txs_done(seen, results, source)
        if self.p2p is not None:
            accepted = [txid for txid, _ in results if txid is not None]
            if accepted:
                self.p2p.announce_txs(accepted, source=source)
        return results

    def _txs_done(
        self,
        txs: Sequence[Transaction | PowernodeError],
        results: Sequence[TxResult],
        source: int | None,
    ) -> None:
        self.metrics.txs_done(results)
        if self.push is not None and self.push.wants_txs:
            # Told after the whole batch: a tx a later one of the batch
            # replaced or evicted has been told "removed" already, so only
            # those still in the pool are told "added" (never after it left).
            pool = self.ledger.mempool.by_id
            self.push.txs_accepted(
                [
                    item
                    for item, (txid, _) in zip(txs, results, strict=True)
                    if txid is not None and isinstance(item, Transaction) and txid in pool
                ]
            )
        if not txlog.isEnabledFor(logging.DEBUG):
            return
        came = "rpc" if source is None else f"peer-{source}"
        for item, (txid, err) in zip(txs, results, strict=True):
            if txid is not None:
                emit(txlog, "tx.accepted", logging.DEBUG, id=txid, source=came)
            elif err is not None:
                emit(
                    txlog,
                    "tx.rejected",
                    logging.DEBUG,
                    id=item.txid if isinstance(item, Transaction) else "",
                    source=came,
                    reason=err.code,
                )


class ReindexProgress:
    """The connect observer while a reindex re-applies the stored chain: a
    ``reindex.progress`` line every ``REINDEX_EVERY_S`` seconds, with the
    height reached and the rate since the last line; and, with ``commit``
    (the store's ``commit_batch``: the reindex runs in one batch), the end
    of a run of blocks every ``REINDEX_RUN_BLOCKS`` blocks or
    ``REINDEX_RUN_S`` seconds, committed together."""

    def __init__(
        self, chain: Chain, metrics: NodeMetrics, *, commit: Callable[[], None] | None = None
    ) -> None:
        self.chain = chain
        self.metrics = metrics
        self.commit = commit
        self.last = time.monotonic()
        self.blocks = 0
        self.run_started = self.last
        self.run_blocks = 0
        self.runs = 0  # runs committed (tests read it)

    def __call__(self, seconds: float) -> None:
        self.metrics.connect_seconds.observe(seconds)
        self.blocks += 1
        now = time.monotonic()
        self.run_blocks += 1
        # Called between blocks (each block's writes are done), where the
        # store and memory agree: a good point to commit.
        if self.commit is not None and (
            self.run_blocks >= REINDEX_RUN_BLOCKS or now - self.run_started >= REINDEX_RUN_S
        ):
            self.commit()
            self.runs += 1
            self.run_blocks = 0
            self.run_started = now
        if now - self.last >= REINDEX_EVERY_S:
            emit(
                log,
                "reindex.progress",
                height=self.chain.height,
                blocks_per_s=round(self.blocks / (now - self.last), 1),
            )
            self.last = now
            self.blocks = 0


def _reopen_logs() -> None:
    n = reopen_log_files()
    emit(log, "log.reopened", files=n)


M = TypeVar("M")


def _signature_error(tx: Transaction) -> PowernodeError:
    """The typed error of a tx a signature worker refused (``bad_signature``
    or ``bad_meter_signature``), found again on this thread: only refused
    txs pay for the second check."""
    try:
        verify_tx(tx)
    except PowernodeError as exc:
        return exc
    return BadSignature("signature does not verify")  # the worker and this thread disagree


def method_specs() -> dict[str, MethodSpec]:
    """Every RPC method's declaration, as the node serves them (the
    WebSocket's own ``subscribe``/``unsubscribe`` included)."""
    return _join(
        NODE_SPECS,
        LOG_SPECS,
        CHAIN_SPECS,
        SUBMIT_SPECS,
        PEER_SPECS,
        MARKET_SPECS,
        CERT_SPECS,
        CONTRACT_SPECS,
        EXPLORER_SPECS,
        OPS_SPECS,
        PUSH_SPECS,
    )


def _join(*tables: Mapping[str, M]) -> dict[str, M]:
    """One method table from several; a name in two is a bug, not an override."""
    out: dict[str, M] = {}
    for table in tables:
        if clash := out.keys() & table.keys():
            raise RuntimeError(f"RPC methods defined twice: {sorted(clash)}")
        out.update(table)
    return out


def _solve(block: Block, max_tries: int) -> int | None:
    commitment = block.header.pow_commitment()
    target = block.header.target_int
    for n in range(max_tries):
        if pow_hash(commitment, n) <= target:
            return n
    return None


def run_node(config: NodeConfig, *, reindex: bool = False) -> None:
    """Blocking entry point for ``powernode run``."""
    tune_gc()
    asyncio.run(Node(config, reindex=reindex).run())
