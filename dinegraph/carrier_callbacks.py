"""Delivery platforms' pushes: ``POST /delivery/sf/callback`` (顺丰同城) and
``POST /delivery/dada/callback`` (达达) tell us who took a delivery, where the rider is and
how the trip goes.

Each push is checked as its platform signs it, then applied through the same domain
services as the partner mutations ``reportDeliveryStatus`` / ``reportCourierPosition``,
as that platform (a partner bound to it, every store):

- 顺丰同城 signs the posted body like our calls to it: ``?sign=`` base64(md5_hex(
  ``<body>&<dev_id>&<dev_key>``)); a push whose ``push_time`` is older than
  ``MAX_AGE_SECONDS`` is refused (a replay). It takes ``{"error_code": 0}`` as received.
- 达达 signs with the md5 of ``client_id``, ``order_id`` and ``update_time`` sorted and
  joined (its documented callback signature, which carries no secret: hence the age limit
  on ``update_time`` too, and the token of the order in the callback URL we gave Dada with
  it, ``integrations.dada.callback_token``, without which anyone knowing a delivery's id
  could move it). It takes HTTP 200 as received.

A push told twice, or after a later one, changes nothing and is acknowledged, so the
platform stops sending it; one that cannot apply (not our delivery, a step missed) is
answered with an error, and the platform sends it again later.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from dinegraph.domain.delivery import FINAL, Delivery, DeliveryStatus, Provider
from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.identity import PartnerViewer, Scope
from dinegraph.domain.ports import UnitOfWork
from dinegraph.domain.services.delivery import (
    ReportPosition,
    ReportStatus,
    report_courier_position,
    report_delivery_status,
)
from dinegraph.domain.services.dispatch import DeliveryPolicy
from dinegraph.integrations.dada import callback_token
from dinegraph.integrations.sf_intra_city import delivery_id_of, sign

log = logging.getLogger("dinegraph.delivery")

MAX_AGE_SECONDS = 600

# 顺丰同城 order_status → ours (None: nothing for us to move: 1 created, 22 the rider
# withdrew and SF finds another, 31 cancelling, 91 an exception it reports).
SF_STATUSES: dict[int, DeliveryStatus] = {
    10: DeliveryStatus.ASSIGNED,  # 配送员接单 (or a new rider, 改派)
    12: DeliveryStatus.ARRIVED_AT_STORE,  # 配送员到店
    15: DeliveryStatus.PICKED_UP,  # 配送员配送中 (picked up)
    17: DeliveryStatus.DELIVERED,  # 配送员妥投完毕
    2: DeliveryStatus.FAILED,  # 订单取消
}
# 达达 order_status → ours (1 waiting, 8 assigned by Dada, 9/10 returning: nothing to move).
DADA_STATUSES: dict[int, DeliveryStatus] = {
    2: DeliveryStatus.ASSIGNED,  # 待取货
    100: DeliveryStatus.ARRIVED_AT_STORE,  # 骑士到店
    3: DeliveryStatus.PICKED_UP,  # 配送中
    4: DeliveryStatus.DELIVERED,  # 已完成
    5: DeliveryStatus.FAILED,  # 已取消
    7: DeliveryStatus.FAILED,  # 已过期
}
_RANK = {
    DeliveryStatus.PENDING: 0,
    DeliveryStatus.ASSIGNED: 1,
    DeliveryStatus.ARRIVED_AT_STORE: 2,
    DeliveryStatus.PICKED_UP: 3,
    DeliveryStatus.DELIVERING: 4,
    DeliveryStatus.DELIVERED: 5,
    DeliveryStatus.FAILED: 5,
}

NewUnit = Callable[[], UnitOfWork]
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class CarrierReport:
    """What one push says of one delivery."""

    delivery_id: int
    status: DeliveryStatus | None
    courier: tuple[str, str] | None  # (name, phone)
    position: tuple[float, float] | None  # (lat, lng)
    at: datetime


def platform_viewer(provider: Provider) -> PartnerViewer:
    """The platform, as its pushes act: it writes only the trips it carries."""
    return PartnerViewer(
        api_key_id=0,
        name=f"{provider.value} callback",
        scopes=frozenset({Scope.DELIVERY_WRITE.value}),
        store_ids=None,
        partner=provider.value,
    )


async def apply_report(
    provider: Provider,
    report: CarrierReport,
    *,
    new_uow: NewUnit,
    policy: DeliveryPolicy,
    now: datetime,
) -> Delivery | None:
    """The push applied as the partner mutations apply a report; the delivery then (None:
    nothing moved). A push behind the delivery's status changes nothing."""
    viewer = platform_viewer(provider)
    moved: Delivery | None = None
    if report.status is not None:
        try:
            moved = await report_delivery_status(
                ReportStatus(
                    delivery_id=report.delivery_id,
                    status=report.status,
                    courier=report.courier,
                    at=report.at,
                    now=now,
                    policy=policy,
                ),
                uow=new_uow(),
                viewer=viewer,
            )
        except DomainError as error:
            if error.code is not ErrorCode.INVALID_TRANSITION:
                raise
            current = error.params.get("current")
            if current is None or _RANK[DeliveryStatus(str(current))] < _RANK[report.status]:
                raise  # a step is missing: the platform sends this one again later
            log.info("%s push of delivery %s is behind it", provider, report.delivery_id)
    if report.position is not None and (moved is None or moved.status not in FINAL):
        try:
            moved, _ = await report_courier_position(
                ReportPosition(
                    delivery_id=report.delivery_id,
                    lat=report.position[0],
                    lng=report.position[1],
                    recorded_at=report.at,
                    now=now,
                    policy=policy,
                ),
                uow=new_uow(),
                viewer=viewer,
            )
        except DomainError as error:  # a bad fix or too soon: the status still counts
            if error.code in (ErrorCode.NOT_FOUND, ErrorCode.WRONG_PROVIDER):
                raise
            log.info(
                "%s position of delivery %s not taken: %s", provider, report.delivery_id, error.code
            )
    return moved


def _sf_answer(code: int, message: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"error_code": code, "error_msg": message}, status_code=status)


def sf_report(fields: Mapping[str, Any]) -> CarrierReport | None:
    """A 顺丰同城 push as a report; None when it is not about one of our deliveries."""
    delivery_id = delivery_id_of(str(fields.get("shop_order_id", "")))
    if delivery_id is None:
        return None
    code = fields.get("order_status")
    status = SF_STATUSES.get(int(code)) if code is not None else None
    name, phone = fields.get("operator_name"), fields.get("operator_phone")
    courier = (str(name), str(phone)) if name and phone else None
    if status is not DeliveryStatus.ASSIGNED:
        courier = None  # only taking the order names (or changes) the rider
    lat, lng = fields.get("rider_lat"), fields.get("rider_lng")
    position = (float(lat), float(lng)) if lat not in (None, "") and lng not in (None, "") else None
    at = datetime.fromtimestamp(int(fields["push_time"]), UTC)
    return CarrierReport(delivery_id, status, courier, position, at)


def sf_callback(
    *, dev_id: str, dev_key: str, new_uow: NewUnit, policy: DeliveryPolicy, clock: Clock
) -> Callable[[Request], Awaitable[Response]]:
    """The 顺丰同城 push endpoint."""

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        given = request.query_params.get("sign", "")
        if not hmac.compare_digest(given.encode(), sign(body, dev_id, dev_key).encode()):
            log.warning("顺丰同城 push refused: bad signature")
            return _sf_answer(1002, "sign error", 401)
        try:
            fields = orjson.loads(body)
            pushed = int(fields["push_time"])
            report = sf_report(fields)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return _sf_answer(1000, "bad push", 400)
        if abs(time.time() - pushed) > MAX_AGE_SECONDS:
            return _sf_answer(1003, "push_time expired", 400)
        if report is None:
            return _sf_answer(1005, "unknown shop_order_id", 404)
        return await _applied(Provider.SF_INTRA_CITY, report, new_uow, policy, clock, sf=True)

    return endpoint


def dada_signature(fields: Mapping[str, Any]) -> str:
    """达达's callback signature: md5 of client_id, order_id, update_time sorted, joined."""
    values = sorted(str(fields.get(k, "")) for k in ("client_id", "order_id", "update_time"))
    return hashlib.md5("".join(values).encode()).hexdigest()


def dada_report(fields: Mapping[str, Any]) -> CarrierReport | None:
    delivery_id = delivery_id_of(str(fields.get("order_id", "")))
    if delivery_id is None:
        return None
    status = DADA_STATUSES.get(int(fields["order_status"]))
    name, phone = fields.get("dm_name"), fields.get("dm_mobile")
    courier = (str(name), str(phone)) if name and phone else None
    if status is not DeliveryStatus.ASSIGNED:
        courier = None
    at = datetime.fromtimestamp(int(fields["update_time"]), UTC)
    return CarrierReport(delivery_id, status, courier, None, at)


def dada_callback(
    *, key: bytes, new_uow: NewUnit, policy: DeliveryPolicy, clock: Clock
) -> Callable[[Request], Awaitable[Response]]:
    """The 达达 status callback endpoint; ``key`` makes the orders' callback tokens."""

    async def endpoint(request: Request) -> Response:
        try:
            fields = orjson.loads(await request.body())
            given = str(fields["signature"])
            updated = int(fields["update_time"])
            report = dada_report(fields)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return JSONResponse({"code": "BAD_PUSH"}, status_code=400)
        if not hmac.compare_digest(given.encode(), dada_signature(fields).encode()):
            log.warning("达达 callback refused: bad signature")
            return JSONResponse({"code": "SIGN_ERROR"}, status_code=401)
        token = request.query_params.get("token", "")
        expected = callback_token(key, str(fields.get("order_id", "")))
        if not hmac.compare_digest(token.encode(), expected.encode()):
            log.warning("达达 callback refused: not the token of its order")
            return JSONResponse({"code": "SIGN_ERROR"}, status_code=401)
        if abs(time.time() - updated) > MAX_AGE_SECONDS:
            return JSONResponse({"code": "EXPIRED"}, status_code=400)
        if report is None:
            return JSONResponse({"code": "NOT_FOUND"}, status_code=404)
        return await _applied(Provider.DADA, report, new_uow, policy, clock, sf=False)

    return endpoint


async def _applied(
    provider: Provider,
    report: CarrierReport,
    new_uow: NewUnit,
    policy: DeliveryPolicy,
    clock: Clock,
    *,
    sf: bool,
) -> Response:
    try:
        await apply_report(provider, report, new_uow=new_uow, policy=policy, now=clock())
    except DomainError as error:
        log.warning(
            "%s push of delivery %s not applied: %s", provider, report.delivery_id, error.code
        )
        status = 404 if error.code in (ErrorCode.NOT_FOUND, ErrorCode.WRONG_PROVIDER) else 409
        if sf:
            return _sf_answer(status, error.code.value, status)
        return JSONResponse({"code": error.code.value}, status_code=status)
    if sf:
        return _sf_answer(0, "success")
    return JSONResponse({"status": "ok"})
