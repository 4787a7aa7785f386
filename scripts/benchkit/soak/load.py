"""The soak's load: a steady stream of transfers plus rounds of every
engine's txs (``powernode.devnet.workload``'s phases, each round with devices
of its own, and an order placed and cancelled), sent to the running nodes in
turn; and the record of every tx sent.

A sender's txs are signed once, in nonce order, and never signed again: a tx
a node lost (killed before it relayed it) is sent again byte for byte, so the
load itself never makes two txs with one sender and nonce, and any tx once
seen confirmed must stay confirmed. Only a tx refused three resends in a row
(say its reading's window closed while it waited) is given up, with the rest
of its sender's unconfirmed txs, and the sender goes on from its chain nonce.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from powernode.client import RpcError, RpcUnavailable
from powernode.core.crypto import KeyPair, sha256
from powernode.core.tx import Transaction
from powernode.devnet import workload
from powernode.devnet.workload import KWH, Devices, Parties, Signer

BENIGN = {"already_known"}  # the node has it: as good as accepted
RESEND_AFTER = 15.0  # s unconfirmed before a tx is sent again
GIVE_UP_AFTER = 3  # refusals of a resend, at least RESEND_AFTER apart
STAGE_TIMEOUT = 240.0  # s a round waits for one phase before it is given up
ORDER_LEAD = 70  # s between a round's orders and their slot's gate
CANCEL_LEAD = 600  # s ahead of the slot the order to cancel rests in
FRESH_READING = 20  # s past an interval's end a round still reports it (its window is 60 s)
CONTRACT_AFTER = 31  # s after the contracts are written their "after" condition holds
CANCEL_PRICE = 10_000  # 0.01 per kWh: nobody sells that low, it rests until cancelled


@dataclass
class Sent:
    tx: Transaction
    first: float  # when first accepted (monotonic s)
    last: float  # when last sent
    refusals: int = 0
    reason: str = ""
    confirmed: str = ""  # the block it was first seen in
    given_up: bool = False


@dataclass
class Round:
    """One pass through every engine's phases."""

    n: int
    parties: Parties
    stage: int = 0
    since: float = 0.0
    waiting: list[str] = field(default_factory=list)  # txids the next stage needs confirmed
    devs: Devices | None = None
    ppas: list[bytes] = field(default_factory=list)
    contracts: list[bytes] = field(default_factory=list)
    slot: int = 0
    agreed: int = 0  # the chain's clock when the contracts were written
    early: int = 0  # the interval metered before the slot
    cancel: list[bytes] = field(default_factory=list)  # orders to cancel


DONE = 100
GIVEN_UP = 101


class Nodes(Protocol):
    """What the load needs of the testnet: which nodes run, and RPC to one."""

    def alive(self) -> list[int]: ...

    def call(self, i: int, method: str, params: dict[str, Any] | None = None) -> Any: ...

    def batch(self, i: int, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]: ...


class Load:
    def __init__(
        self,
        *,
        chain_id: str,
        rng: random.Random,
        parties: Parties,
        payers: list[KeyPair],
        rate: float,
        round_every: float,
        seed: int,
    ) -> None:
        self.w = Signer(chain_id)
        self.rng = rng
        self.parties = parties
        self.payers = payers
        self.everyone = [parties.authority, *parties.producers, *parties.consumers, *payers]
        self.rate = rate
        self.round_every = round_every
        self.seed = seed
        self.sent: dict[str, Sent] = {}
        self.open: dict[bytes, dict[int, Sent]] = {}  # sender -> nonce -> not yet seen confirmed
        self.kinds: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.given_up: list[str] = []
        self.rounds: list[Round] = []
        self.rounds_done = 0
        self.rounds_given_up = 0
        self._next = 0  # node turn
        self._transfer_due = 0.0
        self._round_due = 0.0
        self._last_poll = 0.0
        self._last_resend = 0.0
        self.stopped = False

    # --- sending ------------------------------------------------------------------

    def send(self, txs: list[Transaction], nodes: Nodes, now: float) -> None:
        for tx in txs:
            s = Sent(tx=tx, first=now, last=now)
            self.sent[tx.txid.hex()] = s
            self.open.setdefault(tx.sender_address, {})[tx.nonce] = s
            self.kinds[tx.type] += 1
            self._submit(s, nodes, now)

    def _submit(self, s: Sent, nodes: Nodes, now: float) -> None:
        s.last = now
        alive = nodes.alive()
        if not alive:
            return
        self._next += 1
        i = alive[self._next % len(alive)]
        try:
            nodes.call(i, "tx.submit", {"raw": s.tx.raw.hex()})
            s.refusals, s.reason = 0, ""
        except RpcError as exc:
            if exc.reason in BENIGN:
                return
            s.refusals += 1
            s.reason = exc.reason
            self.refused[exc.reason] += 1
        except (RpcUnavailable, OSError):
            pass  # the node went away (killed): sent again later

    # --- the steady part -----------------------------------------------------------

    def tick(self, nodes: Nodes, now: float, chain_now: Callable[[], int]) -> None:
        """Send what is due (unless ``stopped``): a transfer at ``rate``, a
        new round every ``round_every`` s (once the first round registered
        the participants), each round's next phase once its last one is
        confirmed; poll what is unconfirmed and send it again."""
        if not nodes.alive():
            return
        if not self.stopped:
            self._new_txs(nodes, now, chain_now)
        if now - self._last_poll >= 2.0:
            self._last_poll = now
            self.poll(nodes)
        if now - self._last_resend >= RESEND_AFTER / 2:
            self._last_resend = now
            self.resend(nodes, now)

    def _new_txs(self, nodes: Nodes, now: float, chain_now: Callable[[], int]) -> None:
        if now >= self._transfer_due:
            self._transfer_due = max(self._transfer_due + 1 / self.rate, now - 1)
            payer = self.payers[self.rng.randrange(len(self.payers))]
            to = self.everyone[self.rng.randrange(len(self.everyone))]
            self.w.add(payer, "transfer", [to.address, 1000 + self.rng.randrange(1000)])
            self.send(self.w.take(), nodes, now)
        if now >= self._round_due and (not self.rounds or self.rounds[0].stage >= 2):
            self._round_due = now + self.round_every
            self.rounds.append(self._new_round(len(self.rounds), now))
        for r in self.rounds:
            if r.stage < DONE:
                self._advance(r, nodes, now, chain_now)

    # --- engine rounds ------------------------------------------------------------------

    def _new_round(self, n: int, now: float) -> Round:
        def key(tag: str, i: int) -> KeyPair:
            return KeyPair.from_seed(sha256(b"soak-%d-%s-%d-%d" % (self.seed, tag.encode(), n, i)))

        ps = self.parties
        parties = Parties(
            authority=ps.authority,
            producers=ps.producers,
            consumers=ps.consumers,
            meters=[key("meter", i) for i in range(len(ps.producers))],
            cmeters=[key("cmeter", i) for i in range(len(ps.consumers))],
        )
        return Round(n=n, parties=parties, since=now)

    def _confirmed(self, txids: list[str]) -> bool:
        return all(self.sent[t].confirmed for t in txids)

    def _advance(self, r: Round, nodes: Nodes, now: float, chain_now: Callable[[], int]) -> None:
        if not self._confirmed(r.waiting):
            if now - r.since > STAGE_TIMEOUT or any(self.sent[t].given_up for t in r.waiting):
                r.stage = GIVEN_UP
                self.rounds_given_up += 1
            return
        w, ps = self.w, r.parties
        if r.stage == 0:  # participants (first round only), devices, transfers
            r.devs = workload.register(w, ps, participants=r.n == 0)
        elif r.stage == 1:  # approvals, PPAs, contracts
            assert r.devs is not None
            r.agreed = chain_now()
            r.ppas, r.contracts = workload.agree(w, ps, r.devs, r.agreed)
        elif r.stage == 2:  # PPAs accepted, orders, and one resting order per consumer
            r.slot = workload.next_slot(chain_now(), ORDER_LEAD)
            workload.accept_and_order(w, ps, r.ppas, r.slot)
            for k in ps.consumers:
                tx = w.add(
                    k,
                    "order.place",
                    ["spot", "buy", r.slot + CANCEL_LEAD, KWH, CANCEL_PRICE, "any", 0, "GTC"],
                )
                r.cancel.append(tx.txid)
        elif r.stage == 3:  # the resting orders cancelled; readings of an interval just ended
            interval = chain_now() // 60 * 60 - 60
            if chain_now() - (interval + 60) > FRESH_READING:
                return  # too little of its reading window left: wait for the next one
            assert r.devs is not None
            r.early = interval
            for k, oid in zip(ps.consumers, r.cancel, strict=True):
                w.add(k, "order.cancel", [oid])
            workload.report(w, ps, r.devs, interval, [], ps.consumers[0])
        elif r.stage == 4:  # certificate moves on what they issued; contracts executed
            if chain_now() < r.agreed + CONTRACT_AFTER:
                return
            assert r.devs is not None
            for i, p, k in ps.pairs():
                cert = workload.root_cert_id(r.devs.production[i], r.early)
                w.add(p, "cert.transfer", [cert, k.address, KWH])
                workload.retire(w, p, cert, KWH, f"soak-{r.n}-{i}", r.early)
            for x in r.contracts:
                w.add(ps.consumers[0], "contract.execute", [x], fee=workload.CONTRACT_FEE)
        elif r.stage == 5:  # the orders' slot metered once it has ended
            if chain_now() < r.slot + 60:
                return
            assert r.devs is not None
            workload.report(w, ps, r.devs, r.slot, [], ps.consumers[0])
        elif r.stage == 6:
            self.rounds_done += 1
            r.stage = DONE
            return
        txs = w.take()
        r.waiting = [tx.txid.hex() for tx in txs]
        r.since = now
        self.send(txs, nodes, now)
        r.stage += 1

    # --- tracking ---------------------------------------------------------------------

    def unconfirmed(self) -> list[Sent]:
        return [s for by_nonce in self.open.values() for s in by_nonce.values()]

    def seen_confirmed(self) -> dict[str, Sent]:
        return {t: s for t, s in self.sent.items() if s.confirmed}

    def poll(self, nodes: Nodes) -> None:
        """Ask a node which open txs it holds confirmed; they leave the open set."""
        todo = self.unconfirmed()
        alive = nodes.alive()
        if not todo or not alive:
            return
        self._next += 1
        i = alive[self._next % len(alive)]
        for start in range(0, len(todo), 500):
            part = todo[start : start + 500]
            try:
                got = nodes.batch(i, [("tx.get", {"id": s.tx.txid.hex()}) for s in part])
            except (RpcUnavailable, OSError):
                return
            for s, st in zip(part, got, strict=True):
                if isinstance(st, dict) and st.get("status") == "confirmed":
                    s.confirmed = st["block"]
                    self.open[s.tx.sender_address].pop(s.tx.nonce, None)

    def resend(self, nodes: Nodes, now: float) -> None:
        """Send again what has waited too long, each sender's lowest nonce
        first; give up a sender's open txs once its lowest is refused again
        and again."""
        for sender, by_nonce in list(self.open.items()):
            for nonce in sorted(by_nonce):
                s = by_nonce[nonce]
                if now - s.last < RESEND_AFTER:
                    break
                self._submit(s, nodes, now)
                if s.refusals >= GIVE_UP_AFTER and s.reason != "nonce_too_low":
                    self._give_up(sender, nodes)
                    break
                if s.refusals:
                    break

    def _give_up(self, sender: bytes, nodes: Nodes) -> None:
        alive = nodes.alive()
        try:
            acct = nodes.call(alive[0], "account.get", {"address": sender.hex()})
        except (RpcError, RpcUnavailable, OSError, IndexError):
            return
        by_nonce = self.open[sender]
        for nonce in sorted(by_nonce):
            if nonce >= acct["nonce"]:
                s = by_nonce.pop(nonce)
                s.given_up = True
                self.given_up.append(f"{s.tx.type} nonce {nonce}: {s.reason or 'unconfirmed'}")
        self.w.nonces[sender] = acct["nonce"]
