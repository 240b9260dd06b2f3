"""Staff sign-in rules and the TOTP adapter, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import StaffRole
from dinegraph.domain.staff import check_new_password, check_role_stores, check_username
from dinegraph.passwords import PyotpCodes

NOW = datetime(2026, 12, 2, 12, 0, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "password", ["", "nine-char", "li.manager", "LI.MANAGER", " li.manager ", "x" * 257]
)
def test_weak_passwords(password: str) -> None:
    with pytest.raises(DomainError) as refused:
        check_new_password(password, "li.manager", ["password"])
    assert refused.value.code is ErrorCode.WEAK_PASSWORD
    assert refused.value.field == ["password"]


def test_a_good_password() -> None:
    assert check_new_password("ten-chars!", "li.manager", ["p"]) == "ten-chars!"


@pytest.mark.parametrize("name", ["ab", "a" * 61, "李经理", "has space", "semi;colon", ""])
def test_bad_usernames(name: str) -> None:
    with pytest.raises(DomainError) as refused:
        check_username(name, ["username"])
    assert refused.value.code is ErrorCode.INVALID_INPUT


def test_usernames_are_trimmed() -> None:
    assert check_username("  Li.HQ_2-a ", ["username"]) == "Li.HQ_2-a"


def test_a_store_manager_needs_a_store() -> None:
    with pytest.raises(DomainError) as refused:
        check_role_stores(StaffRole.STORE_MANAGER, [], ["storeIds"])
    assert refused.value.code is ErrorCode.REQUIRED
    assert check_role_stores(StaffRole.HQ_ADMIN, [], ["storeIds"]) == []
    assert check_role_stores(StaffRole.STORE_MANAGER, [3, 1, 3], ["s"]) == [1, 3]


def test_totp_codes_of_this_step_and_its_neighbours() -> None:
    codes = PyotpCodes()
    secret = codes.new_secret()
    totp = pyotp.TOTP(secret)
    step = totp.timecode(NOW)
    assert codes.step_of(secret, totp.at(NOW), NOW) == step
    assert codes.step_of(secret, totp.at(NOW - timedelta(seconds=30)), NOW) == step - 1
    assert codes.step_of(secret, totp.at(NOW + timedelta(seconds=30)), NOW) == step + 1
    assert codes.step_of(secret, totp.at(NOW - timedelta(seconds=60)), NOW) is None
    for wrong in ("", "12345", "1234567", "abcdef", "１２３４５６"):
        assert codes.step_of(secret, wrong, NOW) is None
    uri = codes.uri(secret, "li.hq")
    assert uri.startswith("otpauth://totp/dinegraph:li.hq?") and f"secret={secret}" in uri
