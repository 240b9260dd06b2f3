"""Product search: the mini-program's search box, and head office's synonyms and misses."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import search as domain
from dinegraph.domain.services.search import set_search_synonyms
from dinegraph.resolvers import search as resolve
from dinegraph.schema.catalog import Channel, ProductNode, SkuNode, StoreNode
from dinegraph.schema.common import UserError, page_info
from dinegraph.schema.errors import attempt, raise_for_query

Info = strawberry.Info[Context, None]

MatchKind = domain.MatchKind
strawberry.enum(
    MatchKind,
    name="SearchMatch",
    description="What made a product match a search, best first: its name (whole, its "
    "beginning, its words), a tag, a synonym, its category, its initials or pinyin, a typo "
    "away from its name, or its description.",
)


@strawberry.type(description="A product found, priced and stocked at the store searched.")
class ProductSearchEdge:
    cursor: str
    node: ProductNode
    matched_by: MatchKind


@strawberry.type(description="Products found, best match first.")
class ProductSearchConnection:
    edges: list[ProductSearchEdge]
    page_info: relay.PageInfo
    total_count: int = strawberry.field(
        description="Products found on sale at the store (of the best 200 matches)."
    )


@strawberry.type
class ProductEdge:
    cursor: str
    node: ProductNode


@strawberry.type(description="Products of the chain, by id.")
class ProductConnection:
    edges: list[ProductEdge]
    page_info: relay.PageInfo


@strawberry.type(description="A term and the words customers type for it.")
class SearchSynonym:
    term: str
    synonyms: list[str]
    updated_at: datetime

    @classmethod
    def of(cls, entry: domain.SynonymEntry) -> SearchSynonym:
        kept = entry.synonyms
        return cls(term=kept.term, synonyms=list(kept.synonyms), updated_at=entry.updated_at)


@strawberry.type(description="A search that found nothing at a store, normalised, and how often.")
class SearchMiss:
    query: str
    count: int
    first_seen_at: datetime
    last_seen_at: datetime
    store_id: strawberry.Private[int]

    @strawberry.field
    async def store(self, info: Info) -> StoreNode | None:
        found = await info.context.loaders.store.load(self.store_id)
        return StoreNode.of(found) if found else None


@strawberry.type
class SearchMissEdge:
    cursor: str
    node: SearchMiss


@strawberry.type(description="Searches that found nothing, most often first.")
class SearchMissConnection:
    edges: list[SearchMissEdge]
    page_info: relay.PageInfo


@strawberry.input
class SetSearchSynonymsInput:
    term: str = strawberry.field(description="The word as products are named (小龙虾).")
    synonyms: list[str] = strawberry.field(
        description="Words customers type for it (麻小); empty forgets the term."
    )


@strawberry.type
class SearchSynonymPayload:
    synonym: SearchSynonym | None
    errors: list[UserError]


@strawberry.type
class SearchQuery:
    @strawberry.field(
        description="Products a store sells now on a channel, matching a query typed in "
        "hanzi, pinyin or initials (tcpg), with typos, synonyms, tags and categories; best "
        "match first, popular ones ahead of equal matches. An empty query finds nothing; "
        "a query beyond 50 characters is TOO_LONG; an unknown store NOT_FOUND."
    )
    async def search_products(
        self,
        info: Info,
        query: str,
        store_id: strawberry.ID,
        channel: Channel,
        first: int | None = None,
        after: str | None = None,
    ) -> ProductSearchConnection:
        with raise_for_query(info):
            store, page = await resolve.search_products(
                info.context,
                query=query,
                store_id=store_id,
                channel=channel,
                first=first,
                after=after,
            )
        edges = [
            ProductSearchEdge(
                cursor=cursor,
                node=ProductNode.of(
                    found.product.product,
                    store.id,
                    skus=[SkuNode.of(s.sku, store.id, s) for s in found.product.skus],
                ),
                matched_by=found.matched_by,
            )
            for cursor, found in page.items
        ]
        return ProductSearchConnection(
            edges=edges, page_info=page_info(page), total_count=page.total_count or 0
        )

    @strawberry.field(
        description="The chain's products, listed or not, whose name holds `query` as typed "
        "(any letter case; % and _ are plain characters), by id: staff finding a product in "
        "the product centre. An empty query finds nothing; beyond 50 characters is TOO_LONG."
    )
    async def products(
        self, info: Info, query: str, first: int | None = None, after: str | None = None
    ) -> ProductConnection:
        with raise_for_query(info):
            page = await resolve.products_named(info.context, query=query, first=first, after=after)
        return ProductConnection(
            edges=[ProductEdge(cursor=c, node=ProductNode.of(p)) for c, p in page.items],
            page_info=page_info(page),
        )

    @strawberry.field(
        description="Suggestions for the search box: product names, categories, tags and "
        "synonyms beginning with the prefix, in hanzi, pinyin or initials (at most 20)."
    )
    async def search_suggestions(
        self, info: Info, prefix: str, first: int | None = None
    ) -> list[str]:
        with raise_for_query(info):
            return await resolve.search_suggestions(info.context, prefix=prefix, first=first)

    @strawberry.field(
        description="The synonyms search expands queries with, by term (head office)."
    )
    async def search_synonyms(self, info: Info) -> list[SearchSynonym]:
        with raise_for_query(info):
            entries = await resolve.search_synonyms(info.context)
        return [SearchSynonym.of(e) for e in entries]

    @strawberry.field(
        description="Searches that found nothing, per store and normalised query, most often "
        "first: what customers look for and the menu or the synonyms miss (head office)."
    )
    async def search_misses(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> SearchMissConnection:
        with raise_for_query(info):
            page = await resolve.search_misses(info.context, first=first, after=after)
        return SearchMissConnection(
            edges=[
                SearchMissEdge(
                    cursor=cursor,
                    node=SearchMiss(
                        query=m.query,
                        count=m.count,
                        first_seen_at=m.first_seen_at,
                        last_seen_at=m.last_seen_at,
                        store_id=m.store_id,
                    ),
                )
                for cursor, m in page.items
            ],
            page_info=page_info(page),
        )


@strawberry.type
class SearchMutation:
    @strawberry.mutation(
        description="Set the synonyms of a term, replacing those it had; an empty list "
        "forgets the term. Every server's search follows at once (head office, operators)."
    )
    async def set_search_synonyms(
        self, info: Info, input: SetSearchSynonymsInput
    ) -> SearchSynonymPayload:
        async def run() -> domain.SynonymEntry:
            cmd = domain.SetSearchSynonyms(
                term=input.term, synonyms=tuple(input.synonyms), now=info.context.now()
            )
            return await info.context.run(set_search_synonyms, cmd)

        entry, errors = await attempt(info, run)
        return SearchSynonymPayload(
            synonym=SearchSynonym.of(entry) if entry else None, errors=errors
        )
