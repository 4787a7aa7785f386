"""``meter batch``'s grouping: by interval, devices ascending bytewise (the
order the chain requires), at most MAX_BATCH_READINGS per tx."""

from __future__ import annotations

from powernode.cli.hub import SignedReading, batches
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
