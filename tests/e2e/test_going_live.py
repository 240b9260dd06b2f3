"""`dinegraph serve` in production refuses development adapters, naming what to set."""

from __future__ import annotations

from dinegraph.settings import Settings
from tests.conftest import PRODUCTION_ADAPTER_ENV
from tests.e2e.conftest import run_cli


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
