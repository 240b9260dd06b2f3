"""The read cache's rules without I/O: which queries are public reads and what they depend
on, when a kept answer is still fresh, its bounds, and the stamps' event on the wire."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import graphql
import pytest

from dinegraph.domain.identity import (
    ANONYMOUS,
    MemberViewer,
    PartnerViewer,
    StaffRole,
    StaffViewer,
)
from dinegraph.domain.stamps import ReadsChanged, reads_changed
from dinegraph.events.codec import READS_TOPIC, decode, encode, topics_of
from dinegraph.events.hub import Hub
from dinegraph.public_reads import PublicReads
from dinegraph.read_cache import ReadCache, ReadNote, reads_class
from dinegraph.resolvers.ids import encode_id

SCHEMA = graphql.build_schema((Path(__file__).parents[2] / "schema.graphql").read_text())
NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
STORE_7 = encode_id("Store", 7)
MENU = """query Menu($s: ID!) { menu(storeId: $s, channel: DELIVERY) {
  store { id name }
  categories { id name products { id name skus { id price { fen } stock { available } } } } } }"""


def _reads() -> PublicReads:
    return PublicReads(SCHEMA, max_tokens=3000)


def _stamps(document: str, variables: dict[str, object] | None = None) -> set[str] | None:
    read = _reads().of(document, None)
    if read is None:
        return None
    found = read.stamps_for(variables)
    return None if found is None else set(found)


def test_a_menu_depends_on_the_catalogue_the_stores_and_its_stores_prices_and_stock() -> None:
    assert _stamps(MENU, {"s": STORE_7}) == {"catalog", "stores", "price.7", "stock.7"}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ("{ stores(first: 5) { edges { node { id name isOpen } } totalCount } }", {"stores"}),
        ("{ categories { id name products { id skus { price { fen } } } } }", {"catalog"}),
        (
            "{ campaigns { id name state items { price { fen } sku { id name } } stores { id } } }",
            {"campaigns", "catalog", "stores"},
        ),
        (
            '{ campaigns { quotaLeft(storeId: "U3RvcmU6Mw==") } }',  # Store:3
            {"campaigns", "quota.3"},
        ),
        (
            '{ node(id: "UHJvZHVjdDox") { id ... on Product { name } } }',  # Product:1
            {"catalog"},
        ),
        (
            'query { ...Where } fragment Where on Query { store(id: "U3RvcmU6MQ==") { name } }',
            {"stores"},
        ),
        ("{ __typename }", set()),
    ],
)
def test_public_reads_depend_on_the_stamps_of_what_they_select(
    document: str, expected: set[str]
) -> None:
    assert _stamps(document) == expected


@pytest.mark.parametrize(
    "document",
    [
        "{ viewer { member { id } } }",  # the viewer
        "{ stores { edges { node { id pendingOrders } } } }",  # the kitchen queue
        '{ store(id: "U3RvcmU6MQ==") { ...Queue } } fragment Queue on Store { pendingOrders }',
        '{ node(id: "T3JkZXI6MQ==") { id } }',  # Order:1
        '{ node(id: "U3RvcmU6MQ==") { ... on Order { status } } }',
        "{ claimableCoupons { id } }",
        "{ __schema { queryType { name } } }",
        'mutation { listProduct(input: {id: "UHJvZHVjdDox"}) { errors { code } } }',
        'subscription { stockChanged(storeId: "U3RvcmU6MQ==") { available } }',
        "{ menu(storeId: $missing, channel: DELIVERY) { channel } }",  # never validates
        "{ nosuchfield }",
        "{ stores {",  # does not parse
    ],
)
def test_anything_private_makes_the_whole_query_private(document: str) -> None:
    assert _stamps(document) is None


def test_arguments_that_name_no_store_make_the_read_private() -> None:
    read = _reads().of(MENU, None)
    assert read is not None
    assert read.stamps_for({"s": encode_id("Product", 7)}) is None
    assert read.stamps_for({"s": "not an id"}) is None
    assert read.stamps_for({}) is None


def test_variable_defaults_and_the_operation_asked_for_count() -> None:
    document = """
      query A($s: ID = "U3RvcmU6OQ==") { menu(storeId: $s, channel: PICKUP) { channel } }
      mutation B { unlistProduct(input: {id: "UHJvZHVjdDox"}) { errors { code } } }
    """
    a = _reads().of(document, "A")
    assert a is not None
    assert set(a.stamps_for(None) or ()) == {"catalog", "stores", "price.9", "stock.9"}
    assert _reads().of(document, "B") is None
    assert _reads().of(document, None) is None  # two operations and no name: an error


def test_staff_are_never_shown_the_public_answer() -> None:
    assert reads_class(ANONYMOUS) == "public"
    assert reads_class(MemberViewer(1)) == "public"
    assert reads_class(PartnerViewer(1, "POS", frozenset(), None)) == "public"
    for role in StaffRole:
        assert reads_class(StaffViewer(1, "s", role, frozenset())) is None


# --- kept answers -----------------------------------------------------------------------


def _cache(entries: int = 10, max_bytes: int = 10**6, max_age: float = 60) -> ReadCache:
    cache = ReadCache(entries=entries, max_bytes=max_bytes, max_age=max_age)
    cache.open = True
    return cache


def _keep(cache: ReadCache, key: bytes, stamps: set[str], body: bytes = b"{}") -> None:
    cache.keep(key, body, stamps=cache.stamps.read(stamps), changes_at=None, now=NOW)


def test_an_answer_is_kept_until_a_stamp_it_read_moves() -> None:
    cache = _cache()
    _keep(cache, b"menu-7", {"stock.7", "catalog"})
    assert cache.get(b"menu-7", NOW) is not None
    cache.heard(ReadsChanged(("stock.8",)))
    assert cache.get(b"menu-7", NOW) is not None
    cache.heard(ReadsChanged(("stock.7",)))
    assert cache.get(b"menu-7", NOW) is None
    assert len(cache) == 0


def test_an_answer_made_while_a_stamp_moved_is_never_kept_as_fresh() -> None:
    cache = _cache()
    read_before = cache.stamps.read({"stock.7"})
    cache.heard(ReadsChanged(("stock.7",)))  # a sale commits while the read executes
    cache.keep(b"menu-7", b"{}", stamps=read_before, changes_at=None, now=NOW)
    assert cache.get(b"menu-7", NOW) is None


def test_forgetting_drops_answers_and_answers_being_made() -> None:
    cache = _cache()
    _keep(cache, b"a", {"catalog"})
    being_made = cache.stamps.read({"catalog"})
    cache.forget()
    assert cache.get(b"a", NOW) is None
    cache.keep(b"b", b"{}", stamps=being_made, changes_at=None, now=NOW)
    assert cache.get(b"b", NOW) is None


def test_an_answer_is_kept_until_its_time_runs_out() -> None:
    cache = _cache()
    stamps = cache.stamps.read({"campaigns"})
    ends = NOW + timedelta(minutes=5)
    cache.keep(b"campaigns", b"[]", stamps=stamps, changes_at=ends, now=NOW)
    assert cache.get(b"campaigns", ends - timedelta(microseconds=1)) is not None
    assert cache.get(b"campaigns", ends) is None
    short = _cache(max_age=0.05)
    _keep(short, b"stores", {"stores"})
    assert short.get(b"stores", NOW) is not None
    time.sleep(0.06)
    assert short.get(b"stores", NOW) is None


def test_the_least_recently_used_answer_goes_first_beyond_either_bound() -> None:
    cache = _cache(entries=2)
    for key in (b"a", b"b"):
        _keep(cache, key, {"catalog"})
    assert cache.get(b"a", NOW) is not None  # b is now the least recently used
    _keep(cache, b"c", {"catalog"})
    assert [k for k in (b"a", b"b", b"c") if cache.get(k, NOW)] == [b"a", b"c"]
    small = _cache(max_bytes=3000)
    for key in (b"x", b"y", b"z"):
        _keep(small, key, {"catalog"}, body=b"." * 1000)
    assert [k for k in (b"x", b"y", b"z") if small.get(k, NOW)] == [b"y", b"z"]


def test_nothing_is_kept_while_the_cache_does_not_serve() -> None:
    closed = ReadCache(entries=10, max_bytes=10**6, max_age=60)
    _keep(closed, b"a", {"catalog"})
    assert len(closed) == 0
    off = _cache(entries=0)
    assert not off.serving


def test_the_etag_is_the_same_for_the_same_bytes_and_answers_if_none_match() -> None:
    one, other = _cache(), _cache()
    other.heard(ReadsChanged(("catalog",)))  # another process, other counts
    a = one.keep(b"k", b"{1}", stamps=one.stamps.read({"catalog"}), changes_at=None, now=NOW)
    b = other.keep(b"k", b"{1}", stamps=other.stamps.read({"catalog"}), changes_at=None, now=NOW)
    c = one.keep(b"k", b"{2}", stamps=one.stamps.read({"catalog"}), changes_at=None, now=NOW)
    assert a.etag == b.etag != c.etag
    for header, expected in (
        (a.etag, True),
        (f'W/{a.etag}, "other"', True),
        ("*", True),
        ('"other"', False),
        (None, False),
    ):
        note = ReadNote(b"k", authenticated=False, if_none_match=header, answer=a)
        assert note.not_modified() is expected
    headers = ReadNote(b"k", authenticated=True, if_none_match=None, answer=a).http_headers()
    assert headers["cache-control"].startswith("private")


# --- on the wire ----------------------------------------------------------------------


def test_reads_changed_travels_on_the_topic_every_process_follows() -> None:
    event = reads_changed(["stock.3", "catalog", "stock.3"])
    assert event == ReadsChanged(("catalog", "stock.3"))
    assert topics_of(event) == (READS_TOPIC,)
    assert decode(encode(event)) == event


def test_a_change_too_wide_to_name_moves_every_answer_and_stays_small_on_the_wire() -> None:
    named = reads_changed(f"stock.{2**31 - n}" for n in range(64))
    assert len(named.stamps) == 64
    assert len(encode(named)) < 8000  # PostgreSQL's NOTIFY payload limit
    wide = reads_changed(f"stock.{n}" for n in range(1, 501))  # a campaign at 500 stores
    assert wide.stamps == ("*",)
    cache = _cache()
    _keep(cache, b"stores", {"stores"})
    cache.heard(wide)
    assert cache.get(b"stores", NOW) is None


async def test_a_follower_hears_every_event_at_once_and_keeps_the_topic_listened() -> None:
    listened: list[str] = []
    unlistened: list[str] = []

    async def listen(topic: str) -> None:
        listened.append(topic)

    async def unlisten(topic: str) -> None:
        unlistened.append(topic)

    hub = Hub(listen, unlisten)
    heard: list[object] = []
    await hub.follow(READS_TOPIC, heard.append)
    box = await hub.join([READS_TOPIC])
    for n in range(3):
        hub.deliver(READS_TOPIC, ReadsChanged((f"stock.{n}",)))
    assert len(heard) == 3  # none replaces another, as a mailbox's latest value would
    await hub.leave([READS_TOPIC], box)
    assert (listened, unlistened) == ([READS_TOPIC], [])
