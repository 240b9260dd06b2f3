"""What the domain needs from the outside world, as Protocols the adapters implement."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Protocol

from dinegraph.domain.catalog import (
    Category,
    Channel,
    ComboComponent,
    Product,
    ProductKind,
    Sku,
    Store,
)
from dinegraph.domain.stock import (
    LedgerKind,
    Movement,
    MovementLine,
    MovementSource,
    StockEvent,
    StockLevel,
)


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
    async def claim_movement(
        self,
        *,
        store_id: int,
        source: MovementSource,
        reference: str,
        fingerprint: str,
        reason: str,
        actor: str,
        lines: tuple[MovementLine, ...],
    ) -> Movement | None:
        """Record a movement's key; None when the key is taken (waits for a racing writer)."""

    async def movement_by_key(
        self, store_id: int, source: MovementSource, reference: str
    ) -> Movement | None: ...

    async def change_level(self, store_id: int, sku_id: int, delta: int) -> StockLevel | None:
        """Add ``delta`` unless the level would go below zero (then None); creates the row
        of a tracked SKU on its first restock."""

    async def add_ledger_row(
        self,
        *,
        movement_id: int,
        store_id: int,
        sku_id: int,
        kind: LedgerKind,
        delta: int,
        balance_after: int,
    ) -> None: ...

    async def get_level(self, store_id: int, sku_id: int) -> StockLevel | None: ...

    async def set_sold_out(self, store_id: int, sku_id: int, sold_out: bool) -> StockLevel: ...

    async def set_threshold(self, store_id: int, sku_id: int, threshold: int) -> StockLevel: ...


class UnitOfWork(Protocol):
    """One transaction: enter, change, ``commit()``; leaving without commit rolls back."""

    @property
    def catalog(self) -> CatalogRepository: ...

    @property
    def stock(self) -> StockRepository: ...

    def record(self, event: StockEvent) -> None:
        """Keep an event to publish once this unit of work has committed."""

    async def __aenter__(self) -> UnitOfWork: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...
