"""The SQLite connection: opening, WAL mode, numbered migrations, and write transactions."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import aiosqlite

from bot.db.lock import DatabaseLock, lock_database

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


#: How often the write-ahead log is copied back into the database file.
CHECKPOINT_SECONDS = 10.0


class Database:
    """One aiosqlite connection for the bot's work; writes go through `transaction()` (or
    `single_statement()`) so they never interleave. A second connection, in its own thread,
    checkpoints the write-ahead log in the background, so no request ever waits for it. While open,
    it holds the file's lock (`bot.db.lock`): one bot process per database."""

    def __init__(
        self, connection: aiosqlite.Connection, checkpointer: aiosqlite.Connection, lock: DatabaseLock | None = None
    ) -> None:
        self.connection = connection
        self._checkpointer = checkpointer
        self._lock = lock
        self._write_lock = asyncio.Lock()
        self._checkpoints: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, path: Path, *, checkpoint_seconds: float = CHECKPOINT_SECONDS) -> Database:
        """Open (creating the file and its folder) and migrate the database at `path`; DatabaseInUse
        if another process has it open."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = lock_database(path)  # before anything reads the queue or migrates
        try:
            connection = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            lock.release()
            raise
        connection.row_factory = aiosqlite.Row
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

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """An immediate (write-locked) transaction, committed on success, rolled back on error."""
        async with self._write_lock:
            await self.connection.execute("BEGIN IMMEDIATE")
            try:
                yield self.connection
            except BaseException:
                await self.connection.execute("ROLLBACK")
                raise
            await self.connection.execute("COMMIT")

    @asynccontextmanager
    async def single_statement(self) -> AsyncIterator[aiosqlite.Connection]:
        """The write lock without BEGIN: for one statement, which SQLite makes atomic by itself
        (it must not run inside another coroutine's open transaction, hence the lock)."""
        async with self._write_lock:
            yield self.connection

    async def schema_version(self) -> int:
        """The number of the last migration applied (`PRAGMA user_version`)."""
        async with self.connection.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def migrate(self) -> None:
        """Apply every migration newer than the database, each in its own transaction."""
        current = await self.schema_version()
        for number, script in load_migrations():
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


def load_migrations() -> list[tuple[int, str]]:
    """The numbered SQL migrations shipped with the package, in order."""
    folder = resources.files("bot.db") / "migrations"
    migrations = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            migrations.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    migrations.sort()
    numbers = [n for n, _ in migrations]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {numbers}")
    return migrations
