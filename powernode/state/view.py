"""A journaled view over a state snapshot.

Reads fall through to the base; writes stay in the view, each one journaled so
a failed tx can be reverted to a checkpoint. When a block is done, ``diff``
gives the canonical change set (for the state root and the store) and ``undo``
the prior values (to disconnect the block in a reorg).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
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
    """The whole state, decoded: what chain/ keeps at the tip.

    One dict per namespace, so a listing reads the records of its own
    namespaces (``namespace``) and never scans the rest; ``get`` is still
    two dict lookups. Every write goes through ``apply_entries`` or
    ``apply_values``, so the namespaces are the state and nothing else is
    kept to drift from it. Within a namespace, records keep the order they
    were written in (what a flat dict gave); answers never rely on it, they
    sort explicitly.
    """

    __slots__ = ("_ns",)

    def __init__(self, data: Mapping[StateKey, Any] | None = None) -> None:
        self._ns: dict[str, dict[bytes, Any]] = {}
        if data:
            self.apply_values(data)

    def get(self, key: StateKey) -> Any:
        ns, k = key
        try:
            return self._ns[ns].get(k)
        except KeyError:  # a namespace never written
            return None

    def namespace(self, ns: str) -> Mapping[bytes, Any]:
        """The records of ``ns`` (key -> value), read-only and live: valid
        until the next write to the state."""
        return MappingProxyType(self._ns.get(ns, _EMPTY))

    def namespaces(self) -> list[str]:
        """Namespaces holding at least one record, sorted."""
        return sorted(ns for ns, d in self._ns.items() if d)

    def __len__(self) -> int:
        return sum(len(d) for d in self._ns.values())

    def items(self) -> Iterator[tuple[StateKey, Any]]:
        """Every record, namespace by namespace (tools and tests)."""
        for ns, d in self._ns.items():
            for k, v in d.items():
                yield (ns, k), v

    def snapshot(self) -> dict[StateKey, Any]:
        """A flat copy of the whole state, for comparing two states (tests,
        replay checks); O(state), never on a request path."""
        return dict(self.items())

    def _space(self, ns: str) -> dict[bytes, Any]:
        d = self._ns.get(ns)
        if d is None:
            d = self._ns[ns] = {}
        return d

    def apply_entries(
        self, entries: Iterable[DiffEntry], codecs: Mapping[str, Callable[[Any], Any]]
    ) -> None:
        """Write a diff, an undo list or a stored state (canonical bytes)."""
        for ns, key, raw in entries:
            if raw is None:
                self._space(ns).pop(key, None)
            else:
                self._space(ns)[key] = codecs[ns](encoding.decode(raw))

    def apply_values(self, values: Mapping[StateKey, Any]) -> None:
        """Write decoded values; ``None`` deletes the key."""
        for (ns, key), v in values.items():
            if v is None:
                self._space(ns).pop(key, None)
            else:
                self._space(ns)[key] = v


# What ``namespace`` shows for a namespace never written; never written to.
_EMPTY: dict[bytes, Any] = {}
