"""The explorer of a node made by ``init --dev`` (P2P off, the explorer on),
in a real headless Chromium: its pages load as they do on a testnet. The
peers page says P2P is off rather than failing, and a device's page asks
for its latest readings only (a meter's whole history would outgrow the
bound of an answer without auth)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from powernode.devnet.datadir import free_port
from powernode.devnet.process import ProcessNode
from tests.e2e.test_cli import pn
from tests.harness.browser import Browser, ensure_chromium
from tests.harness.explorer import Explorer

pytestmark = pytest.mark.e2e


def pj(*args: str) -> Any:
    return json.loads(pn(*args, "--json").stdout)


@pytest.fixture
def dev_node(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    d = tmp_path / "node"
    port = free_port()
    pn("init", "--datadir", str(d), "--dev", "--rpc-port", str(port))
    node = ProcessNode(d, extra_args=("--mine",))
    node.start()
    try:
        yield d, port
    finally:
        node.stop()


def test_a_dev_nodes_explorer_shows_peers_off_and_a_devices_latest_readings(
    dev_node: tuple[Path, int], tmp_path: Path
) -> None:
    ensure_chromium()
    d, port = dev_node
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
        x = Explorer(b, f"http://127.0.0.1:{port}/", tmp_path / "shots")
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
