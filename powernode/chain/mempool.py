"""Transactions waiting for a block: ordered by fee rate, per sender by nonce.

Bounded in bytes. When full, the cheapest tx (lowest fee per kB) at the tail
of some sender's queue is evicted: taking a tail never leaves a nonce gap
behind it. Validation against the tip state is the ledger's job; this class
only keeps the entries, their order, and the pool's fee floor.

Eviction is indexed: each sender's tail sits in a binary heap ordered by
eviction order (fee rate, newest first on a tie), which every add and remove
keeps up to date, so finding, evicting or refusing the cheapest costs
O(log senders), not a look at every sender. (Looking at every sender made a
full pool a stall: every refused cheap tx cost work proportional to the pool.)
The heap is built only when the pool first needs it (a tx that does not fit)
and let go when a block leaves the pool under half full: below that nothing
is evicted or refused for room, and keeping the heap cost every add about
log2(senders) steps (a new tail of equal rate is the newest, so it rises to
the root). Built, it is the one the adds would have kept: the order is total.

The fee floor is Bitcoin Core's rolling minimum fee: whatever the pool
evicts, or refuses for being full, raises the minimum fee rate to enter to
that tx's rate plus ``incremental_rate``. Once a block has come since the
last raise it decays, halving every ``min_fee_halflife`` seconds (a half or
a quarter of that while the pool is under half or a quarter full), and drops
to nothing below half of ``incremental_rate``. Time is the caller's ``now``
(unix seconds): this module reads no clock. Fees and rates are integers.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from powernode.core.errors import MempoolFull
from powernode.core.tx import Transaction

# What an eviction adds to the rate evicted to make the new minimum (Core's
# incremental relay fee, 1 sat/vB): 1 micro-unit a byte, in micro-units per
# 1000 bytes, the unit of every rate here.
INCREMENTAL_FEE_RATE = 1000
# Core decays its minimum with a 12 h half-life: 72 of its 10-minute blocks.
# The ledger passes 72 of the chain's block times; this is for a bare pool.
MIN_FEE_HALFLIFE_S = 720
# Core recomputes the decay at most this often.
_DECAY_STEP_S = 10
# A sender's tail moving down past a gap looks at most this many nonces
# before it asks max() (gaps are rare and short: the nonce window bounds them).
_GAP_WALK = 64


def fee_rate(tx: Transaction) -> int:
    """Fee per 1000 bytes, rounded down: the pool's ordering key."""
    return tx.fee * 1000 // (len(tx.raw) or 1)  # len(tx.raw) is tx.size


def _eviction_key(e: PoolEntry) -> tuple[int, int]:
    """Eviction order as a sort key: the lower rate first, then the newer."""
    return (e.rate, -e.seq)


def decay(value: int, elapsed: int, halflife: int) -> int:
    """``value`` x 2^(-elapsed / halflife), rounded down, in integers only.

    Whole half-lives are shifts; the fraction left uses aserti3-2d's cubic
    for 2^x in 16.16 fixed point (core/pow.py), within 0.013% of the real
    curve: no float is involved, and it is exact at whole half-lives."""
    whole, rest = divmod(max(0, elapsed), halflife)
    frac = rest * 65536 // halflife
    factor = 65536 + (
        (195766423245049 * frac + 971821376 * frac * frac + 5127 * frac**3 + (1 << 47)) >> 48
    )
    return (value * 65536 // factor) >> whole


@dataclass(slots=True, eq=False)
class PoolEntry:
    tx: Transaction
    sender: bytes
    cost: int  # fee plus the most the tx can debit beyond it
    rate: int  # fee per 1000 bytes, the ordering key
    seq: int  # arrival order, the tie-breaker
    # Where this entry sits in the eviction heap while it is its sender's
    # tail and the heap is kept; -1 otherwise (only tails can be evicted).
    pos: int = -1


class Mempool:
    def __init__(
        self,
        *,
        max_bytes: int = 64 * 1024 * 1024,
        max_per_sender: int = 256,
        incremental_rate: int = INCREMENTAL_FEE_RATE,
        min_fee_halflife: int = MIN_FEE_HALFLIFE_S,
    ) -> None:
        if min_fee_halflife <= 0:
            raise ValueError("min_fee_halflife must be positive")
        self.max_bytes = max_bytes
        self.max_per_sender = max_per_sender
        self.incremental_rate = incremental_rate
        self.min_fee_halflife = min_fee_halflife
        self.by_id: dict[bytes, PoolEntry] = {}
        self.by_sender: dict[bytes, dict[int, PoolEntry]] = {}
        self.total_bytes = 0
        self._sender_cost: dict[bytes, int] = {}
        self._seq = 0
        # Changes whenever the contents do; the miner rebuilds only then.
        self.version = 0
        # The ids of txs that leave the pool, recorded while it is a set (the
        # node sets one around a chain update while a push client follows
        # the pool); None: not recorded.
        self.left: set[bytes] | None = None
        # Each sender's highest-nonce entry: the only one of its entries that
        # eviction may take.
        self._tails: dict[bytes, PoolEntry] = {}
        # Those tails as a binary min-heap in eviction order (see "the
        # eviction heap" below): the root is the next to go. Each knows its index (PoolEntry.pos), so
        # a tail that changes is moved in O(log n), never searched for.
        self._heap: list[PoolEntry] = []
        # Whether ``_heap`` is kept (see the module doc); while not, it is
        # empty and every entry's ``pos`` is -1.
        self._heaped = False
        # The rolling minimum fee rate (see the module doc); 0 when none.
        self._rolling = 0
        self._rolling_at = 0  # when the decay was last applied (unix s)
        self._block_since_bump = False

    def __len__(self) -> int:
        return len(self.by_id)

    def __contains__(self, txid: bytes) -> bool:
        return txid in self.by_id

    def get(self, txid: bytes) -> PoolEntry | None:
        return self.by_id.get(txid)

    def entry_at(self, sender: bytes, nonce: int) -> PoolEntry | None:
        q = self.by_sender.get(sender)
        return None if q is None else q.get(nonce)

    def next_nonce(self, sender: bytes, state_nonce: int) -> int:
        """The nonce a new tx from ``sender`` should use (after its queued run)."""
        q = self.by_sender.get(sender)
        n = state_nonce
        if q:
            while n in q:
                n += 1
        return n

    def slot(self, sender: bytes, nonce: int) -> tuple[PoolEntry | None, int]:
        """The entry at (``sender``, ``nonce``) if any, and what all of
        ``sender``'s other pending txs may take: both admission checks in one
        lookup. Every pending tx counts, whatever its nonce, so sending
        nonces out of order cannot overdraw the account."""
        q = self.by_sender.get(sender)
        if q is None:
            return None, 0
        old = q.get(nonce)
        total = self._sender_cost[sender]
        return old, total if old is None else total - old.cost

    def add(self, tx: Transaction, sender: bytes, cost: int) -> list[PoolEntry]:
        """Insert (replacing the same sender+nonce if present); returns what was
        evicted to stay in bounds. If the pool is full and ``tx`` pays least
        (it would be evicted itself, or would evict a tx paying at least its
        own rate), the pool is left exactly as it was and MempoolFull is
        raised. Either
        way the fee floor rises past what left or was refused."""
        size = len(tx.raw)
        # ``refuses`` is False for a tx that fits: asked only when it does not.
        if self.total_bytes + size > self.max_bytes and self.refuses(tx, sender):
            # What the general path below would do, without moving anything.
            self._bump(fee_rate(tx))
            raise MempoolFull("mempool is full and this tx pays too little to displace any other")
        q = self.by_sender.get(sender)
        old = None if q is None else q.get(tx.nonce)
        if old is not None:
            self._drop(old)
        # The rate as fee_rate(tx) computes it, inline: one call less per tx.
        entry = PoolEntry(tx, sender, cost, tx.fee * 1000 // (size or 1), self._seq)
        self._seq += 1
        self._insert(entry)
        if self.total_bytes <= self.max_bytes:
            return []
        evicted = self._evict()
        # A tx that fills a sender's nonce gap is no tail, so eviction never
        # takes it: it must still not push out a tx that pays as much as it
        # does (by the order above it would go first, were it a tail).
        if any(e is entry or e.rate >= entry.rate for e in evicted):
            if all(e is not entry for e in evicted):
                self._drop(entry)
            # Put back in the reverse order of leaving: each sender's lower
            # nonces first, so every tail is where it was.
            for e in reversed(evicted):
                if e is not entry:
                    self._insert(e)
            if old is not None:
                self._insert(old)
            self._bump(entry.rate)
            raise MempoolFull("mempool is full and this tx pays too little to displace any other")
        self._bump(max(e.rate for e in evicted))
        return evicted

    def refuses(self, tx: Transaction, sender: bytes) -> bool:
        """Whether ``add`` would surely refuse ``tx`` (the pool is full and it
        would be the first to go), in O(1): the ledger asks before the
        signature is checked, so a flood of cheap txs at a full pool costs no
        verification. False when unsure (a replacement, or a nonce below the
        sender's tail): ``add`` decides those."""
        size = len(tx.raw)
        if self.total_bytes + size <= self.max_bytes:
            return False
        tail = self._tails.get(sender)
        if tail is not None and tx.nonce <= tail.tx.nonce:
            return False
        heap = self._eviction_heap()
        # Its entry would be a tail, and the newest: on an equal rate it goes
        # before the root; the root is at or before every other tail.
        return not heap or fee_rate(tx) <= heap[0].rate

    # --- the fee floor ---------------------------------------------------------

    def min_fee_rate(self, now: int) -> int:
        """The lowest fee rate (per 1000 bytes) a tx may pay to enter now:
        Core's ``GetMinFee``, decayed up to ``now`` (unix s)."""
        rolling = self._rolling
        if rolling == 0 or not self._block_since_bump:
            return rolling
        if now > self._rolling_at + _DECAY_STEP_S:
            halflife = self.min_fee_halflife
            # A pool with room sheds its floor faster, as Core's.
            if self.total_bytes < self.max_bytes // 4:
                halflife //= 4
            elif self.total_bytes < self.max_bytes // 2:
                halflife //= 2
            rolling = decay(rolling, now - self._rolling_at, max(1, halflife))
            self._rolling_at = now
            if rolling * 2 < self.incremental_rate:
                rolling = 0
            self._rolling = rolling
            if rolling == 0:
                return 0
        return max(rolling, self.incremental_rate)

    def block_connected(self, now: int) -> None:
        """A block took txs out: the floor may start to decay. (Core restarts
        the decay clock at every block, losing the decay since its last
        update; here it starts at the first block after a raise and runs on.)"""
        if not self._block_since_bump:
            self._block_since_bump = True
            self._rolling_at = now
        if self._heaped and self.total_bytes < self.max_bytes // 2:
            self._drop_heap()

    def _bump(self, rate: int) -> None:
        floor = rate + self.incremental_rate
        if floor > self._rolling:
            self._rolling = floor
            self._block_since_bump = False

    # --- contents ---------------------------------------------------------------

    def _insert(self, entry: PoolEntry) -> None:
        self.version += 1
        sender, tx = entry.sender, entry.tx
        q = self.by_sender.get(sender)
        if q is None:  # not setdefault: it would build a dict per call
            q = self.by_sender[sender] = {}
            self._tails[sender] = entry
            if self._heaped:
                self._heap_push(entry)
        else:
            tail = self._tails[sender]
            if tx.nonce > tail.tx.nonce:
                self._tails[sender] = entry
                if self._heaped:
                    self._heap_swap(tail, entry)
        q[tx.nonce] = entry
        self.by_id[tx.txid] = entry
        self.total_bytes += len(tx.raw)  # tx.size
        cost = self._sender_cost
        cost[sender] = cost.get(sender, 0) + entry.cost

    def remove(self, txid: bytes) -> PoolEntry | None:
        entry = self.by_id.get(txid)
        if entry is not None:
            self._drop(entry)
        return entry

    def _drop(self, entry: PoolEntry) -> None:
        self.version += 1
        if self.left is not None:
            self.left.add(entry.tx.txid)
        sender = entry.sender
        del self.by_id[entry.tx.txid]
        q = self.by_sender[sender]
        nonce = entry.tx.nonce
        del q[nonce]
        if not q:
            del self.by_sender[sender]
            del self._sender_cost[sender]
            del self._tails[sender]
            if self._heaped:
                self._heap_remove(entry)
        else:
            self._sender_cost[sender] -= entry.cost
            if self._tails[sender] is entry:
                # It was the tail: the next lower nonce present takes its place.
                n = nonce - 1
                stop = nonce - _GAP_WALK
                while n not in q and n > stop:
                    n -= 1
                tail = q[n] if n in q else q[max(q)]
                self._tails[sender] = tail
                if self._heaped:
                    self._heap_swap(entry, tail)
        self.total_bytes -= len(entry.tx.raw)  # tx.size

    def drop_stale(self, sender: bytes, state_nonce: int) -> list[PoolEntry]:
        """Remove ``sender``'s entries whose nonce the chain has used."""
        q = self.by_sender.get(sender)
        if not q:
            return []
        stale = [e for n, e in q.items() if n < state_nonce]
        if not stale:
            return stale
        if len(stale) < len(q):
            # The tail (highest nonce) is not stale, so it stays the tail and
            # the eviction heap is untouched: the stale entries go at once
            # (``_drop`` each cost a block connect about a microsecond a tx).
            by_id = self.by_id
            for e in stale:
                del by_id[e.tx.txid]
                del q[e.tx.nonce]
            self._sender_cost[sender] -= sum(e.cost for e in stale)
            if self.left is not None:
                self.left.update(e.tx.txid for e in stale)
            self.total_bytes -= sum(len(e.tx.raw) for e in stale)  # len(raw) is tx.size
            self.version += 1
            return stale
        # The whole queue (the usual case after a block): drop it at once.
        del self.by_sender[sender]
        del self._sender_cost[sender]
        tail = self._tails.pop(sender)
        if self._heaped:
            self._heap_remove(tail)
        by_id = self.by_id
        for e in stale:
            del by_id[e.tx.txid]
        if self.left is not None:
            self.left.update(e.tx.txid for e in stale)
        self.total_bytes -= sum(len(e.tx.raw) for e in stale)  # len(raw) is tx.size
        self.version += 1
        return stale

    def _evict(self) -> list[PoolEntry]:
        evicted: list[PoolEntry] = []
        heap = self._eviction_heap()
        while self.total_bytes > self.max_bytes and heap:
            victim = heap[0]
            self._drop(victim)
            evicted.append(victim)
        return evicted

    # --- the eviction heap --------------------------------------------------------
    #
    # Eviction order: a before b when a pays a lower rate, or the same rate
    # and came later (the old linear scan's min over (rate, -seq)). seq
    # is unique, so the order is total and eviction is deterministic. The
    # comparisons are written out, not a key tuple: they run on every add.

    def _eviction_heap(self) -> list[PoolEntry]:
        """The heap, built first if it is not kept: every tail in eviction
        order (a sorted list is a heap), each told its index."""
        if not self._heaped:
            heap = self._heap = sorted(self._tails.values(), key=_eviction_key)
            for i, e in enumerate(heap):
                e.pos = i
            self._heaped = True
        return self._heap

    def _drop_heap(self) -> None:
        for e in self._heap:
            e.pos = -1
        self._heap = []
        self._heaped = False

    def _heap_push(self, e: PoolEntry) -> None:
        heap = self._heap
        heap.append(e)
        self._sift_up(len(heap) - 1, e)

    def _heap_remove(self, e: PoolEntry) -> None:
        pos, e.pos = e.pos, -1
        last = self._heap.pop()
        if last is not e:
            self._place(pos, last)

    def _heap_swap(self, old: PoolEntry, new: PoolEntry) -> None:
        """Put ``new`` where ``old`` was (a sender's tail changed)."""
        pos, old.pos = old.pos, -1
        self._place(pos, new)

    def _place(self, pos: int, e: PoolEntry) -> None:
        if pos > 0:
            p = self._heap[(pos - 1) >> 1]
            if e.rate < p.rate or (e.rate == p.rate and e.seq > p.seq):
                self._sift_up(pos, e)
                return
        self._sift_down(pos, e)

    def _sift_up(self, pos: int, e: PoolEntry) -> None:
        heap = self._heap
        rate, seq = e.rate, e.seq
        while pos > 0:
            up = (pos - 1) >> 1
            p = heap[up]
            if p.rate < rate or (p.rate == rate and p.seq > seq):
                break
            heap[pos] = p
            p.pos = pos
            pos = up
        heap[pos] = e
        e.pos = pos

    def _sift_down(self, pos: int, e: PoolEntry) -> None:
        heap = self._heap
        n = len(heap)
        rate, seq = e.rate, e.seq
        while True:
            c = 2 * pos + 1
            if c >= n:
                break
            child = heap[c]
            if c + 1 < n:
                other = heap[c + 1]
                if other.rate < child.rate or (other.rate == child.rate and other.seq > child.seq):
                    c += 1
                    child = other
            if rate < child.rate or (rate == child.rate and seq > child.seq):
                break
            heap[pos] = child
            child.pos = pos
            pos = c
        heap[pos] = e
        e.pos = pos

    def cheapest(self) -> PoolEntry | None:
        """The entry eviction would take next (None if the pool is empty)."""
        heap = self._eviction_heap()
        return heap[0] if heap else None

    def check_index(self) -> None:
        """Assert the eviction index matches the contents (for tests): one
        heap node per sender, its highest nonce; every other entry outside;
        each node at its recorded index; the heap in eviction order."""
        heap = self._heap
        assert len(self.by_sender) == len(self._tails)
        assert len(heap) == (len(self._tails) if self._heaped else 0)
        for sender, q in self.by_sender.items():
            tail = q[max(q)]
            assert self._tails[sender] is tail
            if self._heaped:
                assert 0 <= tail.pos < len(heap) and heap[tail.pos] is tail
            for e in q.values():
                assert (e is tail and self._heaped) or e.pos == -1
        for i in range(1, len(heap)):
            p, c = heap[(i - 1) >> 1], heap[i]
            assert p.rate < c.rate or (p.rate == c.rate and p.seq > c.seq), (i, p, c)

    def select(self, state_nonce: Callable[[bytes], int]) -> Iterator[Transaction]:
        """Executable txs, best fee rate first, each sender's in nonce order."""
        heap: list[tuple[int, int, int, PoolEntry]] = []
        for sender, q in self.by_sender.items():
            e = q.get(state_nonce(sender))
            if e is not None:
                heap.append((-e.rate, e.seq, e.tx.nonce, e))
        heapq.heapify(heap)
        while heap:
            _, _, nonce, e = heapq.heappop(heap)
            yield e.tx
            rest = self.by_sender.get(e.sender)  # not get(, {}): a dict per tx
            nxt = None if rest is None else rest.get(nonce + 1)
            if nxt is not None:
                heapq.heappush(heap, (-nxt.rate, nxt.seq, nxt.tx.nonce, nxt))

    def ordered(self) -> list[Transaction]:
        """Every tx, grouped by sender in nonce order (for saving and re-admission)."""
        return [q[n].tx for _, q in sorted(self.by_sender.items()) for n in sorted(q)]

    def clear(self) -> None:
        if self.left is not None:
            self.left.update(self.by_id)
        self._drop_heap()
        self._tails.clear()
        self.by_id.clear()
        self.by_sender.clear()
        self._sender_cost.clear()
        self.total_bytes = 0
        self.version += 1
