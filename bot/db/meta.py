"""SQLite implementation of the key/value meta repository."""

from __future__ import annotations

from bot.db.connection import Database


class SqliteMetaRepository:
    """Installation facts in the `meta` table."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, key: str) -> str | None:
        async with self._db.connection.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def set(self, key: str, value: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
