"""Configuration from ``DINEGRAPH_*`` environment variables."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dinegraph.domain.delivery import parse_speeds
from dinegraph.domain.fees import parse_bands
from dinegraph.domain.tiers import Tier

# Only ever used in development mode; production refuses to start without its own key.
_DEVELOPMENT_SECRET = "dinegraph-development-secret-do-not-use-in-production"


_BROKERS = ("memory", "postgres", "postgresql", "redis", "rediss")


# What makes each outside service real; without them a development adapter stands in.
_ADAPTER_SETTINGS: dict[str, tuple[str, ...]] = {
    "WeChat sign-in": ("DINEGRAPH_WECHAT_APPID", "DINEGRAPH_WECHAT_SECRET"),
    "SMS": (
        "DINEGRAPH_TENCENT_SECRET_ID",
        "DINEGRAPH_TENCENT_SECRET_KEY",
        "DINEGRAPH_TENCENT_SMS_SDK_APP_ID",
        "DINEGRAPH_TENCENT_SMS_SIGN_NAME",
        "DINEGRAPH_TENCENT_SMS_TEMPLATE_ID",
    ),
}
# Delivery platforms with a real adapter, and the settings that make it real.
_PLATFORM_SETTINGS: dict[str, tuple[str, ...]] = {
    "DADA": ("DINEGRAPH_DADA_APP_KEY", "DINEGRAPH_DADA_APP_SECRET", "DINEGRAPH_DADA_SOURCE_ID"),
    "SF_INTRA_CITY": ("DINEGRAPH_SF_DEV_ID", "DINEGRAPH_SF_DEV_KEY", "DINEGRAPH_SF_SHOP_ID"),
}
# WeChat Pay (its own settings block); payments are real once the merchant is set.
_WECHATPAY_SETTINGS = (
    "DINEGRAPH_WECHATPAY_MCHID",
    "DINEGRAPH_WECHATPAY_APPID",
    "DINEGRAPH_WECHATPAY_MERCHANT_SERIAL_NO",
    "DINEGRAPH_WECHATPAY_PRIVATE_KEY_PATH",
    "DINEGRAPH_WECHATPAY_APIV3_KEY",
    "DINEGRAPH_WECHATPAY_PUBLIC_KEY_PATH",
    "DINEGRAPH_WECHATPAY_PUBLIC_KEY_ID",
    "DINEGRAPH_WECHATPAY_NOTIFY_URL",
)


class Mode(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ConfigurationError(RuntimeError):
    """The settings cannot run a server; the message says what to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DINEGRAPH_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./dinegraph.db"
    broker_url: str = "memory://"
    mode: Mode = Mode.DEVELOPMENT
    secret_key: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1

    # Abuse limits applied to every operation.
    max_query_depth: int = Field(default=12, ge=1)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=3000, ge=10)
    max_page_size: int = Field(default=100, ge=1, le=100)
    # An operation's estimated cost: each field counts 1, a list multiplies what it selects
    # by its page (`first`, else the default page) or, for a plain list, by this size.
    max_query_cost: int = Field(default=100_000, ge=1)
    query_cost_list_size: int = Field(default=10, ge=1)
    # Bytes of one HTTP request body and of one WebSocket message; beyond, 413 or close 1009.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    max_ws_message_bytes: int = Field(default=64 * 1024, ge=1024)

    # Adds `Server-Timing: db;desc="N statements"` to each HTTP answer (on in development).
    server_timing: bool | None = None
    # Development only: the `node_modules` folder holding GraphiQL's browser files, which
    # the server hands out itself (no CDN). Unset: the repository's graphiql/node_modules.
    graphiql_assets: Path | None = None
    # The staff console's build (`npm run build` in admin/), served at /admin. Unset: the
    # repository's admin/dist.
    admin_dist: Path | None = None

    # Automatic persisted queries kept (the oldest forgotten first); trusted documents
    # (`dinegraph trust-documents`) are kept apart and never forgotten.
    persisted_queries_max: int = Field(default=10_000, ge=1)
    # Only trusted documents run: production for a client set known ahead of time.
    trusted_documents_only: bool = False

    # Public reads (menus, stores, categories, campaigns) answered from a per-process cache,
    # dropped when a committed change moves what they show (0 entries: no cache). The oldest
    # unused answer goes first beyond either bound.
    read_cache_entries: int = Field(default=2000, ge=0)
    read_cache_megabytes: float = Field(default=64, gt=0)
    # The longest an answer is kept however quiet its stamps: a backstop for a change no
    # process heard of (a broker connection lost for a while, a write outside any server).
    read_cache_max_age_seconds: float = Field(default=60, gt=0)

    # WebSocket (graphql-transport-ws) limits.
    ws_max_subscriptions: int = Field(default=20, ge=1)
    ws_init_timeout_seconds: float = Field(default=10, gt=0)
    ws_keepalive_seconds: float = Field(default=15, gt=0)

    # A serving process collects its young objects after this many net allocations
    # (Python's default is 700: a busy server then walks its whole heap every few seconds,
    # each walk a pause for every request); 0 keeps Python's default. What start-up made
    # is frozen out of the collections either way.
    gc_young_threshold: int = Field(default=20_000, ge=0, le=1_000_000)

    sqlite_busy_timeout_ms: int = 10_000
    # SQLite connections per process, none beyond: each is a thread of aiosqlite's with a
    # page cache of its own, and a few hot ones serve more reads than many cold ones.
    sqlite_pool_size: int = Field(default=3, ge=1)
    database_pool_size: int = Field(default=10, ge=1)

    # How long a process refuses a quota, coupon template or shelf it knows is gone
    # without asking the database again (forgotten at once when units come back); 0: no board.
    exhaustion_board_seconds: float = Field(default=10, ge=0)
    # How long a process reuses the account behind an API key or token before reading it
    # again; a revocation heard through the broker forgets it at once. 0: read every time.
    credential_cache_seconds: float = Field(default=5, ge=0)
    # Addresses of the reverse proxies whose X-Forwarded-For is believed (comma-separated):
    # the client address of the audit log and the per-address limits. Empty: the socket's.
    trusted_proxies: str = ""

    staff_token_ttl_hours: int = 12

    # Staff sign-in (staffLogin): short access tokens, rotating refresh tokens, lockout.
    staff_access_token_minutes: float = Field(default=15, gt=0)
    staff_refresh_token_days: float = Field(default=7, gt=0)
    # This many wrong passwords within the window lock the account for the lock's minutes.
    staff_login_max_failures: int = Field(default=5, ge=1)
    staff_login_failure_window_minutes: float = Field(default=15, gt=0)
    staff_login_lock_minutes: float = Field(default=15, gt=0)
    # Failed sign-ins from one client address within the window, whatever the account.
    staff_login_failures_per_address: int = Field(default=30, ge=1)
    # A partner key's lastUsedAt is noted at most this often, and written in batches.
    api_key_last_used_every_seconds: float = Field(default=60, ge=0)
    api_key_last_used_write_seconds: float = Field(default=10, gt=0)

    member_token_ttl_minutes: int = 30
    refresh_token_ttl_days: int = 30
    # Trailing-12-month spend (fen) that reaches each tier.
    tier_silver_fen: int = 100_000
    tier_gold_fen: int = 500_000
    tier_black_diamond_fen: int = 2_000_000
    time_zone: str = "Asia/Shanghai"
    points_expiry_days: int = Field(default=365, ge=1)
    login_codes_per_ip_per_hour: int = 30

    # Orders.
    payment_timeout_minutes: float = Field(default=15, gt=0)
    order_sweep_seconds: float = Field(default=15, gt=0)  # how often unpaid orders expire
    # Delivery fee by distance: "up to metres:fee fen", ascending; beyond, the last band.
    delivery_fee_bands: str = "3000:400,5000:600,8000:900"
    free_delivery_from_fen: int | None = Field(default=6000, ge=0)
    packaging_fee_fen: int = Field(default=100, ge=0)  # per unit, takeaway only
    packaging_fee_cap_fen: int = Field(default=600, ge=0)
    routing_per_metre: float = Field(default=1.0, ge=0)
    routing_per_pending_order: float = Field(default=300.0, ge=0)
    routing_nearby_m: int = Field(default=10_000, ge=0)  # stores listed when none can serve
    # HMAC key of POST /payments/notify; derived from the secret key when unset.
    payment_notify_secret: SecretStr | None = None
    # The development payment adapter (payOrder); on in development mode unless set.
    development_payments: bool | None = None
    # Deliveries.
    dispatch_on: str = "READY"  # or ACCEPTED: call the courier while the kitchen cooks
    # Average courier speeds (km/h) for the ETA, per provider.
    courier_speeds: str = "OWN_RIDER:15,DADA:18,SF_INTRA_CITY:20,MEITUAN:18"
    courier_max_speed_kmh: float = Field(default=120, gt=0)  # faster jumps are bad fixes
    courier_report_min_interval_seconds: float = Field(default=1.0, ge=0)  # per delivery
    # Courier reports arriving within this many ms are written in one transaction (at most
    # position_batch_max a batch); 0 writes each report in its own, as a single write.
    position_batch_ms: float = Field(default=3, ge=0)
    position_batch_max: int = Field(default=64, ge=1)
    position_retention_days: float = Field(default=7, gt=0)
    position_prune_every_seconds: float = Field(default=3600, gt=0)
    # 猜你喜欢: how often the server rebuilds the recommendation model in the background
    # (0: never; then run `dinegraph build-recommendations` from cron).
    recommendations_rebuild_minutes: float = Field(default=60, ge=0)
    # Calls out (refunds, couriers, text messages), relayed after the commit that wants them:
    # a failed attempt waits backoff × 2^(attempt-1) (at most the max, with jitter), and
    # after max attempts the call is FAILED for an operator (`outboundCalls`). One attempt
    # is given up after the timeout; the sweep of due calls runs every sweep seconds.
    calls_backoff_seconds: float = Field(default=2.0, gt=0)
    calls_backoff_max_seconds: float = Field(default=600.0, gt=0)
    calls_max_attempts: int = Field(default=10, ge=1)
    calls_timeout_seconds: float = Field(default=20.0, gt=0)
    calls_sweep_seconds: float = Field(default=5.0, gt=0)
    # 达达 (Dada) open platform, for stores whose carrier is DADA: with the app key, secret
    # and source id of a merchant account (newopen.imdada.cn → 开发者中心), their deliveries
    # are ordered there; without, the development adapter names a courier at once.
    dada_base_url: str = "https://newopen.imdada.cn"
    dada_app_key: str | None = None
    dada_app_secret: SecretStr | None = None
    dada_source_id: str | None = None
    dada_city_code: str = "0755"  # 深圳 (Dada's city codes: /api/cityCode/list)
    # Where Dada posts status changes (https://<public base>/delivery/dada/callback; each
    # order's token is added to it). Production with Dada configured refuses to start without.
    dada_callback_url: str = ""
    dada_timeout_seconds: float = Field(default=10.0, gt=0)
    # 顺丰同城 (SF intra-city) open platform, for stores whose carrier is SF_INTRA_CITY: with
    # the developer id and key (openic.sf-express.com → 开发者中心) and SF's id of the shop,
    # their deliveries are ordered there. SF pushes rider news to the callback URL set in
    # its console: point it at <public base>/delivery/sf/callback (shown as sf_callback_url).
    # The platforms head office may set stores to (OWN_RIDER always): production refuses to
    # start while one of them has only the development adapter, and refuses to set a store
    # to a platform not listed here.
    delivery_platforms: str = "DADA"
    # A store choosing among platforms: when the chosen one has found no rider after this
    # long, it is called off and the next in the ranking asked (checked every
    # DINEGRAPH_ORDER_SWEEP_SECONDS).
    rider_accept_timeout_seconds: float = Field(default=300, gt=0)
    sf_base_url: str = "https://openic.sf-express.com"
    sf_dev_id: str | None = None
    sf_dev_key: SecretStr | None = None
    sf_shop_id: str | None = None
    sf_callback_url: str = ""
    sf_timeout_seconds: float = Field(default=10.0, gt=0)
    # Rider contact (contactCourier): the platforms' privacy numbers (号码保护/隐私号) are a
    # merchant account option; set these once the account has it, so that the number the
    # platform's order query answers is a privacy number. Unset: customers get none from
    # that platform (NOT_AVAILABLE). A customer waits on the platform's answer at most
    # DINEGRAPH_COURIER_CONTACT_TIMEOUT_SECONDS.
    dada_privacy_numbers: bool = False
    sf_privacy_numbers: bool = False
    courier_contact_timeout_seconds: float = Field(default=5.0, gt=0)
    # Development only: the server's clock starts at this time (demos at any hour).
    clock_start: datetime | None = None

    # --- outside services: WeChat sign-in, Tencent Cloud SMS (README "Going live") ---
    # The mini-program (微信公众平台 → 开发管理 → 开发设置); unset: the development adapter.
    wechat_appid: str | None = None
    wechat_secret: SecretStr | None = None
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_timeout_seconds: float = Field(default=5, gt=0)
    # Tencent Cloud SMS (API keys; 短信 → 应用, 签名, 正文模板); unset: codes go to the log.
    tencent_secret_id: str | None = None
    tencent_secret_key: SecretStr | None = None
    tencent_sms_sdk_app_id: str | None = None
    tencent_sms_sign_name: str | None = None
    tencent_sms_template_id: str | None = None
    tencent_sms_region: str = "ap-guangzhou"
    tencent_sms_endpoint: str = "https://sms.tencentcloudapi.com"
    tencent_sms_timeout_seconds: float = Field(default=5, gt=0)

    def development_adapters(self) -> dict[str, tuple[str, ...]]:
        """The outside services these settings leave to a development adapter, each with
        the settings that would make it real (production refuses to start with any)."""
        found = {s: names for s, names in _ADAPTER_SETTINGS.items() if not all(self._given(names))}
        if self.pays_in_development or not self.wechatpay_mchid:
            found["payments"] = _WECHATPAY_SETTINGS
        for platform in self.platforms_in_use():
            names = _PLATFORM_SETTINGS.get(platform, ())
            if not names or not all(self._given(names)):
                found[f"{platform} deliveries"] = names or (
                    f"(no adapter yet: take {platform} out of DINEGRAPH_DELIVERY_PLATFORMS)",
                )
        return found

    def configured_platforms(self) -> set[str]:
        """The platforms whose real adapter these settings make (their credentials set)."""
        return {p for p, names in _PLATFORM_SETTINGS.items() if all(self._given(names))}

    def store_platforms_problem(
        self, stores_by_platform: Mapping[str, Sequence[str]]
    ) -> str | None:
        """What is wrong with the stores' carriers under these settings (None: nothing):
        stores set to a platform whose adapter is not configured. ``stores_by_platform``:
        each platform a store may call (its provider or one of its list), with those stores.
        Production refuses to start with it; development says it and pretends the platform."""
        configured = self.configured_platforms()
        missing = {
            platform: names
            for platform, names in sorted(stores_by_platform.items())
            if platform != "OWN_RIDER" and platform not in configured and names
        }
        if not missing:
            return None
        parts = []
        for platform, names in missing.items():
            needs = _PLATFORM_SETTINGS.get(platform)
            fix = (
                f"set {', '.join(needs)} and list {platform} in DINEGRAPH_DELIVERY_PLATFORMS"
                if needs
                else f"{platform} has no adapter yet: move them to another carrier"
            )
            parts.append(
                f"{', '.join(names)} deliver by {platform}, which is not configured: {fix}"
            )
        return "; ".join(parts) + " (or move the stores with setStoreDeliveryProvider)"

    def platforms_in_use(self) -> list[str]:
        """DINEGRAPH_DELIVERY_PLATFORMS, as platform names (OWN_RIDER needs no adapter)."""
        names = [p.strip().upper() for p in self.delivery_platforms.split(",") if p.strip()]
        return [p for p in names if p != "OWN_RIDER"]

    def _given(self, names: tuple[str, ...]) -> list[bool]:
        return [bool(getattr(self, n.removeprefix("DINEGRAPH_").lower(), None)) for n in names]

    def _check_adapters(self) -> None:
        for service, names in _ADAPTER_SETTINGS.items():
            given = self._given(names)
            if any(given) and not all(given):
                missing = ", ".join(n for n, g in zip(names, given, strict=True) if not g)
                raise ConfigurationError(f"{service} is half configured: set {missing}")
        if self.wechat_appid and self.wechatpay_appid and self.wechat_appid != self.wechatpay_appid:
            # WeChat Pay takes the payer's openid under its AppID: one of another app fails
            # every payment (appid和openid不匹配).
            raise ConfigurationError(
                f"DINEGRAPH_WECHATPAY_APPID {self.wechatpay_appid} is not the mini-program's "
                f"DINEGRAPH_WECHAT_APPID {self.wechat_appid}: WeChat Pay needs the payer's "
                "openid of the app it pays for; bind the mini-program's AppID to the merchant"
            )
        if not self.production:
            return
        if self.development_payments:
            raise ConfigurationError(
                "DINEGRAPH_DEVELOPMENT_PAYMENTS pays orders without taking money: "
                "production refuses it; unset it"
            )
        refused = self.development_adapters()
        if refused:
            needs = "; ".join(
                f"{service}: {', '.join(names)}" for service, names in refused.items()
            )
            raise ConfigurationError(
                f"production refuses the development adapters of {', '.join(refused)}: set {needs}"
            )

    # --- personal data at rest (db/personal.py) ---
    # "kid:<base64 of 32 bytes>,...": the first key encrypts, every key decrypts.
    data_keys: SecretStr | None = None
    # Key of the phones' blind index (HMAC-SHA256); apart from the data keys.
    blind_index_key: SecretStr | None = None

    # --- WeChat Pay (微信支付 APIv3, JSAPI): the real payment adapter once the merchant id
    # is set. The private key and the public key are PEM files; the APIv3 key 32 characters.
    wechatpay_mchid: str | None = None
    wechatpay_appid: str | None = None
    wechatpay_merchant_serial_no: str | None = None
    wechatpay_private_key_path: Path | None = None
    wechatpay_apiv3_key: SecretStr | None = None
    wechatpay_public_key_path: Path | None = None
    wechatpay_public_key_id: str | None = None
    # Public HTTPS address of POST /payments/wechatpay/notify (refunds are told there too).
    wechatpay_notify_url: str | None = None
    wechatpay_base_url: str = "https://api.mch.weixin.qq.com"
    wechatpay_timeout_seconds: float = Field(default=5, gt=0)
    # Reconciliation: how often, and how long a prepay stays quiet before WeChat Pay is asked.
    wechatpay_reconcile_seconds: float = Field(default=60, gt=0)
    wechatpay_reconcile_after_seconds: float = Field(default=180, ge=0)
    # A refund SUBMITTED this long without the provider's final word is asked about.
    refund_reconcile_after_seconds: float = Field(default=300, ge=0)

    @property
    def wechatpay_enabled(self) -> bool:
        return bool(self.wechatpay_mchid)

    @property
    def production(self) -> bool:
        return self.mode is Mode.PRODUCTION

    @property
    def tier_thresholds(self) -> dict[Tier, int]:
        return {
            Tier.NORMAL: 0,
            Tier.SILVER: self.tier_silver_fen,
            Tier.GOLD: self.tier_gold_fen,
            Tier.BLACK_DIAMOND: self.tier_black_diamond_fen,
        }

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def pays_in_development(self) -> bool:
        if self.development_payments is None:
            return not self.production
        return self.development_payments

    @property
    def sends_server_timing(self) -> bool:
        return not self.production if self.server_timing is None else self.server_timing

    @property
    def signing_key(self) -> str:
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self.production:
            raise ConfigurationError(
                "DINEGRAPH_SECRET_KEY is not set: production mode needs a secret key of its "
                "own, e.g. DINEGRAPH_SECRET_KEY=$(python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')"
            )
        return _DEVELOPMENT_SECRET

    @property
    def personal_data_keys(self) -> tuple[tuple[str, bytes], ...]:
        """(key id, AES-256 key) of DINEGRAPH_DATA_KEYS, the encrypting key first. In
        development, unset, one key derived from the secret key (its id names that)."""
        if not _given(self.data_keys):
            if self.production:
                raise ConfigurationError(_MISSING_PERSONAL_KEYS)
            key = _derived(self.signing_key, "data key")
            return ((f"dev{hashlib.sha256(key).hexdigest()[:6]}", key),)
        assert self.data_keys is not None
        return _parse_data_keys(self.data_keys.get_secret_value())

    @property
    def personal_index_key(self) -> bytes:
        """The blind index's HMAC key: DINEGRAPH_BLIND_INDEX_KEY, in development derived
        from the secret key when unset."""
        if not _given(self.blind_index_key):
            if self.production:
                raise ConfigurationError(_MISSING_PERSONAL_KEYS)
            return _derived(self.signing_key, "blind index key")
        assert self.blind_index_key is not None
        return _base64_key(self.blind_index_key.get_secret_value(), "DINEGRAPH_BLIND_INDEX_KEY")

    def _check_platforms(self) -> None:
        """The delivery platforms' settings: whole, known, and timeouts the relay allows."""
        dada = (self.dada_app_key, self.dada_app_secret, self.dada_source_id)
        if any(v is not None for v in dada) and not all(v is not None for v in dada):
            raise ConfigurationError(
                "达达 needs DINEGRAPH_DADA_APP_KEY, DINEGRAPH_DADA_APP_SECRET and "
                "DINEGRAPH_DADA_SOURCE_ID together"
            )
        if self.production and all(dada) and not self.dada_callback_url.startswith("https://"):
            # Dada learns where to post an order's news from the order itself: without it,
            # no rider would ever be named and no trip would end.
            raise ConfigurationError(
                "达达 posts its status callbacks to DINEGRAPH_DADA_CALLBACK_URL: set it to "
                "https://<public base>/delivery/dada/callback"
            )
        known = {"DADA", "SF_INTRA_CITY", "MEITUAN"}
        if unknown := [p for p in self.platforms_in_use() if p not in known]:
            raise ConfigurationError(
                f"DINEGRAPH_DELIVERY_PLATFORMS names no platform we know: {', '.join(unknown)}; "
                "write e.g. DADA,SF_INTRA_CITY"
            )
        sf = (self.sf_dev_id, self.sf_dev_key, self.sf_shop_id)
        if any(v is not None for v in sf) and not all(v is not None for v in sf):
            raise ConfigurationError(
                "顺丰同城 needs DINEGRAPH_SF_DEV_ID, DINEGRAPH_SF_DEV_KEY and "
                "DINEGRAPH_SF_SHOP_ID together"
            )
        # Only the platforms configured make calls out: their timeouts must fit in a call's.
        timeouts = {
            "DINEGRAPH_DADA_TIMEOUT_SECONDS": self.dada_timeout_seconds if all(dada) else 0.0,
            "DINEGRAPH_SF_TIMEOUT_SECONDS": self.sf_timeout_seconds if all(sf) else 0.0,
        }
        if longer := [name for name, t in timeouts.items() if t > self.calls_timeout_seconds]:
            raise ConfigurationError(
                "DINEGRAPH_CALLS_TIMEOUT_SECONDS must leave a provider its own timeout: "
                f"raise it, or lower {', '.join(longer)}"
            )

    def check_servable(self, workers: int | None = None) -> None:
        """Fail at once, with the fix, when these settings cannot serve."""
        _ = self.signing_key
        if self.production and len(self.signing_key) < 32:
            raise ConfigurationError("DINEGRAPH_SECRET_KEY must be at least 32 characters long")
        _ = self.personal_data_keys, self.personal_index_key
        self._check_adapters()
        if self.production and self.clock_start is not None:
            raise ConfigurationError("DINEGRAPH_CLOCK_START is for development only")
        try:
            parse_bands(self.delivery_fee_bands)
        except ValueError as exc:
            raise ConfigurationError(
                f"DINEGRAPH_DELIVERY_FEE_BANDS {self.delivery_fee_bands!r}: {exc}; "
                "write e.g. 3000:400,5000:600"
            ) from exc
        if self.dispatch_on not in ("READY", "ACCEPTED"):
            raise ConfigurationError("DINEGRAPH_DISPATCH_ON must be READY or ACCEPTED")
        try:
            parse_speeds(self.courier_speeds)
        except ValueError as exc:
            raise ConfigurationError(
                f"DINEGRAPH_COURIER_SPEEDS {self.courier_speeds!r}: {exc}; "
                "write e.g. OWN_RIDER:15,DADA:18"
            ) from exc
        self._check_platforms()
        broker = self.broker_url.split(":", 1)[0]
        if broker not in _BROKERS:
            raise ConfigurationError(
                f"DINEGRAPH_BROKER_URL {self.broker_url!r} is not supported: use memory://, "
                "postgres://user@host/db or redis://host:6379/0"
            )
        if broker.startswith("postgres") and not self.database_url.startswith("postgresql"):
            raise ConfigurationError(
                "the postgres broker sends NOTIFY inside the writing transaction, so "
                "DINEGRAPH_DATABASE_URL must be that same PostgreSQL database"
            )
        if broker == "memory" and (workers or self.workers) > 1:
            raise ConfigurationError(
                "several workers need a shared broker: set DINEGRAPH_BROKER_URL to "
                "postgres://... (the same database) or redis://..., or serve one worker"
            )


_MISSING_PERSONAL_KEYS = (
    "DINEGRAPH_DATA_KEYS and DINEGRAPH_BLIND_INDEX_KEY must be set in production: personal "
    "data (phones, names, addresses) is encrypted with them. Make each key with "
    "python3 -c 'import secrets, base64; "
    "print(base64.b64encode(secrets.token_bytes(32)).decode())' and set "
    "DINEGRAPH_DATA_KEYS=k1:<key> and DINEGRAPH_BLIND_INDEX_KEY=<another key>"
)
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


def _given(value: SecretStr | None) -> bool:
    return value is not None and bool(value.get_secret_value().strip())


def _derived(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"dinegraph {purpose}".encode(), hashlib.sha256).digest()


def _base64_key(text: str, name: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigurationError(f"{name}: a key must be 32 bytes in base64 (44 characters)")
    return key


def _parse_data_keys(text: str) -> tuple[tuple[str, bytes], ...]:
    keys: list[tuple[str, bytes]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        kid, _, encoded = item.partition(":")
        if not _KEY_ID.match(kid) or any(kid == known for known, _ in keys):
            raise ConfigurationError(
                f"DINEGRAPH_DATA_KEYS: {kid!r} is not a new key id (letters, digits, - and _, "
                "at most 16); write kid:<base64 key>,older-kid:<base64 key>"
            )
        keys.append((kid, _base64_key(encoded, f"DINEGRAPH_DATA_KEYS {kid}")))
    if not keys:
        raise ConfigurationError("DINEGRAPH_DATA_KEYS is empty: write kid:<base64 key>")
    return tuple(keys)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
