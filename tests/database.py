"""The bot's database seen from a test, on either backend, through the bot's own `Database`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from bot.db import Database, PostgresDatabase, Row, SqliteDatabase
from bot.db.database import Parameters


class TestDatabase:
    """Opened beside the bot, the way the bot opens it (on first use), to read rows and arrange them:
    `await db.generations()`, `await db.rows("SELECT ...", (...))`, `await db.execute("UPDATE ...")`."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, env: Mapping[str, str]) -> None:
        self._url = env.get("DATABASE_URL")
        self._path = Path(env.get("DATABASE_PATH", ""))
        self._database: Database | None = None

    async def opened(self) -> Database:
        """The Database, opened (and migrated) on first use."""
        if self._database is None:
            self._database = (
                await PostgresDatabase.open(self._url)
                if self._url
                else await SqliteDatabase.open(self._path, exclusive=False)  # beside the bot, which holds the lock
            )
        return self._database

    async def rows(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        return await (await self.opened()).fetch(sql, parameters)

    async def value(self, sql: str, parameters: Parameters = ()) -> object:
        """The first column of the first row."""
        [row] = await self.rows(sql, parameters)
        return next(iter(row.values()))

    async def generations(self) -> list[Row]:
        """The usage log, oldest first."""
        return await self.rows("SELECT * FROM generations ORDER BY id")

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        return await (await self.opened()).execute(sql, parameters)

    async def execute_many(self, sql: str, rows: Iterable[Parameters]) -> None:
        await (await self.opened()).execute_many(sql, rows)

    async def close(self) -> None:
        if self._database is not None:
            await self._database.close()
            self._database = None
