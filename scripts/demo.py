"""The seed's market scenario against a running testnet.

    python scripts/demo.py --dir testnet/local

Two funded demo accounts of the testnet (DIR/keys/) register, as in the seed:
producer_001 (Beijing, 1000 kW) and consumer_001 (Shanghai, 500 kW). The
producer offers 100 kWh of solar at 0.50/kWh in the next open spot slot, the
consumer bids for 50 kWh at 0.60/kWh; they trade 50 kWh at 0.55/kWh (the spot
market's midpoint rule) and 50 kWh stay on the ask. The trade, the book and
the statistics are then fetched from every node and checked equal.

Then the certificates (issue 10's seed scenario): producer_001 registers a
solar device in Beijing (1000 kW, 50 gCO2/kWh) whose meter key the demo
generates and saves (DIR/keys/meter-ID.key); a demo key that the genesis
makes a certificate authority approves it; once the chain's clock has passed
the end of a metering interval, the meter reports 100 kWh produced for it and
the reading issues a 100 kWh green solar certificate; cert.verify shows it
valid, green, solar, Beijing, 50 gCO2/kWh; producer_001 transfers 40 kWh of
it to consumer_001 (split off as a certificate of its own) and consumer_001
retires them for consumer_001 in Shanghai; the trace shows issue (from the
reading), split, transfer, retire. The device, the reading, both
certificates, their traces and verifications are fetched from every node and
checked equal. Then the proof: every node's ``cert.proof`` of the retired
certificate is written to DIR/proofs/ and verified offline against
DIR/genesis.json (no node asked), each proving the same certificate, retired
for consumer_001, 40 kWh; the first also by ``powernode verify-proof``,
whose summary (what it proved, what it cannot) is printed.

Then the settlement (issue 11): once the trade's slot has ended, the meter
reports what the device produced in it (80 kWh, unless the certificates step
already read that interval); when the slot's reading window has passed, the
chain settles the trade in a block hook: 50 kWh delivered, so the trade is
``completed``, producer_001 is paid 27.50 from the settlement escrow and
50 kWh of the slot's certificate are bundled to consumer_001 (split off by
the settlement: trace reading, split, bundle). The trade, the slot's
settlement record, both parties' positions and the bundled certificate are
read from every node and checked equal. A local testnet trades one-minute
slots with a one-minute reading window, so this takes about three minutes.
``--no-settlement`` stops before it.

Transactions go to the first node; each step waits for confirmation. The
demo can run again on the same testnet: open orders the two accounts left in
an earlier run are cancelled first, and it trades in the first slot they have
no orders in yet. Exit status 1, with the reason on
stderr, if a step fails or does not confirm within --timeout seconds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from powernode.cli.certs import trace_text, verify_text
from powernode.cli.hub import (
    batch_summary,
    batches,
    build_meter_batch,
    read_readings,
    reading_json,
    summary_text,
)
from powernode.cli.market import (
    book_text,
    event_lines,
    position_text,
    settled_text,
    stats_text,
    when,
)
from powernode.client import (
    RpcClient,
    RpcError,
    RpcUnavailable,
    build_cancel,
    build_cert_retire,
    build_cert_transfer,
    build_contract_create,
    build_contract_execute,
    build_device_approve,
    build_device_register,
    build_meter_report,
    build_order,
    build_ppa_accept,
    build_ppa_fund,
    build_ppa_propose,
    build_register,
    cert_id_of,
    child_cert_id,
    format_kwh,
    format_money,
    format_price,
    next_slot,
    read_key,
    trade_settlement_ref,
    write_key,
)
from powernode.core.crypto import KeyPair
from powernode.core.errors import BadProof
from powernode.core.tx import Transaction
from powernode.state.certproof import verify_proof
from powernode.state.genesis import parse_genesis_json

PRODUCT = "spot"
SELL_WH, SELL_PRICE = 100_000, 500_000  # 100 kWh at 0.50/kWh
BUY_WH, BUY_PRICE = 50_000, 600_000  # 50 kWh at 0.60/kWh
# The certificate scenario: a 1000 kW solar device in Beijing at 50 gCO2/kWh
# meters 100 kWh; 40 kWh of its certificate go to the consumer, who retires them.
DEVICE_W, DEVICE_CARBON = 1_000_000, 50
METERED_WH, TRANSFER_WH = 100_000, 40_000
# The settlement: the device meters 80 kWh in the trade's slot.
SLOT_METERED_WH = 80_000


class DemoFailed(Exception):
    pass


class Demo:
    def __init__(self, d: Path, timeout: float, settle: bool = True) -> None:
        self.settle = settle
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
        self.demo_keys = [(Path(f).stem, read_key(d / f)) for f in keys]
        self.dir = d
        self.timeout = timeout
        # Set by the parts that make them: the solar device and its meter
        # (certificates), the certificate the PPA delivered and its interval.
        self.device = b""
        self.meter = KeyPair.generate()
        self.device_w = DEVICE_W  # the demo device's capacity, once registered
        self.trade_slot, self.slot_seconds = 0, 0  # the market part's, once it has traded
        self.ppa_cert = ""
        self.ppa_interval = 0

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
                    elif st["status"] == "dropped":
                        err = st.get("error", {})
                        raise DemoFailed(
                            f"{what}: tx {txid} was dropped unmined: {err.get('code')}: "
                            f"{err.get('message')}"
                        )
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
        # The seed's capacities, or, on a chain whose slots are too short for
        # them to deliver the seed's energies (a local testnet's one-minute
        # slots), what the slot needs: a slot's capacity is capacity_w x
        # slot_seconds // 3600 Wh (README, The market).
        slot_s = self.rpc.call("market.params", {"product": PRODUCT})["products"][PRODUCT][
            "slot_seconds"
        ]

        def kw_for(seed_kw: int, wh: int) -> int:
            return max(seed_kw, -(-wh * 3600 // slot_s) // 1000)

        producer_kw, consumer_kw = kw_for(1000, SELL_WH), kw_for(500, BUY_WH)
        if (producer_kw, consumer_kw) != (1000, 500):
            print(
                f"  ({slot_s} s slots: the seed's 1000 kW and 500 kW scaled to {producer_kw} kW"
                f" and {consumer_kw} kW, so the seed's {format_kwh(SELL_WH)} kWh and"
                f" {format_kwh(BUY_WH)} kWh fit in one slot)"
            )
        for label, key, role, location, kw, f in (
            ("producer_001", self.producer, "producer", "Beijing", producer_kw, self.key_files[0]),
            ("consumer_001", self.consumer, "consumer", "Shanghai", consumer_kw, self.key_files[1]),
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
            # the two orders confirm in seconds; on a testnet's one-minute
            # slots every second here is a second more before settlement
            margin=40,
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
        nodes = f"{len(self.clients)} node{'' if len(self.clients) == 1 else 's'}"
        print(f"market demo on {nodes} ({names}); txs go to {self.entry}")
        self.cancel_leftovers()
        self.register()
        slot, mp = self.next_open_slot()
        print(
            f"delivery slot {slot} ({when(slot)}, {mp['slot_seconds'] // 60} min), "
            f"gate closes {when(slot - mp['gate_closure_seconds'])}, price rule {mp['price_rule']}"
        )
        self.trade_slot, self.slot_seconds = slot, int(mp["slot_seconds"])
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
        device, meter = self.certificates()
        if self.settle:
            self.settlement(slot, mp, t, device, meter)
        hub_part(self)
        ppa_part(self)
        contracts_part(self)
        tips = {n: c.call("node.info") for n, c in self.clients.items()}
        print("tips: " + ", ".join(f"{n} {i['height']} {i['tip'][:12]}" for n, i in tips.items()))

    # --- certificates -------------------------------------------------------

    def authority(self) -> tuple[str, KeyPair]:
        """A demo key the genesis names a certificate authority, other than
        the two traders if there is one."""
        allowed = set(self.rpc.call("cert.params")["authorities"])
        ours = [(n, k) for n, k in self.demo_keys if k.address.hex() in allowed]
        if not ours:
            raise DemoFailed("no demo key is a certificate authority in this genesis")
        traders = {self.producer.address, self.consumer.address}
        others = [(n, k) for n, k in ours if k.address not in traders]
        return (others or ours)[0]

    def send(self, tx: Transaction, what: str) -> dict[str, Any]:
        (st,) = self.confirm([self.submit(tx)], what)
        return st

    def ended_interval(self) -> tuple[int, int]:
        """The latest metering interval that has ended by this machine's
        clock, once the chain's clock (cert.params now: the market clock or
        the tip's time, whichever is later) has passed its end too, since the
        chain judges a reading by its own clock. Polls until then."""
        cp = self.rpc.call("cert.params")
        size, window = int(cp["interval_seconds"]), int(cp["reading_window"])
        now = max(int(time.time()), cp["now"])
        start = now // size * size - size
        # With a short reading window (a local testnet's minute), an interval
        # that ended a while ago may close before the reading is mined: then
        # take the current one, once it has ended.
        if start + size + window < now + 40:
            start += size
        # The trade's slot is the settlement's to meter (below): not this one.
        if self.trade_slot <= start < self.trade_slot + self.slot_seconds:
            start = self.trade_slot + self.slot_seconds
        deadline = time.monotonic() + self.timeout + size
        while cp["now"] < start + size:
            if time.monotonic() > deadline:
                raise DemoFailed(
                    f"the chain's clock did not reach {when(start + size)} within "
                    f"{self.timeout:.0f}s (is the testnet mining?)"
                )
            time.sleep(0.5)
            cp = self.rpc.call("cert.params")
        return start, size

    def certificates(self) -> tuple[bytes, KeyPair]:
        """The certificate scenario; returns the device and its meter key."""
        print("\ncertificates: producer_001 meters solar power in Beijing")
        # The seed's 1000 kW, or what one metering interval needs for the
        # demo's largest reading (the PPA's 200 kWh; capacity_w x interval //
        # 3600 Wh, README, Metering).
        size = int(self.rpc.call("cert.params")["interval_seconds"])
        largest = max(METERED_WH, PPA_DELIVER_WH * 10_000 // PPA_SHARE_BPS)
        device_w = self.device_w = max(DEVICE_W, -(-largest * 3600 // size))
        if device_w != DEVICE_W:
            print(
                f"  ({size} s metering intervals: the seed's {DEVICE_W // 1000} kW device scaled"
                f" to {device_w // 1000} kW, so it can meter the demo's readings, up to"
                f" {format_kwh(largest)} kWh, in one)"
            )
        auth_name, auth = self.authority()
        meter = KeyPair.generate()
        reg = build_device_register(
            self.producer,
            chain_id=self.chain_id,
            nonce=self.nonce(self.producer),
            kind="generation",
            source="solar",
            capacity_w=device_w,
            location="Beijing",
            carbon_intensity=DEVICE_CARBON,
            meter_pubkey=meter.pubkey,
        )
        device = reg.txid
        # Kept for the parts after this one (settlement, the PPA), which
        # meter the same device.
        self.device, self.meter = device, meter
        meter_file = self.dir / "keys" / f"meter-{device.hex()[:16]}.key"
        write_key(meter_file, meter)
        print(
            f"producer_001 registers device {device.hex()}: solar, {device_w // 1000} kW, "
            f"Beijing, {DEVICE_CARBON} gCO2/kWh; meter key {meter_file.relative_to(self.dir)}"
        )
        self.send(reg, "device registration")
        print(f"authority {auth_name} ({auth.address.hex()}) approves it")
        approve = build_device_approve(
            auth, chain_id=self.chain_id, nonce=self.nonce(auth), device_id=device
        )
        self.send(approve, "device approval")

        start, size = self.ended_interval()
        print(
            f"the meter reports {format_kwh(METERED_WH)} kWh produced in interval {start} "
            f"({when(start)}, {size // 60} min), relayed by producer_001"
        )
        report = build_meter_report(
            self.producer,
            meter,
            chain_id=self.chain_id,
            nonce=self.nonce(self.producer),
            device_id=device,
            interval_start=start,
            produced_wh=METERED_WH,
            consumed_wh=0,
        )
        st = self.send(report, "meter reading")
        root = cert_id_of(device, start)
        issued = [e for e in st["receipt"]["events"] if e.get("event") == "cert.issued"]
        if issued != [{"event": "cert.issued", "cert": root.hex(), "wh": METERED_WH}]:
            raise DemoFailed(f"the reading did not issue certificate {root.hex()}: {issued}")
        print(f"  certificate {root.hex()} issued: {format_kwh(METERED_WH)} kWh")
        v = self.rpc.call("cert.verify", {"cert": root.hex()})
        want = {
            "valid": True,
            "type": "green",
            "source": "solar",
            "location": "Beijing",
            "carbon_intensity": DEVICE_CARBON,
        }
        if {k: v.get(k) for k in want} != want:
            raise DemoFailed(f"cert.verify: expected {want}, got {v}")
        print(f"cert.verify {root.hex()[:16]}..\n{indent(verify_text(v))}")

        transfer = build_cert_transfer(
            self.producer,
            chain_id=self.chain_id,
            nonce=self.nonce(self.producer),
            cert_id=root,
            to=self.consumer.address,
            wh=TRANSFER_WH,
        )
        child = child_cert_id(root, transfer.txid)
        print(
            f"producer_001 transfers {format_kwh(TRANSFER_WH)} kWh to consumer_001: "
            f"split off as certificate {child.hex()}"
        )
        self.send(transfer, "certificate transfer")
        retire = build_cert_retire(
            self.consumer,
            chain_id=self.chain_id,
            nonce=self.nonce(self.consumer),
            cert_id=child,
            wh=TRANSFER_WH,
            beneficiary="consumer_001",
            purpose="electricity consumed in Shanghai",
            period_start=start,
            period_end=start + size,
        )
        print("consumer_001 retires them for consumer_001 in Shanghai")
        self.send(retire, "certificate retirement")
        self.confirmed_everywhere(retire.txid.hex())

        seen = self.same_everywhere(
            {
                "device": ("device.get", {"device": device.hex()}),
                "readings": ("meter.readings", {"device": device.hex()}),
                "root": ("cert.get", {"cert": root.hex()}),
                "child": ("cert.get", {"cert": child.hex()}),
                "trace": ("cert.trace", {"cert": child.hex()}),
                "verify_root": ("cert.verify", {"cert": root.hex()}),
                "verify_child": ("cert.verify", {"cert": child.hex()}),
            }
        )
        names = ", ".join(self.clients)
        print(
            f"\nfetched from every node ({names}): the same device, reading, certificates, "
            "traces and verifications"
        )
        r, c = seen["root"], seen["child"]
        checks = [
            (seen["device"]["status"], "active"),
            ([x["produced_wh"] for x in seen["readings"]], [METERED_WH]),
            (
                (r["owner"], r["remaining_wh"], r["status"]),
                (self.producer.address.hex(), METERED_WH - TRANSFER_WH, "active"),
            ),
            (
                (c["owner"], c["wh"], c["status"], c["parent"]),
                (self.consumer.address.hex(), TRANSFER_WH, "retired", root.hex()),
            ),
            ((c["claim"] or {}).get("beneficiary"), "consumer_001"),
        ]
        for got, expected in checks:
            if got != expected:
                raise DemoFailed(f"expected {expected}, found {got}")
        print(
            f"certificate {root.hex()[:16]}.. producer_001: {format_kwh(r['remaining_wh'])} of "
            f"{format_kwh(r['wh'])} kWh left, {r['status']}"
        )
        print(
            f"certificate {child.hex()[:16]}.. consumer_001: {format_kwh(c['wh'])} kWh, "
            f"{c['status']} for {c['claim']['beneficiary']} ({c['claim']['purpose']})"
        )
        lineage = lineage_of(seen["trace"])
        if lineage != ["issue(reading)", "split", "transfer", "retire"]:
            raise DemoFailed(f"unexpected lineage {lineage}")
        print(f"trace: {', '.join(lineage)}\n{indent(trace_text(seen['trace']))}")
        proof = prove(self, child)
        if proof is not None:
            print(proof)
        return device, meter

    # --- settlement ---------------------------------------------------------

    def chain_now(self) -> int:
        return int(self.rpc.call("cert.params")["now"])

    def wait_clock(self, t: int, what: str) -> None:
        """Poll until the chain's clock (the metering clock) reaches ``t``."""
        deadline = time.monotonic() + self.timeout + max(0, t - int(time.time()))
        while self.chain_now() < t:
            if time.monotonic() > deadline:
                raise DemoFailed(f"the chain's clock did not reach {when(t)} ({what})")
            time.sleep(0.5)

    def settlement(
        self, slot: int, mp: dict[str, Any], trade: dict[str, Any], device: bytes, meter: KeyPair
    ) -> None:
        cp = self.rpc.call("cert.params")
        size, window = int(cp["interval_seconds"]), int(cp["reading_window"])
        end = slot + int(mp["slot_seconds"])
        print(
            f"\nsettlement: trade #{trade['seq']} is {trade['status']}; slot {slot} ends "
            f"{when(end)}, its readings are taken until {when(end + window)}, then it settles"
        )
        metered = 0
        for start in range(slot, end, size):
            self.wait_clock(start + size, "the end of the trade's slot")
            have = self.rpc.call("meter.readings", {"device": device.hex(), "start": start,
                                                     "end": start + size})  # fmt: skip
            if have:
                metered += have[0]["produced_wh"]
                print(f"  interval {start} already has its reading")
                continue
            per = SLOT_METERED_WH * size // (end - slot)
            print(
                f"the meter reports {format_kwh(per)} kWh produced in interval {start} "
                f"({when(start)}), relayed by producer_001"
            )
            report = build_meter_report(
                self.producer, meter, chain_id=self.chain_id, nonce=self.nonce(self.producer),
                device_id=device, interval_start=start, produced_wh=per, consumed_wh=0,
            )  # fmt: skip
            self.send(report, "meter reading for the trade's slot")
            metered += per
        root = cert_id_of(device, slot)
        before = self.rpc.call("cert.get", {"cert": root.hex()})
        holds = before["remaining_wh"] if before["owner"] == self.producer.address.hex() else 0
        # Wait for the settling block (the first past the window), then read
        # everything from every node.
        deadline = time.monotonic() + self.timeout + max(0, end + window - int(time.time()))
        query: dict[str, Any] = {"product": PRODUCT, "slot": slot}
        while True:
            ts = self.rpc.call("market.trades", query)
            t = next(x for x in ts if x["seq"] == trade["seq"])
            if t["status"] != "confirmed":
                break
            if time.monotonic() > deadline:
                raise DemoFailed(f"trade #{trade['seq']} did not settle by {when(end + window)}")
            time.sleep(0.5)
        kid = child_cert_id(root, trade_settlement_ref(trade["seq"]))
        delivered = min(trade["energy"], metered)
        bundled = min(delivered, holds)
        fetch: dict[str, tuple[str, dict[str, Any]]] = {
            "trades": ("market.trades", query),
            "settlement": ("market.settlement", {"slot": slot}),
            "producer": ("market.position", {"participant": self.producer.address.hex()}),
            "consumer": ("market.position", {"participant": self.consumer.address.hex()}),
        }
        whole = bundled == holds  # the root moved whole, or a part split off
        bundled_cert = root if whole else kid
        if bundled:
            fetch["cert"] = ("cert.get", {"cert": bundled_cert.hex()})
            fetch["trace"] = ("cert.trace", {"cert": bundled_cert.hex()})
        seen = self.same_everywhere(fetch)
        t = next(x for x in seen["trades"] if x["seq"] == trade["seq"])
        names = ", ".join(self.clients)
        print(
            f"\nfetched from every node ({names}): the same settled trade, settlement and positions"
        )
        status = (
            "completed"
            if delivered == trade["energy"]
            else "partial"
            if delivered
            else "undelivered"
        )
        paid = trade["price"] * delivered // 1000
        want = (status, delivered, paid, bundled)
        got = (t["status"], t["delivered_wh"], t["paid"], t["bundled_wh"])
        if got != want:
            raise DemoFailed(f"expected the trade settled as {want}, found {got}")
        print(f"trade #{t['seq']} {settled_text(t)}")
        (rec,) = [r for r in seen["settlement"]["settlements"]
                  if r["seller"] == self.producer.address.hex()]  # fmt: skip
        print(
            f"  slot settlement of producer_001 in block {rec['height']}: metered "
            f"{format_kwh(rec['metered_wh'])} kWh, sold {format_kwh(rec['sold_wh'])}, delivered "
            f"{format_kwh(rec['delivered_wh'])}, paid {format_money(rec['paid'])}"
        )
        for label in ("producer", "consumer"):
            print(indent(position_text(seen[label]).replace("participant", f"{label}_001", 1)))
        if bundled:
            c = seen["cert"]
            if (c["owner"], c["remaining_wh"]) != (self.consumer.address.hex(), bundled):
                raise DemoFailed(f"the bundled certificate is {c['owner']} {c['remaining_wh']}")
            kinds = [st["kind"] for st in seen["trace"]["steps"]]
            if kinds[-1] != "bundle":
                raise DemoFailed(f"the bundled certificate's trace ends {kinds}")
            print(
                f"certificate {bundled_cert.hex()} bundled to consumer_001: "
                f"{format_kwh(c['wh'])} kWh solar from Beijing, {c['status']}"
            )
            print(f"trace: {', '.join(lineage_of(seen['trace']))}")


def lineage_of(trace: dict[str, Any]) -> list[str]:
    """A trace's steps as the seed names them: the root's issuance (from a
    reading or by an authority), then each split once (the parent's step and
    the child's are one event), transfers and retirements."""
    out: list[str] = []
    for step in trace["steps"]:
        kind = step["kind"]
        name = {"reading": "issue(reading)", "issue": "issue(authority)"}.get(kind, kind)
        if name == "split" and out[-1:] == ["split"]:
            continue
        out.append(name)
    return out


# === PROOF HOOK ======================================================================
# Issue 10 item 9's proof step: every node's cert.proof, written to
# DIR/proofs/, each verified offline against DIR/genesis.json (no node is
# asked anything), the first also by the `powernode verify-proof` command.
def prove(demo: Demo, cert: bytes) -> str | None:
    """Export and verify offline the proof of certificate ``cert`` from every
    node; the verifier's summary, or DemoFailed."""
    params = parse_genesis_json((demo.dir / "genesis.json").read_bytes())
    out_dir = demo.dir / "proofs"
    out_dir.mkdir(exist_ok=True)
    proven: dict[str, dict[str, Any]] = {}
    files: dict[str, Path] = {}
    for name, c in demo.clients.items():
        r = c.call("cert.proof", {"cert": cert.hex()})
        raw = bytes.fromhex(r["proof"])
        path = out_dir / f"cert-{cert.hex()[:16]}-{name}.proof"
        path.write_bytes(raw)
        files[name] = path
        try:
            result = verify_proof(raw, params)
        except BadProof as exc:
            raise DemoFailed(f"{name}'s proof does not verify: {exc.code}: {exc.message}") from None
        got = result.to_json()
        print(
            f"{name}: cert.proof {r['bytes']} bytes, tip {r['height']}, written to "
            f"{path.relative_to(demo.dir)}; verified offline"
        )
        c_ = got["cert"]
        want = (demo.consumer.address.hex(), TRANSFER_WH, "retired", "consumer_001")
        seen = (c_["owner"], c_["wh"], c_["status"], (c_["claim"] or {}).get("beneficiary"))
        if seen != want:
            raise DemoFailed(f"{name}'s proof proves {seen}, expected {want}")
        proven[name] = {"cert": c_, "steps": got["steps"]}
    first = next(iter(proven))
    differ = [n for n, p in proven.items() if p != proven[first]]
    if differ:
        raise DemoFailed(f"the proofs of {differ} prove another certificate than {first}'s")
    # The same check by the command a third party would run, with no node.
    cmd = [sys.executable, "-m", "powernode.cli", "verify-proof", str(files[first]),
           "--genesis", str(demo.dir / "genesis.json")]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        raise DemoFailed(f"powernode verify-proof refused {files[first]}: {run.stderr.strip()}")
    shown = f"powernode verify-proof {files[first].relative_to(demo.dir)} --genesis genesis.json"
    return (
        f"every node's proof proves the same certificate: {format_kwh(TRANSFER_WH)} kWh, "
        f"retired for consumer_001\n$ {shown}\n{indent(run.stdout.rstrip())}"
    )


# === DATA HUB ========================================================================
# Issue 15 item 4: a data hub relays meters' signed readings as one meter.batch.
HUB_DEVICES = (("wind", 5_000), ("hydro", 7_500), ("solar", 10_000))  # source, Wh read


def hub_part(demo: Demo) -> None:
    """producer_001 registers three more devices (wind, hydro, solar), the
    authority approves them; each meter signs its reading of an ended
    interval offline (what `powernode meter sign` prints); producer_001, as
    the data hub, relays the three as one meter.batch (what `powernode meter
    batch` sends: one tx, one fee); each reading issues its certificate, read
    back from every node."""
    print("\ndata hub: three meters sign their readings, one meter.batch relays them")
    _, auth = demo.authority()
    meters = [KeyPair.generate() for _ in HUB_DEVICES]
    regs = []
    nonce = demo.nonce(demo.producer)
    for i, ((source, _), meter) in enumerate(zip(HUB_DEVICES, meters, strict=True)):
        regs.append(
            build_device_register(
                demo.producer,
                chain_id=demo.chain_id,
                nonce=nonce + i,
                kind="generation",
                source=source,
                capacity_w=demo.device_w,
                location="Beijing",
                carbon_intensity=DEVICE_CARBON,
                meter_pubkey=meter.pubkey,
            )
        )
    demo.confirm([demo.submit(tx) for tx in regs], "hub device registrations")
    nonce = demo.nonce(auth)
    approvals = [
        build_device_approve(auth, chain_id=demo.chain_id, nonce=nonce + i, device_id=tx.txid)
        for i, tx in enumerate(regs)
    ]
    demo.confirm([demo.submit(tx) for tx in approvals], "hub device approvals")
    devices = [tx.txid for tx in regs]
    interval = hub_interval(demo)
    lines = [
        json.dumps(reading_json(meter, demo.chain_id, device, interval, wh, 0))
        for device, meter, (_, wh) in zip(devices, meters, HUB_DEVICES, strict=True)
    ]
    path = demo.dir / "hub-readings.jsonl"
    path.write_text("\n".join(lines) + "\n")
    print(
        f"  {len(lines)} signed readings for interval {interval} ({when(interval)}) in {path.name}"
    )
    ((batch_interval, readings),) = batches(read_readings(path, demo.chain_id))
    tx = build_meter_batch(
        demo.producer,
        chain_id=demo.chain_id,
        nonce=demo.nonce(demo.producer),
        interval_start=batch_interval,
        readings=readings,
        fee=1000,
    )
    st = demo.send(tx, "hub batch")
    summary = batch_summary({"id": tx.txid.hex(), **st}, batch_interval, len(readings))
    print("  producer_001 relays them: " + summary_text(summary))
    if (summary["applied"], summary["skipped"]) != (len(HUB_DEVICES), []):
        raise DemoFailed(f"the batch did not apply every reading: {summary}")
    seen = demo.same_everywhere(
        {d.hex(): ("cert.get", {"cert": cert_id_of(d, interval).hex()}) for d in devices}
    )
    print(f"  certified, the same on every node ({', '.join(demo.clients)}):")
    for d, (source, wh) in zip(devices, HUB_DEVICES, strict=True):
        c = seen[d.hex()]
        if (c["wh"], c["source"], c["owner"]) != (wh, source, demo.producer.address.hex()):
            raise DemoFailed(f"certificate of device {d.hex()}: {c}")
        print(f"    {source:<6} device {d.hex()[:16]}.. {format_kwh(c['wh'])} kWh, {c['type']}")


def hub_interval(demo: Demo) -> int:
    """The latest interval ended by the chain's clock if its reading window
    stays open 20 s more (time for the batch to be mined), else the current
    one once it has ended (then within 20 s on a testnet, whose window is
    one interval): the new devices have no readings yet."""
    cp = demo.rpc.call("cert.params")
    size, window, now = int(cp["interval_seconds"]), int(cp["reading_window"]), int(cp["now"])
    interval = now // size * size - size
    if interval + size + window >= now + 20:
        return interval
    return wait_interval_end(demo, interval + size, size)


# === PPA AND CONTRACTS ===============================================================
# Issue 11 items 4, 5 and 7: the seed's PPA (contract_001) bound to the demo's
# solar device, delivered from its meter reading and paid in the same block;
# then the two contract templates of the README, executed.

PPA_TOTAL_WH, PPA_PRICE, PPA_DAYS = 1_000_000, 500_000, 30  # 1,000 kWh at 0.50 over 30 days
PPA_SHARE_BPS = 5_000  # half of each reading of the device
PPA_DELIVER_WH = 100_000  # the first delivery: 100 kWh, from a 200 kWh reading
PPA_PERIOD = 86_400  # a day: the buyer escrows a day's expected cost at acceptance
PPA_FUND = 50_000_000  # the buyer tops up 50.00, so the 100 kWh (50.00) are covered
DR_REWARD, GREEN_PREMIUM = 5_000_000, 2_000_000  # 5.00 and 2.00
CONSUMER_W = 500_000  # consumer_001's meter: 500 kW in Shanghai
TERM_FEE = 1_000  # a contract tx pays this per condition and action, on top of the base fee


def ppa_part(demo: Demo) -> None:
    """producer_001 proposes contract_001 to consumer_001, bound to the solar
    device; consumer_001 accepts and funds it; a 200 kWh reading of the
    device (an interval of its own, after the trade's slot and the
    certificate's interval) delivers 50% of it, 100 kWh, paid at 0.50 in
    the same block; ppa.get from every node: 100 of 1,000 kWh, 10.0%, 50.00
    paid, days remaining, active."""
    print("\nPPA contract_001: producer_001 -> consumer_001, 1,000 kWh at 0.50/kWh over 30 days")
    device, meter = demo.device, demo.meter
    cp = demo.rpc.call("cert.params")
    size = int(cp["interval_seconds"])
    cap = demo.device_w * size // 3600
    # Half of a 200 kWh reading; a device too small for that in one
    # interval (a testnet's one-minute intervals) gives all of a 100 kWh one.
    share = PPA_SHARE_BPS if cap >= PPA_DELIVER_WH * 10_000 // PPA_SHARE_BPS else 10_000
    produced = PPA_DELIVER_WH * 10_000 // share
    if produced > cap:
        raise DemoFailed(
            f"the demo's device meters at most {format_kwh(cap)} kWh per {size} s interval; "
            f"the PPA demo needs a {format_kwh(produced)} kWh reading"
        )
    # The PPA's term starts at an interval of its own: one the device has no
    # reading for yet (earlier readings, the trade's slot and the
    # certificate's interval, were taken before the PPA existed).
    start = open_interval(demo, device)
    propose = build_ppa_propose(
        demo.producer,
        chain_id=demo.chain_id,
        nonce=demo.nonce(demo.producer),
        buyer=demo.consumer.address,
        device_id=device,
        share_bps=share,
        total_wh=PPA_TOTAL_WH,
        price=PPA_PRICE,
        start=start,
        duration_days=PPA_DAYS,
        period_seconds=PPA_PERIOD,
        accept_deadline=max(start, int(cp["now"])) + 3600,
    )
    ppa = propose.txid
    print(
        f"producer_001 proposes PPA {ppa.hex()}: {pct(share)}% of device "
        f"{device.hex()[:16]}..'s production from {start} ({when(start)})"
    )
    demo.send(propose, "PPA proposal")
    accept = build_ppa_accept(
        demo.consumer, chain_id=demo.chain_id, nonce=demo.nonce(demo.consumer), ppa_id=ppa
    )
    print("consumer_001 accepts it (escrowing the first day's expected cost)")
    demo.send(accept, "PPA acceptance")
    fund = build_ppa_fund(
        demo.consumer,
        chain_id=demo.chain_id,
        nonce=demo.nonce(demo.consumer),
        ppa_id=ppa,
        amount=PPA_FUND,
    )
    print(f"consumer_001 funds it with {format_money(PPA_FUND)}")
    demo.send(fund, "PPA funding")
    p = demo.rpc.call("ppa.get", {"id": ppa.hex()})
    if p["status"] != "active":
        raise DemoFailed(f"PPA {ppa.hex()} is {p['status']} after acceptance, expected active")
    print(f"  escrow {format_money(p['escrow'])}")

    # The first interval of the term that takes a reading now (the chain may
    # have moved past the start's reading window while the PPA was agreed).
    cp = demo.rpc.call("cert.params")
    interval = start
    if start + size + int(cp["reading_window"]) < int(cp["now"]) + 30:
        interval = free_interval(demo, device)  # later, so in the term too
    interval = wait_interval_end(demo, interval, size)
    print(
        f"the meter reports {format_kwh(produced)} kWh produced in interval {interval} "
        f"({when(interval)}): the PPA takes {pct(share)}%"
    )
    report = build_meter_report(
        demo.producer,
        meter,
        chain_id=demo.chain_id,
        nonce=demo.nonce(demo.producer),
        device_id=device,
        interval_start=interval,
        produced_wh=produced,
        consumed_wh=0,
    )
    st = demo.send(report, "the PPA's meter reading")
    for line in ppa_event_lines(st):
        print(line)
    demo.confirmed_everywhere(report.txid.hex())
    seen = demo.same_everywhere(
        {
            "ppa": ("ppa.get", {"id": ppa.hex()}),
            "listed": ("ppa.list", {"party": demo.consumer.address.hex()}),
            "certs": (
                "cert.list",
                {
                    "owner": demo.consumer.address.hex(),
                    "device": device.hex(),
                    "start": interval,
                    "end": interval + size,
                },
            ),
        }
    )
    p = seen["ppa"]
    got = (p["delivered_wh"], p["total_wh"], p["progress_bps"], p["paid"], p["status"])
    want = (PPA_DELIVER_WH, PPA_TOTAL_WH, 1000, PPA_DELIVER_WH * PPA_PRICE // 1000, "active")
    if got != want:
        raise DemoFailed(f"ppa.get: expected {want}, found {got}")
    if not 0 < p["days_remaining"] <= PPA_DAYS:
        raise DemoFailed(f"ppa.get: {p['days_remaining']} days remaining of {PPA_DAYS}")
    if ppa.hex() not in [x["id"] for x in seen["listed"]]:
        raise DemoFailed("ppa.list does not list the PPA for consumer_001")
    moved = sum(c["wh"] for c in seen["certs"])
    if moved != PPA_DELIVER_WH:
        raise DemoFailed(
            f"consumer_001 holds {format_kwh(moved)} kWh of the interval's certificates, "
            f"expected {format_kwh(PPA_DELIVER_WH)}"
        )
    demo.ppa_cert = seen["certs"][0]["id"]
    demo.ppa_interval = interval
    names = ", ".join(demo.clients)
    print(
        f"\nfetched from every node ({names}): the same PPA, "
        f"and {format_kwh(moved)} kWh of the reading's solar certificates now consumer_001's"
    )
    shown = subprocess.run(
        [sys.executable, "-m", "powernode.cli", "ppa", "show", ppa.hex(),
         "--datadir", str(demo.dir / demo.entry)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if shown.returncode != 0:
        raise DemoFailed(f"powernode ppa show: {shown.stderr.strip()}")
    print(f"$ powernode ppa show {ppa.hex()[:16]}..\n{indent(shown.stdout.rstrip())}")


def open_interval(demo: Demo, device: bytes) -> int:
    """An interval ``device`` has no reading for that will take one for a
    while yet: the latest ended one whose reading window stays open two more
    minutes, else the current one (not ended: its reading comes later)."""
    cp = demo.rpc.call("cert.params")
    size, window, now = int(cp["interval_seconds"]), int(cp["reading_window"]), int(cp["now"])
    taken = {r["interval"] for r in demo.rpc.call("meter.readings", {"device": device.hex()})}
    interval = now // size * size - size
    while interval + size + window >= now + 120:
        if interval not in taken:
            return interval
        interval -= size
    return now // size * size


def free_interval(demo: Demo, device: bytes) -> int:
    """The latest metering interval that has ended by the chain's clock, has
    no reading of ``device`` yet and will still take one for a minute (its
    reading window); else the current interval, once it has ended."""
    cp = demo.rpc.call("cert.params")
    size, window, now = int(cp["interval_seconds"]), int(cp["reading_window"]), int(cp["now"])
    taken = {r["interval"] for r in demo.rpc.call("meter.readings", {"device": device.hex()})}
    interval = now // size * size - size
    while interval + size + window >= now + 60:
        if interval not in taken:
            return interval
        interval -= size
    # None: the current interval, once it has ended.
    return wait_interval_end(demo, now // size * size, size)


def wait_interval_end(demo: Demo, interval: int, size: int) -> int:
    """``interval`` once the chain's clock has passed its end (a reading is
    taken only for an ended interval)."""
    deadline = time.monotonic() + demo.timeout + size
    cp = demo.rpc.call("cert.params")
    if cp["now"] < interval + size:
        print(f"  waiting for interval {interval} to end ({when(interval + size)})")
    while cp["now"] < interval + size:
        if time.monotonic() > deadline:
            raise DemoFailed(
                f"the chain's clock did not reach {when(interval + size)} (is the testnet mining?)"
            )
        time.sleep(0.5)
        cp = demo.rpc.call("cert.params")
    return interval


def ppa_event_lines(status: dict[str, Any]) -> list[str]:
    """The reading's receipt events: the certificate issued, the PPA delivery."""
    out = []
    for e in status.get("receipt", {}).get("events", []):
        kind = e.get("event", "")
        if kind == "cert.issued":
            out.append(f"  certificate {e['cert']} issued: {format_kwh(e['wh'])} kWh")
        elif kind.startswith("ppa."):
            rest = "  ".join(
                f"{k} {format_kwh(v) + ' kWh' if k.endswith('wh') else format_money(v) if k in ('paid', 'owed') else v}"
                for k, v in e.items()
                if k not in ("event", "ppa")
            )
            out.append(f"  {kind}  {rest}")
    return out


def pct(bps: int) -> str:
    return f"{bps // 100}.{bps % 100 // 10}"


def contracts_part(demo: Demo) -> None:
    """The README's two templates. A demand-response reward: the grid
    operator (the authority) pays consumer_001 5.00 if its meter reports
    consumption in an interval and at most a bound; consumer_001's meter
    reports, consumer_001 executes it and is paid. A green premium:
    consumer_001 pays producer_001 2.00 once a certificate of producer_001's
    (the PPA delivered it to consumer_001) is retired for consumer_001;
    consumer_001 retires it, producer_001 executes and is paid."""
    print("\ndeclarative contracts: the README's two templates")
    auth_name, auth = demo.authority()
    cp = demo.rpc.call("cert.params")
    size = int(cp["interval_seconds"])
    cap = CONSUMER_W * size // 3600
    consumed, bound = cap * 6 // 10 // 1000 * 1000, cap * 8 // 10 // 1000 * 1000
    meter = KeyPair.generate()
    reg = build_device_register(
        demo.consumer,
        chain_id=demo.chain_id,
        nonce=demo.nonce(demo.consumer),
        kind="consumption",
        source="none",
        capacity_w=CONSUMER_W,
        location="Shanghai",
        carbon_intensity=0,
        meter_pubkey=meter.pubkey,
    )
    device = reg.txid
    write_key(demo.dir / "keys" / f"meter-{device.hex()[:16]}.key", meter)
    print(f"consumer_001 registers its meter {device.hex()}: consumption, 500 kW, Shanghai")
    demo.send(reg, "consumption meter registration")
    print(f"authority {auth_name} approves it")
    demo.send(
        build_device_approve(
            auth, chain_id=demo.chain_id, nonce=demo.nonce(auth), device_id=device
        ),
        "consumption meter approval",
    )
    interval = open_interval(demo, device)
    terms = [
        ["consumed_at_least", device, interval, interval + size, 1],
        ["consumed_at_most", device, interval, interval + size, bound],
    ]
    dr = build_contract_create(
        auth,
        chain_id=demo.chain_id,
        nonce=demo.nonce(auth),
        parties=[auth.address, demo.consumer.address],
        escrow=DR_REWARD,
        expiry=interval + 86_400,
        conditions=terms,
        actions=[["pay", demo.consumer.address, DR_REWARD]],
        fee=contract_fee(3),
    )
    print(
        f"demand response: {auth_name} (grid operator) escrows {format_money(DR_REWARD)} in "
        f"contract {dr.txid.hex()}: paid to consumer_001 if its meter reports at most "
        f"{format_kwh(bound)} kWh in interval {interval} ({when(interval)})"
    )
    demo.send(dr, "demand-response contract")
    wait_interval_end(demo, interval, size)
    print(f"consumer_001's meter reports {format_kwh(consumed)} kWh consumed")
    demo.send(
        build_meter_report(
            demo.consumer,
            meter,
            chain_id=demo.chain_id,
            nonce=demo.nonce(demo.consumer),
            device_id=device,
            interval_start=interval,
            produced_wh=0,
            consumed_wh=consumed,
        ),
        "consumption reading",
    )
    print("consumer_001 executes the contract")
    demo.send(execute(demo, demo.consumer, dr.txid, 3), "demand-response execution")

    cert = bytes.fromhex(demo.ppa_cert)
    gp = build_contract_create(
        demo.consumer,
        chain_id=demo.chain_id,
        nonce=demo.nonce(demo.consumer),
        parties=[demo.consumer.address, demo.producer.address],
        escrow=GREEN_PREMIUM,
        expiry=int(cp["now"]) + 86_400,
        conditions=[["cert_retired_for", cert, "consumer_001"]],
        actions=[["pay", demo.producer.address, GREEN_PREMIUM]],
        fee=contract_fee(2),
    )
    print(
        f"green premium: consumer_001 escrows {format_money(GREEN_PREMIUM)} in contract "
        f"{gp.txid.hex()}: paid to producer_001 once certificate {cert.hex()[:16]}.. "
        "(the PPA's delivery) is retired for consumer_001"
    )
    demo.send(gp, "green-premium contract")
    held = demo.rpc.call("cert.get", {"cert": cert.hex()})
    retire = build_cert_retire(
        demo.consumer,
        chain_id=demo.chain_id,
        nonce=demo.nonce(demo.consumer),
        cert_id=cert,
        wh=held["remaining_wh"],
        beneficiary="consumer_001",
        purpose="PPA contract_001",
        period_start=demo.ppa_interval,
        period_end=demo.ppa_interval + size,
    )
    print(f"consumer_001 retires it ({format_kwh(held['remaining_wh'])} kWh) for consumer_001")
    demo.send(retire, "certificate retirement")
    print("producer_001 executes the contract")
    last = execute(demo, demo.producer, gp.txid, 2)
    demo.send(last, "green-premium execution")
    demo.confirmed_everywhere(last.txid.hex())
    seen = demo.same_everywhere(
        {
            "dr": ("contract.get", {"id": dr.txid.hex()}),
            "gp": ("contract.get", {"id": gp.txid.hex()}),
            "listed": ("contract.list", {"party": demo.consumer.address.hex()}),
        }
    )
    for name, c in (("demand response", seen["dr"]), ("green premium", seen["gp"])):
        if c["status"] != "executed":
            raise DemoFailed(f"the {name} contract is {c['status']}, expected executed")
    listed = {c["id"] for c in seen["listed"]}
    if not {dr.txid.hex(), gp.txid.hex()} <= listed:
        raise DemoFailed("contract.list does not list both contracts for consumer_001")
    names = ", ".join(demo.clients)
    print(f"\nfetched from every node ({names}): the same two contracts, both executed")
    print(
        f"demand response: consumer_001 paid {format_money(DR_REWARD)}; green premium: "
        f"producer_001 paid {format_money(GREEN_PREMIUM)}"
    )


def contract_fee(terms: int) -> int:
    return 1_000 + TERM_FEE * terms


def execute(demo: Demo, key: KeyPair, contract: bytes, terms: int) -> Transaction:
    return build_contract_execute(
        key,
        chain_id=demo.chain_id,
        nonce=demo.nonce(key),
        contract_id=contract,
        fee=contract_fee(terms),
    )


def indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dir", type=Path, default=Path("testnet/local"))
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per step")
    ap.add_argument(
        "--no-settlement", action="store_true", help="stop before the trade's settlement"
    )
    a = ap.parse_args()
    if not (a.dir / "testnet.json").exists():
        print(f"demo: no testnet in {a.dir} (start one: scripts/testnet.py up)", file=sys.stderr)
        return 1
    demo: Demo | None = None
    try:
        demo = Demo(a.dir, a.timeout, settle=not a.no_settlement)
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
