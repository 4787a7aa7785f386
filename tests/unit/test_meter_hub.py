"""``meter batch``'s grouping: by interval, devices ascending bytewise (the
order the chain requires), at most MAX_BATCH_READINGS per tx."""

from __future__ import annotations

import pytest

from powernode.cli.common import UserError, tx_failure
from powernode.cli.hub import (
    SignedReading,
    batch_summary,
    batches,
    chain_id_arg,
    file_lines,
    summary_text,
)
from powernode.engines.metering.batch import MAX_BATCH_READINGS


def reading(device: int, interval: int, line: int) -> SignedReading:
    return SignedReading(
        device=device.to_bytes(32, "big"),
        interval=interval,
        produced_wh=1,
        consumed_wh=0,
        meter_pubkey=b"\x01" * 32,
        sig=b"\x02" * 64,
        line=line,
    )


def test_batches_group_by_interval_sort_devices_and_cut_at_the_cap() -> None:
    n = MAX_BATCH_READINGS + 5
    rs = [reading(n - i, 1800, i) for i in range(n)] + [reading(7, 900, n)]
    out = batches(rs)
    assert [(interval, len(b)) for interval, b in out] == [
        (900, 1),
        (1800, MAX_BATCH_READINGS),
        (1800, 5),
    ]
    devices = [r.device for _, b in out[1:] for r in b]
    assert devices == sorted(devices) and len(set(devices)) == n


def test_a_batch_summary_counts_applied_and_names_skipped_entries() -> None:
    ok, skipped = "ab" * 32, "cd" * 32
    status = {
        "id": "ee" * 32,
        "status": "confirmed",
        "height": 7,
        "receipt": {
            "status": "ok",
            "events": [
                {"event": "meter.reading", "device": ok, "interval": 900},
                {"event": "meter.skipped", "device": skipped, "interval": 900,
                 "code": "duplicate_reading"},
                {"event": "cert.issued", "cert": "11" * 32, "wh": 1500},
            ],
        },
    }  # fmt: skip
    s = batch_summary(status, 900, 2)
    assert (s["applied"], s["certificates"]) == (1, 1)
    assert s["skipped"] == [{"device": skipped, "code": "duplicate_reading"}]
    assert summary_text(s).splitlines() == [
        f"tx {'ee' * 32} confirmed in block 7: interval 900, 2 readings, 1 applied, "
        "1 skipped, 1 certificate issued (1.5 kWh)",
        f"  skipped device {skipped}: duplicate_reading",
    ]


def test_refused_batch_names_its_file_lines_with_the_right_noun() -> None:
    # README: counts in text output agree with their noun ("lines 1" was printed)
    assert file_lines([4]) == "line 4"
    assert file_lines([3, 1]) == "lines 1, 3"
    assert file_lines([6, 5, 4, 3, 2, 1]) == "lines 1, 2, 3, 4, 5.."


def test_a_pending_or_dropped_batch_row_has_height_and_receipt_null() -> None:
    # README: --json rows carry id, status, height, receipt, ... for every batch.
    pending = batch_summary({"id": "ab", "status": "pending"}, 900, 2)
    assert pending["height"] is None and pending["receipt"] is None
    assert summary_text(pending) == "tx ab pending: interval 900, 2 readings"
    dropped = {
        "id": "cd",
        "status": "dropped",
        "error": {"code": "duplicate_reading", "message": "m"},
    }
    row = batch_summary(dropped, 900, 1)
    assert row["height"] is None and row["receipt"] is None
    # its error line names the code, as every tx command's does
    assert tx_failure(row) == "was dropped unmined: duplicate_reading: m (nothing charged)"
    assert tx_failure(pending) == ""


def test_meter_sign_takes_a_chain_id_of_1_to_64_characters() -> None:
    assert chain_id_arg("powernode-dev-7") == "powernode-dev-7"
    assert chain_id_arg("x" * 64) == "x" * 64
    for bad in ("", "x" * 65):
        with pytest.raises(UserError, match=r"--chain-id must be 1\.\.64 characters"):
            chain_id_arg(bad)
