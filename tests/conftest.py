"""How the suite is spread over parallel workers (``scripts/test`` runs
pytest-xdist with ``--dist loadfile``; see ``pytest_xdist_make_scheduler``).

A few e2e tests spend minutes waiting on the chain's clock (one-minute
slots, metering intervals and reading windows, a timed soak) while using
little CPU. They are marked ``minutes`` and handed out first, each file to a
worker of its own as far as there are workers, so their waits overlap the
rest of the suite instead of following it.
"""

from __future__ import annotations

from typing import Any

import pytest

# Test files that must not run at the same time as each other, whatever
# worker they land on: the network-namespace testnets take their subnet from
# one byte of their directory's hash, and two at once could pick the same.
SERIAL_GROUPS = {"tests/e2e/test_netns_": "netns"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The order the scheduler hands files out in (``scripts/test`` turns
    xdist's own reordering off): the ``minutes`` files first, then files with
    more tests before files with fewer (the small ones even out the end), each
    file's tests together and in their own order."""
    count: dict[str, int] = {}
    first: dict[str, int] = {}
    waits: set[str] = set()  # a scope with any test marked minutes goes first whole
    for i, item in enumerate(items):
        scope = scope_of(item.nodeid)
        count[scope] = count.get(scope, 0) + 1
        first.setdefault(scope, i)
        if item.get_closest_marker("minutes") is not None:
            waits.add(scope)
    at = {id(item): i for i, item in enumerate(items)}

    def key(item: pytest.Item) -> tuple[bool, int, int, int]:
        scope = scope_of(item.nodeid)
        return (scope not in waits, -count[scope], first[scope], at[id(item)])

    items.sort(key=key)


def scope_of(nodeid: str) -> str:
    """The unit one worker runs whole: the test file, or its serial group."""
    path = nodeid.split("::", 1)[0]
    for prefix, group in SERIAL_GROUPS.items():
        if path.startswith(prefix):
            return group
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduler(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return Scheduler(config, log)
