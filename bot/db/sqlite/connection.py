"""The SQLite connection: opening, WAL mode, numbered migrations, and write transactions."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import aiosqlite

from bot.db.database import Parameters, Queries, Row, load_migrations
from bot.db.dialect import SQLITE
from bot.db.lock import DatabaseLock, lock_database

log = logging.getLogger(__name__)


#: How often the write-ahead log is copied back into the database file.
CHECKPOINT_SECONDS = 10.0


def dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Row:
    """Rows as dicts keyed by column name (the shape both backends return)."""
    return {column[0]: value for column, value in zip(cursor.description, values, strict=True)}


class SqliteQueries:
    """Statements on the bot's connection, inside a transaction (or the write lock) its caller holds."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self.connection = connection

    async def fetch(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        return cast("list[Row]", list(await self.connection.execute_fetchall(sql, parameters)))

    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        async with self.connection.execute(sql, parameters) as cursor:
            return cast("Row | None", await cursor.fetchone())

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        async with self.connection.execute(sql, parameters) as cursor:
            return cursor.rowcount

    async def execute_many(self, sql: str, rows: Iterable[Parameters]) -> None:
        await self.connection.executemany(sql, rows)


class SqliteDatabase:
    """One aiosqlite connection for the bot's work; writes go through `transaction()` (or hold the
    write lock for one statement) so they never interleave. A second connection, in its own thread,
    checkpoints the write-ahead log in the background, so no request ever waits for it. While open,
    it holds the file's lock (`bot.db.lock`): one bot process per database."""

    dialect = SQLITE

    def __init__(
        self, connection: aiosqlite.Connection, checkpointer: aiosqlite.Connection, lock: DatabaseLock | None = None
    ) -> None:
        self.connection = connection
        self._queries = SqliteQueries(connection)
        self._checkpointer = checkpointer
        self._lock = lock
        self._write_lock = asyncio.Lock()
        self._checkpoints: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, path: Path, *, checkpoint_seconds: float = CHECKPOINT_SECONDS, exclusive: bool = True
    ) -> SqliteDatabase:
        """Open (creating the file and its folder) and migrate the database at `path`; DatabaseInUse
        if another process has it open. `exclusive=False` leaves the process lock alone: for a reader
        beside the bot (a test), never for a second bot."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = lock_database(path) if exclusive else None  # before anything reads the queue or migrates
        try:
            connection = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        connection.row_factory = dict_row  # type: ignore[assignment]  # sqlite3 takes any callable
        try:
            await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute("PRAGMA synchronous = NORMAL")
            await connection.execute("PRAGMA foreign_keys = ON")
            await connection.execute("PRAGMA busy_timeout = 5000")
            # Checkpoints happen on the other connection, not inside some request's write.
            await connection.execute("PRAGMA wal_autocheckpoint = 0")
            checkpointer = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            await connection.close()
            if lock is not None:
                lock.release()
            raise
        database = cls(connection, checkpointer, lock)
        try:
            await database.migrate()
        except BaseException:
            await database.close()
            raise
        database._checkpoints = asyncio.create_task(database._checkpoint_forever(checkpoint_seconds))
        return database

    async def close(self) -> None:
        """Stop checkpointing, checkpoint fully, close both connections, and release the lock."""
        try:
            if self._checkpoints is not None:
                self._checkpoints.cancel()
                await asyncio.gather(self._checkpoints, return_exceptions=True)
            async with self._write_lock:
                await self.connection.execute("PRAGMA optimize")
                await self.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                await self.connection.close()
            await self._checkpointer.close()
        finally:
            if self._lock is not None:
                self._lock.release()

    async def checkpoint(self) -> tuple[int, int]:
        """Copy committed pages from the write-ahead log into the database without blocking anyone;
        return (pages in the log, pages copied)."""
        async with self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)") as cursor:
            row = await cursor.fetchone()
        return (int(row[1]), int(row[2])) if row else (0, 0)

    async def _checkpoint_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.checkpoint()
            except aiosqlite.Error as error:
                log.warning("database checkpoint failed: %s", error)

    # Reads share the connection and need no lock; every write holds the write lock.

    async def fetch(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        return await self._queries.fetch(sql, parameters)

    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        return await self._queries.fetch_one(sql, parameters)

    async def stream(self, sql: str, parameters: Parameters = ()) -> AsyncIterator[Row]:
        async with self.connection.execute(sql, parameters) as cursor:
            async for row in cursor:
                yield cast("Row", row)

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        # One statement is atomic by itself in SQLite (autocommit); the lock keeps it out of
        # another coroutine's open transaction.
        async with self._write_lock:
            return await self._queries.execute(sql, parameters)

    async def execute_many(self, sql: str, rows: Iterable[Parameters]) -> None:
        async with self.transaction() as queries:
            await queries.execute_many(sql, rows)

    async def fetch_serialised(self, sql: str, parameters: Parameters, *, key: int) -> list[Row]:
        """One statement under the write lock, without BEGIN: SQLite makes it atomic by itself, and
        this process is the database's only writer, whatever the key. One call into the database thread."""
        async with self._write_lock:
            return await self._queries.fetch(sql, parameters)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Queries]:
        """An immediate (write-locked) transaction, committed on success, rolled back on error."""
        async with self._write_lock:
            await self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._queries
            except BaseException:
                await self.connection.execute("ROLLBACK")
                raise
            await self.connection.execute("COMMIT")

    async def schema_version(self) -> int:
        """The number of the last migration applied (`PRAGMA user_version`)."""
        row = await self.fetch_one("PRAGMA user_version")
        return int(row["user_version"]) if row else 0

    async def migrate(self) -> None:
        """Apply every migration newer than the database, each in its own transaction."""
        current = await self.schema_version()
        for number, script in load_migrations("sqlite"):
            if number <= current:
                continue
            async with self._write_lock:
                try:
                    # One script: the schema change and the version bump commit together.
                    await self.connection.executescript(
                        f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
                    )
                except BaseException:
                    if self.connection.in_transaction:
                        await self.connection.execute("ROLLBACK")
                    raise
            log.info("database migrated to version %d", number)
