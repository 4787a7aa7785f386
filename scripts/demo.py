"""The seed's market scenario against a running testnet.

    python scripts/demo.py --dir testnet/local

Two funded demo accounts of the testnet (DIR/keys/) register, as in the seed:
producer_001 (Beijing, 1000 kW) and consumer_001 (Shanghai, 500 kW). The
producer offers 100 kWh of solar at 0.50/kWh in the next open spot slot, the
consumer bids for 50 kWh at 0.60/kWh; they trade 50 kWh at 0.55/kWh (the spot
market's midpoint rule) and 50 kWh stay on the ask. The trade, the book and
the statistics are then fetched from every node and checked equal.

Transactions go to the first node; each step waits for confirmation. The
demo can run again on the same testnet: open orders the two accounts left in
an earlier run are cancelled first, and it trades in the first slot they have
no orders in yet. Exit status 1, with the reason on
stderr, if a step fails or does not confirm within --timeout seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from powernode.cli.market import book_text, event_lines, stats_text, when
from powernode.client import (
    RpcClient,
    RpcError,
    RpcUnavailable,
    build_cancel,
    build_order,
    build_register,
    format_kwh,
    format_money,
    format_price,
    next_slot,
    read_key,
)
from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction

PRODUCT = "spot"
SELL_WH, SELL_PRICE = 100_000, 500_000  # 100 kWh at 0.50/kWh
BUY_WH, BUY_PRICE = 50_000, 600_000  # 50 kWh at 0.60/kWh


class DemoFailed(Exception):
    pass


class Demo:
    def __init__(self, d: Path, timeout: float) -> None:
        state = json.loads((d / "testnet.json").read_text())
        self.clients = {n["name"]: RpcClient.from_datadir(d / n["name"]) for n in state["nodes"]}
        self.entry = next(iter(self.clients))
        self.rpc = self.clients[self.entry]
        self.chain_id = self.rpc.call("node.info")["chain_id"]
        keys = state["demo_keys"]
        if len(keys) < 2:
            raise DemoFailed(f"the testnet in {d} has {len(keys)} demo keys; the demo needs 2")
        # demo0 is demo_transfers.py's sender; take the next two when there are.
        pick = keys[1:3] if len(keys) >= 3 else keys[:2]
        self.producer = read_key(d / pick[0])
        self.consumer = read_key(d / pick[1])
        self.key_files = pick
        self.timeout = timeout

    def close(self) -> None:
        for c in self.clients.values():
            c.close()

    # --- transactions -------------------------------------------------------

    def nonce(self, key: KeyPair) -> int:
        return int(self.rpc.call("account.get", {"address": key.address.hex()})["next_nonce"])

    def submit(self, tx: Transaction) -> str:
        try:
            return self.rpc.submit(tx)
        except RpcError as exc:
            raise DemoFailed(f"{self.entry} refused {tx.type}: {exc}") from None

    def confirm(self, txids: list[str], what: str) -> list[dict[str, Any]]:
        """Wait until the first node has every tx in a block and each ran ok."""
        deadline = time.monotonic() + self.timeout
        done: dict[str, dict[str, Any]] = {}
        while len(done) < len(txids):
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"{what}: {len(txids) - len(done)} tx(s) not confirmed on {self.entry} "
                    f"after {self.timeout:.0f}s (is the testnet mining? "
                    "'python scripts/testnet.py status')"
                )
            for txid in txids:
                if txid not in done:
                    st = self.rpc.call("tx.get", {"id": txid})
                    if st["status"] == "confirmed":
                        done[txid] = st
            time.sleep(0.25)
        for txid, st in done.items():
            receipt = st.get("receipt", {})
            if receipt.get("status") != "ok":
                err = receipt.get("error", {})
                raise DemoFailed(
                    f"{what}: tx {txid} was mined but failed: {err.get('code')}: {err.get('message')}"
                )
        heights = sorted({st["height"] for st in done.values()})
        print(f"  confirmed in block {', '.join(map(str, heights))}")
        return [done[t] for t in txids]

    def confirmed_everywhere(self, txid: str) -> None:
        deadline = time.monotonic() + self.timeout
        missing = set(self.clients)
        while missing:
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"tx {txid} not confirmed on {sorted(missing)} after {self.timeout:.0f}s"
                )
            for name in sorted(missing):
                try:
                    if self.clients[name].call("tx.get", {"id": txid})["status"] == "confirmed":
                        missing.discard(name)
                except RpcError:
                    pass  # not gossiped there yet
            time.sleep(0.25)

    # --- the scenario -------------------------------------------------------

    def cancel_leftovers(self) -> None:
        txids = []
        for key in (self.producer, self.consumer):
            left = self.rpc.call(
                "market.orders", {"participant": key.address.hex(), "status": "open"}
            )
            nonce = self.nonce(key)
            for i, o in enumerate(left):
                tx = build_cancel(
                    key, chain_id=self.chain_id, nonce=nonce + i, order_id=bytes.fromhex(o["id"])
                )
                txids.append(self.submit(tx))
        if txids:
            print(f"cancelling {len(txids)} open order(s) left by an earlier run")
            self.confirm(txids, "cancelling leftovers")

    def register(self) -> None:
        print("registering participants")
        txids = []
        for label, key, role, location, kw, f in (
            ("producer_001", self.producer, "producer", "Beijing", 1000, self.key_files[0]),
            ("consumer_001", self.consumer, "consumer", "Shanghai", 500, self.key_files[1]),
        ):
            tx = build_register(
                key,
                chain_id=self.chain_id,
                nonce=self.nonce(key),
                role=role,
                location=location,
                capacity_w=kw * 1000,
            )
            txids.append(self.submit(tx))
            print(f"  {label}: {role}, {location}, {kw} kW  ({f}, address {key.address.hex()})")
        self.confirm(txids, "registration")

    def next_open_slot(self) -> tuple[int, dict[str, Any]]:
        r = self.rpc.call("market.params", {"product": PRODUCT})
        mp = r["products"][PRODUCT]
        if mp["price_rule"] == "uniform":
            raise DemoFailed(f"{PRODUCT} clears by auction in this genesis; the demo needs trades")
        now = max(int(time.time()), r["time"])
        slot = next_slot(
            now,
            slot_seconds=mp["slot_seconds"],
            gate_closure_seconds=mp["gate_closure_seconds"],
            min_lead_seconds=mp["min_lead_seconds"],
        )
        # Filled orders keep their capacity in a slot; on a rerun, move on to
        # the first slot neither account has traded in yet.
        used = {
            o["slot"]
            for key in (self.producer, self.consumer)
            for o in self.rpc.call("market.orders", {"participant": key.address.hex()})
            if o["product"] == PRODUCT
        }
        while slot in used:
            slot += mp["slot_seconds"]
        if slot - now > mp["max_lead_seconds"]:
            raise DemoFailed(
                "no free delivery slot left for the demo accounts; restart the testnet"
            )
        return slot, mp

    def place(self, label: str, key: KeyPair, side: str, slot: int, energy: int, price: int) -> str:
        source = "solar" if side == "sell" else "any"
        tx = build_order(
            key,
            chain_id=self.chain_id,
            nonce=self.nonce(key),
            product=PRODUCT,
            side=side,
            slot=slot,
            energy_wh=energy,
            price=price,
            source=source,
        )
        print(
            f"{label} places {side} {format_kwh(energy)} kWh ({source}) at {format_price(price)}/kWh"
            f"  order {tx.txid.hex()}"
        )
        txid = self.submit(tx)
        (st,) = self.confirm([txid], f"{label}'s {side} order")
        for line in event_lines(st):
            print("  " + line)
        return txid

    def same_everywhere(self, fetch: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """Each query from every node; returns the answers once all nodes agree."""
        deadline = time.monotonic() + self.timeout
        while True:
            answers = {
                name: {k: c.call(m, p) for k, (m, p) in fetch.items()}
                for name, c in self.clients.items()
            }
            first = answers[self.entry]
            if all(a == first for a in answers.values()):
                return first
            if time.monotonic() > deadline:
                differ = sorted(n for n, a in answers.items() if a != first)
                raise DemoFailed(f"nodes {differ} still disagree with {self.entry}")
            time.sleep(0.25)

    def run(self) -> None:
        names = ", ".join(self.clients)
        print(f"market demo on {len(self.clients)} nodes ({names}); txs go to {self.entry}")
        self.cancel_leftovers()
        self.register()
        slot, mp = self.next_open_slot()
        print(
            f"delivery slot {slot} ({when(slot)}, {mp['slot_seconds'] // 60} min), "
            f"gate closes {when(slot - mp['gate_closure_seconds'])}, price rule {mp['price_rule']}"
        )
        sell = self.place("producer_001", self.producer, "sell", slot, SELL_WH, SELL_PRICE)
        buy = self.place("consumer_001", self.consumer, "buy", slot, BUY_WH, BUY_PRICE)
        self.confirmed_everywhere(buy)
        seen = self.same_everywhere(
            {
                "trades": ("market.trades", {"product": PRODUCT, "slot": slot}),
                "book": ("market.book", {"product": PRODUCT, "slot": slot}),
                "slot_stats": ("market.stats", {"product": PRODUCT, "slot": slot}),
                "stats": ("market.stats", {}),
            }
        )
        ours = [t for t in seen["trades"] if t["buy_id"] == buy and t["sell_id"] == sell]
        if len(ours) != 1:
            raise DemoFailed(f"expected one trade between the two orders, found {len(ours)}")
        t = ours[0]
        expected = (SELL_PRICE + BUY_PRICE) // 2 if mp["price_rule"] == "midpoint" else SELL_PRICE
        print(f"\nfetched from every node ({names}): the same trade, book and statistics")
        print(
            f"trade #{t['seq']} in block {t['height']}: {format_kwh(t['energy'])} kWh at "
            f"{format_price(t['price'])}/kWh ({mp['price_rule']} rule), value {format_money(t['value'])}"
        )
        print(f"  seller producer_001 {t['seller']}  fee {format_money(t['seller_fee'])}")
        print(f"  buyer  consumer_001 {t['buyer']}  fee {format_money(t['buyer_fee'])}")
        if t["energy"] != BUY_WH or t["price"] != expected:
            raise DemoFailed(
                f"expected {format_kwh(BUY_WH)} kWh at {format_price(expected)}, got "
                f"{format_kwh(t['energy'])} kWh at {format_price(t['price'])}"
            )
        print("\n" + book_text(seen["book"]))
        print(f"\nslot statistics\n{indent(stats_text(seen['slot_stats']))}")
        print(f"market statistics\n{indent(stats_text(seen['stats']))}")
        tips = {n: c.call("node.info") for n, c in self.clients.items()}
        print("tips: " + ", ".join(f"{n} {i['height']} {i['tip'][:12]}" for n, i in tips.items()))


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dir", type=Path, default=Path("testnet/local"))
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per step")
    a = ap.parse_args()
    if not (a.dir / "testnet.json").exists():
        print(f"demo: no testnet in {a.dir} (start one: scripts/testnet.py up)", file=sys.stderr)
        return 1
    demo: Demo | None = None
    try:
        demo = Demo(a.dir, a.timeout)
        demo.run()
    except DemoFailed as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    except (RpcError, RpcUnavailable) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        if demo is not None:
            demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
