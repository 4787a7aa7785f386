"""Every read method's result matches the shape ``rpc.discover`` declares
for it (issue 13: every method "with params, result shape and error codes").

One in-process dev node (P2P on, no peers) holds data of every engine:
participants, orders (one partly filled, one cancelled, one resting) and a
trade, a producing and a
consuming device with readings, certificates split by a PPA delivery and a
transfer, one retired with a claim, a device-bound PPA that delivered and
whose seller asked to terminate it, a PPA without a device with a claimed
delivery, a contract one party approved, a pending tx and a replaced one.
Every public method (``x-public``) and the non-public reads are then called
with params that find something, and each result is checked against its
method's declared schema, in the subset of JSON Schema that
``powernode/node/rpc_spec.py`` generates: every key an object returns must
be declared, with the declared type (or null where declared nullable), and
every element of a list must match its ``items``. A nested list or object
whose shape is declared must have been seen with content at least once, so
its declaration is checked too (the few that cannot be reached here are
named, with why).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from powernode.client import (
    RpcError,
    build_cancel,
    build_cert_issue,
    build_cert_retire,
    build_cert_transfer,
    build_contract_create,
    build_contract_id_tx,
    build_device_approve,
    build_device_register,
    build_meter_report,
    build_order,
    build_ppa_accept,
    build_ppa_deliver,
    build_ppa_fund,
    build_ppa_propose,
    build_ppa_terminate,
    build_register,
    build_transfer,
    cert_id_of,
    child_cert_id,
    next_slot,
)
from powernode.core.crypto import KeyPair
from powernode.core.tx import Transaction
from powernode.node.node import method_specs
from powernode.node.rpc_spec import big_ints_as_strings
from tests.integration.conftest import DevNode, authority_node

INTERVAL = 900
DAY = 86_400

# Methods that are not reads, or whose result the test cannot check here:
# they stop or change the node, or need a WebSocket. Their results are still
# checked whenever the test calls them (tx.submit, dev.mine, peer.ban).
NOT_READS = {
    "node.stop",
    "node.backup",
    "miner.start",
    "miner.stop",
    "dev.mine",
    "block.submit",
    "tx.submit",
    "peer.add",
    "peer.remove",
    "peer.ban",
    "peer.unban",
    "subscribe",
    "unsubscribe",
}

# Declared nested shapes this node cannot show with content, and why.
UNREACHED = {
    # A settlement needs its slot over and its reading window passed by the
    # chain's clock: minutes of real time (tests/e2e covers settlements).
    "market.settlement.settlements[]",
    # Only a damaged state has problems.
    "cert.verify.problems[]",
    # A connection refused at accept: a peer of its own (test_p2p_limits).
    "peer.stats.refused{}",
    # A tx mined as failed (one that passed admission and failed in its
    # block): every tx here succeeds.
    "tx.get.receipt.error",
}

# Lists and objects declared without their content's shape, on purpose:
# receipt events differ by event, a contract's terms are [tag, args...] of
# mixed types, and a JSON Schema is open by nature.
OPEN_BY_DESIGN = {
    "tx.get.receipt.events[]",
    "contract.get.conditions[]",
    "contract.get.actions[]",
    "contract.list[].conditions[]",
    "contract.list[].actions[]",
    "rpc.discover.methods[].params[].schema",
    "rpc.discover.methods[].result.schema",
}

# The JSON Schema keywords rpc_spec.py generates; a keyword outside this set
# fails the test, so the checker never skips what it does not understand.
KNOWN_KEYWORDS = {
    "type",
    "oneOf",
    "properties",
    "additionalProperties",
    "items",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "maxLength",
}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "integer":
        return type(value) is int
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "null":
        return value is None
    raise AssertionError(f"a type the checker does not know: {kind!r}")


class Checker:
    """Checks values against schemas; remembers which declared nested
    shapes (an object's properties, a list's items) it saw with content."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def problems(self, value: Any, schema: dict[str, Any], path: str) -> list[str]:
        unknown = set(schema) - KNOWN_KEYWORDS
        assert not unknown, f"{path}: schema keywords the checker does not know: {unknown}"
        if "oneOf" in schema:
            # The first alternative that fits (its nested shapes counted seen).
            tried = []
            for alt in schema["oneOf"]:
                found = self.problems(value, alt, path)
                if not found:
                    return []
                tried.append(found)
            return [f"{path}: {value!r:.80} matches no alternative: {tried}"]
        kind = schema.get("type")
        if kind is not None and not _type_ok(value, kind):
            return [f"{path}: {value!r:.80} is not {kind}"]
        out: list[str] = []
        if "enum" in schema and value not in schema["enum"]:
            out.append(f"{path}: {value!r} not in {schema['enum']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r:.80} does not match {schema['pattern']}")
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: {value} > {schema['maximum']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"{path}: longer than {schema['maxLength']}")
        if "properties" in schema:
            props = schema["properties"]
            self.seen.add(path)
            for key, v in value.items():
                if key not in props:
                    out.append(f"{path}: key {key!r} is not declared")
                else:
                    out += self.problems(v, props[key], f"{path}.{key}")
        if "additionalProperties" in schema and value:
            self.seen.add(path + "{}")
            for v in value.values():
                out += self.problems(v, schema["additionalProperties"], f"{path}{{}}")
        if "items" in schema and value:
            self.seen.add(path + "[]")
            for v in value:
                out += self.problems(v, schema["items"], f"{path}[]")
        return out


def declared_paths(schema: dict[str, Any], path: str) -> set[str]:
    """The paths of the nested shapes ``schema`` declares, named as
    ``Checker.problems`` names what it saw."""
    out: set[str] = set()
    for alt in schema.get("oneOf", []):
        out |= declared_paths(alt, path)
    if "properties" in schema:
        out.add(path)
        for key, sub in schema["properties"].items():
            out |= declared_paths(sub, f"{path}.{key}")
    if "additionalProperties" in schema:
        out |= {path + "{}"} | declared_paths(schema["additionalProperties"], path + "{}")
    if "items" in schema:
        out |= {path + "[]"} | declared_paths(schema["items"], path + "[]")
    return out


def open_shapes(schema: dict[str, Any], path: str) -> set[str]:
    """The paths of lists declared without ``items`` and objects declared
    without ``properties`` (or ``additionalProperties``) in ``schema``."""
    out: set[str] = set()
    for alt in schema.get("oneOf", []):
        out |= open_shapes(alt, path)
    if schema.get("type") == "array" and "items" not in schema:
        out.add(path)
    if schema.get("type") == "object" and not {"properties", "additionalProperties"} & set(schema):
        out.add(path)
    for key, sub in schema.get("properties", {}).items():
        out |= open_shapes(sub, f"{path}.{key}")
    if "additionalProperties" in schema:
        out |= open_shapes(schema["additionalProperties"], path + "{}")
    if "items" in schema:
        out |= open_shapes(schema["items"], path + "[]")
    return out


@pytest.fixture
async def shapes_node(tmp_path: Path, users: list[KeyPair]) -> AsyncIterator[DevNode]:
    """A dev node (miner off, P2P listening without peers): users[3] is the
    only certificate authority; markets trade around the clock."""
    async with authority_node(tmp_path, users, interval_seconds=INTERVAL, p2p=True) as dev:
        yield dev


class Shapes:
    """Calls methods and checks every result against its declared schema."""

    def __init__(self, dev: DevNode, doc: dict[str, Any]) -> None:
        self.dev = dev
        self.schemas = {m["name"]: m["result"]["schema"] for m in doc["methods"]}
        self.public = {m["name"] for m in doc["methods"] if m["x-public"]}
        self.checker = Checker()
        self.problems: list[str] = []
        self.called: set[str] = set()  # methods with a non-empty result checked
        self.nonces: dict[bytes, int] = {}

    async def call(self, method: str, params: dict[str, Any] | list[Any] | None = None) -> Any:
        result = await self.dev.rpc.call(method, params)
        self.problems += self.checker.problems(result, self.schemas[method], method)
        if result not in ([], {}, None):
            self.called.add(method)
        return result

    def kw(self, key: KeyPair) -> dict[str, Any]:
        n = self.nonces.get(key.address, 0)
        self.nonces[key.address] = n + 1
        return {"chain_id": self.dev.chain_id, "nonce": n}

    async def submit(self, tx: Transaction) -> None:
        assert await self.call("tx.submit", {"raw": tx.raw.hex()}) == tx.txid.hex()

    async def mine(self, txs: list[Transaction]) -> None:
        """Submit, mine one block; every tx must be confirmed and ok."""
        for tx in txs:
            await self.submit(tx)
        await self.call("dev.mine", {"blocks": 1})
        for tx in txs:
            st = await self.call("tx.get", {"id": tx.txid.hex()})
            assert st["status"] == "confirmed" and st["receipt"]["status"] == "ok", st


async def test_every_read_result_matches_its_declared_shape(shapes_node: DevNode) -> None:
    dev = shapes_node
    s = Shapes(dev, await dev.rpc.call("rpc.discover"))
    producer, consumer, outsider, authority = dev.users
    meter, consumer_meter = KeyPair.generate(), KeyPair.generate()
    kw = s.kw

    # Participants, a solar device and a consumer's meter, approved.
    await s.mine(
        [
            build_register(producer, **kw(producer), role="producer", location="Beijing",
                           capacity_w=1_000_000),
            build_register(consumer, **kw(consumer), role="consumer", location="Shanghai",
                           capacity_w=500_000),
        ]
    )  # fmt: skip
    solar = build_device_register(
        producer, **kw(producer), kind="generation", source="solar", capacity_w=1_000_000,
        location="Beijing", carbon_intensity=50, meter_pubkey=meter.pubkey,
    )  # fmt: skip
    load = build_device_register(
        consumer, **kw(consumer), kind="consumption", source="none", capacity_w=500_000,
        location="Shanghai", carbon_intensity=0, meter_pubkey=consumer_meter.pubkey,
    )  # fmt: skip
    await s.mine([solar, load])
    device, load_device = solar.txid, load.txid
    await s.mine(
        [
            build_device_approve(authority, **kw(authority), device_id=d)
            for d in (device, load_device)
        ]
    )
    now = (await s.call("cert.params"))["now"]
    interval = now // INTERVAL * INTERVAL - INTERVAL  # the latest interval ended

    # A PPA bound to the solar device (half its production) and one without
    # a device; a sell order the buy order below fills in part; an order
    # that is cancelled.
    slot = next_slot(now, slot_seconds=900, gate_closure_seconds=300)
    ppa = build_ppa_propose(
        producer, **kw(producer), buyer=consumer.address, device_id=device, share_bps=5_000,
        total_wh=1_000_000, price=500_000, start=interval, duration_days=30,
        period_seconds=DAY, accept_deadline=now + 3600,
    )  # fmt: skip
    manual = build_ppa_propose(
        producer, **kw(producer), buyer=consumer.address, device_id=None, share_bps=0,
        total_wh=10_000, price=400_000, start=interval, duration_days=1, period_seconds=DAY,
        accept_deadline=now + 3600,
    )  # fmt: skip
    sell = build_order(
        producer, **kw(producer), product="spot", side="sell", slot=slot, energy_wh=100_000,
        price=500_000, source="solar",
    )  # fmt: skip
    gone = build_order(
        consumer, **kw(consumer), product="spot", side="buy", slot=slot, energy_wh=10_000,
        price=100_000, source="any",
    )  # fmt: skip
    rest = build_order(
        consumer, **kw(consumer), product="spot", side="buy", slot=slot, energy_wh=10_000,
        price=200_000, source="any",
    )  # fmt: skip
    await s.mine([ppa, manual, sell, gone, rest])
    buy = build_order(
        consumer, **kw(consumer), product="spot", side="buy", slot=slot, energy_wh=50_000,
        price=600_000, source="any",
    )  # fmt: skip
    await s.mine(
        [
            build_ppa_accept(consumer, **kw(consumer), ppa_id=ppa.txid),
            build_ppa_accept(consumer, **kw(consumer), ppa_id=manual.txid),
            buy,
            build_cancel(consumer, **kw(consumer), order_id=gone.txid),
        ]
    )
    await s.mine([build_ppa_fund(consumer, **kw(consumer), ppa_id=ppa.txid, amount=50_000_000)])

    # Readings: the PPA takes half the production as a certificate of its
    # own; the consumer's meter reads consumption. A contract pays the
    # producer once it approves.
    contract = build_contract_create(
        consumer, **kw(consumer), parties=[consumer.address, producer.address],
        escrow=1_000_000, expiry=now + DAY, conditions=[["approved_by", producer.address]],
        actions=[["pay", producer.address, 1_000_000]], fee=10_000,
    )  # fmt: skip
    await s.mine(
        [
            build_meter_report(
                producer, meter, **kw(producer), device_id=device, interval_start=interval,
                produced_wh=200_000, consumed_wh=0,
            ),
            build_meter_report(
                outsider, consumer_meter, **kw(outsider), device_id=load_device,
                interval_start=interval, produced_wh=0, consumed_wh=60_000,
            ),
            build_ppa_deliver(
                producer, **kw(producer), ppa_id=manual.txid, wh=4_000, interval_start=interval
            ),
            contract,
            # An authority's certificate of the interval before: a lineage
            # without a PPA's split, which cert.proof can prove.
            build_cert_issue(
                authority, **kw(authority), device_id=device, interval_start=interval - INTERVAL,
                wh=1_000,
            ),
        ]
    )  # fmt: skip

    # A transfer splits the root; the consumer retires the split with a
    # claim; the producer approves the contract and asks to end the PPA.
    root = cert_id_of(device, interval)
    transfer = build_cert_transfer(
        producer, **kw(producer), cert_id=root, to=consumer.address, wh=20_000
    )
    await s.mine(
        [
            transfer,
            build_contract_id_tx(
                producer, **kw(producer), tx_type="contract.approve", contract_id=contract.txid
            ),
            build_ppa_terminate(producer, **kw(producer), ppa_id=ppa.txid),
        ]
    )
    child = child_cert_id(root, transfer.txid)
    await s.mine(
        [
            build_cert_retire(
                consumer, **kw(consumer), cert_id=child, wh=20_000, beneficiary="consumer_001",
                purpose="Shanghai", period_start=interval, period_end=interval + INTERVAL,
            )
        ]
    )  # fmt: skip

    # A tx left pending, and one replaced by a tx paying more (dropped).
    replaced = build_transfer(outsider, **kw(outsider), to=producer.address, amount=1, fee=1000)
    s.nonces[outsider.address] -= 1
    pending = build_transfer(outsider, **kw(outsider), to=producer.address, amount=1, fee=5000)
    await s.submit(replaced)
    await s.submit(pending)
    dropped = await s.call("tx.get", {"id": replaced.txid.hex()})
    assert dropped["status"] == "dropped" and dropped["error"]["code"] == "replaced", dropped
    assert (await s.call("tx.get", [pending.txid.hex()]))["status"] == "pending"

    # Peers: P2P is on without peers; a ban gives peer.list a row.
    await s.call("peer.ban", {"address": "127.0.0.9:1", "seconds": 600})

    # The reads.
    height = (await s.call("node.info"))["height"]
    await s.call("node.loglevel")
    await s.call("rpc.discover")
    await s.call("mempool.info")
    await s.call("mempool.txs")
    await s.call("peer.list")
    await s.call("peer.stats")
    await s.call("chain.blocks", {"limit": 100})
    for h in range(height + 1):
        block = await s.call("chain.block", {"height": h, "verbose": True, "raw": True})
        await s.call("chain.block", {"hash": block["hash"]})
    await s.call("tx.get", {"id": buy.txid.hex()})
    for who in dev.users:
        await s.call("account.get", {"address": who.address.hex()})
    for q in [
        str(height),
        producer.address.hex(),
        sell.txid.hex(),
        root.hex(),
        device.hex(),
        ppa.txid.hex(),
        contract.txid.hex(),
        "nothing",
    ]:
        await s.call("search", {"q": q})

    await s.call("market.params")
    await s.call("market.params", {"product": "spot"})
    await s.call("market.book", {"product": "spot", "slot": slot})
    await s.call("market.stats")
    await s.call("market.stats", {"product": "spot", "slot": slot})
    await s.call("market.trades")
    await s.call("market.slots", {"product": "spot"})
    await s.call("market.settlement")
    for who in (producer, consumer):
        await s.call("market.orders", {"participant": who.address.hex()})
        await s.call("market.participant", {"address": who.address.hex()})
        await s.call("market.position", {"participant": who.address.hex()})
    for order in (sell, buy, gone, rest):
        await s.call("market.order", {"id": order.txid.hex()})

    await s.call("device.list")
    for d in (device, load_device):
        await s.call("device.get", {"device": d.hex()})
        await s.call("meter.readings", {"device": d.hex()})
    certs = await s.call("cert.list")
    # The reading's root, the PPA's share, the retired split, the issued one.
    assert len(certs) == 4, certs
    for c in certs:
        for method in ("cert.get", "cert.trace", "cert.tree", "cert.verify"):
            await s.call(method, {"cert": c["id"]})
        try:
            await s.call("cert.proof", {"cert": c["id"]})
        except RpcError as exc:  # a lineage through a PPA's split, by design
            assert exc.reason == "proof_bad_lineage", exc
    cfe = await s.call(
        "cert.cfe",
        {"participant": consumer.address.hex(), "start": interval, "end": interval + INTERVAL},
    )
    assert cfe["matched_wh"] == 20_000, cfe

    for p in (ppa, manual):
        got = await s.call("ppa.get", {"id": p.txid.hex()})
        assert got["deliveries"], got
    assert (await s.call("ppa.get", [ppa.txid.hex()]))["terminate_requested_by"]
    await s.call("ppa.list")
    c = await s.call("contract.get", {"id": contract.txid.hex()})
    assert c["approvals"], c
    await s.call("contract.list")

    assert not s.problems, "\n".join(s.problems)
    reads = set(s.schemas) - NOT_READS
    # A list's items and an object's fields are declared, where fixed.
    loose = set().union(*(open_shapes(s.schemas[m], m) for m in reads)) - OPEN_BY_DESIGN
    assert not loose, f"declared without their content's shape: {sorted(loose)}"
    # A public method is a read (the WebSocket's own two aside).
    assert s.public & NOT_READS <= {"subscribe", "unsubscribe"}, s.public & NOT_READS
    assert reads <= s.called, f"reads not called with a non-empty result: {reads - s.called}"
    declared = set().union(*(declared_paths(s.schemas[m], m) for m in reads))
    unseen = declared - s.checker.seen - UNREACHED
    assert not unseen, f"declared shapes never seen with content: {sorted(unseen)}"


def _field_schema(schema: dict[str, Any], path: list[str]) -> dict[str, Any]:
    """The schema of the field at ``path`` ("[]": a list's items), a
    nullable one's non-null alternative."""
    for step in path:
        if "oneOf" in schema and {"type": "null"} in schema["oneOf"]:
            schema = next(a for a in schema["oneOf"] if a != {"type": "null"})
        schema = schema["items"] if step == "[]" else schema["properties"][step]
    return schema


@pytest.mark.parametrize(
    ("method", "path", "value"),
    [
        # times a tx may set to any u64 (or a param to 2^63 - 1): past
        # 2^53 - 1 every answer carries them as decimal strings
        ("cert.verify", ["claim", "period_end"], 2**64 - 1),
        ("cert.list", ["[]", "claim", "period_start"], 2**64 - 2),
        ("cert.cfe", ["end"], 2**63 - 1),
        ("market.orders", ["[]", "expiry"], 2**63 - 60),
        ("ppa.list", ["[]", "start"], 2**64 - 1),
        ("ppa.get", ["accept_deadline"], 2**64 - 1),
        ("contract.get", ["expiry"], 2**64 - 1),
    ],
)
def test_a_time_past_2_53_is_declared_as_the_string_it_becomes(
    method: str, path: list[str], value: int
) -> None:
    result = method_specs()[method].result
    assert result is not None
    schema = _field_schema(dict(result), path)
    on_the_wire = big_ints_as_strings(value)
    assert on_the_wire == str(value)
    assert Checker().problems(on_the_wire, schema, method) == []
