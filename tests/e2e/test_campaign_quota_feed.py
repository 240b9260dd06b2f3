"""The campaign quota feed on a real server: staff watch a flash sale's quota move with each
committed purchase, and see the campaign end; staff of another store are refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db import identity as identity_db
from dinegraph.domain.identity import StaffRole
from dinegraph.resolvers.ids import encode_id
from dinegraph.security import issue_staff_token
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.databases import ON_POSTGRES, SKIP_POSTGRES_REASON, broker_url
from tests.e2e.conftest import running_server
from tests.shop import BUY_FLASH, CREATE_CAMPAIGN, campaign_input, new_member, new_shop, new_sku
from tests.wsclient import Session, session

QUOTA_FEED = """
subscription Quotas($storeId: ID) {
  campaignQuotaFeed(storeId: $storeId) {
    state sold left campaign { id name } store { id }
    skus { quota sold left sku { id } }
  }
}
"""
END = """
mutation End($id: ID!) { endCampaign(campaignId: $id) { campaign { state } errors { code } } }
"""


async def _gql(
    server: str, query: str, variables: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server, timeout=30) as client:
        body: dict[str, Any] = (
            await client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
        ).json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _flash_sale(
    server: str,
    engine: AsyncEngine,
    credentials: Credentials,
    quota: int = 3,
    store: int | None = None,
) -> tuple[str, int]:
    """A flash sale running at a store of its own (or ``store``): (campaign id, store)."""
    if store is None:
        store = (await new_shop(engine)).store_ids[0]
    sku = await new_sku(engine, price_fen=3990, stock={store: 20})
    spec = campaign_input(
        "FLASH_SALE",
        sku_id=sku,
        price_fen=990,
        store_ids=[store],
        now=datetime.now(UTC),
        quota=quota,
    )
    created = (await _gql(server, CREATE_CAMPAIGN, {"input": spec}, credentials.hq_admin))[
        "createCampaign"
    ]
    assert created["errors"] == [], created
    return str(created["campaign"]["id"]), store


async def _buy(server: str, campaign: str, store: str, buyer: dict[str, str]) -> list[Any]:
    bought = await _gql(
        server, BUY_FLASH, {"campaignId": campaign, "order": {"storeId": store}}, buyer
    )
    errors: list[Any] = bought["buyFlashSale"]["errors"]
    return errors


async def _quota_of(ws: Session, campaign: str) -> dict[str, Any]:
    """The next quota the feed sends of ``campaign`` (others' campaigns are skipped)."""
    while True:
        quota: dict[str, Any] = (await ws.next_data())["campaignQuotaFeed"]
        if quota["campaign"]["id"] == campaign:
            return quota


def _staff(token: dict[str, str]) -> dict[str, str]:
    return {"authorization": token["Authorization"]}


async def test_head_office_sees_each_committed_purchase_move_the_quota_then_the_end(
    live_server: str, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    campaign, store_id = await _flash_sale(live_server, engine, credentials)
    store = encode_id("Store", store_id)
    (_, first), (_, second) = await new_member(settings, engine), await new_member(settings, engine)
    async with (
        session(live_server, _staff(credentials.hq_admin)) as at_store,
        session(live_server, _staff(credentials.hq_admin)) as twin,
        session(live_server, _staff(credentials.hq_admin)) as chain,
    ):
        await at_store.subscribe(QUOTA_FEED, {"storeId": store})
        await twin.subscribe(QUOTA_FEED, {"storeId": store})  # shares at_store's execution
        await chain.subscribe(QUOTA_FEED, {})  # head office without a store: every store
        now = await _quota_of(at_store, campaign)
        assert (await _quota_of(twin, campaign)) == now
        assert now["state"] == "RUNNING" and now["store"] == {"id": store}
        assert (now["sold"], now["left"]) == (0, 3)
        assert [(s["quota"], s["sold"], s["left"]) for s in now["skus"]] == [(3, 0, 3)]
        assert (await _quota_of(chain, campaign)) == now

        assert await _buy(live_server, campaign, store, first) == []
        bought = await _quota_of(at_store, campaign)
        assert (bought["sold"], bought["left"]) == (1, 2)
        assert (await _quota_of(twin, campaign)) == bought
        assert (await _quota_of(chain, campaign)) == bought

        # A purchase refused (the member's limit) changes nothing and is never heard of:
        # the next quota sent is the following committed purchase's.
        refused = await _buy(live_server, campaign, store, first)
        assert [e["code"] for e in refused] == ["CAMPAIGN_LIMIT_REACHED"]
        assert await _buy(live_server, campaign, store, second) == []
        again = await _quota_of(at_store, campaign)
        assert (again["sold"], again["left"]) == (2, 1)
        assert again["skus"][0] == {**bought["skus"][0], "sold": 2, "left": 1}

        ended = await _gql(live_server, END, {"id": campaign}, credentials.hq_admin)
        assert ended["endCampaign"]["errors"] == []
        last = await _quota_of(at_store, campaign)
        assert (last["state"], last["sold"], last["left"]) == ("ENDED", 2, 0)

    # A subscriber arriving now is not told of the ended campaign: the first quota it is
    # sent is that of the next campaign set up at the store.
    async with session(live_server, _staff(credentials.hq_admin)) as late:
        await late.subscribe(QUOTA_FEED, {"storeId": store})
        following, _ = await _flash_sale(live_server, engine, credentials, store=store_id)
        first_sent = (await late.next_data())["campaignQuotaFeed"]
    assert first_sent["campaign"]["id"] == following
    assert (first_sent["state"], first_sent["left"]) == ("RUNNING", 3)


async def test_a_manager_of_another_store_is_refused_the_stores_quotas(
    live_server: str, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    campaign, store_id = await _flash_sale(live_server, engine, credentials, quota=2)
    store = encode_id("Store", store_id)
    async with session(live_server, _staff(credentials.manager_store_1)) as other:
        await other.subscribe(QUOTA_FEED, {"storeId": store})
        refused = await other.receive()
        assert refused["type"] == "next", refused
        assert refused["payload"]["data"] is None
        assert refused["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert refused["payload"]["errors"][0]["extensions"]["field"] == ["storeId"]
        assert (await other.receive())["type"] == "complete"

    # Its own manager is let in, and a visitor is asked to sign in.
    manager = await identity_db.ensure_staff(
        engine,
        username=f"quota-manager-{campaign[-6:]}",
        role=StaffRole.STORE_MANAGER,
        store_ids=[store_id],
    )
    token = f"Bearer {issue_staff_token(settings, manager)}"
    async with session(live_server, {"authorization": token}) as own:
        await own.subscribe(QUOTA_FEED, {"storeId": store})
        assert (await _quota_of(own, campaign))["left"] == 2
    async with session(live_server) as visitor:
        await visitor.subscribe(QUOTA_FEED, {"storeId": store})
        refused = await visitor.receive()
        assert refused["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason=SKIP_POSTGRES_REASON)
@pytest.mark.parametrize("broker", ["postgres", "redis"])
async def test_a_purchase_through_process_a_moves_the_quota_followed_on_process_b(
    settings: Settings, credentials: Credentials, engine: AsyncEngine, broker: str
) -> None:
    url = broker_url(settings, broker)
    with (
        running_server(settings, DINEGRAPH_BROKER_URL=url) as a,
        running_server(settings, DINEGRAPH_BROKER_URL=url) as b,
    ):
        campaign, store_id = await _flash_sale(a, engine, credentials)
        store = encode_id("Store", store_id)
        _, buyer = await new_member(settings, engine)
        async with session(b, _staff(credentials.hq_admin)) as ws:
            await ws.subscribe(QUOTA_FEED, {"storeId": store})
            assert (await _quota_of(ws, campaign))["left"] == 3
            assert await _buy(a, campaign, store, buyer) == []
            moved = await _quota_of(ws, campaign)
    assert (moved["sold"], moved["left"]) == (1, 2)
