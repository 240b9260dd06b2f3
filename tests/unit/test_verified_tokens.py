"""Access tokens are verified once and their claims kept until they expire, per signing key."""

from __future__ import annotations

import time

import jwt
import pytest
from pydantic import SecretStr

from dinegraph.security import (
    InvalidCredentials,
    VerifiedTokens,
    _decode,
    _verified,
    issue_member_token,
)
from dinegraph.settings import Settings

KEY_A = "a-signing-key-that-is-long-enough-for-the-tests-0001"
KEY_B = "b-signing-key-that-is-long-enough-for-the-tests-0002"


def test_claims_are_kept_until_their_expiry_and_under_their_key_only() -> None:
    tokens = VerifiedTokens(size=2)
    claims: dict[str, object] = {"sub": "member:1", "exp": 100.0}
    tokens.keep(KEY_A, "t1", claims)
    assert tokens.get(KEY_A, "t1", now=99.0) == claims
    assert tokens.get(KEY_B, "t1", now=99.0) is None  # signed by another key: not known
    assert tokens.get(KEY_A, "t1", now=100.0) is None  # expired: dropped
    assert tokens.get(KEY_A, "t1", now=50.0) is None  # and gone for good

    for n in range(3):
        tokens.keep(KEY_A, f"t{n}", {"sub": "member:1", "exp": 100.0})
    assert tokens.get(KEY_A, "t0", now=1.0) is None  # the oldest went beyond size
    assert tokens.get(KEY_A, "t2", now=1.0) is not None


def test_a_kept_token_is_still_checked_against_the_key_and_the_clock() -> None:
    settings_a = Settings(secret_key=SecretStr(KEY_A))
    settings_b = Settings(secret_key=SecretStr(KEY_B))
    token = issue_member_token(settings_a, 7)
    assert _decode(settings_a, token)["sub"] == "member:7"
    assert _verified.get(KEY_A, token, time.time()) is not None
    with pytest.raises(InvalidCredentials):
        _decode(settings_b, token)  # kept under A; B verifies it, and it fails

    soon = jwt.encode(
        {"sub": "member:8", "iss": "dinegraph", "iat": int(time.time()), "exp": time.time() + 60},
        KEY_A,
        algorithm="HS256",
    )
    assert _decode(settings_a, soon)["sub"] == "member:8"
    assert _verified.get(KEY_A, soon, time.time() + 61) is None  # past its exp: not served
