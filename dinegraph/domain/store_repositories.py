"""Where the shop's standing data is kept: stores and the catalog, stock, members."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from dinegraph.domain.catalog import (
    Category,
    Channel,
    ComboComponent,
    Product,
    ProductKind,
    Sku,
    Store,
)
from dinegraph.domain.members import Address, LoginCode, Member, PointsKind
from dinegraph.domain.stock import (
    LedgerKind,
    Movement,
    MovementLine,
    MovementSource,
    SkuStock,
    StockLevel,
)

if TYPE_CHECKING:  # search's text libraries load only where search runs
    from dinegraph.domain.search import SynonymSet


class CatalogRepository(Protocol):
    async def get_store(self, store_id: int) -> Store | None: ...

    async def get_category(self, category_id: int) -> Category | None: ...

    async def category_parents(self) -> Mapping[int, int | None]: ...

    async def add_category(self, *, name: str, parent_id: int | None, sort: int) -> Category: ...

    async def save_category(self, category: Category) -> None: ...

    async def get_product(self, product_id: int) -> Product | None: ...

    async def add_product(
        self,
        *,
        category_id: int,
        kind: ProductKind,
        name: str,
        description: str,
        tags: tuple[str, ...],
        image_urls: tuple[str, ...],
        channels: frozenset[Channel],
        listed: bool,
        sort: int,
    ) -> Product: ...

    async def save_product(self, product: Product) -> None: ...

    async def get_sku(self, sku_id: int) -> Sku | None: ...

    async def save_synonyms(self, entry: SynonymSet, at: datetime) -> None:
        """Keep a term's synonyms (none: forget the term); search sees them once committed."""
        ...

    async def skus_with_kinds(
        self, sku_ids: Iterable[int]
    ) -> dict[int, tuple[Sku, ProductKind]]: ...

    async def next_sku_sort(self, product_id: int) -> int: ...

    async def add_sku(
        self,
        *,
        product_id: int,
        name: str,
        specs: Mapping[str, str],
        price_fen: int,
        tracked: bool,
        sort: int,
        components: tuple[ComboComponent, ...],
    ) -> Sku: ...

    async def save_sku(self, sku: Sku) -> None: ...

    async def set_store_price(self, store_id: int, sku_id: int, price_fen: int | None) -> None: ...


class StockRepository(Protocol):
    async def claim_and_take(
        self,
        *,
        store_id: int,
        source: MovementSource,
        reference: str,
        fingerprint: str,
        reason: str,
        actor: str,
        lines: tuple[MovementLine, ...],
        take: Sequence[MovementLine],
        kind: LedgerKind,
    ) -> tuple[Movement, dict[int, StockLevel]] | None:
        """Record a movement's key, then take the units of ``take`` as :meth:`take` does and
        write the ledger rows (of ``kind``) of the lines taken: the movement and the levels
        changed, by SKU. None when the key is taken (waits for a racing writer), and then
        nothing is taken or written."""

    async def movement_by_key(
        self, store_id: int, source: MovementSource, reference: str
    ) -> Movement | None: ...

    async def take(self, store_id: int, lines: Sequence[MovementLine]) -> dict[int, StockLevel]:
        """Take the units of every line (negative quantities) from the tracked levels that
        hold enough, as one atomic step; the levels changed, by SKU. A line left out took
        nothing: its SKU is made to order, unknown, or short."""

    async def sku_stock(self, store_id: int, sku_ids: Iterable[int]) -> dict[int, SkuStock]:
        """Whether each SKU is counted, and its level at the store; unknown SKUs left out."""

    async def change_level(self, store_id: int, sku_id: int, delta: int) -> StockLevel | None:
        """Add ``delta`` unless the level would go below zero (then None); creates the row
        of a tracked SKU on its first restock."""

    async def add_ledger_rows(
        self,
        *,
        movement_id: int,
        store_id: int,
        kind: LedgerKind,
        rows: Sequence[tuple[int, int, int]],
    ) -> None:
        """One ledger row per (SKU, delta, balance after) of the movement."""

    async def get_level(self, store_id: int, sku_id: int) -> StockLevel | None: ...

    async def set_sold_out(self, store_id: int, sku_id: int, sold_out: bool) -> StockLevel: ...

    async def set_threshold(self, store_id: int, sku_id: int, threshold: int) -> StockLevel: ...


async def take_and_ledger(
    stock: StockRepository,
    *,
    movement_id: int,
    store_id: int,
    kind: LedgerKind,
    take: Sequence[MovementLine],
) -> dict[int, StockLevel]:
    """Take the units of ``take`` and write a ledger row (SKU, delta, balance after) for
    each line taken: how ``claim_and_take`` takes when the take is not one statement."""
    taken = await stock.take(store_id, take)
    await stock.add_ledger_rows(
        movement_id=movement_id,
        store_id=store_id,
        kind=kind,
        rows=[
            (line.sku_id, line.quantity, taken[line.sku_id].available or 0)
            for line in take
            if line.sku_id in taken
        ],
    )
    return taken


class MemberRepository(Protocol):
    async def get(self, member_id: int, *, lock: bool = False) -> Member | None: ...

    async def by_phone(self, phone: str) -> Member | None: ...

    async def by_openid(self, openid: str) -> Member | None: ...

    async def add(
        self, *, phone: str | None, openid: str | None, nickname: str, unionid: str | None = None
    ) -> Member: ...

    async def save_profile(self, member: Member) -> None: ...

    async def last_code(self, phone: str) -> LoginCode | None: ...

    async def codes_since(
        self, *, phone: str | None = None, ip: str | None = None, since: datetime
    ) -> int: ...

    async def add_code(
        self, *, phone: str, ip: str, code_hash: str, created_at: datetime, expires_at: datetime
    ) -> None: ...

    async def code_failed(self, code_id: int) -> None: ...

    async def consume_code(self, code_id: int) -> bool: ...

    async def take_device_events(self, device_id: str, member_id: int, *, keep: int) -> int:
        """The behaviour events an anonymous device reported become the member's (an event
        id both sent stays the member's); the member keeps their ``keep`` latest. How many
        moved."""
        ...

    async def add_refresh_token(
        self, *, member_id: int, family: str, token_hash: str, expires_at: datetime
    ) -> None: ...

    async def refresh_token(self, token_hash: str) -> tuple[int, str, datetime, bool] | None: ...

    async def revoke_refresh_token(self, token_hash: str, at: datetime) -> bool: ...

    async def revoke_family(self, family: str, at: datetime) -> None: ...

    async def addresses(self, member_id: int) -> list[Address]: ...

    async def add_address(self, address: Address) -> Address: ...

    async def save_address(self, address: Address) -> None: ...

    async def delete_address(self, address_id: int) -> None: ...

    async def change_points(
        self,
        *,
        member_id: int,
        kind: PointsKind,
        reference: str,
        delta: int,
        expires_at: datetime | None = None,
    ) -> int | None: ...

    async def add_spend(
        self, *, member_id: int, reference: str, amount_fen: int, at: datetime
    ) -> bool: ...

    async def spend_since(self, member_id: int, since: datetime) -> int: ...

    async def expirable_points(self, now: datetime, limit: int) -> list[tuple[int, int, int]]: ...

    async def points_balance(self, member_id: int) -> int: ...

    async def last_check_in(self, member_id: int) -> tuple[date, int] | None: ...

    async def add_check_in(self, member_id: int, day: date, streak: int) -> None: ...
