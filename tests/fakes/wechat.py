"""FakeWechatServer: the parts of WeChat's server API a mini-program back end calls.

- ``GET /sns/jscode2session``: codes given with ``add_login`` work once (then 40163),
  unknown ones get 40029; a wrong AppID/AppSecret gets 40013/40125. Answers are
  ``text/plain`` JSON, as WeChat's are.
- ``GET /cgi-bin/token`` and ``POST /cgi-bin/stable_token``: access tokens with an
  ``expires_in``; ``token_requests`` counts the calls. ``expire_tokens`` makes every token
  issued so far expired (42001 on use), ``revoke_tokens`` invalid (40001).
- ``POST /wxa/business/getuserphonenumber?access_token=…``: codes given with
  ``add_phone_code`` work once; the watermark names the AppID the code was made for.
- ``fail(api, errcode=…|status=…|hang=…)`` queues what the next call of an API answers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import BackgroundServer


@dataclass
class _Failure:
    errcode: int | None = None
    status: int | None = None
    hang: float | None = None


@dataclass
class _Token:
    value: str
    expires_at: float
    revoked: bool = False


@dataclass
class FakeWechatServer:
    appid: str = "wx0123456789abcdef"
    secret: str = "fake-app-secret-0123456789abcdef"
    expires_in: int = 7200
    token_delay: float = 0.2  # how long issuing a token takes: wide enough for races
    token_requests: int = 0
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _logins: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    _phones: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    _used: set[str] = field(default_factory=set)
    _tokens: dict[str, _Token] = field(default_factory=dict)
    _failures: dict[str, list[_Failure]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _server: BackgroundServer | None = None

    # --- what a test sets up --------------------------------------------------------------

    def add_login(self, code: str, openid: str, unionid: str | None = None) -> None:
        self._logins[code] = (openid, unionid)

    def add_phone_code(
        self, code: str, phone: str, *, country: str = "86", appid: str | None = None
    ) -> None:
        self._phones[code] = (phone, country, appid or self.appid)

    def fail(
        self,
        api: str,
        *,
        errcode: int | None = None,
        status: int | None = None,
        hang: float | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` calls of ``api`` (jscode2session, getuserphonenumber,
        stable_token, token) answer ``errcode``, HTTP ``status``, or nothing for ``hang`` s."""
        self._failures.setdefault(api, []).extend(
            _Failure(errcode, status, hang) for _ in range(times)
        )

    def expire_tokens(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = 0

    def revoke_tokens(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.revoked = True

    def calls_of(self, path: str) -> int:
        return sum(1 for called, _ in self.calls if called == path)

    # --- serving ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        return self._server.url

    def start(self) -> Self:
        app = Starlette(
            routes=[
                Route("/sns/jscode2session", self._jscode2session, methods=["GET"]),
                Route("/cgi-bin/token", self._token, methods=["GET"]),
                Route("/cgi-bin/stable_token", self._stable_token, methods=["POST"]),
                Route("/wxa/business/getuserphonenumber", self._phone_number, methods=["POST"]),
            ]
        )
        self._server = BackgroundServer(app).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    async def _failure(self, api: str) -> Response | None:
        queue = self._failures.get(api)
        if not queue:
            return None
        failure = queue.pop(0)
        if failure.hang is not None:
            await asyncio.sleep(failure.hang)
            return PlainTextResponse("late", status_code=504)
        if failure.status is not None:
            return PlainTextResponse("upstream error", status_code=failure.status)
        return _error(failure.errcode or -1)

    def _credentials_error(self, appid: object, secret: object) -> Response | None:
        if appid != self.appid:
            return _error(40013, "invalid appid")
        if secret != self.secret:
            return _error(40125, "invalid appsecret")
        return None

    async def _jscode2session(self, request: Request) -> Response:
        q = dict(request.query_params)
        self.calls.append(("jscode2session", q))
        if failed := await self._failure("jscode2session"):
            return failed
        if refused := self._credentials_error(q.get("appid"), q.get("secret")):
            return refused
        if q.get("grant_type") != "authorization_code":
            return _error(40002, "invalid grant_type")
        code = q.get("js_code", "")
        with self._lock:
            if code in self._used:
                return _error(40163, "code been used")
            if code not in self._logins:
                return _error(40029, "invalid code")
            self._used.add(code)
        openid, unionid = self._logins[code]
        body: dict[str, Any] = {"openid": openid, "session_key": "c2Vzc2lvbi1rZXktZmFrZQ=="}
        if unionid:
            body["unionid"] = unionid
        return PlainTextResponse(json.dumps(body))

    async def _issue(self, api: str, appid: object, secret: object, force: bool) -> Response:
        with self._lock:
            self.token_requests += 1
        if failed := await self._failure(api):
            return failed
        if refused := self._credentials_error(appid, secret):
            return refused
        await asyncio.sleep(self.token_delay)
        with self._lock:
            now = time.time()
            current = [t for t in self._tokens.values() if not t.revoked and t.expires_at > now]
            if current and not force and api == "stable_token":
                token = current[-1]  # the stable token stays the same while it lasts
            else:
                token = _Token(f"fake-token-{next(self._serial)}", now + self.expires_in)
                self._tokens[token.value] = token
        return JSONResponse(
            {"access_token": token.value, "expires_in": int(token.expires_at - time.time())}
        )

    async def _token(self, request: Request) -> Response:
        q = request.query_params
        self.calls.append(("token", dict(q)))
        if q.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        return await self._issue("token", q.get("appid"), q.get("secret"), force=True)

    async def _stable_token(self, request: Request) -> Response:
        body = await request.json()
        self.calls.append(("stable_token", body))
        if body.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        force = body.get("force_refresh", False)
        return await self._issue("stable_token", body.get("appid"), body.get("secret"), force)

    async def _phone_number(self, request: Request) -> Response:
        access_token = request.query_params.get("access_token", "")
        body = await request.json()
        self.calls.append(("getuserphonenumber", {"access_token": access_token, **body}))
        if failed := await self._failure("getuserphonenumber"):
            return failed
        with self._lock:
            token = self._tokens.get(access_token)
            if token is None or token.revoked:
                return _error(40001, "invalid credential, access_token is invalid or not latest")
            if token.expires_at <= time.time():
                return _error(42001, "access_token expired")
            code = body.get("code", "")
            if code in self._used or code not in self._phones:
                return _error(40029, "invalid code")
            self._used.add(code)
        phone, country, appid = self._phones[code]
        return JSONResponse(
            {
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": phone if country == "86" else f"+{country}{phone}",
                    "purePhoneNumber": phone,
                    "countryCode": country,
                    "watermark": {"timestamp": int(time.time()), "appid": appid},
                },
            }
        )


def _error(errcode: int, errmsg: str = "system error") -> Response:
    return PlainTextResponse(json.dumps({"errcode": errcode, "errmsg": errmsg}))
