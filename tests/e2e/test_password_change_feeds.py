"""A temporary password's holder is refused the live feeds too, on a real server, until the
password is changed (PASSWORD_CHANGE_REQUIRED before the first value)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.resolvers.ids import encode_id
from tests.integration.test_password_change_first import TEMPORARY, temporary_account
from tests.staffing import LOGIN
from tests.wsclient import session

STOCK_FEED = """subscription($storeId: ID!) {
  stockChanged(storeId: $storeId) { sku { id } available version } }"""
CHANGE = """mutation($input: ChangeMyPasswordInput!) {
  changeMyPassword(input: $input) { errors { code } } }"""


async def _post(url: str, query: str, variables: dict[str, Any], token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30) as client:
        body = (
            await client.post(
                f"{url}/graphql", json={"query": query, "variables": variables}, headers=headers
            )
        ).json()
    assert "errors" not in body, body
    return body["data"]


async def test_a_feed_waits_for_the_temporary_password_to_be_changed(
    live_server: str, engine: AsyncEngine
) -> None:
    username = await temporary_account(engine)
    signed = (
        await _post(live_server, LOGIN, {"input": {"username": username, "password": TEMPORARY}})
    )["staffLogin"]
    token = signed["accessToken"]
    init = {"authorization": f"Bearer {token}"}
    feed = {"storeId": encode_id("Store", 1)}

    async with session(live_server, init) as ws:
        await ws.subscribe(STOCK_FEED, feed)
        refused = await ws.receive()
    # As every refusal before a feed's first value: a result with the error and its code.
    assert refused["type"] == "next" and refused["payload"]["data"] is None, refused
    codes = [e["extensions"]["code"] for e in refused["payload"]["errors"]]
    assert codes == ["PASSWORD_CHANGE_REQUIRED"]

    changed = await _post(
        live_server,
        CHANGE,
        {"input": {"currentPassword": TEMPORARY, "newPassword": "my-own-password-2"}},
        token,
    )
    assert changed["changeMyPassword"]["errors"] == []
    async with session(live_server, init) as ws:
        await ws.subscribe(STOCK_FEED, feed)
        first = await ws.next_data()
    assert first["stockChanged"]["version"] >= 0
