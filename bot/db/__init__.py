"""Persistence: the Database interface with its two backends (SQLite, PostgreSQL), their migrations,
and the repositories written once against the interface."""

from __future__ import annotations

from pathlib import Path

from bot.db.database import Database, DatabaseSetupError, Row
from bot.db.generations import SqlGenerationRepository
from bot.db.limits import SqlLimitsRepository
from bot.db.meta import SqlMetaRepository
from bot.db.moderation import SqlModerationRepository
from bot.db.postgres import PostgresDatabase
from bot.db.records import (
    GenerationRecord,
    GenerationRepository,
    LimitsRepository,
    MetaRepository,
    ModerationRepository,
    NewGeneration,
    Status,
    UsageRepository,
)
from bot.db.sqlite import SqliteDatabase
from bot.db.usage import SqlUsageRepository


async def open_database(*, url: str | None, path: Path) -> Database:
    """PostgreSQL when a database URL is given, else the SQLite file at `path`; migrated, ready to use."""
    if url:
        return await PostgresDatabase.open(url)
    return await SqliteDatabase.open(path)


__all__ = [
    "Database",
    "DatabaseSetupError",
    "GenerationRecord",
    "GenerationRepository",
    "LimitsRepository",
    "MetaRepository",
    "ModerationRepository",
    "NewGeneration",
    "PostgresDatabase",
    "Row",
    "SqlGenerationRepository",
    "SqlLimitsRepository",
    "SqlMetaRepository",
    "SqlModerationRepository",
    "SqlUsageRepository",
    "SqliteDatabase",
    "Status",
    "UsageRepository",
    "open_database",
]
