"""The order book on its own: a differential test against a naive reference
(a sorted scan of every order), plus the lazy-removal edge cases."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from powernode.engines.market.auction import auction, plan
from powernode.engines.market.book import (
    BUY,
    MAKER,
    MIDPOINT,
    SELL,
    BookHead,
    Level,
    OrderBook,
    Resting,
)

OWNERS = [bytes([i]) * 20 for i in range(4)]
SOURCES = ("solar", "wind")


def _order(i: int, owner: int, side: int, price: int, qty: int, source: str) -> Resting:
    return Resting(i.to_bytes(32, "big"), OWNERS[owner], side, price, qty, source, i, 0)


class Naive:
    """Every order in one list; matching sorts it afresh each time."""

    def __init__(self) -> None:
        self.orders: list[Resting] = []

    def match(self, inc: Resting, rule: int) -> list[tuple[bytes, int, int]]:
        buy = inc.side == BUY
        other = [
            r
            for r in self.orders
            if r.side != inc.side
            and (r.price <= inc.price if buy else r.price >= inc.price)
            and r.owner != inc.owner
            and ((inc.source if buy else r.source) == "any" or r.source == inc.source)
        ]
        other.sort(key=lambda r: (r.price if buy else -r.price, r.seq))
        fills = []
        for r in other:
            if inc.remaining == 0:
                break
            qty = min(inc.remaining, r.remaining)
            price = r.price if rule == MAKER else (inc.price + r.price) // 2
            r.remaining -= qty
            inc.remaining -= qty
            fills.append((r.oid, qty, price))
        self.orders = [r for r in self.orders if r.remaining]
        return fills

    def add(self, r: Resting) -> None:
        self.orders.append(r)

    def remove(self, oid: bytes) -> None:
        self.orders = [r for r in self.orders if r.oid != oid]

    def to_obj(self) -> list[Any]:
        bids = sorted((r for r in self.orders if r.side == BUY), key=lambda r: (-r.price, r.seq))
        asks = sorted((r for r in self.orders if r.side == SELL), key=lambda r: (r.price, r.seq))
        return [r.to_obj() for r in bids + asks]


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("place"),
            st.integers(0, 3),
            st.sampled_from((BUY, SELL)),
            st.integers(95, 105),
            st.integers(1, 30),
            st.sampled_from((*SOURCES, "any")),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 200)),
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(ops=ops, rule=st.sampled_from((MIDPOINT, MAKER)))
def test_book_matches_like_a_naive_scan(ops: list[tuple[Any, ...]], rule: int) -> None:
    book, naive = OrderBook(), Naive()
    placed: list[tuple[int, int, bytes]] = []
    for i, op in enumerate(ops):
        if op[0] == "cancel":
            if placed:
                side, price, oid = placed[op[1] % len(placed)]
                if book.get(side, price, oid) is not None:
                    assert book.remove(side, price, oid).oid == oid
                    naive.remove(oid)
            continue
        _, owner, side, price, qty, source = op
        if side == SELL and source == "any":
            source = "solar"
        a = _order(i, owner, side, price, qty, source)
        b = _order(i, owner, side, price, qty, source)
        got = [(r.oid, q, p) for r, q, p in book.match(a, rule)]
        assert got == naive.match(b, rule)
        assert a.remaining == b.remaining
        if a.remaining:
            book.add(a)
            naive.add(b)
            placed.append((side, price, a.oid))
        assert [r.to_obj() for r in book.orders()] == naive.to_obj()
        assert len(book) == len(naive.orders)
        # what the chain stores round-trips: the head and every level
        assert BookHead.from_obj(book.head.to_obj()) == book.head
        for lvl in book.levels.levels.values():  # type: ignore[attr-defined]
            assert Level.from_obj(lvl.to_obj()) == lvl == lvl.copy()


def test_cancel_in_the_middle_then_match_skips_it() -> None:
    book = OrderBook()
    for i in range(5):
        book.add(_order(i, 0, SELL, 100, 10, "solar"))
    book.remove(SELL, 100, (2).to_bytes(32, "big"))
    book.remove(SELL, 100, (0).to_bytes(32, "big"))
    fills = book.match(_order(9, 1, BUY, 100, 25, "any"), MAKER)
    assert [(int.from_bytes(r.oid, "big"), q) for r, q, _ in fills] == [(1, 10), (3, 10), (4, 5)]
    assert book.depth(SELL) == [(100, 5, 1)]
    assert book.depth(BUY) == []


def test_many_cancels_compact_the_level_and_copy_drops_them() -> None:
    book = OrderBook()
    for i in range(200):
        book.add(_order(i, 0, BUY, 100, 1, "any"))
    for i in range(1, 199):
        book.remove(BUY, 100, i.to_bytes(32, "big"))
    level = book.levels.get(BUY, 100)
    assert level is not None and len(level.q) < 40  # compacted, not 200 entries
    assert book.depth(BUY) == [(100, 2, 2)]
    assert [r.seq for r in level.copy().orders()] == [0, 199]
    assert Level.from_obj(level.to_obj()) == level


def test_midpoint_rounds_down_for_the_buyer() -> None:
    book = OrderBook()
    book.add(_order(0, 0, SELL, 101, 5, "wind"))
    ((_, qty, price),) = book.match(_order(1, 1, BUY, 104, 5, "wind"), MIDPOINT)
    assert (qty, price) == (5, 102)  # (104 + 101) // 2


def test_named_source_and_self_trade_are_skipped() -> None:
    book = OrderBook()
    book.add(_order(0, 1, SELL, 100, 5, "wind"))  # the buyer's own
    book.add(_order(1, 0, SELL, 100, 5, "solar"))  # wrong source
    book.add(_order(2, 0, SELL, 101, 5, "wind"))
    fills = book.match(_order(3, 1, BUY, 105, 10, "wind"), MAKER)
    assert [(r.seq, q, p) for r, q, p in fills] == [(2, 5, 101)]
    assert book.fillable(_order(4, 2, BUY, 105, 100, "any")) == 10


def test_auction_counts_only_pairs_that_can_trade() -> None:
    book = OrderBook()
    book.add(_order(0, 0, SELL, 500, 50, "solar"))
    book.add(_order(1, 1, SELL, 550, 50, "wind"))
    book.add(_order(2, 2, BUY, 600, 50, "wind"))
    price, fills = auction(book)
    # The solar ask is cheapest but no wind buyer can take it: the price is
    # set where the wind pair trades (the midpoint of 550 and 600).
    assert price == 575
    assert [(b.seq, a.seq, q) for b, a, q in fills] == [(2, 1, 50)]


auction_books = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.sampled_from((BUY, SELL)),
        st.integers(95, 105),
        st.integers(1, 30),
        st.sampled_from((*SOURCES, "any")),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(orders=auction_books)
def test_auction_price_executes_the_most_a_brute_force_finds(orders: list[Any]) -> None:
    book = OrderBook()
    for i, (owner, side, price, qty, source) in enumerate(orders):
        if side == SELL and source == "any":
            source = "wind"
        book.add(_order(i, owner, side, price, qty, source))
    best = max(
        (sum(q for _, _, q in plan(book, p)) for p in range(90, 111)),
        default=0,
    )
    price, fills = auction(book)
    assert sum(q for _, _, q in fills) == best
    for bid, ask, qty in fills:
        assert qty > 0
        assert bid.price >= price >= ask.price
        assert bid.owner != ask.owner
        assert bid.source in ("any", ask.source)
    for r in book.orders():
        assert r.remaining >= 0
