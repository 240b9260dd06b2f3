"""Going live: `dinegraph serve` in production refuses development adapters, naming what to
set; given real ones (aimed at the fakes), a production server signs members in through
Tencent SMS and WeChat with the mini-program's own documents."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from dinegraph.settings import Settings
from tests.conftest import PRODUCTION_ADAPTER_ENV
from tests.e2e.conftest import SERVER_LOGS, free_port, run_cli, running_server
from tests.fakes.tencent_sms import FakeTencentSms
from tests.fakes.wechat import FakeWechatServer
from tests.integration.test_client_documents import operation_document


def test_serve_in_production_refuses_development_adapters_and_names_the_settings(
    settings: Settings,
) -> None:
    unset = {name: "" for name in PRODUCTION_ADAPTER_ENV}
    result = run_cli(settings, "serve", "--port", "9", DINEGRAPH_MODE="production", **unset)
    assert result.returncode == 2, result.stderr
    for name in (
        "DINEGRAPH_WECHAT_APPID",
        "DINEGRAPH_WECHAT_SECRET",
        "DINEGRAPH_TENCENT_SECRET_ID",
        "DINEGRAPH_TENCENT_SMS_TEMPLATE_ID",
        "DINEGRAPH_WECHATPAY_MCHID",
        "DINEGRAPH_WECHATPAY_APIV3_KEY",
    ):
        assert name in result.stderr


def test_serve_in_production_refuses_development_payments(settings: Settings) -> None:
    result = run_cli(
        settings,
        "serve",
        "--port",
        "9",
        DINEGRAPH_MODE="production",
        DINEGRAPH_DEVELOPMENT_PAYMENTS="true",
    )
    assert result.returncode == 2, result.stderr
    assert "DINEGRAPH_DEVELOPMENT_PAYMENTS" in result.stderr


def test_serve_in_production_refuses_stores_on_a_platform_it_does_not_configure(
    settings: Settings,
) -> None:
    # 车公庙店 delivers by 顺丰同城 in the demo chain; these settings serve 达达 alone.
    unset_sf = {"DINEGRAPH_SF_DEV_ID": "", "DINEGRAPH_SF_DEV_KEY": "", "DINEGRAPH_SF_SHOP_ID": ""}
    result = run_cli(
        settings,
        "serve",
        "--port",
        str(free_port()),
        DINEGRAPH_MODE="production",
        DINEGRAPH_DELIVERY_PLATFORMS="DADA",
        **unset_sf,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    refusal = result.stderr.strip().splitlines()[-1]  # one line, no traceback
    assert refusal.startswith("error: production refuses to start: "), result.stderr
    assert "SZ-FT-02" in refusal and "SF_INTRA_CITY" in refusal
    assert all(name in refusal for name in unset_sf)
    assert "Traceback" not in result.stderr


def _send(url: str, name: str, variables: dict[str, Any], token: str | None = None) -> Any:
    response = httpx.post(
        f"{url}/graphql",
        json={"query": operation_document(name), "operationName": name, "variables": variables},
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return next(iter(response.json()["data"].values()))


def test_a_production_server_signs_members_in_through_sms_and_wechat(settings: Settings) -> None:
    wechat, sms = FakeWechatServer().start(), FakeTencentSms().start()
    try:
        env = {
            "DINEGRAPH_MODE": "production",
            "DINEGRAPH_WECHAT_APPID": wechat.appid,
            "DINEGRAPH_WECHAT_SECRET": wechat.secret,
            "DINEGRAPH_WECHAT_API_BASE": wechat.url,
            "DINEGRAPH_WECHATPAY_APPID": wechat.appid,  # the merchant pays for this app
            "DINEGRAPH_TENCENT_SECRET_ID": sms.secret_id,
            "DINEGRAPH_TENCENT_SECRET_KEY": sms.secret_key,
            "DINEGRAPH_TENCENT_SMS_SDK_APP_ID": sms.sdk_app_id,
            "DINEGRAPH_TENCENT_SMS_SIGN_NAME": sms.sign_name,
            "DINEGRAPH_TENCENT_SMS_TEMPLATE_ID": sms.template_id,
            "DINEGRAPH_TENCENT_SMS_REGION": sms.region,
            "DINEGRAPH_TENCENT_SMS_ENDPOINT": sms.url,
        }
        phone = f"135{uuid.uuid4().int % 100_000_000:08d}"
        with running_server(settings, port=None, **env) as url:
            assert _send(url, "RequestLoginCode", {"phone": phone})["errors"] == []
            [code] = sms.codes_sent_to(phone)
            by_sms = _send(url, "LoginWithSmsCode", {"phone": phone, "code": code})
            assert by_sms["errors"] == [] and by_sms["token"]
            # The same person opens the mini-program and shares the number: one member.
            wechat.add_login("wx-login", f"o-{uuid.uuid4().hex}", "union-1")
            wechat.add_phone_code("wx-phone", phone)
            by_wechat = _send(url, "LoginWithWechat", {"code": "wx-login", "phoneCode": "wx-phone"})
            assert by_wechat["errors"] == []
            assert by_wechat["member"]["id"] == by_sms["member"]["id"]
            # A wrong code is a UserError from WeChat's answer.
            wrong = _send(url, "LoginWithWechat", {"code": "never-issued"})
            assert [e["code"] for e in wrong["errors"]] == ["INVALID_CODE"]
            log = SERVER_LOGS[url].read_text()
        assert wechat.token_requests == 1
        assert phone not in log and code not in log and wechat.secret not in log
        assert f"{phone[:3]}****{phone[-4:]}" in log  # the SMS adapter's line, masked
    finally:
        wechat.stop()
        sms.stop()
