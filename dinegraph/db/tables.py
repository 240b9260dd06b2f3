"""Every table of the product; Alembic migrations must match this metadata exactly."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

# Personal data: encrypted per value, phones found through a blind index (db/personal.py).
from dinegraph.db.personal import (
    BlindIndex,
    Personal,
    PersonalDate,
    PersonalFloat,
    PersonalJson,
)


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite keeps no offset: it stores UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", UtcDateTime(), nullable=False, server_default=sa.func.now())


stores = sa.Table(
    "stores",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(60), nullable=False),
    sa.Column("address", sa.String(200), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lng", sa.Float, nullable=False),
    sa.Column("delivery_radius_m", sa.Integer, nullable=False),
    sa.Column("opens", sa.Time, nullable=False),
    sa.Column("closes", sa.Time, nullable=False),
    sa.Column("is_open", sa.Boolean, nullable=False),
    # Who carries its delivery orders: OWN_RIDER or a platform (DADA, SF_INTRA_CITY, ...).
    sa.Column("delivery_provider", sa.String(16), nullable=False, server_default="DADA"),
    # The platforms it may call, in its order of preference ("DADA,SF_INTRA_CITY"; empty:
    # delivery_provider alone), and how one is chosen at dispatch (domain.carriers).
    sa.Column("delivery_platforms", sa.String(64), nullable=False, server_default=""),
    sa.Column("carrier_rule", sa.String(16), nullable=False, server_default="PREFERRED"),
    _created_at(),
)

categories = sa.Table(
    "categories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("categories.id"), nullable=True, index=True),
    sa.Column("name", sa.String(60), nullable=False),
    sa.Column("sort", sa.Integer, nullable=False),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "category_id", sa.Integer, sa.ForeignKey("categories.id"), nullable=False, index=True
    ),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(60), nullable=False),
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("image_urls", sa.JSON, nullable=False),
    sa.Column("listed", sa.Boolean, nullable=False),
    sa.Column("sort", sa.Integer, nullable=False),
    _created_at(),
)


def declared_for(item: object, dialect: str) -> bool:
    """Whether ``item`` (a table, column, index...) exists on ``dialect``: an index declared
    for one database only (``only_on``) is absent from the others, and the comparison of
    the migrations with this metadata leaves it out there."""
    info = getattr(item, "info", None)
    only_on = info.get("only_on") if isinstance(info, dict) else None
    return only_on is None or only_on == dialect


# Staff find products by part of a name (``searchReads.products_named``: ILIKE '%…%'). On
# PostgreSQL a pg_trgm GIN index serves it; SQLite has no such index and scans the table.
products_name_trigram = sa.Index(
    "ix_products_name_trgm",
    products.c.name,
    postgresql_using="gin",
    postgresql_ops={"name": "gin_trgm_ops"},
    info={"only_on": "postgresql"},
).ddl_if(dialect="postgresql")

# One row per channel a product is sold on, so the menu filters by channel in SQL.
product_channels = sa.Table(
    "product_channels",
    metadata,
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id"), primary_key=True),
    sa.Column("channel", sa.String(16), primary_key=True),
    sa.Index("ix_product_channels_channel", "channel", "product_id"),
)

skus = sa.Table(
    "skus",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id"), nullable=False, index=True),
    sa.Column("name", sa.String(60), nullable=False),
    sa.Column("specs", sa.JSON, nullable=False),
    sa.Column("price_fen", sa.Integer, nullable=False),
    sa.Column("tracked", sa.Boolean, nullable=False),
    sa.Column("sort", sa.Integer, nullable=False),
    sa.CheckConstraint("price_fen >= 0", name="price_not_negative"),
)

combo_components = sa.Table(
    "combo_components",
    metadata,
    sa.Column("combo_sku_id", sa.Integer, sa.ForeignKey("skus.id"), primary_key=True),
    sa.Column("component_sku_id", sa.Integer, sa.ForeignKey("skus.id"), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.CheckConstraint("quantity > 0", name="quantity_positive"),
)

store_prices = sa.Table(
    "store_prices",
    metadata,
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), primary_key=True),
    sa.Column("sku_id", sa.Integer, sa.ForeignKey("skus.id"), primary_key=True),
    sa.Column("price_fen", sa.Integer, nullable=False),
    sa.CheckConstraint("price_fen >= 0", name="price_not_negative"),
)

# Per store and SKU: the counted level of a tracked SKU (available), or the sold-out flag
# (沽清) of a made-to-order one. Changed only through the stock ledger.
stock_levels = sa.Table(
    "stock_levels",
    metadata,
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), primary_key=True),
    sa.Column("sku_id", sa.Integer, sa.ForeignKey("skus.id"), primary_key=True),
    sa.Column("available", sa.Integer, nullable=True),
    sa.Column("sold_out", sa.Boolean, nullable=False),
    sa.Column("low_stock_threshold", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.CheckConstraint("available IS NULL OR available >= 0", name="available_not_negative"),
)

staff = sa.Table(
    "staff",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(60), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("store_ids", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    _created_at(),
    # Signing in (see db/staff_accounts.py): an argon2 hash; none for token-only accounts.
    sa.Column("display_name", Personal("staff.display_name"), nullable=True),
    sa.Column("password_hash", sa.String(200), nullable=True),
    sa.Column("must_change_password", sa.Boolean, nullable=False, server_default=sa.false()),
    # Second-factor secrets, encrypted like personal data: a copy of the database must not
    # be enough to make an account's codes.
    sa.Column("totp_secret", Personal("staff.totp_secret"), nullable=True),
    sa.Column("totp_pending_secret", Personal("staff.totp_pending_secret"), nullable=True),
    sa.Column("totp_last_step", sa.BigInteger, nullable=True),  # a code is used once
    sa.Column("failed_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_failed_at", UtcDateTime(), nullable=True),
    sa.Column("locked_until", UtcDateTime(), nullable=True),
    sa.Column("disabled_at", UtcDateTime(), nullable=True),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(60), nullable=False),
    # The key's public prefix finds the row; only a SHA-256 of the whole key is kept.
    sa.Column("prefix", sa.String(16), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("store_ids", sa.JSON, nullable=True),
    # A delivery platform's key writes only the deliveries that platform carries.
    sa.Column("partner", sa.String(16), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    _created_at(),
    sa.Column("last_used_at", UtcDateTime(), nullable=True),  # to the minute, written in batches
)

# Staff sessions: rotating refresh tokens, as members' (a reused one revokes its family).
staff_refresh_tokens = sa.Table(
    "staff_refresh_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff.id"), nullable=False, index=True),
    sa.Column("family", sa.String(32), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    _created_at(),
)

# Failed staff sign-ins by client address: the per-address limit counts them.
staff_login_failures = sa.Table(
    "staff_login_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Index("ix_staff_login_failures_ip", "ip", "at"),
)

# One accepted change of stock: a sale, an order hold or release, a restock, an adjustment.
# (store, source, reference) is its idempotency key: a replay finds this row and its
# fingerprint, and changes nothing. The key includes the store because POS and platform
# order numbers are only unique within a store.
stock_movements = sa.Table(
    "stock_movements",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("reference", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("lines", sa.JSON, nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("actor", sa.String(40), nullable=False),
    _created_at(),
    sa.UniqueConstraint("store_id", "source", "reference", name="uq_stock_movements_key"),
)

# Every change of a tracked level, one row per SKU; a level equals the sum of its deltas.
stock_ledger = sa.Table(
    "stock_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("movement_id", sa.Integer, sa.ForeignKey("stock_movements.id"), nullable=False),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("sku_id", sa.Integer, sa.ForeignKey("skus.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("delta", sa.Integer, nullable=False),
    sa.Column("balance_after", sa.Integer, nullable=False),
    _created_at(),
    sa.UniqueConstraint("movement_id", "sku_id", name="uq_stock_ledger_movement_sku"),
    sa.Index("ix_stock_ledger_store_sku", "store_id", "sku_id", "id"),
    sa.CheckConstraint("balance_after >= 0", name="balance_not_negative"),
)

members = sa.Table(
    "members",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("phone", Personal("members.phone"), nullable=True),
    sa.Column("phone_index", BlindIndex(), nullable=True, unique=True),
    sa.Column("wechat_openid", sa.String(64), nullable=True, unique=True),
    sa.Column("wechat_unionid", sa.String(64), nullable=True, index=True),
    sa.Column("nickname", sa.String(30), nullable=False),
    sa.Column("birthday", PersonalDate("members.birthday"), nullable=True),
    sa.Column("tier", sa.String(16), nullable=False),
    # Kept equal to the sum of the member's points ledger, changed in the same statement
    # that checks it stays at or above zero.
    sa.Column("points", sa.Integer, nullable=False, server_default="0"),
    _created_at(),
    sa.CheckConstraint("points >= 0", name="points_not_negative"),
)

# One-time login codes; only an HMAC of the code is kept.
login_codes = sa.Table(
    "login_codes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("phone_index", BlindIndex(), nullable=False),  # the phone is not kept
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("consumed", sa.Boolean, nullable=False),
    sa.Index("ix_login_codes_phone_index", "phone_index", "created_at"),
    sa.Index("ix_login_codes_ip", "ip", "created_at"),
)

# Rotating refresh tokens: each use revokes the token and issues the next of its family;
# a revoked token presented again revokes the whole family (it was stolen or replayed).
refresh_tokens = sa.Table(
    "refresh_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
    sa.Column("family", sa.String(32), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    _created_at(),
)

member_addresses = sa.Table(
    "member_addresses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False, index=True),
    sa.Column("contact_name", Personal("member_addresses.contact_name"), nullable=False),
    sa.Column("contact_phone", Personal("member_addresses.contact_phone"), nullable=False),
    sa.Column("address", Personal("member_addresses.address"), nullable=False),
    sa.Column("lat", PersonalFloat("member_addresses.lat"), nullable=False),
    sa.Column("lng", PersonalFloat("member_addresses.lng"), nullable=False),
    sa.Column("is_default", sa.Boolean, nullable=False),
)

# Every change of a member's points; the balance is their sum and never negative.
points_ledger = sa.Table(
    "points_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("reference", sa.String(64), nullable=False),
    sa.Column("delta", sa.Integer, nullable=False),
    sa.Column("balance_after", sa.Integer, nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=True),
    _created_at(),
    sa.UniqueConstraint("member_id", "kind", "reference", name="uq_points_ledger_key"),
    sa.Index("ix_points_ledger_member", "member_id", "id"),
    sa.CheckConstraint("balance_after >= 0", name="balance_not_negative"),
)

check_ins = sa.Table(
    "check_ins",
    metadata,
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("streak", sa.Integer, nullable=False),
)

coupon_templates = sa.Table(
    "coupon_templates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amount_off_fen", sa.Integer, nullable=False),
    sa.Column("threshold_fen", sa.Integer, nullable=False),
    sa.Column("percent_off", sa.Integer, nullable=False),
    sa.Column("cap_fen", sa.Integer, nullable=True),
    # {"stores": [...], "categories": [...], "products": [...], "channels": [...]}
    sa.Column("scope", sa.JSON, nullable=False),
    sa.Column("min_tier", sa.String(16), nullable=False),
    sa.Column("new_members_only", sa.Boolean, nullable=False),
    sa.Column("valid_from", UtcDateTime(), nullable=True),
    sa.Column("valid_until", UtcDateTime(), nullable=True),
    sa.Column("valid_days", sa.Integer, nullable=True),
    sa.Column("total_quantity", sa.Integer, nullable=False),
    # Raised only by a conditional UPDATE that keeps it within total_quantity.
    sa.Column("issued", sa.Integer, nullable=False),
    sa.Column("per_member_limit", sa.Integer, nullable=False),
    sa.Column("claim_starts_at", UtcDateTime(), nullable=True),
    sa.Column("claim_ends_at", UtcDateTime(), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("fission_friends", sa.Integer, nullable=True),
    sa.Column(
        "fission_bonus_template_id", sa.Integer, sa.ForeignKey("coupon_templates.id"), nullable=True
    ),
    _created_at(),
    sa.CheckConstraint("issued >= 0 AND issued <= total_quantity", name="issued_within_quantity"),
)

coupons = sa.Table(
    "coupons",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("template_id", sa.Integer, sa.ForeignKey("coupon_templates.id"), nullable=False),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("valid_from", UtcDateTime(), nullable=False),
    sa.Column("valid_until", UtcDateTime(), nullable=False),
    sa.Column("claimed_at", UtcDateTime(), nullable=False),
    sa.Column("order_ref", sa.String(64), nullable=True),
    # 裂变: the coupon whose share code this one was claimed through.
    sa.Column("shared_from_id", sa.Integer, sa.ForeignKey("coupons.id"), nullable=True),
    # Set on a bonus coupon: the shared coupon that earned it (at most one bonus each).
    sa.Column("bonus_for_id", sa.Integer, sa.ForeignKey("coupons.id"), nullable=True, unique=True),
    sa.Index("ix_coupons_member", "member_id", "status", "id"),
    sa.Index("ix_coupons_template_member", "template_id", "member_id"),
    sa.Index("ix_coupons_shared_from", "shared_from_id"),
)

# What members paid, per order: the trailing 12 months of it set the tier. Orders record a
# completed order's amount and a refund's negative amount, each under its own reference.
member_spend = sa.Table(
    "member_spend",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
    sa.Column("reference", sa.String(64), nullable=False),
    sa.Column("amount_fen", sa.Integer, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("member_id", "reference", name="uq_member_spend_key"),
    sa.Index("ix_member_spend_member_at", "member_id", "at"),
)

# Issuing a template to a segment of members (唤醒券 for the dormant, a tier's perk) runs in
# the background in batches; this row is its progress.
coupon_issue_jobs = sa.Table(
    "coupon_issue_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("template_id", sa.Integer, sa.ForeignKey("coupon_templates.id"), nullable=False),
    sa.Column("tier", sa.String(16), nullable=True),
    sa.Column("dormant_days", sa.Integer, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("issued", sa.Integer, nullable=False),
    sa.Column("skipped", sa.Integer, nullable=False),
    sa.Column("last_member_id", sa.Integer, nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    _created_at(),
)

# Events written in the transaction that caused them, for brokers that publish after commit
# (Redis): published and deleted right after commit, or by the relay if the process died.
event_outbox = sa.Table(
    "event_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("topic", sa.String(64), nullable=False),
    # Encrypted: a delivery's event names its courier and their phone.
    sa.Column("payload", Personal("event_outbox.payload"), nullable=False),
    _created_at(),
)

# --- calls out --------------------------------------------------------------------------

# Calls to outside systems recorded with the commit that wants them (``domain.calls``),
# relayed after it (``dinegraph.outbound``). (kind, key) is the provider's idempotency key.
# A sweep looks for PENDING calls due; a relay holds a call it is making until
# lease_until. A DONE call's payload is cleared (personal data does not linger).
outbound_calls = sa.Table(
    "outbound_calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("key", sa.String(128), nullable=False),
    sa.Column("payload", PersonalJson("outbound_calls.payload"), nullable=True),  # encrypted
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("lease_until", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.String(200), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("done_at", UtcDateTime(), nullable=True),
    sa.UniqueConstraint("kind", "key"),
    sa.CheckConstraint("status IN ('PENDING', 'DONE', 'FAILED')", name="status"),
    sa.Index("ix_outbound_calls_due", "status", "next_attempt_at"),
)

# --- orders -----------------------------------------------------------------------------

# A member's order, with totals frozen when placed. (member, idempotency key) is unique: a
# replay of placeOrder finds the first order instead of placing a second.
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # No member: taken by a partner (POS, a takeaway platform), see the block below.
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=True),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("idempotency_key", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("subtotal_fen", sa.Integer, nullable=False),
    sa.Column("tier_discount_fen", sa.Integer, nullable=False),
    sa.Column("coupon_discount_fen", sa.Integer, nullable=False),
    sa.Column("delivery_fee_fen", sa.Integer, nullable=False),
    sa.Column("delivery_discount_fen", sa.Integer, nullable=False),
    sa.Column("packaging_fee_fen", sa.Integer, nullable=False),
    sa.Column("total_fen", sa.Integer, nullable=False),
    sa.Column("refunded_fen", sa.Integer, nullable=False, server_default="0"),
    sa.Column("points_earned", sa.Integer, nullable=False, server_default="0"),
    sa.Column("coupon_id", sa.Integer, sa.ForeignKey("coupons.id"), nullable=True),
    sa.Column("address_lat", PersonalFloat("orders.address_lat"), nullable=True),
    sa.Column("address_lng", PersonalFloat("orders.address_lng"), nullable=True),
    sa.Column("address_detail", Personal("orders.address_detail"), nullable=True),
    sa.Column("contact_name", Personal("orders.contact_name"), nullable=True),
    sa.Column("contact_phone", Personal("orders.contact_phone"), nullable=True),
    sa.Column("distance_m", sa.Integer, nullable=True),
    sa.Column("note", sa.String(200), nullable=False, server_default=""),
    sa.Column("pickup_code", sa.String(8), nullable=True),
    sa.Column("placed_at", UtcDateTime(), nullable=False),
    sa.Column("pay_by", UtcDateTime(), nullable=False),
    sa.Column("paid_at", UtcDateTime(), nullable=True),
    sa.Column("completed_at", UtcDateTime(), nullable=True),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # Campaign orders (no foreign keys: the campaign tables point back at orders).
    sa.Column("campaign_id", sa.Integer, nullable=True),
    sa.Column("group_id", sa.Integer, nullable=True),
    sa.Column("bargain_id", sa.Integer, nullable=True),
    # Where the order was taken; a partner's order id is unique per source.
    sa.Column("source", sa.String(16), nullable=False, server_default="MINI_PROGRAM"),
    sa.Column("external_id", sa.String(48), nullable=True),
    sa.Column("table_no", sa.String(16), nullable=True),
    sa.Column("pickup_at", UtcDateTime(), nullable=True),
    sa.Column("cancel_reason", sa.String(200), nullable=True),
    sa.UniqueConstraint("member_id", "idempotency_key", name="uq_orders_idempotency"),
    sa.Index("ix_orders_member", "member_id", "id"),
    sa.Index("ix_orders_store_status", "store_id", "status", "id"),
    sa.Index("ix_orders_unpaid", "status", "pay_by"),
    sa.Index("ix_orders_campaign", "campaign_id"),
    sa.Index("ix_orders_group", "group_id"),
    sa.Index("uq_orders_external", "source", "external_id", unique=True),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("line_no", sa.Integer, nullable=False),
    sa.Column("sku_id", sa.Integer, sa.ForeignKey("skus.id"), nullable=False),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id"), nullable=False),
    sa.Column("name", sa.String(130), nullable=False),
    sa.Column("specs", sa.JSON, nullable=False),
    sa.Column("unit_price_fen", sa.Integer, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("refunded_quantity", sa.Integer, nullable=False, server_default="0"),
    sa.Column("note", sa.String(100), nullable=False, server_default=""),  # a partner's
    sa.UniqueConstraint("order_id", "line_no", name="uq_order_lines_line"),
)

# Money received, keyed by the provider's transaction id: a repeated notification is a no-op.
payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("transaction_id", sa.String(64), nullable=False),
    sa.Column("amount_fen", sa.Integer, nullable=False),
    sa.Column("paid_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("provider", "transaction_id", name="uq_payments_transaction"),
)

# --- WeChat Pay prepays ---------------------------------------------------------------------

# The order's newest prepay at the provider: handed out again while valid; reconciled while
# the order awaits payment; closed at the provider once the order is cancelled.
payment_prepays = sa.Table(
    "payment_prepays",
    metadata,
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("prepay_id", sa.String(64), nullable=False),
    sa.Column("payer", sa.String(128), nullable=False),
    sa.Column("amount_fen", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("closed_at", UtcDateTime(), nullable=True),
    sa.Index("ix_payment_prepays_open", "closed_at", "created_at"),
)

# A refund of an order, from a member's request (REQUESTED) or staff (APPROVED at once) to
# the money arriving (REFUNDED), or REFUSED / FAILED (domain/refunds.py). ``reference`` is
# the provider's refund reference (out_refund_no); the requester's key is unique per order.
refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("idempotency_key", sa.String(64), nullable=False),
    sa.Column("amount_fen", sa.Integer, nullable=False),
    sa.Column("lines", sa.JSON, nullable=False),  # [[line_no, quantity], ...]
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("requested_by", sa.String(40), nullable=False),
    sa.Column("stock_returned", sa.Boolean, nullable=False),
    sa.Column("coupon_restored", sa.Boolean, nullable=False),
    _created_at(),
    sa.Column("reference", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("refusal_reason", sa.String(200), nullable=True),
    sa.Column("decided_by", sa.String(40), nullable=True),
    sa.Column("provider_refund_id", sa.String(64), nullable=True),
    sa.Column("requested_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("order_id", "idempotency_key", name="uq_refunds_idempotency"),
    sa.UniqueConstraint("reference", name="uq_refunds_reference"),
    sa.Index("ix_refunds_order", "order_id", "id"),
    sa.Index("ix_refunds_status", "status", "id"),
)

# Orders in each store's kitchen queue (PAID, ACCEPTED, PREPARING), changed in the same
# transaction as the order's status, so routing always weighs the current load.
store_loads = sa.Table(
    "store_loads",
    metadata,
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), primary_key=True),
    sa.Column("pending_orders", sa.Integer, nullable=False),
)


# --- deliveries -------------------------------------------------------------------------

# A store's own riders (OWN_RIDER): the nearest idle one is sent automatically.
riders = sa.Table(
    "riders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), nullable=False, index=True),
    sa.Column("name", Personal("riders.name"), nullable=False),
    sa.Column("phone", Personal("riders.phone"), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("busy", sa.Boolean, nullable=False),
    # Where the rider was last seen; null: at the store.
    sa.Column("lat", sa.Float, nullable=True),
    sa.Column("lng", sa.Float, nullable=True),
    _created_at(),
)

# The trip of a delivery order. Its position is the latest a courier reported; every
# report is kept in courier_positions (for replay) until pruned.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("courier_name", Personal("deliveries.courier_name"), nullable=True),
    sa.Column("courier_phone", Personal("deliveries.courier_phone"), nullable=True),
    sa.Column("rider_id", sa.Integer, sa.ForeignKey("riders.id"), nullable=True),
    sa.Column("lat", sa.Float, nullable=True),
    sa.Column("lng", sa.Float, nullable=True),
    sa.Column("position_at", UtcDateTime(), nullable=True),
    sa.Column("received_at", UtcDateTime(), nullable=True),
    sa.Column("origin_lat", sa.Float, nullable=False),
    sa.Column("origin_lng", sa.Float, nullable=False),
    sa.Column("destination_lat", PersonalFloat("deliveries.destination_lat"), nullable=False),
    sa.Column("destination_lng", PersonalFloat("deliveries.destination_lng"), nullable=False),
    sa.Column("eta_seconds", sa.Integer, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index("ix_deliveries_store_status", "store_id", "status"),
)

# What each platform asked quoted for a delivery, in the order they are tried (rank), and
# which was chosen; ``refused``: the platform would not quote, or refused the order.
delivery_quotes = sa.Table(
    "delivery_quotes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id"), nullable=False),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("fee_fen", sa.Integer, nullable=True),
    sa.Column("eta_seconds", sa.Integer, nullable=True),
    sa.Column("rank", sa.Integer, nullable=True),
    sa.Column("refused", sa.String(64), nullable=True),
    sa.Column("chosen", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("delivery_id", "provider", name="uq_delivery_quotes_delivery_provider"),
)

courier_positions = sa.Table(
    "courier_positions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id"), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lng", sa.Float, nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Index("ix_courier_positions_trip", "delivery_id", "recorded_at"),
    sa.Index("ix_courier_positions_received", "received_at"),
)

# --- campaigns ------------------------------------------------------------------------

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("starts_at", UtcDateTime(), nullable=False),
    sa.Column("ends_at", UtcDateTime(), nullable=False),
    sa.Column("store_ids", sa.JSON, nullable=False),
    sa.Column("channels", sa.JSON, nullable=False),
    sa.Column("quota_per_store", sa.Integer, nullable=False),
    sa.Column("per_member_limit", sa.Integer, nullable=False),
    sa.Column("new_members_only", sa.Boolean, nullable=False),
    sa.Column("group_size", sa.Integer, nullable=True),
    sa.Column("group_hours", sa.Integer, nullable=True),
    sa.Column("bargain_helps", sa.Integer, nullable=True),
    sa.Column("bargain_hours", sa.Integer, nullable=True),
    sa.Column("daily_help_cap", sa.Integer, nullable=True),
    sa.Column("ended_at", UtcDateTime(), nullable=True),
    sa.Column("closed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_by", sa.String(80), nullable=False),
    _created_at(),
    sa.Index("ix_campaigns_window", "ends_at", "starts_at"),
)

campaign_items = sa.Table(
    "campaign_items",
    metadata,
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("sku_id", sa.Integer, sa.ForeignKey("skus.id"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("price_fen", sa.Integer, nullable=False),
)

campaign_quotas = sa.Table(
    "campaign_quotas",
    metadata,
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), primary_key=True),
    sa.Column("sku_id", sa.Integer, sa.ForeignKey("skus.id"), primary_key=True),
    sa.Column("quota", sa.Integer, nullable=False),
    sa.Column("remaining", sa.Integer, nullable=False),
    sa.Column("closed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.CheckConstraint("remaining >= 0", name="remaining_not_negative"),
)

# How often each member took part (orders, groups, bargains): the per-member limit.
campaign_entries = sa.Table(
    "campaign_entries",
    metadata,
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
    sa.Column("entries", sa.Integer, nullable=False),
)

group_buys = sa.Table(
    "group_buys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("leader_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("sku_id", sa.Integer, sa.ForeignKey("skus.id"), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("seats_taken", sa.Integer, nullable=False),
    sa.Column("seats_paid", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    _created_at(),
    sa.CheckConstraint("seats_taken <= size AND seats_paid <= seats_taken", name="seats"),
    sa.Index("ix_group_buys_open", "status", "expires_at"),
    sa.Index("ix_group_buys_campaign", "campaign_id"),
)

group_members = sa.Table(
    "group_members",
    metadata,
    sa.Column("group_id", sa.Integer, sa.ForeignKey("group_buys.id"), primary_key=True),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("joined_at", UtcDateTime(), nullable=False),
)

bargains = sa.Table(
    "bargains",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("sku_id", sa.Integer, sa.ForeignKey("skus.id"), nullable=False),
    sa.Column("start_price_fen", sa.Integer, nullable=False),
    sa.Column("floor_price_fen", sa.Integer, nullable=False),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("helps_needed", sa.Integer, nullable=False),
    sa.Column("helps_done", sa.Integer, nullable=False),
    sa.Column("order_id", sa.Integer, nullable=True),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    _created_at(),
    sa.CheckConstraint("helps_done <= helps_needed", name="helps"),
    sa.Index("ix_bargains_campaign", "campaign_id"),
    sa.Index("ix_bargains_member", "member_id", "id"),
)

bargain_helps = sa.Table(
    "bargain_helps",
    metadata,
    sa.Column("bargain_id", sa.Integer, sa.ForeignKey("bargains.id"), primary_key=True),
    sa.Column("helper_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
    sa.Column("step_no", sa.Integer, nullable=False),
    sa.Column("cut_fen", sa.Integer, nullable=False),
    sa.Column("helped_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("bargain_id", "step_no", name="uq_bargain_helps_step"),
)

# Helps a member gave on one day (the chain's local date), across bargains: the daily cap.
help_days = sa.Table(
    "help_days",
    metadata,
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("helps", sa.Integer, nullable=False),
)

# Who brought whom: each join or help through a share code (reports, later commission).
invitations = sa.Table(
    "invitations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("target_id", sa.Integer, nullable=False),
    sa.Column("inviter_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
    sa.Column("invitee_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
    sa.Column("invitee_was_new", sa.Boolean, nullable=False),
    _created_at(),
    sa.UniqueConstraint("kind", "target_id", "invitee_id", name="uq_invitations_once"),
    sa.Index("ix_invitations_campaign", "campaign_id"),
    sa.Index("ix_invitations_inviter", "inviter_id"),
)

# --- persisted GraphQL documents ----------------------------------------------------------

# Documents known by their SHA-256: automatic persisted queries that clients registered
# (bounded, the oldest forgotten first) and trusted documents loaded ahead of time.
persisted_documents = sa.Table(
    "persisted_documents",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("trusted", sa.Boolean, nullable=False),
    _created_at(),
    sa.Index("ix_persisted_documents_trusted_created_at", "trusted", "created_at"),
)

# --- WeChat API access token -----------------------------------------------------------------

# The mini-program's access token, one row per AppID, shared by every process: a process
# that finds it stale takes the refresh lease with a conditional UPDATE (on the token it
# saw), so one process refreshes while the others wait for the new token.
wechat_access_tokens = sa.Table(
    "wechat_access_tokens",
    metadata,
    sa.Column("appid", sa.String(32), primary_key=True),
    sa.Column("token", sa.String(512), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("refresh_until", UtcDateTime(), nullable=True),  # the refresh lease
)

# The audit log (domain/audit.py): append-only. The migration adds triggers that refuse
# UPDATE and DELETE on both databases; no code path issues either.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor_kind", sa.String(8), nullable=False),
    sa.Column("credential", sa.String(40), nullable=False),
    sa.Column("staff_id", sa.Integer, nullable=True),
    sa.Column("api_key_id", sa.Integer, nullable=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("outcome", sa.String(8), nullable=False),
    sa.Column("error_code", sa.String(40), nullable=True),
    sa.Column("object_type", sa.String(40), nullable=True),
    sa.Column("object_id", sa.Integer, nullable=True),
    sa.Column("store_id", sa.Integer, nullable=True),
    sa.Column("client_address", sa.String(64), nullable=True),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Index("ix_audit_log_at", "at"),
    sa.Index("ix_audit_log_staff_id", "staff_id"),
    sa.Index("ix_audit_log_api_key_id", "api_key_id"),
    sa.Index("ix_audit_log_object", "object_type", "object_id"),
    sa.Index("ix_audit_log_store_id", "store_id"),
)

# --- kitchen stations and their tickets (domain/kitchen.py) ----------------------------

kitchen_stations = sa.Table(
    "kitchen_stations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("name", sa.String(20), nullable=False),
    sa.Column("sort", sa.Integer, nullable=False),
    sa.Column("is_default", sa.Boolean, nullable=False),
    sa.UniqueConstraint("store_id", "name", name="uq_kitchen_stations_store_name"),
)

# Category or product (exactly one) → station, per store; a product's route wins.
station_routes = sa.Table(
    "station_routes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), nullable=False),
    sa.Column(
        "station_id", sa.Integer, sa.ForeignKey("kitchen_stations.id"), nullable=False, index=True
    ),
    sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.id"), nullable=True),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id"), nullable=True),
    sa.UniqueConstraint("store_id", "category_id", name="uq_station_routes_category"),
    sa.UniqueConstraint("store_id", "product_id", name="uq_station_routes_product"),
    sa.CheckConstraint("(category_id IS NULL) <> (product_id IS NULL)", name="category_or_product"),
)

# One station's part of an accepted order, kept for reprints and kitchen screens. The
# station is named as it was (no foreign key: a removed station's tickets stay).
kitchen_tickets = sa.Table(
    "kitchen_tickets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("station_id", sa.Integer, nullable=True),
    sa.Column("station_name", sa.String(20), nullable=False),
    sa.Column("order_number", sa.String(24), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("table_no", sa.String(16), nullable=True),
    sa.Column("pickup_code", sa.String(8), nullable=True),
    sa.Column("note", sa.String(200), nullable=False),
    sa.Column("items", sa.JSON, nullable=False),
    sa.Column("placed_at", UtcDateTime(), nullable=False),
    sa.Column("accepted_at", UtcDateTime(), nullable=False),
    sa.Column("printed_at", UtcDateTime(), nullable=True),
    sa.Column("print_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index("ix_kitchen_tickets_store_station", "store_id", "station_id", "id"),
)

# Words customers type for a term (麻小 for 小龙虾), kept by head office; one row per term.
search_synonyms = sa.Table(
    "search_synonyms",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("term", sa.String(20), nullable=False, unique=True),
    sa.Column("synonyms", sa.JSON, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# Searches that found nothing, counted per normalised query and store (bounded: the rows
# seen least recently go first, see db/search.py).
search_misses = sa.Table(
    "search_misses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("store_id", sa.Integer, sa.ForeignKey("stores.id"), nullable=False),
    sa.Column("query", sa.String(50), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("first_seen_at", UtcDateTime(), nullable=False),
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("store_id", "query", name="uq_search_misses_store_query"),
    sa.Index("ix_search_misses_last_seen", "last_seen_at"),
)

# What the mini-program reports a member (or, signed out, a device) did: views, searches,
# favourites, add-to-cart. The client's event id is unique per actor ("m:<id>" or
# "d:<device>"), so a replayed batch records nothing twice.
behaviour_events = sa.Table(
    "behaviour_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("actor", sa.String(72), nullable=False),
    sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=True),
    sa.Column("device_id", sa.String(64), nullable=True),
    sa.Column("client_event_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("product_id", sa.Integer, nullable=True),
    sa.Column("query", sa.String(50), nullable=True),
    sa.Column("store_id", sa.Integer, nullable=True),
    sa.Column("occurred_at", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("actor", "client_event_id", name="uq_behaviour_events_client_id"),
    sa.Index("ix_behaviour_events_actor_created", "actor", "created_at"),
    sa.Index("ix_behaviour_events_occurred", "occurred_at"),
)

# Builds of the recommendation model: a build writes its rows under a new version and marks
# it READY last, so readers swap to it at once; older versions are then deleted.
recommendation_models = sa.Table(
    "recommendation_models",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("built_at", UtcDateTime(), nullable=True),
    sa.Column("orders", sa.Integer, nullable=False, server_default="0"),
    sa.Column("events", sa.Integer, nullable=False, server_default="0"),
    sa.Column("products", sa.Integer, nullable=False, server_default="0"),
    sa.Column("seconds", sa.Float, nullable=False, server_default="0"),
)

recommendation_neighbours = sa.Table(
    "recommendation_neighbours",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.Integer, primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True),
    sa.Column("neighbour_id", sa.Integer, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("together", sa.Boolean, nullable=False),
)

# Store 0 is the whole chain; period "" is all day.
recommendation_popularity = sa.Table(
    "recommendation_popularity",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("store_id", sa.Integer, primary_key=True),
    sa.Column("period", sa.String(16), primary_key=True),
    sa.Column("rank", sa.Integer, primary_key=True),
    sa.Column("product_id", sa.Integer, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
)
