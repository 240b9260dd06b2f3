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
    _own_token_claims,
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


def _signed(claims: dict[str, object], key: str = KEY_A, **headers: object) -> str:
    return jwt.encode(claims, key, algorithm="HS256", headers=headers or None)


def _pyjwt(token: str, key: str) -> dict[str, object] | None:
    try:
        claims: dict[str, object] = jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            issuer="dinegraph",
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.PyJWTError:
        return None
    return claims


def test_our_own_tokens_are_read_without_pyjwt_and_accepted_only_where_pyjwt_accepts() -> None:
    now = int(time.time())
    good = {"iss": "dinegraph", "sub": "member:9", "iat": now - 5, "exp": now + 600}
    issued = issue_member_token(Settings(secret_key=SecretStr(KEY_A)), 9)
    assert _own_token_claims(KEY_A, issued, time.time()) == _pyjwt(issued, KEY_A)
    assert _own_token_claims(KEY_A, _signed(good), time.time()) == good

    head, payload, signature = _signed(good).split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    variants = {
        "another key": _signed(good, KEY_B),
        "a tampered signature": f"{head}.{payload}.{flipped}",
        "a payload swapped under the signature": (
            f"{head}.{_signed({**good, 'sub': 'member:1'}).split('.')[1]}.{signature}"
        ),
        "expired": _signed({**good, "exp": now - 1}),
        "issued in the future": _signed({**good, "iat": now + 120}),
        "another issuer": _signed({**good, "iss": "someone"}),
        "no subject": _signed({k: v for k, v in good.items() if k != "sub"}),
        "a numeric subject": _signed({**good, "sub": 9}),
        "a fractional exp": _signed({**good, "exp": now + 600.5}),
        "a claim more (nbf to come)": _signed({**good, "nbf": now + 300}),
        "a claim more (jti)": _signed({**good, "jti": "x"}),
        "another header (kid)": _signed(good, kid="k1"),
        "two segments": f"{head}.{payload}",
        "four segments": f"{head}.{payload}.{signature}.x",
        "not base64": f"{head}.{payload}.***",
        "not JSON": f"{head}.bm90IGpzb24.{signature}",
    }
    for name, token in variants.items():
        fast = _own_token_claims(KEY_A, token, time.time())
        slow = _pyjwt(token, KEY_A)
        # Read without PyJWT only what PyJWT reads the same; the rest falls through to it.
        assert fast is None or fast == slow, name
        _verified._claims.clear()
        if slow is None:
            with pytest.raises(InvalidCredentials):
                _decode(Settings(secret_key=SecretStr(KEY_A)), token)
        else:
            assert _decode(Settings(secret_key=SecretStr(KEY_A)), token) == slow, name
    # PyJWT accepts these, as int(exp) and with a header of another shape: they are its to read.
    assert _pyjwt(variants["a fractional exp"], KEY_A) is not None
    assert _own_token_claims(KEY_A, variants["a fractional exp"], time.time()) is None
    assert _pyjwt(variants["another header (kid)"], KEY_A) == good  # PyJWT still reads it
