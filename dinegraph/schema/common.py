"""Types shared by every area: money, points on the map, errors, connections."""

from __future__ import annotations

from typing import Any, TypeVar

import strawberry
from strawberry import relay

from dinegraph.domain.catalog import UNSET, Unset
from dinegraph.domain.errors import DomainError
from dinegraph.domain.errors import ErrorCode as DomainErrorCode
from dinegraph.domain.money import display_fen
from dinegraph.i18n import Locale, message_for

ErrorCode = DomainErrorCode
strawberry.enum(ErrorCode, name="ErrorCode", description="Stable codes of expected failures.")


@strawberry.type(description="An expected failure; nothing was changed.")
class UserError:
    code: ErrorCode
    message: str
    field: list[str] | None = None

    @classmethod
    def of(cls, error: DomainError, locale: Locale) -> UserError:
        return cls(
            code=error.code,
            message=message_for(error, locale),
            field=error.field,
        )


@strawberry.type(description="An amount of money in fen (1/100 yuan).")
class Money:
    fen: int
    display: str = strawberry.field(description="As a price tag reads it, e.g. ¥58.00.")

    @classmethod
    def of(cls, fen: int) -> Money:
        return cls(fen=fen, display=display_fen(fen))


@strawberry.type(description="A point in GCJ-02 coordinates.")
class GeoPoint:
    lat: float
    lng: float


@strawberry.input(description="A point in GCJ-02 coordinates, as the mini-program sends it.")
class GeoPointInput:
    lat: float
    lng: float


@strawberry.type(
    description="Where an order goes: for its member, its store and its courier's platform."
)
class DeliveryAddress:
    location: GeoPoint
    detail: str
    contact_name: str
    contact_phone: str


def page_info(page: Any) -> relay.PageInfo:
    """Relay page info of a ``resolvers.pagination.Page``."""
    return relay.PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
        start_cursor=page.items[0][0] if page.items else None,
        end_cursor=page.items[-1][0] if page.items else None,
    )


T = TypeVar("T")


def keep(value: T | None) -> T | Unset:
    """An update input field left out or null: leave the value as it is."""
    return UNSET if value is None or value is strawberry.UNSET else value
