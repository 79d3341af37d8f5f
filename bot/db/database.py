"""The database interface the repositories are written against, whichever backend is behind it.

SQL text is shared: parameters are `?` (with a sequence) or `:name` (with a mapping), rows come back
as dicts keyed by column name. What the two backends spell differently is in `bot.db.dialect`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from importlib import resources
from typing import Any, Protocol

from bot.db.dialect import Dialect

#: A statement's parameters: positional for `?`, by name for `:name`.
Parameters = Sequence[Any] | Mapping[str, Any]
#: One result row, by column name.
Row = dict[str, Any]

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class DatabaseSetupError(Exception):
    """The database answered but refuses this bot (credentials, an unknown database): only the
    operator can fix it, so the bot stops instead of retrying. The message names no secret."""


class Queries(Protocol):
    """Statements on an open connection or transaction."""

    async def fetch(self, sql: str, parameters: Parameters = ()) -> list[Row]:
        """Every row a query returns."""

    async def fetch_one(self, sql: str, parameters: Parameters = ()) -> Row | None:
        """The first row a query returns, or None."""

    async def execute(self, sql: str, parameters: Parameters = ()) -> int:
        """Run one write statement; return how many rows it changed."""

    async def execute_many(self, sql: str, rows: Iterable[Parameters]) -> None:
        """Run one write statement once per parameter set."""


class Database(Queries, Protocol):
    """A migrated database. `fetch`, `fetch_one` and `stream` read; `execute` and `execute_many` each
    write atomically; several statements that must commit together go through `transaction()`."""

    dialect: Dialect

    def transaction(self) -> AbstractAsyncContextManager[Queries]:
        """A write transaction: committed when the block ends, rolled back if it raises."""

    async def fetch_serialised(self, sql: str, parameters: Parameters, *, key: int) -> list[Row]:
        """Run one statement that reads and then writes, atomically with respect to every other
        `fetch_serialised` with the same `key`, in whatever process; return its rows."""

    def stream(self, sql: str, parameters: Parameters = ()) -> AsyncIterator[Row]:
        """The rows of a query, fetched as they are read."""

    async def schema_version(self) -> int:
        """The number of the last migration applied."""

    async def close(self) -> None:
        """Release every connection."""


def load_migrations(backend: str) -> list[tuple[int, str]]:
    """The numbered SQL migrations of one backend (`sqlite` or `postgres`) shipped with the package, in order."""
    folder = resources.files("bot.db") / "migrations" / backend
    migrations = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            migrations.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    migrations.sort()
    numbers = [n for n, _ in migrations]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"{backend} migrations must be numbered 1..n without gaps, found {numbers}")
    return migrations
