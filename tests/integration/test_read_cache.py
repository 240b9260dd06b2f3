"""Cached public reads in one server process: kept until a committed change moves what they
show, never older than the last sale committed before the read began, ETags and 304 on GET."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dinegraph.app import create_app, default_services
from dinegraph.context import Clock, Services
from dinegraph.db.uow import SqlUnitOfWork
from dinegraph.domain.events import Event
from dinegraph.domain.stamps import ReadsChanged
from dinegraph.persisted import sha256_of
from dinegraph.read_cache import ReadCache
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.shop import BUY_FLASH, CREATE_CAMPAIGN, new_members, new_shop, new_sku, next_noon

MENU = """query Menu($store: ID!) { menu(storeId: $store, channel: PICKUP) {
  store { id name }
  categories { id name products { id name skus { id price { fen } stock { available soldOut version } } } }
} }"""  # noqa: E501
RECORD_SALE = """mutation($input: RecordSaleInput!) {
  recordSale(input: $input) { sale { id } errors { code message } } }"""
UPDATE_PRODUCT = """mutation($input: UpdateProductInput!) {
  updateProduct(input: $input) { product { id } errors { code } } }"""
UNLIST = """mutation($input: ProductIdInput!) {
  unlistProduct(input: $input) { product { id } errors { code } } }"""
SET_PRICE = """mutation($input: SetStorePriceInput!) {
  setStorePrice(input: $input) { sku { id } errors { code } } }"""
SOLD_OUT = """mutation($input: SetSoldOutInput!) {
  setSoldOut(input: $input) { errors { code } } }"""
THRESHOLD = """mutation($input: SetLowStockThresholdInput!) {
  setLowStockThreshold(input: $input) { errors { code } } }"""
PROVIDER = """mutation($input: SetDeliveryProviderInput!) {
  setStoreDeliveryProvider(input: $input) { provider errors { code } } }"""
END = """mutation End($id: ID!) { endCampaign(campaignId: $id) { campaign { state } errors { code } } }"""  # noqa: E501
CAMPAIGNS = """query Running($store: ID!) { campaigns(storeId: $store) {
  id name state quotaLeft(storeId: $store) items { price { fen } sku { id name } } } }"""
STORE = "query Store($id: ID!) { store(id: $id) { id name deliveryProvider } }"


@dataclass
class Served:
    """An app serving with its lifespan (the read cache follows the broker), and its client."""

    http: httpx.AsyncClient
    cache: ReadCache
    services: Services

    async def read(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """The answer's data, and whether it came from the cache."""
        hits = self.cache.hits
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"], self.cache.hits > hits

    async def write(self, mutation: str, variables: dict[str, Any], who: dict[str, str]) -> Any:
        response = await self.http.post(
            "/graphql", json={"query": mutation, "variables": variables}, headers=who
        )
        body = response.json()
        assert body.get("data") is not None, body
        payload = next(iter(body["data"].values()))
        assert payload["errors"] == [], payload
        return payload


@asynccontextmanager
async def serving(
    settings: Settings, engine: AsyncEngine, *, clock: Clock | None = None, **overrides: Any
) -> AsyncIterator[Served]:
    """An in-process app with its lifespan running, its clock at noon unless given."""
    served_settings = settings.model_copy(update=overrides)
    services = replace(default_services(served_settings), clock=clock or Clock(next_noon()))
    app = create_app(served_settings, engine, services=services)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as http,
    ):
        yield Served(http, app.state.read_cache, services)


def sku_in(menu: dict[str, Any], sku_id: int) -> dict[str, Any] | None:
    """The SKU as a menu shows it, with its product's id and name; None when not on it."""
    wanted = encode_id("Sku", sku_id)
    for category in menu["menu"]["categories"]:
        for product in category["products"]:
            for sku in product["skus"]:
                if sku["id"] == wanted:
                    return {**sku, "product": product["id"], "name": product["name"]}
    return None


def sale(store_id: int, sku_id: int, quantity: int = 1) -> dict[str, Any]:
    return {
        "input": {
            "storeId": encode_id("Store", store_id),
            "source": "POS",
            "externalOrderId": uuid.uuid4().hex,
            "lines": [{"skuId": encode_id("Sku", sku_id), "quantity": quantity}],
        }
    }


def menu_of(store_id: int) -> dict[str, Any]:
    return {"store": encode_id("Store", store_id)}


async def test_a_menu_is_kept_until_a_sale_at_its_store_and_only_that_store(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine, stores_north_m=(0, 300))
    here, there = shop.store_ids
    sku = await new_sku(engine, price_fen=1800, stock={here: 10, there: 10})
    async with serving(settings, engine) as app:
        for store in (here, there):
            first, hit = await app.read(MENU, menu_of(store))
            assert not hit
            again, hit = await app.read(MENU, menu_of(store))
            assert hit and again == first

        await app.write(RECORD_SALE, sale(here, sku), credentials.hq_admin)

        after, hit = await app.read(MENU, menu_of(here))
        assert not hit
        assert sku_in(after, sku)["stock"]["available"] == 9  # type: ignore[index]
        elsewhere, hit = await app.read(MENU, menu_of(there))
        assert hit
        assert sku_in(elsewhere, sku)["stock"]["available"] == 10  # type: ignore[index]


async def test_catalogue_changes_reach_every_menu_and_the_categories(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    (store,) = shop.store_ids
    sku = await new_sku(engine, price_fen=2200, stock={store: 5})
    categories = "{ categories { id name products { id name } } }"
    async with serving(settings, engine) as app:
        menu, _ = await app.read(MENU, menu_of(store))
        product = sku_in(menu, sku)["product"]  # type: ignore[index]
        await app.read(categories)
        assert (await app.read(MENU, menu_of(store)))[1]
        assert (await app.read(categories))[1]

        renamed = f"改名{uuid.uuid4().hex[:6]}"
        update = {"input": {"id": product, "name": renamed}}
        await app.write(UPDATE_PRODUCT, update, credentials.operator)
        menu, hit = await app.read(MENU, menu_of(store))
        assert not hit and sku_in(menu, sku)["name"] == renamed  # type: ignore[index]
        listed, hit = await app.read(categories)
        names = {p["name"] for c in listed["categories"] for p in c["products"]}
        assert not hit and renamed in names

        await app.write(UNLIST, {"input": {"id": product}}, credentials.operator)
        menu, hit = await app.read(MENU, menu_of(store))
        assert not hit and sku_in(menu, sku) is None


async def test_a_store_price_moves_that_stores_menu_only(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine, stores_north_m=(0, 300))
    here, there = shop.store_ids
    sku = await new_sku(engine, price_fen=3000, stock={here: 5, there: 5})
    async with serving(settings, engine) as app:
        for store in (here, there):
            await app.read(MENU, menu_of(store))
        price = {"storeId": encode_id("Store", here), "skuId": encode_id("Sku", sku)}
        await app.write(SET_PRICE, {"input": {**price, "priceFen": 2500}}, credentials.hq_admin)
        menu, hit = await app.read(MENU, menu_of(here))
        assert not hit and sku_in(menu, sku)["price"] == {"fen": 2500}  # type: ignore[index]
        menu, hit = await app.read(MENU, menu_of(there))
        assert hit and sku_in(menu, sku)["price"] == {"fen": 3000}  # type: ignore[index]


async def test_sold_out_marks_and_new_levels_reach_the_menu(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    (store,) = shop.store_ids
    dish = await new_sku(engine, price_fen=1500, tracked=False)
    boxed = await new_sku(engine, price_fen=1500)  # tracked, no level at the store yet
    async with serving(settings, engine) as app:
        menu, _ = await app.read(MENU, menu_of(store))
        assert sku_in(menu, dish)["stock"]["soldOut"] is False  # type: ignore[index]
        assert sku_in(menu, boxed)["stock"]["version"] == 0  # type: ignore[index]
        where = {"storeId": encode_id("Store", store)}

        await app.write(
            SOLD_OUT,
            {"input": {**where, "skuId": encode_id("Sku", dish), "soldOut": True}},
            credentials.hq_admin,
        )
        menu, hit = await app.read(MENU, menu_of(store))
        assert not hit and sku_in(menu, dish)["stock"]["soldOut"] is True  # type: ignore[index]

        await app.write(
            THRESHOLD,
            {"input": {**where, "skuId": encode_id("Sku", boxed), "threshold": 3}},
            credentials.hq_admin,
        )
        menu, hit = await app.read(MENU, menu_of(store))
        assert not hit and sku_in(menu, boxed)["stock"]["version"] == 1  # type: ignore[index]


async def test_store_settings_reach_store_and_stores(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    stores = """query Near($lat: Float!, $lng: Float!) {
      stores(near: {lat: $lat, lng: $lng}, first: 1) { edges { node { id deliveryProvider } } } }"""
    near = {"lat": shop.centre[0], "lng": shop.centre[1]}
    async with serving(settings, engine) as app:
        assert (await app.read(STORE, {"id": shop.store()}))[0]["store"]["deliveryProvider"] == (
            "DADA"
        )
        await app.read(stores, near)
        provider = {"input": {"storeId": shop.store(), "provider": "OWN_RIDER"}}
        await app.write(PROVIDER, provider, credentials.hq_admin)
        one, hit = await app.read(STORE, {"id": shop.store()})
        assert not hit and one["store"]["deliveryProvider"] == "OWN_RIDER"
        listed, hit = await app.read(stores, near)
        [edge] = listed["stores"]["edges"]
        assert not hit and edge["node"] == {"id": shop.store(), "deliveryProvider": "OWN_RIDER"}


def _campaign(sku: int, store: int, starts: datetime, ends: datetime) -> dict[str, Any]:
    return {
        "input": {
            "kind": "FLASH_SALE",
            "name": f"缓存测试{uuid.uuid4().hex[:6]}",
            "startsAt": starts.isoformat(),
            "endsAt": ends.isoformat(),
            "items": [{"skuId": encode_id("Sku", sku), "priceFen": 990}],
            "storeIds": [encode_id("Store", store)],
            "channels": ["PICKUP"],
            "quotaPerStore": 10,
        }
    }


async def test_campaigns_their_quotas_and_their_end_move_the_running_list(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    (store,) = shop.store_ids
    sku = await new_sku(engine, price_fen=3000, stock={store: 30})
    (buyer,) = await new_members(settings, engine, 1)
    running = {"store": shop.store()}
    async with serving(settings, engine) as app:
        now = app.services.clock()
        assert await app.read(CAMPAIGNS, running) == ({"campaigns": []}, False)
        assert (await app.read(CAMPAIGNS, running))[1]

        made = await app.write(
            CREATE_CAMPAIGN,
            _campaign(sku, store, now - timedelta(hours=1), now + timedelta(hours=5)),
            credentials.operator,
        )
        campaign = made["campaign"]["id"]
        listed, hit = await app.read(CAMPAIGNS, running)
        assert not hit and [(c["id"], c["quotaLeft"]) for c in listed["campaigns"]] == [
            (campaign, 10)
        ]
        assert (await app.read(CAMPAIGNS, running))[1]

        await app.write(BUY_FLASH, {"campaignId": campaign}, buyer)
        listed, hit = await app.read(CAMPAIGNS, running)
        assert not hit and listed["campaigns"][0]["quotaLeft"] == 9

        await app.write(END, {"id": campaign}, credentials.operator)
        assert await app.read(CAMPAIGNS, running) == ({"campaigns": []}, False)


async def test_a_campaign_appears_when_it_starts_and_goes_when_it_ends_with_no_write(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    (store,) = shop.store_ids
    sku = await new_sku(engine, price_fen=3000, stock={store: 30})
    clock = Clock(next_noon())
    running = {"store": shop.store()}
    node = "query($id: ID!) { node(id: $id) { ... on Campaign { state } } }"
    async with serving(settings, engine, clock=clock) as app:
        now = clock()
        made = await app.write(
            CREATE_CAMPAIGN,
            _campaign(sku, store, now + timedelta(minutes=10), now + timedelta(minutes=30)),
            credentials.operator,
        )
        campaign = {"id": made["campaign"]["id"]}
        for _ in range(2):
            assert (await app.read(CAMPAIGNS, running))[0] == {"campaigns": []}
            assert (await app.read(node, campaign))[0] == {"node": None}  # not yet public
        assert (await app.read(CAMPAIGNS, running))[1]

        clock.advance(timedelta(minutes=10))
        listed, hit = await app.read(CAMPAIGNS, running)
        assert not hit and [c["state"] for c in listed["campaigns"]] == ["RUNNING"]
        assert await app.read(node, campaign) == ({"node": {"state": "RUNNING"}}, False)
        assert (await app.read(CAMPAIGNS, running))[1]

        clock.advance(timedelta(minutes=20))
        assert await app.read(CAMPAIGNS, running) == ({"campaigns": []}, False)
        assert await app.read(node, campaign) == ({"node": {"state": "ENDED"}}, False)


async def test_another_stores_campaign_starting_leaves_a_stores_list_cached(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    here, there = await new_shop(engine), await new_shop(engine)
    (store,), (elsewhere,) = here.store_ids, there.store_ids
    sku = await new_sku(engine, price_fen=3000, stock={store: 30, elsewhere: 30})
    clock = Clock(next_noon())
    running = {"store": here.store()}
    async with serving(settings, engine, clock=clock) as app:
        now = clock()
        await app.write(
            CREATE_CAMPAIGN,
            _campaign(sku, elsewhere, now + timedelta(minutes=5), now + timedelta(minutes=30)),
            credentials.operator,
        )
        await app.write(
            CREATE_CAMPAIGN,
            _campaign(sku, store, now + timedelta(minutes=10), now + timedelta(minutes=30)),
            credentials.operator,
        )
        assert await app.read(CAMPAIGNS, running) == ({"campaigns": []}, False)

        clock.advance(timedelta(minutes=6))  # the other store's campaign has started
        assert await app.read(CAMPAIGNS, running) == ({"campaigns": []}, True)
        assert [
            c["state"]
            for c in (await app.read(CAMPAIGNS, {"store": there.store()}))[0]["campaigns"]
        ] == ["RUNNING"]

        clock.advance(timedelta(minutes=4))  # this store's has
        listed, hit = await app.read(CAMPAIGNS, running)
        assert not hit and [c["state"] for c in listed["campaigns"]] == ["RUNNING"]


async def test_staff_and_private_reads_always_execute(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    private = [
        ("query($id: ID!) { store(id: $id) { name pendingOrders } }", {"id": shop.store()}),
        ("{ viewer { member { id } } }", {}),
        ('{ node(id: "bm90IGFuIGlk") { id } }', {}),  # an answer with errors: INVALID_ID
    ]
    async with serving(settings, engine) as app:
        for _ in range(2):
            await app.read(STORE, {"id": shop.store()}, credentials.hq_admin)
            for query, variables in private:
                response = await app.http.post(
                    "/graphql", json={"query": query, "variables": variables}
                )
                assert response.status_code == 200
        assert app.cache.hits == 0 and len(app.cache) == 0


async def test_members_and_partners_share_the_public_answer_and_keep_it_private(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    variables = {"id": shop.store()}
    async with serving(settings, engine) as app:
        anonymous, _ = await app.read(STORE, variables)
        for who in (credentials.member, credentials.partner):
            assert await app.read(STORE, variables, who) == (anonymous, True)
        params = {"query": STORE, "variables": orjson.dumps(variables).decode()}
        public = await app.http.get("/graphql", params=params)
        private = await app.http.get("/graphql", params=params, headers=credentials.member)
    assert public.headers["cache-control"] == "public, max-age=0, must-revalidate"
    assert private.headers["cache-control"] == "private, max-age=0, must-revalidate"
    assert public.headers["etag"] == private.headers["etag"]
    assert "Authorization" in public.headers["vary"]


async def test_a_persisted_query_over_get_has_an_etag_and_answers_304_until_a_sale(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    (store,) = shop.store_ids
    sku = await new_sku(engine, price_fen=1200, stock={store: 4})
    query = MENU + " # read-cache etag"
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256_of(query)}}
    params = {
        "extensions": orjson.dumps(persisted).decode(),
        "variables": orjson.dumps(menu_of(store)).decode(),
        "operationName": "Menu",
    }
    async with serving(settings, engine) as app:
        registered = await app.http.post(
            "/graphql", json={"query": query, "variables": menu_of(store), "extensions": persisted}
        )
        assert registered.status_code == 200 and "errors" not in registered.json()
        first = await app.http.get("/graphql", params=params)
        assert first.status_code == 200
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "public, max-age=0, must-revalidate"
        assert sku_in(first.json()["data"], sku)["stock"]["available"] == 4  # type: ignore[index]

        hits = app.cache.hits
        unchanged = await app.http.get("/graphql", params=params, headers={"if-none-match": etag})
        assert (unchanged.status_code, unchanged.content) == (304, b"")
        assert unchanged.headers["etag"] == etag and app.cache.hits == hits + 1

        await app.write(RECORD_SALE, sale(store, sku), credentials.hq_admin)
        changed = await app.http.get("/graphql", params=params, headers={"if-none-match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        assert sku_in(changed.json()["data"], sku)["stock"]["available"] == 3  # type: ignore[index]
        private = await app.http.get("/graphql", params={"query": "{ viewer { staff { id } } }"})
        assert private.headers["cache-control"] == "no-store" and "etag" not in private.headers


async def test_requests_the_cache_cannot_key_are_answered_as_without_it(
    settings: Settings, engine: AsyncEngine
) -> None:
    odd = [
        {"query": "{ __typename }", "operationName": {"obj": "ect"}},
        {"query": "query($n: Int) { __typename }", "variables": {"n": 2**70}},
        {"query": "query A { __typename } query B { __typename }"},
        {"query": "{ stores {"},
    ]
    media = {"accept": "application/graphql-response+json"}
    app = create_app(settings, engine)  # its lifespan never runs: no cache
    transport = httpx.ASGITransport(app=app)
    async with (
        serving(settings, engine) as cached,
        httpx.AsyncClient(transport=transport, base_url="http://test") as uncached,
    ):
        for body in odd:
            got = await cached.http.post("/graphql", json=body, headers=media)
            expected = await uncached.post("/graphql", json=body, headers=media)
            assert (got.status_code, got.text) == (expected.status_code, expected.text)
        assert len(cached.cache) == 0


async def test_no_menu_read_shows_a_level_older_than_the_last_sale_committed_before_it_began(
    settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    await sales_race_reads(settings, engine, credentials)


async def sales_race_reads(
    settings: Settings,
    engine: AsyncEngine,
    credentials: Credentials,
    *,
    sales: int = 40,
    sellers: int = 4,
    readers: int = 4,
    **overrides: Any,
) -> None:
    """Many sales of one unit commit while many menu reads run: a read may never show more
    units than were left after the sales whose answers had come back when it was sent."""
    shop = await new_shop(engine)
    (store,) = shop.store_ids
    sku = await new_sku(engine, price_fen=990, stock={store: sales})
    sent = done = 0  # sales sent; sales whose answer has come back
    seen: list[int] = []
    async with serving(settings, engine, **overrides) as app:
        await app.read(MENU, menu_of(store))

        async def read() -> None:
            at_most = sales - done
            menu, _ = await app.read(MENU, menu_of(store))
            level = sku_in(menu, sku)["stock"]["available"]  # type: ignore[index]
            assert level <= at_most, f"a read shows {level} units, {at_most} at most were left"
            seen.append(level)

        async def seller() -> None:
            nonlocal sent, done
            while sent < sales:
                sent += 1
                await app.write(RECORD_SALE, sale(store, sku), credentials.hq_admin)
                done += 1
                await read()  # at once: whatever its broker, a process reads its own writes
                await asyncio.sleep(random.uniform(0, 0.02))

        async def reader() -> None:
            while done < sales:
                await read()
                await asyncio.sleep(random.uniform(0, 0.005))

        hits = app.cache.hits
        await asyncio.gather(
            *(seller() for _ in range(sellers)), *(reader() for _ in range(readers))
        )
        served_from_cache = app.cache.hits - hits
        final, _ = await app.read(MENU, menu_of(store))
    assert sku_in(final, sku)["stock"]["available"] == 0  # type: ignore[index]
    assert served_from_cache > 0, "no read was answered from the cache: nothing was tested"
    assert len(set(seen)) > 10, "the reads saw too few levels to have raced the sales"


class _Sink:
    """A broker stand-in that notes what a unit of work tells it, and when."""

    def __init__(self) -> None:
        self.told: list[tuple[str, tuple[str, ...]]] = []

    async def publish_in_transaction(
        self, conn: AsyncConnection, events: Sequence[Event]
    ) -> object:
        self.told += [("in transaction", e.stamps) for e in events if isinstance(e, ReadsChanged)]
        return None

    async def publish_after_commit(self, events: Sequence[Event], receipt: object) -> None:
        self.told += [("after commit", e.stamps) for e in events if isinstance(e, ReadsChanged)]

    def moved_here(self, change: ReadsChanged) -> None:
        self.told.append(("here", change.stamps))


async def test_a_commit_publishes_the_stamps_its_writes_moved_and_a_rollback_none(
    engine: AsyncEngine,
) -> None:
    shop = await new_shop(engine)
    (store,) = shop.store_ids
    sku = await new_sku(engine, price_fen=990, stock={store: 3})
    sink = _Sink()
    async with SqlUnitOfWork(engine, events=sink) as uow:
        await uow.stock.change_level(store, sku, -1)
        await uow.catalog.set_store_price(store, sku, 800)
        await uow.commit()
    moved = tuple(sorted([f"stock.{store}", f"price.{store}"]))
    assert sink.told == [
        ("in transaction", moved),
        ("here", moved),  # before COMMIT
        ("here", moved),  # after it
        ("after commit", moved),
    ]
    sink.told.clear()
    async with SqlUnitOfWork(engine, events=sink) as uow:
        await uow.stock.change_level(store, sku, -1)  # never committed
    async with SqlUnitOfWork(engine, events=sink) as uow:
        await uow.members.add(phone=None, openid=f"o-{uuid.uuid4().hex}", nickname="食客")
        await uow.commit()  # nothing any public read shows
    assert sink.told == []
