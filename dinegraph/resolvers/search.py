"""Product search and suggestions for the mini-program; synonyms and misses for head office."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from dinegraph.domain.catalog import Channel, Product, Store
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import require_catalog_editor, require_staff
from dinegraph.domain.search import (
    POPULARITY_DAYS,
    SUGGESTIONS_MAX,
    Hit,
    MatchKind,
    SearchMiss,
    SynonymEntry,
    clean_name_fragment,
    clean_query,
    rank,
)
from dinegraph.domain.search_matching import SearchIndex
from dinegraph.resolvers.catalog import MenuProduct, priced_products
from dinegraph.resolvers.ids import decode_id
from dinegraph.resolvers.pagination import (
    Page,
    decode_key_cursor,
    keyset_page,
    page_of,
    page_size,
)

if TYPE_CHECKING:
    from dinegraph.context import Context

CANDIDATES_MAX = 200
"""Products a search reads again and prices, best matches first; the rest are never shown."""
MISSES_SHOWN = 1000


@dataclass(frozen=True, slots=True)
class Found:
    product: MenuProduct
    matched_by: MatchKind


async def search_products(
    ctx: Context,
    *,
    query: str,
    store_id: str,
    channel: Channel,
    first: int | None,
    after: str | None,
) -> tuple[Store, Page[Found]]:
    """What the store sells now on ``channel`` matching ``query``, best first.

    An empty query (or one of spaces and punctuation) finds nothing and is no miss.
    """
    cleaned = clean_query(query)
    store = await ctx.loaders.store.load(decode_id(store_id, "Store", ["storeId"]))
    if store is None:
        raise DomainError(ErrorCode.NOT_FOUND, field=["storeId"])
    page_of([], first=first, after=after, max_page_size=ctx.settings.max_page_size)  # refusals
    found: list[Found] = []
    if cleaned:
        found = await _on_sale(ctx, store, channel, await _index(ctx), cleaned)
        if not found:
            await ctx.search_reads().record_miss(store.id, cleaned, ctx.now())
    return store, page_of(found, first=first, after=after, max_page_size=ctx.settings.max_page_size)


async def _index(ctx: Context) -> SearchIndex:
    reads = ctx.search_reads()
    return await ctx.services.search.current(reads.catalogue)


async def _on_sale(
    ctx: Context, store: Store, channel: Channel, index: SearchIndex, query: str
) -> list[Found]:
    hits = index.search(query, channel)[:CANDIDATES_MAX]
    if not hits:
        return []
    # The index may be a moment old: the products are read again, and shown only while
    # listed on the channel with some SKU not sold out, by the menu's own rules.
    products = await ctx.loaders.product.load_many([h.product_id for h in hits])
    current = [p for p in products if p is not None and p.listed and channel in p.channels]
    priced = {m.product.id: m for m in await priced_products(ctx, store.id, current)}
    selling = {pid: m for pid, m in priced.items() if m.on_sale}
    units = await ctx.services.search.units_sold(
        store.id,
        lambda: ctx.search_reads().units_sold(
            store.id, ctx.now() - timedelta(days=POPULARITY_DAYS)
        ),
    )
    ranked: list[Hit] = rank((h for h in hits if h.product_id in selling), units)
    return [Found(selling[h.product_id], h.matched_by) for h in ranked]


async def search_suggestions(ctx: Context, *, prefix: str, first: int | None) -> list[str]:
    """Names, categories, tags and synonyms for the search box as the customer types."""
    size = 10 if first is None else first
    if not 0 <= size <= SUGGESTIONS_MAX:
        raise DomainError(ErrorCode.OUT_OF_RANGE, field=["first"], min=0, max=SUGGESTIONS_MAX)
    cleaned = clean_query(prefix, ["prefix"])
    if not cleaned or size == 0:
        return []
    return (await _index(ctx)).suggest(cleaned, size)


async def search_synonyms(ctx: Context) -> list[SynonymEntry]:
    require_catalog_editor(ctx.viewer)
    return await ctx.search_reads().synonym_entries()


async def search_misses(ctx: Context, *, first: int | None, after: str | None) -> Page[SearchMiss]:
    """Queries that found nothing, most often first (head office and operators)."""
    require_catalog_editor(ctx.viewer)
    page_of([], first=first, after=after, max_page_size=ctx.settings.max_page_size)
    misses = await ctx.search_reads().misses(MISSES_SHOWN)
    return page_of(misses, first=first, after=after, max_page_size=ctx.settings.max_page_size)


async def products_named(
    ctx: Context, *, query: str, first: int | None, after: str | None
) -> Page[Product]:
    """The chain's products, listed or not, whose name holds ``query`` (staff, for the
    product centre): one statement, by id. An empty query finds nothing."""
    require_staff(ctx.viewer)
    fragment = clean_name_fragment(query)
    size = page_size(first, ctx.settings.max_page_size)
    after_id = decode_key_cursor("product", after)
    rows: list[Product] = []
    if fragment and size:
        rows = await ctx.search_reads().products_named(fragment, after_id=after_id, limit=size + 1)
    return keyset_page(rows, size=size, kind="product", key=lambda p: p.id, after=after_id)
