"""The campaign contract, verbatim, on a real server: a member opens a group of the demo
chain's group-buy, friends join through share codes while the share page fills live, the
group succeeds when all have paid; a flash sale and a bargain through the same server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.seed import DEMO_CAMPAIGNS
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials
from tests.e2e.conftest import running_server
from tests.shop import CREATE_CAMPAIGN, PAY, new_member, new_shop, new_sku, next_noon
from tests.wsclient import session

# The contract of the issue, as clients are written against it.
OPEN = """
mutation Open($campaignId: ID!) {
  startGroupBuy(campaignId: $campaignId) { group { id shareCode seatsLeft expiresAt } order { id } errors { code message } }
}
"""
JOIN = """
mutation Join($shareCode: String!) {
  joinGroupBuy(shareCode: $shareCode) { group { id seatsLeft status } order { id } errors { code message } }
}
"""

CAMPAIGNS = """
query($kind: CampaignKind) {
  campaigns(kind: $kind) { id kind name state groupSize bargainHelps perMemberLimit
    items { price { fen } sku { id } } stores { id } }
}
"""
GROUP_UPDATES = """
subscription Fill($groupId: ID!) {
  groupBuyUpdates(groupId: $groupId) { id status seatsLeft seatsPaid version members { nickname paid } }
}
"""
SHARE = """
query($code: String!) {
  shareInvite(shareCode: $code) { kind inviterNickname group { id seatsLeft } campaign { name } }
}
"""
ORDER = "query($id: ID!) { order(id: $id) { id status total { fen } } }"
FLASH = """
mutation($campaignId: ID!, $order: CampaignOrderInput) {
  buyFlashSale(campaignId: $campaignId, order: $order) { order { id status } errors { code } }
}
"""
BARGAIN = """
mutation($campaignId: ID!, $storeId: ID) {
  startBargain(campaignId: $campaignId, storeId: $storeId) {
    bargain { id helpsNeeded price { fen } shareCode } errors { code }
  }
}
"""
HELP = """
mutation($code: String!) { helpBargain(shareCode: $code) { cut { fen } bargain { helpsDone } errors { code } } }
"""


_started: dict[str, float] = {}


@pytest.fixture(scope="module")
def campaign_server(settings: Settings) -> Iterator[str]:
    """A real server at noon, sweeping every half second."""
    noon = next_noon()
    _started["noon"], _started["at"] = noon.timestamp(), time.time()
    with running_server(
        settings,
        DINEGRAPH_CLOCK_START=noon.isoformat(),
        DINEGRAPH_ORDER_SWEEP_SECONDS="0.5",
    ) as url:
        yield url


def _server_now() -> datetime:
    """The server's clock, give or take its start-up (it started at noon a moment later)."""
    return datetime.fromtimestamp(_started["noon"] + time.time() - _started["at"], UTC)


async def _gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    body: dict[str, Any] = (
        await client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
    ).json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _demo_campaign(client: httpx.AsyncClient, kind: str) -> dict[str, Any]:
    """The demo chain's campaign of ``kind`` (other tests add campaigns of their own)."""
    found = (await _gql(client, CAMPAIGNS, {"kind": kind}, {}))["campaigns"]
    assert all(c["kind"] == kind and c["state"] == "RUNNING" for c in found)
    demo = {d.name for d in DEMO_CAMPAIGNS}
    (campaign,) = [c for c in found if c["name"] in demo]
    return dict(campaign)


async def test_open_join_and_fill_a_group_live(
    campaign_server: str, settings: Settings, engine: AsyncEngine
) -> None:
    members = [(await new_member(settings, engine))[1] for _ in range(4)]
    leader, friend, third, late = members
    async with httpx.AsyncClient(base_url=campaign_server, timeout=10) as client:
        campaign = await _demo_campaign(client, "GROUP_BUY")
        assert campaign["groupSize"] == 3
        opened = (await _gql(client, OPEN, {"campaignId": campaign["id"]}, leader))["startGroupBuy"]
        assert opened["errors"] == []
        group = opened["group"]
        assert group["seatsLeft"] == 2 and group["shareCode"] and group["expiresAt"]
        code = group["shareCode"]

        invite = (await _gql(client, SHARE, {"code": code}, friend))["shareInvite"]
        assert invite["kind"] == "GROUP_BUY" and invite["group"]["id"] == group["id"]
        assert invite["campaign"]["name"] == campaign["name"]

        async with session(campaign_server, {}) as page:  # the share page, anyone's
            await page.subscribe(GROUP_UPDATES, {"groupId": group["id"]})
            first = (await page.next_data())["groupBuyUpdates"]
            assert (first["seatsLeft"], first["status"]) == (2, "OPEN")
            await asyncio.sleep(0.3)

            joined = (await _gql(client, JOIN, {"shareCode": code}, friend))["joinGroupBuy"]
            assert joined == {
                "group": {"id": group["id"], "seatsLeft": 1, "status": "OPEN"},
                "order": joined["order"],
                "errors": [],
            }
            update = (await page.next_data())["groupBuyUpdates"]
            assert update["seatsLeft"] == 1 and update["version"] > first["version"]

            last = (await _gql(client, JOIN, {"shareCode": code}, third))["joinGroupBuy"]
            assert last["group"]["seatsLeft"] == 0 and last["errors"] == []
            full = (await _gql(client, JOIN, {"shareCode": code}, late))["joinGroupBuy"]
            assert full["group"] is None and full["errors"][0]["code"] == "GROUP_FULL"

            order_ids = [opened["order"]["id"], joined["order"]["id"], last["order"]["id"]]
            for who, order_id in zip((leader, friend, third), order_ids, strict=True):
                paid = (await _gql(client, PAY, {"orderId": order_id}, who))["payOrder"]
                assert paid["errors"] == []
            seen = (await page.next_data())["groupBuyUpdates"]
            while seen["status"] == "OPEN":
                seen = (await page.next_data())["groupBuyUpdates"]
            assert seen["status"] == "SUCCEEDED" and seen["seatsPaid"] == 3
            assert all(m["paid"] for m in seen["members"])
        for who, order_id in zip((leader, friend, third), order_ids, strict=True):
            assert (await _gql(client, ORDER, {"id": order_id}, who))["order"]["status"] == "PAID"


async def test_flash_sale_and_bargain_on_the_demo_campaigns(
    campaign_server: str, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    (_, buyer), (_, helper) = await new_member(settings, engine), await new_member(settings, engine)
    async with httpx.AsyncClient(base_url=campaign_server, timeout=10) as client:
        flash = await _demo_campaign(client, "FLASH_SALE")
        store = flash["stores"][0]["id"]
        bought = (
            await _gql(
                client, FLASH, {"campaignId": flash["id"], "order": {"storeId": store}}, buyer
            )
        )["buyFlashSale"]
        assert bought["errors"] == [] and bought["order"]["status"] == "PENDING_PAYMENT"
        again = (
            await _gql(
                client, FLASH, {"campaignId": flash["id"], "order": {"storeId": store}}, buyer
            )
        )["buyFlashSale"]
        assert again["errors"][0]["code"] == "CAMPAIGN_LIMIT_REACHED"

        bargain_campaign = await _demo_campaign(client, "BARGAIN")
        started = (
            await _gql(
                client,
                BARGAIN,
                {
                    "campaignId": bargain_campaign["id"],
                    "storeId": bargain_campaign["stores"][0]["id"],
                },
                buyer,
            )
        )["startBargain"]
        assert started["errors"] == []
        assert started["bargain"]["helpsNeeded"] == bargain_campaign["bargainHelps"]
        helped = (await _gql(client, HELP, {"code": started["bargain"]["shareCode"]}, helper))[
            "helpBargain"
        ]
        assert helped["errors"] == [] and helped["cut"]["fen"] > 0
        assert helped["bargain"]["helpsDone"] == 1


async def test_the_server_fails_a_group_that_runs_out_of_time_and_refunds_it(
    campaign_server: str, settings: Settings, engine: AsyncEngine, credentials: Credentials
) -> None:
    shop = await new_shop(engine)
    store = shop.store_ids[0]
    sku = await new_sku(engine, price_fen=4990, stock={store: 10})
    now = _server_now()
    spec = {
        "kind": "GROUP_BUY",
        "name": "限时三人团",
        "startsAt": (now - timedelta(hours=1)).isoformat(),
        # The campaign, and so its groups, end a few seconds from now.
        "endsAt": (now + timedelta(seconds=4)).isoformat(),
        "items": [{"skuId": encode_id("Sku", sku), "priceFen": 2990}],
        "storeIds": [encode_id("Store", store)],
        "channels": ["PICKUP"],
        "quotaPerStore": 3,
        "groupSize": 3,
    }
    _, leader = await new_member(settings, engine)
    async with httpx.AsyncClient(base_url=campaign_server, timeout=10) as client:
        created = (await _gql(client, CREATE_CAMPAIGN, {"input": spec}, credentials.operator))[
            "createCampaign"
        ]
        assert created["errors"] == []
        campaign = created["campaign"]["id"]
        opened = (await _gql(client, OPEN, {"campaignId": campaign}, leader))["startGroupBuy"]
        assert opened["errors"] == []
        order_id = opened["order"]["id"]
        assert (await _gql(client, PAY, {"orderId": order_id}, leader))["payOrder"]["errors"] == []
        deadline = time.monotonic() + 20
        status = "GROUPING"
        while status == "GROUPING" and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            found = (await _gql(client, REFUNDED, {"id": order_id}, leader))["order"]
            status = found["status"]
        assert status == "CANCELLED"
        assert found["refunded"]["fen"] == found["total"]["fen"] > 0
        group = (await _gql(client, GROUP, {"id": opened["group"]["id"]}, leader))["groupBuy"]
        assert group["status"] == "FAILED"


REFUNDED = "query($id: ID!) { order(id: $id) { status total { fen } refunded { fen } } }"
GROUP = "query($id: ID!) { groupBuy(id: $id) { status seatsLeft } }"
