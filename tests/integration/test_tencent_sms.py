"""Login codes by Tencent Cloud SMS, against FakeTencentSms (a real socket).

The fake checks each TC3-HMAC-SHA256 signature as Tencent does. The adapter tells a refusal
for good (ProviderRefused) from a failure worth retrying (ProviderUnavailable: a timeout,
a 5xx, Tencent's InternalError): the login code's text is a call out, so the first is
FAILED at once and the second retried by the relay with backoff. The per-number and
per-address limits are checked before the code is recorded, as before.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.app import create_app
from dinegraph.context import Services
from dinegraph.db.tables import outbound_calls
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.services.auth import LOGIN_CODE_CALL
from dinegraph.integrations.outside import ProviderRefused, ProviderUnavailable
from dinegraph.integrations.tencent_sms import TencentSms, TencentSmsConfig
from dinegraph.settings import Settings
from tests.conftest import GraphQLClient
from tests.fakes.tencent_sms import FakeTencentSms

REQUEST = """mutation($p: String!) { requestLoginCode(phone: $p) { errors { code field } } }"""
LOGIN = """mutation($p: String!, $c: String!) { login(phone: $p, code: $c) {
  token member { id } errors { code } } }"""


def new_phone() -> str:
    return f"137{uuid.uuid4().int % 100_000_000:08d}"


@pytest.fixture
def fake() -> Iterator[FakeTencentSms]:
    server = FakeTencentSms().start()
    yield server
    server.stop()


def config(fake: FakeTencentSms, **changes: Any) -> TencentSmsConfig:
    values: dict[str, Any] = {
        "secret_id": fake.secret_id,
        "secret_key": fake.secret_key,
        "sdk_app_id": fake.sdk_app_id,
        "sign_name": fake.sign_name,
        "template_id": fake.template_id,
        "region": fake.region,
        "endpoint": fake.url,
        "timeout_seconds": 1.0,
        **changes,
    }
    return TencentSmsConfig(**values)


async def send(sms: TencentSms, phone: str, code: str = "123456") -> None:
    try:
        await sms.send_login_code(phone, code)
    finally:
        await sms.aclose()


async def test_a_signed_request_texts_the_code_and_its_minutes(fake: FakeTencentSms) -> None:
    phone = new_phone()
    await send(TencentSms(config(fake)), phone, "654321")
    assert [(m.phone, m.params, m.template_id) for m in fake.messages] == [
        (f"+86{phone}", ["654321", "5"], fake.template_id)
    ]
    assert fake.refusals == []


@pytest.mark.parametrize(
    ("sms", "refusal"),
    [
        (lambda f: TencentSms(config(f, secret_key="wrong")), "AuthFailure.SignatureFailure"),
        (lambda f: TencentSms(config(f, secret_id="AKIDother")), "AuthFailure.SecretIdNotFound"),
        (
            lambda f: TencentSms(config(f), clock=lambda: time.time() - 600),
            "AuthFailure.SignatureExpire",
        ),
        (
            lambda f: TencentSms(config(f, template_id="999")),
            "FailedOperation.TemplateIncorrectOrUnapproved",
        ),
    ],
    ids=["wrong-key", "unknown-id", "stale-timestamp", "wrong-template"],
)
async def test_tencent_refuses_bad_credentials_and_nothing_is_sent(
    fake: FakeTencentSms, sms: Any, refusal: str
) -> None:
    with pytest.raises(ProviderRefused) as refused:
        await send(sms(fake), new_phone())
    assert refused.value.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert refused.value.reason == refusal and fake.refusals == [refusal]
    assert fake.messages == []


@pytest.mark.parametrize(
    ("failure", "kind", "code"),
    [
        ({"status_code": "LimitExceeded.PhoneNumberDailyLimit"}, ProviderRefused, "RATE_LIMITED"),
        (
            {"status_code": "InvalidParameterValue.IncorrectPhoneNumber"},
            ProviderRefused,
            "INVALID_PHONE",
        ),
        ({"error": "InternalError.Timeout"}, ProviderUnavailable, "PROVIDER_UNAVAILABLE"),
        ({"http_status": 502}, ProviderUnavailable, "PROVIDER_UNAVAILABLE"),
        ({"hang": 3.0}, ProviderUnavailable, "PROVIDER_UNAVAILABLE"),  # the timeout is 1 s
    ],
    ids=["daily-limit", "wrong-number", "internal-error", "5xx", "timeout"],
)
async def test_refusals_and_timeouts_say_whether_a_retry_can_help(
    fake: FakeTencentSms, failure: dict[str, Any], kind: type[DomainError], code: str
) -> None:
    fake.fail(**failure)
    with pytest.raises(DomainError) as refused:
        await send(TencentSms(config(fake)), new_phone())
    assert type(refused.value) is kind and refused.value.code.value == code
    assert refused.value.field == ["phone"]
    assert fake.messages == []


async def test_the_log_shows_neither_the_number_nor_the_code(
    fake: FakeTencentSms, caplog: pytest.LogCaptureFixture
) -> None:
    phone = new_phone()
    with caplog.at_level(logging.DEBUG):
        await send(TencentSms(config(fake)), phone, "246810")
        fake.fail(status_code="LimitExceeded.PhoneNumberDailyLimit")
        with pytest.raises(ProviderRefused):
            await send(TencentSms(config(fake)), phone, "135790")
    assert f"{phone[:3]}****{phone[-4:]}" in caplog.text
    for secret in (phone, "246810", "135790", fake.secret_key):
        assert secret not in caplog.text


# --- through GraphQL ------------------------------------------------------------------------


@pytest.fixture
async def app(
    settings: Settings, engine: AsyncEngine, fake: FakeTencentSms
) -> AsyncIterator[tuple[GraphQLClient, Services]]:
    sms_settings = settings.model_copy(
        update={
            "tencent_secret_id": fake.secret_id,
            "tencent_secret_key": SecretStr(fake.secret_key),
            "tencent_sms_sdk_app_id": fake.sdk_app_id,
            "tencent_sms_sign_name": fake.sign_name,
            "tencent_sms_template_id": fake.template_id,
            "tencent_sms_region": fake.region,
            "tencent_sms_endpoint": fake.url,
            "tencent_sms_timeout_seconds": 1.0,
        }
    )
    app = create_app(sms_settings, engine)
    sms = app.state.services.sms
    assert isinstance(sms, TencentSms)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(f"10.9.{uuid.uuid4().int % 250}.1", 1)),
        base_url="http://test",
    ) as http:
        yield GraphQLClient(http), app.state.services
    await sms.aclose()


@pytest.fixture
def client(app: tuple[GraphQLClient, Services]) -> GraphQLClient:
    return app[0]


async def errors_of(client: GraphQLClient, query: str, variables: dict[str, str]) -> list[str]:
    body = await client.execute(query, variables)
    payload = next(iter(body["data"].values()))
    return [e["code"] for e in payload["errors"]]


async def test_a_texted_code_signs_in_and_the_limits_are_unchanged(
    client: GraphQLClient, fake: FakeTencentSms
) -> None:
    phone = new_phone()
    assert await errors_of(client, REQUEST, {"p": phone}) == []
    [code] = fake.codes_sent_to(phone)
    # A second code within the minute is refused before Tencent is asked.
    assert await errors_of(client, REQUEST, {"p": phone}) == ["RATE_LIMITED"]
    assert len(fake.messages) == 1
    body = await client.execute(LOGIN, {"p": phone, "c": code})
    assert body["data"]["login"]["errors"] == [] and body["data"]["login"]["token"]


async def text_call(engine: AsyncEngine, phone: str) -> Any:
    """The ``sms.login_code`` call out recorded for ``phone``."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(outbound_calls).where(outbound_calls.c.kind == LOGIN_CODE_CALL)
            )
        ).all()
    [row] = [r for r in rows if isinstance(r.payload, dict) and r.payload["phone"] == phone]
    return row


async def test_a_refused_text_fails_at_once_and_an_unanswered_one_is_retried(
    app: tuple[GraphQLClient, Services], fake: FakeTencentSms, engine: AsyncEngine
) -> None:
    """The text is a call out, made right after the code's commit: the member's request
    succeeds either way. Tencent's refusal is for good (FAILED, with Tencent's code for the
    operator); a timeout leaves the call PENDING for the relay's next attempt."""
    client, services = app
    refused, late = new_phone(), new_phone()
    fake.fail(status_code="LimitExceeded.PhoneNumberOneHourLimit")
    assert await errors_of(client, REQUEST, {"p": refused}) == []
    row = await text_call(engine, refused)
    assert (row.status, row.attempts) == ("FAILED", 1)
    assert row.last_error == "RATE_LIMITED: LimitExceeded.PhoneNumberOneHourLimit"
    fake.fail(hang=3.0)
    assert await errors_of(client, REQUEST, {"p": late}) == []
    row = await text_call(engine, late)
    assert (row.status, row.attempts, row.last_error) == ("PENDING", 1, "PROVIDER_UNAVAILABLE")
    pending = row
    assert fake.messages == []
    # The per-number limit holds whatever became of the text.
    assert await errors_of(client, REQUEST, {"p": late}) == ["RATE_LIMITED"]
    # Tencent answers again: the relay's next attempt texts the code, once.
    services.clock.advance(timedelta(seconds=services.calls.policy.backoff_seconds))
    assert await services.calls.sweep() >= 1
    assert len(fake.codes_sent_to(late)) == 1
    async with engine.connect() as conn:
        status = await conn.scalar(
            sa.select(outbound_calls.c.status).where(outbound_calls.c.id == pending.id)
        )
    assert status == "DONE"
