"""The WeChat access token shared by every process (integrations/wechat.py's store)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dinegraph.db.tables import wechat_access_tokens as tokens


class SqlWechatTokens:
    """One row per AppID; the refresh lease is taken with a conditional UPDATE."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def read(self, appid: str) -> tuple[str, datetime] | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(tokens.c.token, tokens.c.expires_at).where(tokens.c.appid == appid)
                )
            ).first()
        return (row.token, row.expires_at) if row else None

    async def claim(self, appid: str, *, seen: str | None, now: datetime, until: datetime) -> bool:
        """Take the refresh lease if the token is still ``seen`` (None: no row yet) and no
        other process holds an unexpired lease; True when this caller must refresh."""
        try:
            async with self._engine.begin() as conn:
                if seen is None:
                    await conn.execute(
                        tokens.insert().values(
                            appid=appid, token="", expires_at=now, refresh_until=until
                        )
                    )
                    return True
                done = await conn.execute(
                    tokens.update()
                    .where(
                        tokens.c.appid == appid,
                        tokens.c.token == seen,
                        sa.or_(tokens.c.refresh_until.is_(None), tokens.c.refresh_until < now),
                    )
                    .values(refresh_until=until)
                )
                return done.rowcount == 1
        except IntegrityError:  # another process inserted the row first
            return False

    async def save(self, appid: str, token: str, expires_at: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                tokens.update()
                .where(tokens.c.appid == appid)
                .values(token=token, expires_at=expires_at, refresh_until=None)
            )

    async def release(self, appid: str) -> None:
        """The refresh failed: let the next caller try."""
        async with self._engine.begin() as conn:
            await conn.execute(
                tokens.update().where(tokens.c.appid == appid).values(refresh_until=None)
            )
