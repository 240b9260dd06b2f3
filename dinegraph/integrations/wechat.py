"""WeChat mini-program sign-in: login codes, phone numbers, the shared access token.

- ``identity_for``: ``GET /sns/jscode2session`` turns a wx.login code into the openid (and
  unionid when the app is bound to an open-platform account). WeChat's ``session_key`` is
  dropped at once: nothing here decrypts user data, so it is neither kept nor sent on.
- ``phone_for``: ``POST /wxa/business/getuserphonenumber?access_token=…`` turns a
  getPhoneNumber code into the number; the watermark's AppID must be ours.
- The access token (``POST /cgi-bin/stable_token``) is kept in the database, one row per
  AppID, so every process uses the same one. A process that finds it stale takes a refresh
  lease with a conditional UPDATE on the token it saw: one process asks WeChat, the others
  wait for the row to change. In a process, one lock lets one request look. WeChat's
  "invalid/expired token" answers (40001, 42001, 40014) refresh once (forced) and retry once.

Errors become UserErrors (``integrations.outside``): a wrong or used code (40029, 40163) is
INVALID_CODE, WeChat's rate limit (45011) RATE_LIMITED, and WeChat busy (-1), a 5xx, a
transport error or a timeout PROVIDER_UNAVAILABLE. Secrets, tokens and numbers are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx

from dinegraph.domain.errors import ErrorCode
from dinegraph.domain.ports import WechatIdentity
from dinegraph.integrations.outside import ProviderRefused, ProviderUnavailable

log = logging.getLogger("dinegraph.wechat")

DEFAULT_BASE_URL = "https://api.weixin.qq.com"
TOKEN_ERRORS = frozenset({40001, 42001, 40014})  # invalid, expired, malformed access token
CODE_ERRORS = frozenset({40029, 40163})  # invalid code, code already used
BUSY = -1
RATE_LIMITED = 45011
RATE_LIMIT_SECONDS = 60
# A token this close to its end is refreshed: in its last five minutes stable_token hands
# out the next one, and the old one still works meanwhile.
REFRESH_MARGIN = timedelta(minutes=5)


class TokenStore(Protocol):
    """Where the access token lives for every process (``db.wechat_tokens``)."""

    async def read(self, appid: str) -> tuple[str, datetime] | None: ...

    async def claim(
        self, appid: str, *, seen: str | None, now: datetime, until: datetime
    ) -> bool: ...

    async def save(self, appid: str, token: str, expires_at: datetime) -> None: ...

    async def release(self, appid: str) -> None: ...


@dataclass(frozen=True, slots=True)
class WechatConfig:
    appid: str
    secret: str
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: float = 5.0


Body = dict[str, Any]


class WechatMiniProgram:
    """The WechatLogin port against WeChat's server API."""

    def __init__(
        self,
        config: WechatConfig,
        tokens: TokenStore,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self._tokens = tokens
        self._clock = clock or (lambda: datetime.now(UTC))
        self._http = httpx.AsyncClient(
            base_url=config.base_url, timeout=config.timeout_seconds, follow_redirects=False
        )
        self._cached: tuple[str, datetime] | None = None
        self._lock = asyncio.Lock()
        # httpx logs each request's URL at INFO; these URLs carry the AppSecret, login codes
        # and the access token.
        logging.getLogger("httpx").setLevel(logging.WARNING)

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the port ---------------------------------------------------------------------------

    async def identity_for(self, code: str) -> WechatIdentity:
        body = await self._call(
            "GET",
            "/sns/jscode2session",
            ["code"],
            params={
                "appid": self.config.appid,
                "secret": self.config.secret,
                "js_code": code,
                "grant_type": "authorization_code",
            },
        )
        _raise_for(body, ["code"], "jscode2session")
        openid, unionid = body.get("openid"), body.get("unionid")
        if not isinstance(openid, str) or not openid:
            raise ProviderUnavailable(["code"], reason="jscode2session: no openid")
        return WechatIdentity(openid, unionid if isinstance(unionid, str) and unionid else None)

    async def phone_for(self, code: str) -> str:
        async def ask(token: str) -> Body:
            return await self._call(
                "POST",
                "/wxa/business/getuserphonenumber",
                ["code"],
                params={"access_token": token},
                json={"code": code},
            )

        body = await self._with_token(ask, ["code"])
        _raise_for(body, ["code"], "getuserphonenumber")
        info = body.get("phone_info")
        if not isinstance(info, dict):
            raise ProviderUnavailable(["code"], reason="getuserphonenumber: no phone_info")
        watermark = info.get("watermark")
        if not isinstance(watermark, dict) or watermark.get("appid") != self.config.appid:
            # A code of another mini-program: its number is not ours to take.
            raise ProviderRefused(ErrorCode.INVALID_CODE, ["code"], reason="foreign appid")
        number, country = info.get("purePhoneNumber"), info.get("countryCode")
        if not isinstance(number, str) or not number:
            raise ProviderUnavailable(["code"], reason="getuserphonenumber: no number")
        return f"+{country}{number}" if country else number

    # --- the access token -----------------------------------------------------------------

    async def _with_token(self, ask: Callable[[str], Awaitable[Body]], field: list[str]) -> Body:
        token = await self._token(field)
        body = await ask(token)
        if body.get("errcode") in TOKEN_ERRORS:
            log.info("WeChat refused the access token (%s): refreshing", body.get("errcode"))
            token = await self._token(field, stale=token)
            body = await ask(token)
            if body.get("errcode") in TOKEN_ERRORS:
                log.error("WeChat refused a fresh access token (%s)", body.get("errcode"))
                raise ProviderUnavailable(field, reason="access token refused twice")
        return body

    def _usable(self, found: tuple[str, datetime] | None, stale: str | None) -> str | None:
        if found is None or not found[0] or found[0] == stale:
            return None
        return found[0] if found[1] - REFRESH_MARGIN > self._clock() else None

    async def _token(self, field: list[str], stale: str | None = None) -> str:
        """The current access token; refreshed by one caller of all processes when stale
        (``stale``: the token WeChat just refused)."""
        if token := self._usable(self._cached, stale):
            return token
        appid = self.config.appid
        lease = timedelta(seconds=self.config.timeout_seconds + 5)
        give_up = asyncio.get_running_loop().time() + 2 * lease.total_seconds()
        async with self._lock:
            while True:
                if token := self._usable(self._cached, stale):
                    return token
                row = await self._tokens.read(appid)
                if token := self._usable(row, stale):
                    self._cached = row
                    return token
                now = self._clock()
                seen = row[0] if row is not None else None
                if await self._tokens.claim(appid, seen=seen, now=now, until=now + lease):
                    try:
                        token, expires_at = await self._fetch_token(
                            field, force=stale is not None and seen == stale
                        )
                    except BaseException:
                        await asyncio.shield(self._tokens.release(appid))
                        raise
                    await self._tokens.save(appid, token, expires_at)
                    self._cached = (token, expires_at)
                    return token
                if asyncio.get_running_loop().time() > give_up:
                    raise ProviderUnavailable(field, reason="access token refresh still running")
                await asyncio.sleep(0.05)  # another process refreshes: wait for its token

    async def _fetch_token(self, field: list[str], *, force: bool) -> tuple[str, datetime]:
        body = await self._call(
            "POST",
            "/cgi-bin/stable_token",
            field,
            json={
                "grant_type": "client_credential",
                "appid": self.config.appid,
                "secret": self.config.secret,
                "force_refresh": force,
            },
        )
        if body.get("errcode"):
            log.error("WeChat gave no access token: %s %s", body.get("errcode"), body.get("errmsg"))
            raise ProviderUnavailable(field, reason=f"stable_token {body.get('errcode')}")
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise ProviderUnavailable(field, reason="stable_token: no token")
        log.info("WeChat access token refreshed (forced: %s)", force)
        return token, self._clock() + timedelta(seconds=expires_in)

    # --- HTTP --------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, field: list[str], **kwargs: Any) -> Body:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            log.warning("WeChat %s timed out", path)
            raise ProviderUnavailable(field, reason=f"{path} timed out") from exc
        except httpx.HTTPError as exc:
            log.warning("WeChat %s failed: %s", path, type(exc).__name__)
            raise ProviderUnavailable(field, reason=f"{path}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            log.warning("WeChat %s answered HTTP %s", path, response.status_code)
            raise ProviderUnavailable(field, reason=f"{path}: HTTP {response.status_code}")
        try:
            body = json.loads(response.content)  # jscode2session answers text/plain
        except ValueError as exc:
            raise ProviderUnavailable(field, reason=f"{path}: not JSON") from exc
        if not isinstance(body, dict):
            raise ProviderUnavailable(field, reason=f"{path}: not an object")
        return body


def _raise_for(body: Body, field: list[str], api: str) -> None:
    errcode = body.get("errcode") or 0
    if errcode == 0:
        return
    if errcode in CODE_ERRORS:
        raise ProviderRefused(ErrorCode.INVALID_CODE, field, reason=f"{api} {errcode}")
    if errcode == RATE_LIMITED:
        raise ProviderRefused(
            ErrorCode.RATE_LIMITED, field, reason=f"{api} {errcode}", seconds=RATE_LIMIT_SECONDS
        )
    if errcode != BUSY:
        log.error("WeChat %s refused: %s %s", api, errcode, body.get("errmsg"))
    raise ProviderUnavailable(field, reason=f"{api} {errcode}")
