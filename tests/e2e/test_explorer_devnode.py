"""The explorer of a node made by ``init --dev`` (P2P off, the explorer on),
in a real headless Chromium: its pages load as they do on a testnet. The
peers page says P2P is off rather than failing, and a device's page asks
for its latest readings only (a meter's whole history would outgrow the
bound of an answer without auth)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from powernode.client import endpoint_from_datadir
from tests.e2e.test_cert_cli import mining_node, pj
from tests.e2e.test_cli import pn
from tests.harness.browser import Browser, ensure_chromium
from tests.harness.explorer import Explorer, PageError

pytestmark = pytest.mark.e2e
__all__ = ["mining_node"]  # the fixture, used by name


def test_a_dev_nodes_explorer_shows_peers_off_and_a_devices_latest_readings(
    mining_node: Path, tmp_path: Path
) -> None:
    ensure_chromium()
    d = mining_node
    dd = ("--datadir", str(d))
    wait = ("--wait", "30")
    pj(
        "register",
        "--role",
        "producer",
        "--location",
        "Beijing",
        "--capacity-kw",
        "1000",
        *dd,
        *wait,
    )
    meter_key = str(tmp_path / "meter.key")
    pn("keygen", "--out", meter_key)
    device = pj(
        "device", "register", "--kind", "generation", "--source", "solar",
        "--capacity-kw", "1000", "--location", "Beijing", "--carbon-intensity", "50",
        "--meter-key", meter_key, *dd, *wait,
    )["device"]  # fmt: skip
    pj("device", "approve", device, *dd, *wait)
    reading = pj(
        "meter", "report", "--device", device, "--meter-key", meter_key, "--interval", "last",
        "--produced", "2", *dd, *wait,
    )  # fmt: skip
    assert reading["receipt"]["status"] == "ok", reading
    with Browser() as b:
        base = endpoint_from_datadir(d).url.removesuffix("rpc")  # http://127.0.0.1:PORT/
        x = Explorer(b, base, tmp_path / "shots")
        x.open()
        x.show("peers", "peers")
        assert x.field("p2p").value == "off"
        x.show("devices", "devices")
        assert [r.id for r in x.table("devices")] == [device]
        x.show(f"device/{device}", "device")
        rows = x.table("readings")
        assert len(rows) == 1 and rows[0].value("produced_wh") == "2000"
        # One reading: the latest 1,000 intervals are all it has.
        assert not b.evaluate("!!document.querySelector('#main [data-note=readings]')")
        # A block's "previous" goes to its parent by hash (a block off the
        # main chain has a parent the main chain's block at that height is
        # not); an error page's title says so, not the last page's.
        two = json.loads(pn("rpc", "chain.block", "height=2", *dd).stdout)
        x.show("block/2", "block")
        prev = b.evaluate("document.querySelector('#main .pager a').getAttribute('href')")
        assert prev == f"#/block/{two['prev_hash']}", prev
        with pytest.raises(PageError):
            x.show("block/999999999", "block")
        assert b.evaluate("document.title") == "Could not load this page · powernode explorer"
        # A slot that is not a number is no slot (not a missing one), and an
        # empty search says what to type rather than "no page".
        with pytest.raises(PageError, match="a slot is its start time in unix seconds"):
            x.show("market/spot/abc", "market-slot")
        x.show("search/", "search")
        assert "Type a block height or hash" in x.field("nothing").text
