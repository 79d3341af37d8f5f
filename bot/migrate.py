"""`python -m bot migrate --from-sqlite PATH`: copy a SQLite database into the PostgreSQL of DATABASE_URL."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from bot.db import PostgresDatabase, SqliteDatabase
from bot.db.database import DatabaseSetupError
from bot.db.postgres.connection import unavailable_as_domain_error
from bot.errors import DatabaseUnavailable
from bot.logs import configure_logging
from bot.settings import SettingsError, load_database_url

EXIT_CONFIG = 2
EXIT_REFUSED = 1
#: Every table the bot keeps, parents before the rows that point at them.
TABLES = (
    "meta",
    "guild_limits",
    "blocked_members",
    "generations",
    "allowed_channels",
    "blocked_words",
    "role_limits",
    "guild_log_channels",
    "settings_audit",
)
#: Tables whose generated ids continue after the copied ones.
IDENTITIES = ("generations", "settings_audit")


class MigrationRefused(Exception):
    """The copy would overwrite or lose something; the message says what, in one line."""


def main(argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Run the `migrate` subcommand; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m bot migrate", description="Copy a SQLite database into the PostgreSQL of DATABASE_URL."
    )
    parser.add_argument("--from-sqlite", type=Path, required=True, metavar="PATH", help="the SQLite file to copy")
    args = parser.parse_args(argv)
    try:
        url = load_database_url(env)
    except SettingsError as error:
        print(f"qwen-imagine: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    if url is None:
        print("qwen-imagine: configuration error: DATABASE_URL: required: the PostgreSQL to copy into", file=sys.stderr)
        return EXIT_CONFIG
    if not args.from_sqlite.is_file():
        print(f"qwen-imagine: migrate: there is no SQLite database at {args.from_sqlite}", file=sys.stderr)
        return EXIT_REFUSED
    configure_logging(logging.WARNING, secrets=(url.reveal(),))
    try:
        counts, where = asyncio.run(copy_database(args.from_sqlite, url.reveal()))
    except (MigrationRefused, DatabaseSetupError, DatabaseUnavailable) as error:
        print(f"qwen-imagine: migrate: {error}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"copied {args.from_sqlite} into PostgreSQL at {where}:")
    for table, count in counts.items():
        print(f"  {table:<16} {count:>9}")
    return 0


async def copy_database(source_path: Path, url: str) -> tuple[dict[str, int], str]:
    """Copy every table of the SQLite database at `source_path` (migrated to the current schema first,
    as the bot would) into the PostgreSQL at `url`, in one transaction; return the rows copied per table."""
    source = await SqliteDatabase.open(source_path)
    try:
        target = await PostgresDatabase.open(url, retry=False)
        try:
            return await _copy(source, target), target.where
        finally:
            await target.close()
    finally:
        await source.close()


async def _copy(source: SqliteDatabase, target: PostgresDatabase) -> dict[str, int]:
    if await source.schema_version() != await target.schema_version():
        raise MigrationRefused("the two databases have different schema versions: update the bot on both sides")
    with unavailable_as_domain_error():
        async with target.pool.acquire() as connection, connection.transaction():
            existing = await connection.fetchval("SELECT COUNT(*) FROM generations")
            if existing:
                raise MigrationRefused(
                    f"PostgreSQL at {target.where} already has {existing} generations; nothing was copied"
                )
            counts = {table: await _copy_table(source, connection, table) for table in TABLES}
            # New rows continue after the copied ids.
            for table in IDENTITIES:
                await connection.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) "
                    f"FROM {table}"
                )
    return counts


async def _copy_table(source: SqliteDatabase, connection: asyncpg.pool.PoolConnectionProxy, table: str) -> int:
    """Replace the table's rows with the source's (a bot started on the empty PostgreSQL may have
    written settings of its own: the SQLite ones win); return how many rows it now has."""
    await connection.execute(f"DELETE FROM {table}")
    columns = await _columns(connection, table)
    await connection.copy_records_to_table(
        table, records=_rows(source, table, columns), columns=columns, schema_name="public"
    )
    return int(await connection.fetchval(f"SELECT COUNT(*) FROM {table}"))


async def _columns(connection: asyncpg.pool.PoolConnectionProxy, table: str) -> list[str]:
    rows = await connection.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 "
        "ORDER BY ordinal_position",
        table,
    )
    return [row["column_name"] for row in rows]


async def _rows(source: SqliteDatabase, table: str, columns: list[str]) -> AsyncIterator[tuple[Any, ...]]:
    select = ", ".join(f'"{column}"' for column in columns)
    async for row in source.stream(f"SELECT {select} FROM {table} ORDER BY 1"):
        yield tuple(row[column] for column in columns)
