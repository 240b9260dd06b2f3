"""Expected failures, each with a stable code that clients branch on."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    INVALID_ID = "INVALID_ID"
    INVALID_INPUT = "INVALID_INPUT"
    REQUIRED = "REQUIRED"
    TOO_LONG = "TOO_LONG"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    INVALID_COORDINATES = "INVALID_COORDINATES"
    DUPLICATE = "DUPLICATE"
    CATEGORY_CYCLE = "CATEGORY_CYCLE"
    CHANNEL_REQUIRED = "CHANNEL_REQUIRED"
    COMBO_NEEDS_COMPONENTS = "COMBO_NEEDS_COMPONENTS"
    INVALID_COMBO_COMPONENT = "INVALID_COMBO_COMPONENT"
    NEGATIVE_PRICE = "NEGATIVE_PRICE"
    PAGE_SIZE_TOO_LARGE = "PAGE_SIZE_TOO_LARGE"
    INVALID_CURSOR = "INVALID_CURSOR"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    SOLD_OUT = "SOLD_OUT"
    NOT_TRACKED = "NOT_TRACKED"
    TRACKED = "TRACKED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    INVALID_PHONE = "INVALID_PHONE"
    RATE_LIMITED = "RATE_LIMITED"
    INVALID_CODE = "INVALID_CODE"
    CODE_EXPIRED = "CODE_EXPIRED"
    CODE_LOCKED = "CODE_LOCKED"
    INVALID_TOKEN = "INVALID_TOKEN"
    ALREADY_CHECKED_IN = "ALREADY_CHECKED_IN"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    COUPON_SOLD_OUT = "COUPON_SOLD_OUT"
    CLAIM_LIMIT_REACHED = "CLAIM_LIMIT_REACHED"
    CLAIM_NOT_OPEN = "CLAIM_NOT_OPEN"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    TEMPLATE_STOPPED = "TEMPLATE_STOPPED"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    INVALID_SHARE_CODE = "INVALID_SHARE_CODE"
    NO_STORE_CAN_SERVE = "NO_STORE_CAN_SERVE"
    STORE_CANNOT_SERVE = "STORE_CANNOT_SERVE"
    NOT_ON_CHANNEL = "NOT_ON_CHANNEL"
    COUPON_NOT_APPLICABLE = "COUPON_NOT_APPLICABLE"
    NOTHING_TO_REFUND = "NOTHING_TO_REFUND"
    PAYMENT_MISMATCH = "PAYMENT_MISMATCH"
    NOT_AVAILABLE = "NOT_AVAILABLE"
    IMPLAUSIBLE_POSITION = "IMPLAUSIBLE_POSITION"
    WRONG_PROVIDER = "WRONG_PROVIDER"


class DomainError(Exception):
    """A rule refused a request; nothing was changed.

    ``field`` is the path of the input field at fault, ``params`` fill the message.
    """

    def __init__(
        self,
        code: ErrorCode,
        field: Sequence[str] | None = None,
        **params: object,
    ) -> None:
        super().__init__(code.value)
        self.code = code
        self.field = list(field) if field is not None else None
        self.params = params

    def __repr__(self) -> str:
        return f"DomainError({self.code.value}, field={self.field}, params={self.params})"
