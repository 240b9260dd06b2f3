"""GraphQL types and mutations of live stock: sales, restocks, adjustments, 沽清, the ledger."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import strawberry
from strawberry import relay

from dinegraph.context import Context
from dinegraph.domain import stock as domain
from dinegraph.domain.reads import LedgerRow
from dinegraph.domain.services import stock as service
from dinegraph.resolvers import stock as resolve
from dinegraph.resolvers.ids import decode_id, node_row_ids
from dinegraph.schema.catalog import SkuNode, StoreNode, sku_at
from dinegraph.schema.common import UserError, page_info
from dinegraph.schema.errors import attempt, raise_for_query

Info = strawberry.Info[Context, None]

SaleSource = domain.SaleSource
LedgerKind = domain.LedgerKind
MovementSource = domain.MovementSource
strawberry.enum(SaleSource, name="SaleSource", description="Where a sale was made.")
strawberry.enum(LedgerKind, name="StockLedgerKind", description="What a ledger row records.")
strawberry.enum(MovementSource, name="StockMovementSource", description="What moved stock.")


async def _store(info: Info, store_id: int) -> StoreNode | None:
    found = await info.context.loaders.store.load(store_id)
    return StoreNode.of(found) if found else None


@strawberry.type(description="A SKU and how many of it a movement took (negative) or added.")
class StockMovementLine:
    quantity: int
    sku_id: strawberry.Private[int]
    store_id: strawberry.Private[int]

    @strawberry.field
    async def sku(self, info: Info) -> SkuNode | None:
        return await sku_at(info, self.sku_id, self.store_id)


@strawberry.type(
    name="StockMovement",
    description="One accepted change of stock: a sale, a restock, an adjustment, an order hold.",
)
class StockMovementNode(relay.Node):
    id: relay.NodeID[int]
    source: MovementSource
    reference: str = strawberry.field(description="External order id, or the caller's key.")
    reason: str
    created_at: datetime
    movement: strawberry.Private[domain.Movement]

    @classmethod
    def of(cls, movement: domain.Movement) -> StockMovementNode:
        return cls(
            id=movement.id,
            source=movement.source,
            reference=movement.reference,
            reason=movement.reason,
            created_at=movement.created_at,
            movement=movement,
        )

    @strawberry.field
    def lines(self) -> list[StockMovementLine]:
        return [
            StockMovementLine(
                quantity=line.quantity, sku_id=line.sku_id, store_id=self.movement.store_id
            )
            for line in self.movement.lines
        ]

    @strawberry.field
    async def store(self, info: Info) -> StoreNode | None:
        return await _store(info, self.movement.store_id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[StockMovementNode | None]:
        ids = node_row_ids(node_ids)
        found = await resolve.visible_movements(info.context, ids)
        return [cls.of(m) if m else None for m in found]


@strawberry.type(description="The stock of one SKU at one store, as staff manage it.")
class StoreStock:
    available: int | None
    sold_out: bool
    low_stock_threshold: int
    version: int
    level: strawberry.Private[domain.StockLevel]

    @classmethod
    def of(cls, level: domain.StockLevel) -> StoreStock:
        return cls(
            available=level.available,
            sold_out=level.sold_out,
            low_stock_threshold=level.low_stock_threshold,
            version=level.version,
            level=level,
        )

    @strawberry.field
    async def sku(self, info: Info) -> SkuNode | None:
        return await sku_at(info, self.level.sku_id, self.level.store_id)


@strawberry.type(description="One change of a tracked level.")
class StockLedgerEntry:
    kind: LedgerKind
    source: MovementSource
    reference: str
    reason: str
    delta: int
    balance_after: int
    created_at: datetime
    row: strawberry.Private[LedgerRow]

    @classmethod
    def of(cls, row: LedgerRow) -> StockLedgerEntry:
        return cls(
            kind=LedgerKind(row.kind),
            source=MovementSource(row.source),
            reference=row.reference,
            reason=row.reason,
            delta=row.delta,
            balance_after=row.balance_after,
            created_at=row.created_at,
            row=row,
        )

    @strawberry.field
    async def sku(self, info: Info) -> SkuNode | None:
        return await sku_at(info, self.row.sku_id, self.row.store_id)


@strawberry.type
class StockLedgerEdge:
    cursor: str
    node: StockLedgerEntry


@strawberry.type(description="Ledger rows, newest first.")
class StockLedgerConnection:
    edges: list[StockLedgerEdge]
    page_info: relay.PageInfo


# --- inputs and payloads ----------------------------------------------------------------


@strawberry.input
class SaleLineInput:
    sku_id: strawberry.ID
    quantity: int


@strawberry.input
class RecordSaleInput:
    store_id: strawberry.ID
    source: SaleSource
    external_order_id: str = strawberry.field(
        description="The order number in the selling system; it makes retries harmless."
    )
    lines: list[SaleLineInput]


@strawberry.input
class RestockInput:
    store_id: strawberry.ID
    sku_id: strawberry.ID
    quantity: int
    reference: str = strawberry.field(description="e.g. the delivery note number; retry-safe.")
    reason: str = ""


@strawberry.input
class AdjustStockInput:
    store_id: strawberry.ID
    sku_id: strawberry.ID
    delta: int = strawberry.field(description="Units to add (positive) or remove (negative).")
    reason: str
    reference: str


@strawberry.input
class SetSoldOutInput:
    store_id: strawberry.ID
    sku_id: strawberry.ID
    sold_out: bool


@strawberry.input
class SetLowStockThresholdInput:
    store_id: strawberry.ID
    sku_id: strawberry.ID
    threshold: int


@strawberry.type
class RecordSalePayload:
    sale: StockMovementNode | None
    errors: list[UserError]


@strawberry.type
class StockMovementPayload:
    movement: StockMovementNode | None
    errors: list[UserError]


@strawberry.type
class StoreStockPayload:
    stock: StoreStock | None
    errors: list[UserError]


def _ids(store_id: strawberry.ID, sku_id: strawberry.ID) -> tuple[int, int]:
    return decode_id(store_id, "Store", ["storeId"]), decode_id(sku_id, "Sku", ["skuId"])


@strawberry.type
class StockMutation:
    @strawberry.mutation(
        description="Deduct a sale made at the POS, a takeaway platform or the mini-program."
    )
    async def record_sale(self, info: Info, input: RecordSaleInput) -> RecordSalePayload:
        async def run() -> domain.Movement:
            cmd = domain.RecordSale(
                store_id=decode_id(input.store_id, "Store", ["storeId"]),
                source=input.source,
                external_order_id=input.external_order_id,
                lines=tuple(
                    domain.SaleLine(
                        decode_id(line.sku_id, "Sku", ["lines", str(n), "skuId"]), line.quantity
                    )
                    for n, line in enumerate(input.lines)
                ),
            )
            return await info.context.run(service.record_sale, cmd)

        sale, errors = await attempt(info, run)
        return RecordSalePayload(sale=StockMovementNode.of(sale) if sale else None, errors=errors)

    @strawberry.mutation(description="Add delivered units of a tracked SKU at a store.")
    async def restock(self, info: Info, input: RestockInput) -> StockMovementPayload:
        async def run() -> domain.Movement:
            store_id, sku_id = _ids(input.store_id, input.sku_id)
            cmd = domain.Restock(store_id, sku_id, input.quantity, input.reference, input.reason)
            return await info.context.run(service.restock, cmd)

        movement, errors = await attempt(info, run)
        return StockMovementPayload(
            movement=StockMovementNode.of(movement) if movement else None, errors=errors
        )

    @strawberry.mutation(description="Correct a tracked level after a count, breakage or waste.")
    async def adjust_stock(self, info: Info, input: AdjustStockInput) -> StockMovementPayload:
        async def run() -> domain.Movement:
            store_id, sku_id = _ids(input.store_id, input.sku_id)
            cmd = domain.AdjustStock(store_id, sku_id, input.delta, input.reason, input.reference)
            return await info.context.run(service.adjust_stock, cmd)

        movement, errors = await attempt(info, run)
        return StockMovementPayload(
            movement=StockMovementNode.of(movement) if movement else None, errors=errors
        )

    @strawberry.mutation(description="Mark a made-to-order dish sold out for today (沽清), or not.")
    async def set_sold_out(self, info: Info, input: SetSoldOutInput) -> StoreStockPayload:
        async def run() -> domain.StockLevel:
            store_id, sku_id = _ids(input.store_id, input.sku_id)
            return await info.context.run(
                service.set_sold_out, domain.SetSoldOut(store_id, sku_id, input.sold_out)
            )

        level, errors = await attempt(info, run)
        return StoreStockPayload(stock=StoreStock.of(level) if level else None, errors=errors)

    @strawberry.mutation(description="Alert staff when a tracked level falls to this or below.")
    async def set_low_stock_threshold(
        self, info: Info, input: SetLowStockThresholdInput
    ) -> StoreStockPayload:
        async def run() -> domain.StockLevel:
            store_id, sku_id = _ids(input.store_id, input.sku_id)
            cmd = domain.SetLowStockThreshold(store_id, sku_id, input.threshold)
            return await info.context.run(service.set_low_stock_threshold, cmd)

        level, errors = await attempt(info, run)
        return StoreStockPayload(stock=StoreStock.of(level) if level else None, errors=errors)


async def stock_ledger(
    info: Info,
    store_id: strawberry.ID,
    sku_id: strawberry.ID | None = None,
    first: int | None = None,
    after: str | None = None,
) -> StockLedgerConnection:
    with raise_for_query(info):
        page = await resolve.ledger_page(
            info.context,
            store_id=decode_id(store_id, "Store", ["storeId"]),
            sku_id=decode_id(sku_id, "Sku", ["skuId"]) if sku_id else None,
            first=first,
            after=after,
        )
    return StockLedgerConnection(
        edges=[StockLedgerEdge(cursor=c, node=StockLedgerEntry.of(r)) for c, r in page.items],
        page_info=page_info(page),
    )


async def store_stock(info: Info, store_id: strawberry.ID) -> list[StoreStock]:
    with raise_for_query(info):
        levels = await resolve.store_stock(info.context, decode_id(store_id, "Store", ["storeId"]))
    return [StoreStock.of(level) for level in levels]
