"""Members: phone login with one-time codes, profiles, addresses, points and check-ins."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.geo import GeoPoint
from dinegraph.domain.text import clean_text
from dinegraph.domain.tiers import Tier

_PHONE = re.compile(r"^1[3-9]\d{9}$")  # a mainland mobile number

CODE_TTL = timedelta(minutes=5)
CODE_RESEND_INTERVAL = timedelta(seconds=60)
CODES_PER_PHONE_PER_DAY = 10
CODE_MAX_FAILURES = 5
NICKNAME_MAX = 30
ADDRESSES_MAX = 20
ADDRESS_MAX = 200  # the street, building and door of one address
CONTACT_NAME_MAX = 30
BIRTHDAY_EARLIEST = date(1900, 1, 1)


def check_phone(raw: str, field: str = "phone") -> str:
    phone = raw.strip().removeprefix("+86").strip()
    if not _PHONE.match(phone):
        raise DomainError(ErrorCode.INVALID_PHONE, field=[field])
    return phone


def mask_phone(phone: str | None) -> str | None:
    """``13812345678`` → ``138****5678``: what a page may show."""
    if phone is None:
        return None
    return f"{phone[:3]}****{phone[-4:]}"


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    phone: str | None
    wechat_openid: str | None
    nickname: str
    birthday: date | None
    tier: Tier
    created_at: datetime
    # The user's id across the brand's WeChat apps (mini-program, official account), when
    # WeChat tells it: what links them to one member.
    wechat_unionid: str | None = None


@dataclass(frozen=True, slots=True)
class LoginCode:
    id: int
    phone: str
    code_hash: str
    created_at: datetime
    expires_at: datetime
    failures: int
    consumed: bool


def check_code_request(*, now: datetime, last_sent: datetime | None, sent_today: int) -> None:
    """One code per phone per minute and ten a day: SMS costs money and annoys people."""
    if last_sent is not None and now - last_sent < CODE_RESEND_INTERVAL:
        wait = int((CODE_RESEND_INTERVAL - (now - last_sent)).total_seconds()) + 1
        raise DomainError(ErrorCode.RATE_LIMITED, field=["phone"], seconds=wait)
    if sent_today >= CODES_PER_PHONE_PER_DAY:
        raise DomainError(ErrorCode.RATE_LIMITED, field=["phone"], seconds=86400)


def check_code_usable(code: LoginCode | None, now: datetime) -> LoginCode:
    if code is None or code.consumed:
        raise DomainError(ErrorCode.INVALID_CODE, field=["code"])
    if code.failures >= CODE_MAX_FAILURES:
        raise DomainError(ErrorCode.CODE_LOCKED, field=["code"])
    if now >= code.expires_at:
        raise DomainError(ErrorCode.CODE_EXPIRED, field=["code"])
    return code


def clean_nickname(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise DomainError(ErrorCode.REQUIRED, field=["nickname"])
    if len(name) > NICKNAME_MAX:
        raise DomainError(ErrorCode.TOO_LONG, field=["nickname"], max=NICKNAME_MAX)
    return name


def check_birthday(birthday: date, today: date) -> date:
    """A birthday is a day from 1900 to today: a typo such as 9999-12-31 is refused."""
    if not BIRTHDAY_EARLIEST <= birthday <= today:
        raise DomainError(
            ErrorCode.OUT_OF_RANGE,
            field=["birthday"],
            min=BIRTHDAY_EARLIEST.isoformat(),
            max=today.isoformat(),
        )
    return birthday


def clean_address_text(raw: str) -> str:
    return clean_text(raw, ["address"], max_length=ADDRESS_MAX)


def clean_contact_name(raw: str) -> str:
    return clean_text(raw, ["contactName"], max_length=CONTACT_NAME_MAX)


def default_nickname(phone: str | None) -> str:
    return f"味友{phone[-4:]}" if phone else "味友"


@dataclass(frozen=True, slots=True)
class Address:
    id: int
    member_id: int
    contact_name: str
    contact_phone: str
    address: str
    location: GeoPoint
    is_default: bool


# --- points ---------------------------------------------------------------------------


class PointsKind(StrEnum):
    EARN = "EARN"
    REDEEM = "REDEEM"
    EXPIRE = "EXPIRE"
    ADJUST = "ADJUST"
    CHECK_IN = "CHECK_IN"
    REFUND = "REFUND"  # points of a refunded order taken back


POINTS_REFERENCE_MAX = 64  # what makes a change of points happen once, e.g. a ticket number
CHECK_IN_BASE_POINTS = 5
CHECK_IN_STREAK_BONUS = {3: 10, 7: 30}  # extra points on the 3rd and 7th day in a row


def check_in_points(streak: int) -> int:
    """Daily check-in (签到): a base amount, and a bonus on the 3rd and 7th day running."""
    cycle_day = (streak - 1) % 7 + 1
    return CHECK_IN_BASE_POINTS + CHECK_IN_STREAK_BONUS.get(cycle_day, 0)


def next_streak(last_day: date | None, last_streak: int, today: date) -> int:
    if last_day == today:
        raise DomainError(ErrorCode.ALREADY_CHECKED_IN)
    if last_day is not None and last_day == today - timedelta(days=1):
        return last_streak + 1
    return 1


def earned_points(paid_fen: int, multiplier: float) -> int:
    """One point per yuan paid, times the tier's multiplier, rounded down."""
    return int(paid_fen // 100 * multiplier)
