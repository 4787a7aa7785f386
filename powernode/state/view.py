"""A journaled view over a state snapshot.

Reads fall through to the base; writes stay in the view, each one journaled so
a failed tx can be reverted to a checkpoint. When a block is done, ``diff``
gives the canonical change set (for the state root and the store) and ``undo``
the prior values (to disconnect the block in a reorg).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from powernode.core import encoding
from powernode.core.execution import StateKey

_MISSING = object()

# (namespace, key, canonical value bytes or None when deleted)
DiffEntry = tuple[str, bytes, bytes | None]


class StateReader(Protocol):
    def get(self, key: StateKey) -> Any: ...


class StateView:
    # __weakref__: engines that keep mutable state values (the market's
    # books) mark the copy they own with a weak reference to the view.
    __slots__ = ("__weakref__", "_base", "_base_get", "_journal", "_writes")

    def __init__(self, base: StateReader) -> None:
        self._base = base
        self._base_get = base.get  # bound once: every read of every tx comes here
        self._writes: dict[StateKey, Any] = {}
        self._journal: list[tuple[StateKey, Any]] = []

    def get(self, key: StateKey) -> Any:
        v = self._writes.get(key, _MISSING)
        return self._base_get(key) if v is _MISSING else v

    def put(self, key: StateKey, value: Any) -> None:
        """Write ``value``; ``None`` deletes the key."""
        self._journal.append((key, self._writes.get(key, _MISSING)))
        self._writes[key] = value

    def checkpoint(self) -> int:
        return len(self._journal)

    def revert(self, checkpoint: int) -> None:
        j = self._journal
        w = self._writes
        while len(j) > checkpoint:
            key, prior = j.pop()
            if prior is _MISSING:
                del w[key]
            else:
                w[key] = prior

    def changed(self) -> dict[StateKey, Any]:
        """Keys whose value differs from the base, with their new values, sorted."""
        base = self._base
        out = {k: v for k, v in self._writes.items() if base.get(k) != v}
        return dict(sorted(out.items()))

    def diff(self, changed: dict[StateKey, Any] | None = None) -> list[DiffEntry]:
        """The canonical change set; ``changed`` is ``self.changed()`` if the
        caller already has it (it costs a pass over every write)."""
        if changed is None:
            changed = self.changed()
        return [
            (ns, key, None if v is None else encoding.encode_trusted(v.to_obj()))
            for (ns, key), v in changed.items()
        ]

    def undo(self, changed: dict[StateKey, Any] | None = None) -> list[DiffEntry]:
        """Prior values of every changed key, to restore the base exactly."""
        base = self._base
        out: list[DiffEntry] = []
        for ns, key in self.changed() if changed is None else changed:
            prior = base.get((ns, key))
            out.append(
                (ns, key, None if prior is None else encoding.encode_trusted(prior.to_obj()))
            )
        return out


class MemoryState:
    """The whole state as a dict of decoded values; what chain/ keeps at the tip."""

    __slots__ = ("data",)

    def __init__(self, data: dict[StateKey, Any] | None = None) -> None:
        self.data: dict[StateKey, Any] = {} if data is None else data

    def get(self, key: StateKey) -> Any:
        return self.data.get(key)

    def apply_entries(
        self, entries: list[DiffEntry], codecs: Mapping[str, Callable[[Any], Any]]
    ) -> None:
        """Write a diff or an undo list (canonical bytes) into the dict."""
        for ns, key, raw in entries:
            if raw is None:
                self.data.pop((ns, key), None)
            else:
                self.data[(ns, key)] = codecs[ns](encoding.decode(raw))

    def apply_values(self, values: Mapping[StateKey, Any]) -> None:
        for k, v in values.items():
            if v is None:
                self.data.pop(k, None)
            else:
                self.data[k] = v
