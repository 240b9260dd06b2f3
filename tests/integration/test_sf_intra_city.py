"""The 顺丰同城 adapter against ``FakeSfIntraCity``: signed requests SF accepts, one order
per delivery however often it is sent, quotes, cancellations, refusals for good against
outages worth another try."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterator

import pytest

from dinegraph.domain.calls import CallRefused, RetryLater
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.ports import DeliveryQuote, DispatchRequest
from dinegraph.integrations.sf_intra_city import SfIntraCityPlatform, delivery_id_of, sign
from tests.fakes.sf_intra_city import BAD_SIGN, EXISTS, REFUSED, REPLAYED, FakeSfIntraCity

REQUEST = DispatchRequest(
    delivery_id=41,
    order_id=7,
    store_name="味知堂 福田店",
    pickup=GeoPoint(22.54, 114.05),
    dropoff=GeoPoint(22.55, 114.06),
    address="1号楼 101",
    contact_name="王女士",
    contact_phone="13900000000",
    store_code="SZ-FT-01",
    cargo_fen=5800,
)


@pytest.fixture
def sf() -> Iterator[FakeSfIntraCity]:
    with FakeSfIntraCity().running() as fake:
        yield fake


def adapter(
    fake: FakeSfIntraCity, *, key: str | None = None, timeout: float = 5
) -> SfIntraCityPlatform:
    return SfIntraCityPlatform(
        base_url=fake.url,
        dev_id=fake.dev_id,
        dev_key=key or fake.dev_key,
        shop_id="3243279847393",
        timeout_seconds=timeout,
    )


def test_the_signature_is_base64_of_the_hex_md5_of_body_dev_id_and_key() -> None:
    body = b'{"dev_id":1588000001,"push_time":1}'
    hexdigest = hashlib.md5(body + b"&1588000001&k").hexdigest()
    assert sign(body, "1588000001", "k") == base64.b64encode(hexdigest.encode()).decode()
    assert sign(body, "1588000001", "k") != sign(body, "1588000001", "other")
    assert delivery_id_of("delivery-41") == 41
    assert delivery_id_of("someone-else-41") is None
    assert delivery_id_of("delivery-x") is None


async def test_an_order_is_placed_once_however_often_it_is_sent(sf: FakeSfIntraCity) -> None:
    platform = adapter(sf)
    assert await platform.dispatch(REQUEST) is None  # SF names its rider later
    assert sf.placed() == ["delivery-41"]
    order = sf.orders["delivery-41"]
    assert (order["shop_id"], order["shop_type"], order["lbs_type"]) == ("3243279847393", 1, 2)
    assert order["receive"]["user_phone"] == "13900000000"
    assert order["receive"]["user_lat"] == "22.55"
    assert order["order_detail"]["total_price"] == 5800
    # The answer was lost and the call made again: SF has the order, so that is success.
    assert await platform.dispatch(REQUEST) is None
    assert sf.placed() == ["delivery-41"]
    # Refused as a duplicate (or, within the same second, as a replay), then looked up.
    assert sf.requests[0][0] == "createorder" and sf.requests[-1][0] == "getorderstatus"
    assert sf.refusals[-1] in (EXISTS, REPLAYED)
    stale = sf.push_body({"dev_id": int(sf.dev_id), "order_id": "x", "push_time": 1})
    answer = sf.post_signed(f"{sf.url}/open/api/external/getorderstatus", stale)
    assert answer.json()["error_code"] == 1003  # an old push_time: refused

    await platform.cancel(41)
    assert sf.status["delivery-41"] == 2
    assert sf.cancel_reasons["delivery-41"] == (313, "顾客已退款")
    await platform.cancel(41)  # again: already cancelled is success
    with pytest.raises(CallRefused) as refused:
        await platform.cancel(99)  # never placed
    assert refused.value.reason == "SF_2002"


async def test_a_quote_is_the_fee_and_the_expected_time(sf: FakeSfIntraCity) -> None:
    sf.fee_fen, sf.eta_seconds = 1350, 2400
    quote = await adapter(sf).quote(REQUEST)
    assert quote == DeliveryQuote(fee_fen=1350, eta_seconds=2400, distance_m=2100)
    assert sf.placed() == []  # a quote orders nothing
    sf.refuse_orders = True
    with pytest.raises(CallRefused) as refused:
        await adapter(sf).quote(REQUEST)
    assert refused.value.reason == f"SF_{REFUSED}"


async def test_refusals_are_for_good_and_outages_are_worth_another_try(
    sf: FakeSfIntraCity,
) -> None:
    with pytest.raises(CallRefused) as refused:
        await adapter(sf, key="not-the-key").dispatch(REQUEST)
    assert refused.value.reason == f"SF_{BAD_SIGN}"
    assert sf.placed() == []
    sf.refuse_orders = True
    with pytest.raises(CallRefused) as refused:
        await adapter(sf).dispatch(REQUEST)
    assert refused.value.reason == f"SF_{REFUSED}"
    sf.refuse_orders = False

    sf.down = True
    with pytest.raises(RetryLater) as later:
        await adapter(sf).dispatch(REQUEST)
    assert later.value.reason == "SF_HTTP_503"
    sf.down = False

    sf.hold_next_order()
    with pytest.raises(RetryLater) as later:
        await adapter(sf, timeout=0.3).dispatch(REQUEST)
    assert later.value.reason == "SF_TIMEOUT"
    assert await asyncio.to_thread(sf.abandoned.wait, 10)
    assert sf.placed() == []

    closed = SfIntraCityPlatform(
        base_url="http://127.0.0.1:9", dev_id="1", dev_key="k", shop_id="1"
    )
    with pytest.raises(RetryLater) as later:
        await closed.dispatch(REQUEST)
    assert later.value.reason == "SF_UNREACHABLE"


def test_the_fake_refuses_a_replayed_request(sf: FakeSfIntraCity) -> None:
    body = orjson_body(sf)
    sf.status["delivery-1"] = 1  # SF has the order
    first = sf.post_signed(f"{sf.url}/open/api/external/cancelorder", body)
    again = sf.post_signed(f"{sf.url}/open/api/external/cancelorder", body)
    assert first.json()["error_code"] == 0
    assert again.json()["error_code"] == 1004  # the very same signed request: a replay


def orjson_body(sf: FakeSfIntraCity) -> bytes:
    return sf.push_body({"dev_id": int(sf.dev_id), "order_id": "delivery-1", "order_type": 2})
