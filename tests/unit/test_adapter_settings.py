"""Production refuses the development adapters and names the settings to provide;
development says at start-up which ones it uses."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydantic import SecretStr

from dinegraph.app import create_app
from dinegraph.integrations.development import DevelopmentWechatLogin, LoggingSmsSender
from dinegraph.integrations.tencent_sms import TencentSms
from dinegraph.integrations.wechat import WechatMiniProgram
from dinegraph.settings import ConfigurationError, Mode, Settings
from tests.conftest import PRODUCTION_ADAPTERS, TEST_BLIND_INDEX_KEY, TEST_DATA_KEYS

KEY = SecretStr("k" * 40)
WECHAT = ["DINEGRAPH_WECHAT_APPID", "DINEGRAPH_WECHAT_SECRET"]
SMS = [
    "DINEGRAPH_TENCENT_SECRET_ID",
    "DINEGRAPH_TENCENT_SECRET_KEY",
    "DINEGRAPH_TENCENT_SMS_SDK_APP_ID",
    "DINEGRAPH_TENCENT_SMS_SIGN_NAME",
    "DINEGRAPH_TENCENT_SMS_TEMPLATE_ID",
]
PAY = [
    "DINEGRAPH_WECHATPAY_MCHID",
    "DINEGRAPH_WECHATPAY_APPID",
    "DINEGRAPH_WECHATPAY_MERCHANT_SERIAL_NO",
    "DINEGRAPH_WECHATPAY_PRIVATE_KEY_PATH",
    "DINEGRAPH_WECHATPAY_APIV3_KEY",
    "DINEGRAPH_WECHATPAY_PUBLIC_KEY_PATH",
    "DINEGRAPH_WECHATPAY_PUBLIC_KEY_ID",
    "DINEGRAPH_WECHATPAY_NOTIFY_URL",
]


def production(**values: Any) -> Settings:
    keys: dict[str, Any] = {"data_keys": TEST_DATA_KEYS, "blind_index_key": TEST_BLIND_INDEX_KEY}
    return Settings(mode=Mode.PRODUCTION, secret_key=KEY, **keys, **values)


def refusal(settings: Settings) -> str:
    with pytest.raises(ConfigurationError) as refused:
        settings.check_servable()
    return str(refused.value)


def without(*names: str) -> dict[str, Any]:
    return {k: v for k, v in PRODUCTION_ADAPTERS.items() if k not in names}


def test_production_with_every_adapter_real_serves() -> None:
    production(**PRODUCTION_ADAPTERS).check_servable()
    assert production(**PRODUCTION_ADAPTERS).development_adapters() == {}


def test_production_without_adapters_names_every_setting_to_provide() -> None:
    message = refusal(production())
    assert "development adapters" in message
    for name in [*WECHAT, *SMS, *PAY]:
        assert name in message


@pytest.mark.parametrize(
    ("missing", "named", "not_named"),
    [
        (("wechat_appid", "wechat_secret"), WECHAT, SMS + PAY),
        (
            (
                "tencent_secret_id",
                "tencent_secret_key",
                "tencent_sms_sdk_app_id",
                "tencent_sms_sign_name",
                "tencent_sms_template_id",
            ),
            SMS,
            WECHAT + PAY,
        ),
        (("wechatpay_mchid",), PAY, WECHAT + SMS),
    ],
    ids=["wechat", "sms", "payments"],
)
def test_each_development_adapter_is_refused_on_its_own(
    missing: tuple[str, ...], named: list[str], not_named: list[str]
) -> None:
    message = refusal(production(**without(*missing)))
    assert all(name in message for name in named)
    assert not any(name in message for name in not_named)


@pytest.mark.parametrize("mode", [Mode.PRODUCTION, Mode.DEVELOPMENT])
def test_wechat_pay_for_another_app_than_the_mini_program_is_refused(mode: Mode) -> None:
    values = {**PRODUCTION_ADAPTERS, "wechat_appid": "wx1111111111111111"}
    settings = (
        production(**values) if mode is Mode.PRODUCTION else Settings(secret_key=KEY, **values)
    )
    message = refusal(settings)
    assert "DINEGRAPH_WECHATPAY_APPID" in message and "DINEGRAPH_WECHAT_APPID" in message
    # Either alone is fine: development signs in or pays with its own adapter.
    alone = {k: v for k, v in values.items() if k not in ("wechat_appid", "wechat_secret")}
    Settings(secret_key=KEY, **alone).check_servable()


def test_development_payments_are_refused_in_production() -> None:
    message = refusal(production(**PRODUCTION_ADAPTERS, development_payments=True))
    assert "DINEGRAPH_DEVELOPMENT_PAYMENTS" in message


@pytest.mark.parametrize("mode", [Mode.PRODUCTION, Mode.DEVELOPMENT])
def test_a_half_configured_adapter_is_refused_in_either_mode(mode: Mode) -> None:
    half = without("tencent_sms_template_id")
    settings = production(**half) if mode is Mode.PRODUCTION else Settings(secret_key=KEY, **half)
    message = refusal(settings)
    assert "SMS is half configured" in message
    assert "DINEGRAPH_TENCENT_SMS_TEMPLATE_ID" in message and "SECRET_ID" not in message


def test_the_wiring_picks_the_real_adapters_when_configured() -> None:
    app = create_app(production(**PRODUCTION_ADAPTERS))
    assert isinstance(app.state.services.wechat, WechatMiniProgram)
    assert isinstance(app.state.services.sms, TencentSms)
    development = create_app(Settings(secret_key=KEY)).state.services
    assert isinstance(development.wechat, DevelopmentWechatLogin)
    assert isinstance(development.sms, LoggingSmsSender)


def test_development_says_once_which_development_adapters_it_uses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="dinegraph"):
        create_app(Settings(secret_key=KEY, **without("wechat_appid", "wechat_secret")))
    said = [r.getMessage() for r in caplog.records if "development adapters" in r.getMessage()]
    assert len(said) == 1
    assert "WeChat sign-in" in said[0] and "payments" in said[0] and "SMS" not in said[0]
    assert "DINEGRAPH_WECHAT_APPID" in said[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="dinegraph"):
        create_app(production(**PRODUCTION_ADAPTERS))
    assert "development adapters" not in caplog.text


DADA = ["DINEGRAPH_DADA_APP_KEY", "DINEGRAPH_DADA_APP_SECRET", "DINEGRAPH_DADA_SOURCE_ID"]
SF = ["DINEGRAPH_SF_DEV_ID", "DINEGRAPH_SF_DEV_KEY", "DINEGRAPH_SF_SHOP_ID"]
# Every adapter real but 顺丰同城's, for stores on 达达 alone (the default platforms).
DADA_ONLY = without("sf_dev_id", "sf_dev_key", "sf_shop_id", "sf_base_url", "delivery_platforms")


def test_production_refuses_the_development_courier_for_the_platforms_stores_use() -> None:
    no_dada = {
        k: v
        for k, v in DADA_ONLY.items()
        if k not in ("dada_app_key", "dada_app_secret", "dada_source_id")
    }
    message = refusal(production(**no_dada))  # DINEGRAPH_DELIVERY_PLATFORMS=DADA by default
    assert "DADA deliveries" in message and all(name in message for name in DADA)
    assert not any(name in message for name in SF + WECHAT)
    # Stores on OWN_RIDER only: no platform needed.
    production(**no_dada, delivery_platforms="OWN_RIDER").check_servable()
    message = refusal(production(**DADA_ONLY, delivery_platforms="DADA,SF_INTRA_CITY"))
    assert "SF_INTRA_CITY deliveries" in message and all(name in message for name in SF)
    assert not any(name in message for name in DADA)
    sf = {"sf_dev_id": "1588000001", "sf_dev_key": "k", "sf_shop_id": "3243279847393"}
    both = production(**DADA_ONLY, **sf, delivery_platforms="DADA,SF_INTRA_CITY")
    both.check_servable()
    message = refusal(production(**DADA_ONLY, delivery_platforms="DADA,MEITUAN"))
    assert "MEITUAN deliveries" in message and "no adapter yet" in message
    message = refusal(production(**DADA_ONLY, delivery_platforms="DADA,UBER"))
    assert "DINEGRAPH_DELIVERY_PLATFORMS" in message and "UBER" in message
    half = refusal(Settings(secret_key=KEY, sf_dev_id="1588000001"))
    assert "DINEGRAPH_SF_DEV_KEY" in half and "DINEGRAPH_SF_SHOP_ID" in half


def test_production_serves_only_the_platforms_in_use_by_their_real_adapters() -> None:
    from dinegraph.domain.delivery import Provider
    from dinegraph.integrations.dada import DadaPlatform
    from dinegraph.integrations.development import DevelopmentCourierPlatform
    from dinegraph.integrations.sf_intra_city import SfIntraCityPlatform

    sf = {"sf_dev_id": "1588000001", "sf_dev_key": "k", "sf_shop_id": "3243279847393"}
    live = production(**DADA_ONLY, **sf, delivery_platforms="DADA,SF_INTRA_CITY")
    platforms = create_app(live).state.services.orders.delivery.platforms
    assert set(platforms) == {Provider.DADA, Provider.SF_INTRA_CITY}
    assert isinstance(platforms[Provider.DADA], DadaPlatform)
    assert isinstance(platforms[Provider.SF_INTRA_CITY], SfIntraCityPlatform)
    development = create_app(Settings(secret_key=KEY)).state.services.orders.delivery.platforms
    assert isinstance(development[Provider.SF_INTRA_CITY], DevelopmentCourierPlatform)
    assert Provider.OWN_RIDER not in development


def test_production_dada_needs_the_https_url_it_posts_callbacks_to() -> None:
    for url in ("", "http://dinegraph.example/delivery/dada/callback"):
        message = refusal(production(**{**DADA_ONLY, "dada_callback_url": url}))
        assert "DINEGRAPH_DADA_CALLBACK_URL" in message and "/delivery/dada/callback" in message
    Settings(secret_key=KEY, **{**DADA_ONLY, "dada_callback_url": ""}).check_servable()


def test_a_call_out_leaves_each_configured_platform_its_own_timeout() -> None:
    # 达达 configured (PRODUCTION_ADAPTERS) with 10 s: a 5 s call would cut it short.
    short = production(**DADA_ONLY, calls_timeout_seconds=5)
    with pytest.raises(ConfigurationError, match="DINEGRAPH_DADA_TIMEOUT_SECONDS"):
        short.check_servable()
    # 顺丰同城 is not configured: its default timeout asks nothing of the calls'.
    fitted = production(**DADA_ONLY, calls_timeout_seconds=5, dada_timeout_seconds=5)
    fitted.check_servable()
    assert fitted.sf_timeout_seconds > fitted.calls_timeout_seconds


def test_stores_on_a_platform_not_configured_are_named_with_the_settings_to_set() -> None:
    dada_only = production(**DADA_ONLY)
    stores = {
        "DADA": ["福田中心店 (SZ-FT-01)"],
        "SF_INTRA_CITY": ["车公庙店 (SZ-FT-02)", "海岸城店 (SZ-NS-02)"],
        "MEITUAN": ["宝安店 (SZ-BA-01)"],
        "OWN_RIDER": ["南山科技园店 (SZ-NS-01)"],
    }
    problem = dada_only.store_platforms_problem(stores)
    assert problem is not None
    assert "车公庙店 (SZ-FT-02), 海岸城店 (SZ-NS-02) deliver by SF_INTRA_CITY" in problem
    assert all(name in problem for name in SF)
    assert "宝安店 (SZ-BA-01) deliver by MEITUAN" in problem and "no adapter yet" in problem
    assert "SZ-FT-01" not in problem and "SZ-NS-01" not in problem
    assert dada_only.store_platforms_problem({"DADA": ["a"], "OWN_RIDER": ["b"]}) is None
    assert dada_only.store_platforms_problem({"SF_INTRA_CITY": []}) is None
    sf = {"sf_dev_id": "1588000001", "sf_dev_key": "k", "sf_shop_id": "3243279847393"}
    both = production(**DADA_ONLY, **sf)
    assert both.store_platforms_problem({"SF_INTRA_CITY": ["车公庙店 (SZ-FT-02)"]}) is None
