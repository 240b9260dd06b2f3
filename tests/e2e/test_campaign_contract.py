"""The campaign contract, verbatim, on a real server: a member opens a group of the demo
chain's group-buy, friends join through share codes while the share page fills live, the
group succeeds when all have paid; a flash sale and a bargain through the same server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app
from dinegraph.db.engine import create_engine
from dinegraph.db.seed import DEMO_CAMPAIGNS
from dinegraph.resolvers.ids import encode_id
from dinegraph.settings import Settings
from tests.conftest import Credentials, make_settings
from tests.databases import fresh_database
from tests.e2e.conftest import SETTLE, ServerClock, run_cli, running_server
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


PLACED_AT = """
mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { placedAt } errors { code } } }
"""


@pytest.fixture(scope="module")
def campaign_server(settings: Settings) -> Iterator[str]:
    """A real server at noon, sweeping every half second."""
    with running_server(
        settings,
        DINEGRAPH_CLOCK_START=next_noon().isoformat(),
        DINEGRAPH_ORDER_SWEEP_SECONDS="0.5",
    ) as url:
        yield url


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
    async with httpx.AsyncClient(base_url=campaign_server, timeout=30) as client:
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
            # The feed listens before it reads the state it sent first: no join is missed.
            assert (first["seatsLeft"], first["status"]) == (2, "OPEN")

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
    async with httpx.AsyncClient(base_url=campaign_server, timeout=30) as client:
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
    _, leader = await new_member(settings, engine)
    async with httpx.AsyncClient(base_url=campaign_server, timeout=30) as client:
        # The server's time, as it stamps an ordinary order the leader places first.
        ordinary = {
            "channel": "PICKUP",
            "storeId": encode_id("Store", store),
            "lines": [{"skuId": encode_id("Sku", sku), "quantity": 1}],
            "idempotencyKey": f"clock-{uuid.uuid4().hex}",
        }
        placed = (await _gql(client, PLACED_AT, {"input": ordinary}, leader))["placeOrder"]
        assert placed["errors"] == [], placed
        clock = ServerClock(placed["order"]["placedAt"])
        now = clock.now()
        # The campaign, and so its groups, end soon: time enough to open and pay first.
        ends = now + timedelta(seconds=10)
        spec = {
            "kind": "GROUP_BUY",
            "name": "限时三人团",
            "startsAt": (now - timedelta(hours=1)).isoformat(),
            "endsAt": ends.isoformat(),
            "items": [{"skuId": encode_id("Sku", sku), "priceFen": 2990}],
            "storeIds": [encode_id("Store", store)],
            "channels": ["PICKUP"],
            "quotaPerStore": 3,
            "groupSize": 3,
        }
        created = (await _gql(client, CREATE_CAMPAIGN, {"input": spec}, credentials.operator))[
            "createCampaign"
        ]
        assert created["errors"] == []
        campaign = created["campaign"]["id"]
        opened = (await _gql(client, OPEN, {"campaignId": campaign}, leader))["startGroupBuy"]
        assert opened["errors"] == []
        expires = datetime.fromisoformat(opened["group"]["expiresAt"])
        assert expires <= ends  # never past the campaign's end
        order_id = opened["order"]["id"]
        assert (await _gql(client, PAY, {"orderId": order_id}, leader))["payOrder"]["errors"] == []
        found = (await _gql(client, REFUNDED, {"id": order_id}, leader))["order"]
        while found["status"] == "GROUPING" and clock.now() < expires + SETTLE:
            await asyncio.sleep(0.5)
            found = (await _gql(client, REFUNDED, {"id": order_id}, leader))["order"]
        assert found["status"] == "CANCELLED", f"still {found['status']} {SETTLE} after expiry"
        assert found["refunded"]["fen"] == found["total"]["fen"] > 0
        group = (await _gql(client, GROUP, {"id": opened["group"]["id"]}, leader))["groupBuy"]
        assert group["status"] == "FAILED"


REFUNDED = "query($id: ID!) { order(id: $id) { status total { fen } refunded { fen } } }"
GROUP = "query($id: ID!) { groupBuy(id: $id) { status seatsLeft } }"


# The README's demo clock.
DEMO_CLOCK = "2026-11-22T12:00:00+08:00"


@pytest.mark.parametrize("clock_start", [DEMO_CLOCK, None], ids=["demo-clock", "real-clock"])
def test_the_demo_campaigns_run_at_the_clock_the_demo_is_served_at(
    tmp_path: Path, clock_start: str | None
) -> None:
    """`dinegraph seed --demo` lays the campaigns out around the server's clock as
    configured, so `campaigns` lists them whether or not DINEGRAPH_CLOCK_START is set."""
    start = {"DINEGRAPH_CLOCK_START": clock_start} if clock_start else {}
    with fresh_database(tmp_path) as url:
        seeded = run_cli(make_settings(url), "seed", "--demo", **start)
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        served = make_settings(url, clock_start=clock_start)

        async def campaigns() -> list[dict[str, Any]]:
            engine = create_engine(served)
            transport = httpx.ASGITransport(app=create_app(served, engine))
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                    found: list[dict[str, Any]] = (await _gql(client, CAMPAIGNS, {}, {}))[
                        "campaigns"
                    ]
                    return found
            finally:
                await engine.dispose()

        found = asyncio.run(campaigns())
    assert sorted(c["name"] for c in found) == sorted(d.name for d in DEMO_CAMPAIGNS)
    assert all(c["state"] == "RUNNING" and c["stores"] for c in found)
