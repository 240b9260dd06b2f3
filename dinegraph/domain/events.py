"""Every domain event a committed change can publish."""

from __future__ import annotations

from dinegraph.domain.delivery import DeliveryChanged
from dinegraph.domain.group_buys import GroupBuyChanged
from dinegraph.domain.identity import CredentialsChanged
from dinegraph.domain.kitchen import TicketChanged
from dinegraph.domain.orders import OrderChanged
from dinegraph.domain.stamps import ReadsChanged
from dinegraph.domain.stock import LowStock, StockChanged
from dinegraph.domain.supplies import SupplyChanged

# One type a line, so that adding one is a one-line change.
Event = (
    StockChanged
    | LowStock
    | OrderChanged
    | DeliveryChanged
    | GroupBuyChanged
    | ReadsChanged
    | SupplyChanged
    | CredentialsChanged
    | TicketChanged
)
EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls
    for cls in (
        StockChanged,
        LowStock,
        OrderChanged,
        DeliveryChanged,
        GroupBuyChanged,
        ReadsChanged,
        SupplyChanged,
        CredentialsChanged,
        TicketChanged,
    )
}
