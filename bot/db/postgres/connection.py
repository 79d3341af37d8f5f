"""PostgreSQL: one asyncpg pool, migrations recorded in the database, admissions serialised per guild."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from urllib.parse import parse_qs, urlsplit

import asyncpg

from bot.db.database import DatabaseSetupError, Parameters, Queries, Row, load_migrations
from bot.db.dialect import POSTGRES
from bot.db.postgres.parameters import arguments
from bot.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

#: Advisory lock classes (the first key of pg_advisory_lock(int, int)) of this application.
MIGRATION_LOCK = 0x716D_0001
ADMISSION_LOCK = 0x716D_0002
#: Connections kept open, and the most the bot opens at once.
POOL_MIN_SIZE = 1
POOL_MAX_SIZE = 10
#: How long one connection attempt may take, in seconds.
CONNECT_TIMEOUT = 10.0
#: Waits between attempts while the server is unreachable at start: doubling up to the maximum.
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0

# What a lost or refused connection raises (OSError covers refused, reset and timed-out sockets).
_UNREACHABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up, terminated
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections
    asyncpg.exceptions.InternalClientError,  # a connection the server ended, caught mid-statement
)


def is_unreachable(error: BaseException) -> bool:
    """Whether `error` means the server cannot be used right now (rather than a bad statement)."""
    if isinstance(error, asyncpg.exceptions.DataError):
        return False
    return isinstance(error, (*_UNREACHABLE, asyncpg.InterfaceError))  # InterfaceError: "connection is closed"


@contextmanager
def unavailable_as_domain_error() -> Iterator[None]:
    """A connection failure becomes DatabaseUnavailable, which the member hears about as such."""
    try:
        yield
    except Exception as error:
        if not is_unreachable(error):
            raise
        log.warning("PostgreSQL unavailable: %s: %s", type(error).__name__, error)
        raise DatabaseUnavailable(f"{type(error).__name__}: {error}") from error


def location(url: str) -> str:
    """Where a database URL points (host, port, database), without user or password, for the log."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or ["localhost"])[0]
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}"


def rowcount(status: str) -> int:
    """The number of rows a command status (`UPDATE 3`, `INSERT 0 1`) reports."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Released connections keep their session: the bot never changes session state, so the
    reset query (one more round trip per statement) is not needed. Open transactions are still
    rolled back by asyncpg."""


class PostgresQueries:
    """Statements on one pooled connection (inside the transaction its caller holds)."""

    def __init__(self, connection: asyncpg.pool.PoolConnectionProxy) -> None:
        self.connection = connection

    async def fetch(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        query, args = arguments(sql, parameters)
        with unavailable_as_domain_error():
            return [dict(record.items()) for record in await self.connection.fetch(query, *args)]

    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        query, args = arguments(sql, parameters)
        with unavailable_as_domain_error():
            record = await self.connection.fetchrow(query, *args)
        return dict(record.items()) if record is not None else None

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        query, args = arguments(sql, parameters)
        with unavailable_as_domain_error():
            return rowcount(await self.connection.execute(query, *args))

    async def execute_many(self, sql: str, rows: Iterable[Parameters]) -> None:
        batch = [arguments(sql, parameters) for parameters in rows]
        if batch:
            with unavailable_as_domain_error():
                await self.connection.executemany(batch[0][0], [args for _, args in batch])


class PostgresDatabase:
    """A pool of connections to one PostgreSQL database, migrated when it opens."""

    dialect = POSTGRES

    def __init__(self, pool: asyncpg.Pool, where: str, url: str = "") -> None:
        self.pool = pool
        self.where = where
        #: How to open a connection of its own (with the password: never logged).
        self.url = url

    @classmethod
    async def open(cls, url: str, *, max_size: int = POOL_MAX_SIZE, retry: bool = True) -> PostgresDatabase:
        """Connect and migrate. While the server is unreachable: wait and try again, with one log line
        per attempt (or, without `retry`, raise DatabaseUnavailable)."""
        where = location(url)
        pool = await _create_pool(url, where, max_size, retry=retry)
        database = cls(pool, where, url)
        try:
            await database.migrate()
        except BaseException:
            await database.close()
            raise
        log.info("using PostgreSQL at %s", where)
        return database

    async def close(self) -> None:
        """Close every connection (waiting for statements in progress)."""
        await self.pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[PostgresQueries]:
        with unavailable_as_domain_error():
            async with self.pool.acquire() as connection:
                try:
                    yield PostgresQueries(connection)
                except DatabaseUnavailable:
                    # The server went away: this connection and its idle siblings are dead, even if
                    # they do not know it yet. Each is replaced by a new one the next time it is wanted.
                    with contextlib.suppress(asyncpg.InterfaceError):  # already released if it was closed
                        connection.terminate()
                    await self.pool.expire_connections()
                    raise

    async def fetch(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        async with self._connection() as queries:
            return await queries.fetch(sql, parameters)

    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        async with self._connection() as queries:
            return await queries.fetch_one(sql, parameters)

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        async with self._connection() as queries:
            return await queries.execute(sql, parameters)

    async def execute_many(self, sql: str, rows: Iterable[Parameters]) -> None:
        async with self.transaction() as queries:
            await queries.execute_many(sql, rows)

    async def stream(self, sql: str, parameters: Parameters = ()) -> AsyncIterator[Row]:
        query, args = arguments(sql, parameters)
        async with self._transaction() as queries:  # a cursor lives in a transaction
            with unavailable_as_domain_error():
                async for record in queries.connection.cursor(query, *args, prefetch=500):
                    yield dict(record.items())

    def transaction(self) -> AbstractAsyncContextManager[Queries]:
        """A transaction on one pooled connection, committed on success, rolled back on error."""
        return self._transaction()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[PostgresQueries]:
        async with self._connection() as queries:
            with unavailable_as_domain_error():
                async with queries.connection.transaction():
                    yield queries

    async def fetch_serialised(self, sql: str, parameters: Parameters, *, key: int) -> list[Row]:
        """The statement in a transaction that first takes an advisory lock on `key`: under READ
        COMMITTED two concurrent statements could otherwise both see the same free slot. The lock
        waits for the other transaction to commit, and the statement, which starts after it, sees
        its row. Three round trips: BEGIN with the lock, the statement, COMMIT.

        The statement runs its prepared generic plan: planned afresh for each call, it would spend
        longer planning (probing the newest index entries for every time range) than running."""
        query, args = arguments(sql, parameters)
        async with self._connection() as queries:
            connection = queries.connection
            with unavailable_as_domain_error():
                await connection.execute(
                    "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; "
                    f"SELECT pg_advisory_xact_lock({ADMISSION_LOCK}, {_int4(key)})"
                )
                try:
                    records = await connection.fetch(query, *args)
                except BaseException:
                    if not connection.is_closed():
                        await connection.execute("ROLLBACK")
                    raise
                await connection.execute("COMMIT")
        return [dict(record.items()) for record in records]

    async def schema_version(self) -> int:
        """The number of the last migration applied (the `schema_version` table)."""
        row = await self.fetch_one("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version")
        return int(row["version"]) if row else 0

    async def migrate(self) -> None:
        """Apply every migration newer than the database, each in its own transaction, under an
        advisory lock: a second process starting at the same time waits, then finds nothing to do."""
        async with self._connection() as queries:
            connection = queries.connection
            with unavailable_as_domain_error():
                await connection.execute("SELECT pg_advisory_lock($1, 0)", MIGRATION_LOCK)
                try:
                    await _apply_migrations(connection)
                finally:
                    if not connection.is_closed():
                        await connection.execute("SELECT pg_advisory_unlock($1, 0)", MIGRATION_LOCK)


async def _apply_migrations(connection: asyncpg.pool.PoolConnectionProxy) -> None:
    await connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at double precision NOT NULL)"
    )
    current = await connection.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
    for number, script in load_migrations("postgres"):
        if number <= current:
            continue
        async with connection.transaction():
            await connection.execute(script)
            await connection.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES ($1, extract(epoch FROM now()))", number
            )
        log.info("database migrated to version %d", number)


def _int4(key: int) -> int:
    """A 64-bit key folded into the signed 32 bits an advisory lock's second key takes."""
    folded = (key ^ (key >> 32)) & 0xFFFF_FFFF
    return folded - (1 << 32) if folded >= 1 << 31 else folded


async def _create_pool(url: str, where: str, max_size: int, *, retry: bool) -> asyncpg.Pool:
    """The pool, once the server answers; a server that does not is retried with backoff."""
    delay = FIRST_RETRY_SECONDS
    while True:
        try:
            return await asyncpg.create_pool(
                url,
                min_size=min(POOL_MIN_SIZE, max_size),
                max_size=max_size,
                timeout=CONNECT_TIMEOUT,
                reset=_keep_session,
                server_settings={
                    "application_name": "qwen-imagine",
                    # A client that vanished mid-transaction (holding a guild's admission lock) is ended.
                    "idle_in_transaction_session_timeout": "60s",
                },
            )
        except Exception as error:
            if not is_unreachable(error) or isinstance(error, asyncpg.ClientConfigurationError):
                raise DatabaseSetupError(f"PostgreSQL at {where} refused the bot: {error}") from None
            if not retry:
                raise DatabaseUnavailable(f"PostgreSQL at {where} is unreachable: {error}") from None
            log.warning(
                "PostgreSQL at %s is unreachable (%s: %s); trying again in %.1f s",
                where,
                type(error).__name__,
                error,
                delay,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RETRY_SECONDS)
