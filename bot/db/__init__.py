"""Persistence: the Database interface with its two backends (SQLite, PostgreSQL), their migrations,
and the repositories written once against the interface."""

from __future__ import annotations

from pathlib import Path

from bot.db.database import Database, DatabaseSetupError, Row
from bot.db.generations import SqlGenerationRepository
from bot.db.limits import SqlLimitsRepository
from bot.db.meta import SqlMetaRepository
from bot.db.records import (
    GenerationRecord,
    GenerationRepository,
    LimitsRepository,
    MetaRepository,
    NewGeneration,
    Status,
    UsageRepository,
)
from bot.db.sqlite import SqliteDatabase
from bot.db.usage import SqlUsageRepository


async def open_database(*, path: Path) -> Database:
    """The SQLite file at `path`; migrated, ready to use."""
    return await SqliteDatabase.open(path)


__all__ = [
    "Database",
    "DatabaseSetupError",
    "GenerationRecord",
    "GenerationRepository",
    "LimitsRepository",
    "MetaRepository",
    "NewGeneration",
    "Row",
    "SqlGenerationRepository",
    "SqlLimitsRepository",
    "SqlMetaRepository",
    "SqlUsageRepository",
    "SqliteDatabase",
    "Status",
    "UsageRepository",
    "open_database",
]
