"""The database half of ``/health``."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine


async def check_database(engine: AsyncEngine) -> None:
    """Raises unless the database answers a trivial statement."""
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
