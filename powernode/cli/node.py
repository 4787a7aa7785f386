"""The node and account commands: init, run, keygen, status, balance,
transfer, stop, mine."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from powernode.cli.common import (
    Subparsers,
    UserError,
    add_address_options,
    add_command,
    add_wait_option,
    address_arg,
    chosen_address,
    counted,
    emit,
    os_error_text,
    port_number,
    read_genesis,
    report_tx,
    rpc_client,
    signing_key,
    submit_and_wait,
    tx_context,
    whole_number,
)
from powernode.cli.datadir_lock import DatadirLocked, lock_datadir, node_json_pid, wait_unlocked
from powernode.client import build_transfer, write_key
from powernode.core.crypto import KeyPair
from powernode.core.errors import ConfigError, PowernodeError, StorageError
from powernode.core.units import format_units, parse_units
from powernode.devnet.datadir import render_config, write_genesis
from powernode.devnet.devchain import DEV_FUNDS, dev_genesis
from powernode.interrupts import sigterm_as_interrupt

# --- commands -----------------------------------------------------------------


def cmd_init(a: argparse.Namespace) -> int:
    d: Path = a.datadir
    if not (a.genesis or a.dev):
        raise UserError("give --dev for a new dev chain, or --genesis FILE to join a chain")
    check_new_datadir(d)
    # Everything the user gave is checked before anything is written.
    # (a bad genesis is refused at init, naming the key, not at the first run)
    genesis = read_genesis(Path(a.genesis))[0] if a.genesis else None
    key = KeyPair.generate()
    with building_dir(d) as tmp:
        write_key(tmp / "node.key", key)
        if genesis is not None:
            (tmp / "genesis.json").write_bytes(genesis)
        else:
            doc = dev_genesis(
                {key.address: DEV_FUNDS},
                timestamp=int(time.time()),
                comment="dev chain (like bitcoind's regtest): trivial difficulty, mine on demand with dev.mine",
            )
            write_genesis(tmp / "genesis.json", doc)
        (tmp / "config.toml").write_text(
            render_config(rpc_port=a.rpc_port, p2p_port=a.p2p_port, mining=a.mine)
        )
    print(f"initialised {d}")
    print(f"node address {key.address.hex()}")
    return 0


# What init writes besides config.toml, which building_inside moves in last:
# all a killed init can leave in a directory it was filling.
INIT_MOVES_FIRST = ("genesis.json", "node.key")


def check_new_datadir(d: Path) -> None:
    """``init`` writes a new data dir: ``d`` may be missing or an empty
    directory, nothing else (a half-used dir, say a node.key left by some
    other tool, would mix two nodes' files)."""
    if not d.exists():
        return
    if not d.is_dir():
        raise UserError(f"{d} exists and is not a directory; give --datadir a new directory")
    if (d / "config.toml").exists():
        raise UserError(
            f"{d} is already initialised (config.toml exists); "
            f"start it with 'powernode run --datadir {d}'"
        )
    names = sorted(p.name for p in d.iterdir())
    debris = [n for n in names if n.startswith(".init-")]
    if debris and set(names) - set(debris) <= set(INIT_MOVES_FIRST):
        # An init into this empty directory was killed while filling it:
        # what is here is its own work, begun again from nothing.
        for name in names:
            path = d / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        names = sorted(p.name for p in d.iterdir())
    if names:
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise UserError(f"{d} is not empty ({shown}); give --datadir a new or empty directory")


@contextmanager
def building_dir(d: Path) -> Iterator[Path]:
    """A fresh directory next to ``d`` to fill; when the block ends it
    becomes ``d`` in one rename (an existing empty ``d`` is filled from
    inside instead: ``building_inside``), and if the block fails (Ctrl-C included), or the
    rename does, it is removed along with any parent directories made for
    it: init completes or leaves nothing behind. Killed outright, it leaves
    at most the hidden ``.NAME.init-*`` directory, never a half-made data
    dir. The data dir gets mkdtemp's mode 0700: it holds the node key and
    the RPC cookie."""
    target = d.resolve()  # a symlinked data dir: build next to what it points at
    if target.is_dir():
        # An empty directory made for it (the systemd unit's steps): built
        # inside, so init needs no write access to its parent.
        with building_inside(d, target) as tmp:
            yield tmp
        return
    made = make_parents(target.parent)
    try:
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.init-", dir=target.parent))
        except OSError as exc:
            raise UserError(f"cannot create {d}: {exc.strerror}") from None
        try:
            yield tmp
            try:
                os.rename(tmp, target)
            except OSError as exc:  # d appeared, non-empty, since the check
                raise UserError(f"cannot create {d}: {exc.strerror}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    except BaseException:
        remove_empty_dirs(made)
        raise


@contextmanager
def building_inside(d: Path, target: Path) -> Iterator[Path]:
    """``building_dir`` for an existing empty ``target``: a hidden directory
    inside it to fill, whose entries then move up one by one,
    ``config.toml`` last (the file that makes a data dir initialised), and
    ``target`` gets mode 0700. If anything fails what moved is removed
    again, leaving ``target`` empty."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".init-", dir=target))
    except OSError as exc:
        raise UserError(f"cannot create {d}: {exc.strerror}") from None
    moved: list[Path] = []
    try:
        yield tmp
        try:
            for name in sorted(os.listdir(tmp), key=lambda n: (n == "config.toml", n)):
                os.rename(tmp / name, target / name)
                moved.append(target / name)
            tmp.rmdir()
            # A directory another user owns (made for this one to write)
            # keeps the mode its owner gave it.
            with contextlib.suppress(PermissionError):
                os.chmod(target, 0o700)
        except OSError as exc:
            raise UserError(f"cannot create {d}: {exc.strerror}") from None
    except BaseException:
        for path in moved:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def make_parents(p: Path) -> list[Path]:
    """``mkdir -p p``; returns the directories it made, outermost first."""
    missing: list[Path] = []
    while not p.exists():
        missing.append(p)
        p = p.parent
    if not p.is_dir():
        raise UserError(f"{p} is not a directory")
    made: list[Path] = []
    try:
        for q in reversed(missing):
            q.mkdir()
            made.append(q)
    except OSError as exc:
        remove_empty_dirs(made)
        raise UserError(f"cannot create {exc.filename}: {exc.strerror}") from None
    return made


def remove_empty_dirs(made: list[Path]) -> None:
    for q in reversed(made):
        with contextlib.suppress(OSError):  # someone else put a file there
            q.rmdir()


def cmd_run(a: argparse.Namespace) -> int:
    # Ctrl-C or SIGTERM before the node handles them itself (while the
    # chain loads, say) is the same clean stop as after: 0, no traceback.
    sigterm_as_interrupt()
    try:
        return _run(a)
    except KeyboardInterrupt:
        return 0


def _run(a: argparse.Namespace) -> int:
    # Imported here: powernode.node pulls in asyncio and aiohttp, which
    # every other command can do without.
    from powernode.chain.storage_faults import from_os_error
    from powernode.node.config import check_ports, load_config
    from powernode.node.logging_setup import CATEGORIES, log_to_file_only, setup_logging
    from powernode.node.node import run_node

    config_path = a.datadir / "config.toml"
    if a.datadir.exists() and not a.datadir.is_dir():
        raise UserError(f"{a.datadir} is not a directory; give --datadir a node's data dir")
    if not config_path.exists():
        raise UserError(
            f"{a.datadir} is not initialised; run 'powernode init --datadir {a.datadir} --dev'"
        )
    # Before the config is read: node.log is the running node's, and a
    # config that does not load must not write its failure there. The lock
    # covers a node still loading its chain (no node.json yet); it is held
    # until this process ends.
    try:
        lock = lock_datadir(a.datadir)
    except DatadirLocked as exc:
        raise UserError(f"{exc.node} already runs in {a.datadir}") from None
    # node.json still names a node that took no lock (an earlier version's,
    # or any node where flock is missing); with the lock held, a pid another
    # program has since a kill -9 makes it stale, and the new node replaces it.
    pid = node_json_pid(a.datadir, locked=lock is not None)
    if pid is not None:
        raise UserError(f"a node (pid {pid}) already runs in {a.datadir}")
    try:
        cfg = load_config(a.datadir)
    except (OSError, UnicodeDecodeError, ConfigError) as exc:
        if isinstance(exc, ConfigError):
            line = exc.message
        elif isinstance(exc, OSError):
            line = f"cannot read {config_path}: {exc.strerror}"
        else:
            line = f"{config_path} is not UTF-8 text"
        log_early_failure(a.datadir / "node.log", line, reason=ConfigError.code)
        raise UserError(line) from None
    if a.mine:
        cfg = replace(cfg, mining=replace(cfg.mining, enabled=True))
    if a.metrics:
        cfg = replace(cfg, metrics=replace(cfg.metrics, enabled=True))
        try:
            check_ports(cfg)
        except ConfigError as exc:
            log_early_failure(a.datadir / "node.log", exc.message, reason=ConfigError.code)
            raise UserError(exc.message) from None
    categories = dict(cfg.log.category_levels)
    for category in a.debug or ():
        if category not in CATEGORIES:
            raise UserError(
                f"--debug {category}: not a log category; one of {', '.join(CATEGORIES)}"
            )
        categories[category] = "debug"
    try:
        setup_logging(
            fmt=a.log_format or cfg.log.format,
            level=cfg.log.level,
            file=cfg.log_path,
            max_bytes=cfg.log.max_bytes,
            backups=cfg.log.backups,
            categories=categories,
            stderr=a.log_stderr,
        )
    except OSError as exc:
        # A read-only or full data dir shows here first: told as the store
        # would tell it, in the storage faults' one-line form (FILE: WHAT
        # (CODE); FIX), FILE being node.log.
        raise UserError(from_os_error(exc, cfg.log_path).message) from None
    try:
        run_node(cfg, reindex=a.reindex)
    except (PowernodeError, OSError) as exc:
        # The one line goes to stderr (run_command prints it) and to
        # node.log, where an operator looking at the log finds why the
        # node stopped (unless node.log is what failed).
        line = exc.message if isinstance(exc, PowernodeError) else os_error_text(exc)
        # An OSError no storage check named is still an I/O error: the
        # storage table's catch-all code, so `reason` is always a README code.
        reason = exc.code if isinstance(exc, PowernodeError) else StorageError.code
        if isinstance(exc, StorageError):
            log_to_file_only("node.failed", error=line, reason=reason, file=exc.path, fix=exc.fix)
        else:
            log_to_file_only("node.failed", error=line, reason=reason)
        raise UserError(line) from None
    return 0


def log_early_failure(log_path: Path, line: str, *, reason: str) -> None:
    """A config that does not load stops ``run`` before its log is set up;
    its one line still ends ``node.log`` as a ``node.failed`` event, where an
    operator reading the log looks for why the node did not start. In the
    text format: the config that might choose JSON did not load."""
    from powernode.node.logging_setup import log_to_file_only, setup_logging

    try:
        setup_logging(fmt="text", level="info", file=log_path)
    except OSError:
        return  # no log to write to: the line on stderr is all there is
    log_to_file_only("node.failed", error=line, reason=reason)


def cmd_keygen(a: argparse.Namespace) -> int:
    if a.out == "":
        # `--out "$F"` with F unset must not fall back to printing the key.
        raise UserError("--out: give a file name (an empty one would print the key instead)")
    if a.json and not a.out:
        # JSON output goes to scripts and logs, which must not hold a
        # private key; without a file the key would be lost.
        raise UserError("--json needs --out FILE: the key is written there, never printed as JSON")
    key = KeyPair.generate()
    if a.out:
        out = Path(a.out)
        if out.exists():
            raise UserError(f"{out} exists; not overwriting a key")
        if not out.parent.is_dir():
            why = "is not a directory" if out.parent.exists() else "does not exist"
            raise UserError(f"cannot write {out}: folder {out.parent} {why}")
        try:
            write_key(out, key)
        except OSError as exc:
            raise UserError(f"cannot write {out}: {exc.strerror}") from None
    # Where the key went, as an absolute path: the one copy of it.
    where = str(Path(a.out).resolve()) if a.out else None
    result = {"address": key.address.hex(), "pubkey": key.pubkey.hex(), "file": where}
    if a.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"address {result['address']}")
        # A meter's key is registered by its public key (device register).
        print(f"pubkey  {result['pubkey']}")
        if a.out:
            print(f"key written to {where}")
        else:
            print(f"private  {key.seed().hex()}   (keep secret; use --out FILE to save)")
    return 0


def cmd_status(a: argparse.Namespace) -> int:
    with rpc_client(a) as c:
        info = c.call("node.info")
    emit(
        a,
        info,
        lambda i: (
            f"chain {i['chain_id']}  height {i['height']}  tip {i['tip']}\n"
            f"mempool {counted(i['mempool_size'], 'tx')}  mining {'on' if i['mining'] else 'off'}  rpc {i['rpc']}"
        ),
    )
    return 0


def cmd_balance(a: argparse.Namespace) -> int:
    addr = chosen_address(a).hex()
    with rpc_client(a) as c:
        acct = c.call("account.get", {"address": addr})
    acct["balance_units"] = format_units(acct["balance"])
    emit(a, acct, lambda r: f"{r['address']}  balance {r['balance_units']}  nonce {r['nonce']}")
    return 0


def cmd_transfer(a: argparse.Namespace) -> int:
    to = a.to
    amount = parse_units(a.amount, "--amount")
    fee = parse_units(a.fee, "--fee")
    if amount <= 0:
        raise UserError("--amount must be positive")
    # The typed input is checked before the key file is read.
    key = signing_key(a)
    with rpc_client(a) as c:
        chain_id, nonce = tx_context(c, key)
        tx = build_transfer(key, chain_id=chain_id, nonce=nonce, to=to, amount=amount, fee=fee)
        status = submit_and_wait(c, tx, a.wait)
    return report_tx(a, status)


# How long `powernode stop` waits for the node to exit: systemd's stop timeout
# in the unit this project ships (TimeoutStopSec=120).
STOP_WAIT_S = 120


def cmd_stop(a: argparse.Namespace) -> int:
    with rpc_client(a) as c:
        c.call("node.stop")
    print("stopping", flush=True)
    # The node answers first, then saves its mempool and closes its store:
    # a node found by its data dir is waited for until it has let the data
    # dir go, so `stop && restore` (or `stop && run`) finds it free.
    if a.rpc_url is None and not wait_unlocked(a.datadir, STOP_WAIT_S):
        raise UserError(f"the node in {a.datadir} is still stopping after {STOP_WAIT_S} s")
    return 0


def cmd_mine(a: argparse.Namespace) -> int:
    with rpc_client(a) as c:
        r = c.call("dev.mine", {"blocks": a.blocks})
    emit(a, r, lambda r: f"mined {counted(len(r['hashes']), 'block')}, height {r['height']}")
    return 0


# --- parser -------------------------------------------------------------------


def add_commands(sub: Subparsers) -> None:
    sp = add_command(sub, "init", cmd_init, "create a data dir with a node key, config and genesis")
    chain = sp.add_mutually_exclusive_group()
    chain.add_argument("--dev", action="store_true", help="a new dev chain funding this node's key")
    chain.add_argument("--genesis", help="join the chain of this genesis file")
    sp.add_argument(
        "--rpc-port",
        type=port_number("--rpc-port"),
        default=8645,
        metavar="PORT",
        help="RPC port written to the config (default 8645)",
    )
    sp.add_argument(
        "--p2p-port",
        type=port_number("--p2p-port"),
        default=8646,
        metavar="PORT",
        help="peer-to-peer port written to the config (default 8646)",
    )
    sp.add_argument("--mine", action="store_true", help="enable mining in the config")

    sp = add_command(sub, "run", cmd_run, "run the node in the foreground")
    sp.add_argument("--mine", action="store_true", help="mine (overrides the config)")
    sp.add_argument(
        "--metrics",
        action="store_true",
        help="serve Prometheus /metrics on [metrics] host:port (overrides the config)",
    )
    sp.add_argument(
        "--reindex",
        action="store_true",
        help="rebuild the state, undo data, receipts and tx index from the stored blocks, "
        "checking each block again, before serving",
    )
    sp.add_argument(
        "--log-format", choices=["text", "json"], help="log line format (overrides the config)"
    )
    sp.add_argument(
        "--no-log-stderr",
        dest="log_stderr",
        action="store_false",
        help="log to node.log only; stderr keeps the one-line failure (testnets use it)",
    )
    sp.add_argument(
        "--debug",
        action="append",
        metavar="CATEGORY",
        help="log CATEGORY (net, mempool, rpc, ...) at debug, as bitcoind's -debug=net; "
        "repeat for more (overrides [log] levels)",
    )

    sp = add_command(sub, "keygen", cmd_keygen, "make a new key pair")
    sp.add_argument("--out", help="write the private key to this file (mode 0600)")
    sp.add_argument(
        "--json", action="store_true", help="print address, pubkey and file as JSON (needs --out)"
    )

    sp = add_command(sub, "status", cmd_status, "show the node's chain, tip and mempool")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(sub, "balance", cmd_balance, "show an account's balance and nonce")
    add_address_options(sp)
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    sp = add_command(sub, "transfer", cmd_transfer, "sign and submit a transfer")
    sp.add_argument("--to", required=True, type=address_arg("--to"), help="recipient address (hex)")
    sp.add_argument("--amount", required=True, help="amount in units, e.g. 1.5")
    sp.add_argument("--fee", default="0.001", help="fee in units (default 0.001)")
    sp.add_argument("--key", help="sender key file (default: the node key)")
    add_wait_option(sp)
    sp.add_argument("--json", action="store_true", help="print the result as JSON")

    add_command(sub, "stop", cmd_stop, "stop the running node cleanly")

    sp = add_command(sub, "mine", cmd_mine, "dev chains: mine blocks now")
    # dev.mine's own bound: more is refused by the node anyway.
    sp.add_argument(
        "blocks",
        type=whole_number("BLOCKS", lo=1, hi=10_000),
        nargs="?",
        default=1,
        metavar="BLOCKS",
        help="how many blocks to mine (default 1)",
    )
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
