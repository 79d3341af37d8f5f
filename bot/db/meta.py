"""The key/value meta repository, and the coordination of processes sharing one database."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from bot.db.database import Database

log = logging.getLogger(__name__)

#: Advisory lock class (the first key of pg_advisory_xact_lock(int, int)) of start-up steps.
START_UP_LOCK = 0x716D_0003
#: Discord's epoch (ms), the origin of snowflake timestamps.
DISCORD_EPOCH_MS = 1_420_070_400_000
#: How long an interaction's claim is kept: far beyond any duplicate delivery of it.
CLAIM_SECONDS = 3600.0
#: Old claims are pruned once every this many claims.
PRUNE_EVERY = 200


def snowflake_at(unix: float) -> int:
    """The smallest snowflake made at `unix` seconds."""
    return max(0, int(unix * 1000) - DISCORD_EPOCH_MS) << 22


class SqlMetaRepository:
    """Installation facts in the `meta` table; interaction claims in `interaction_claims`."""

    def __init__(self, database: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self._clock = clock
        self._claims = 0

    async def get(self, key: str) -> str | None:
        row = await self._db.fetch_one("SELECT value FROM meta WHERE key = ?", (key,))
        return str(row["value"]) if row else None

    async def set(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """PostgreSQL: a transaction holding an advisory lock, so processes starting together take
        turns. SQLite has one process, which needs no lock."""
        if self._db.dialect.name != "postgres":
            yield
            return
        async with self._db.transaction() as queries:
            row = await queries.fetch_one(f"SELECT pg_try_advisory_xact_lock({START_UP_LOCK}, 0) AS taken")
            if not (row and row["taken"]):
                log.info("another process is in a start-up step; waiting for it")
                await queries.fetch(f"SELECT pg_advisory_xact_lock({START_UP_LOCK}, 0)")
            yield

    async def claim_interaction(self, interaction_id: int) -> bool:
        self._claims += 1
        if self._claims % PRUNE_EVERY == 0:
            await self._db.execute(
                "DELETE FROM interaction_claims WHERE interaction_id < ?",
                (snowflake_at(self._clock() - CLAIM_SECONDS),),
            )
        inserted = await self._db.execute(
            "INSERT INTO interaction_claims (interaction_id) VALUES (?) ON CONFLICT DO NOTHING", (interaction_id,)
        )
        return inserted > 0
