"""Persistence: the SQLite connection, its migrations, and the repositories built on it."""

from bot.db.connection import Database
from bot.db.generations import SqliteGenerationRepository
from bot.db.limits import SqliteLimitsRepository
from bot.db.meta import SqliteMetaRepository
from bot.db.records import (
    GenerationRecord,
    GenerationRepository,
    LimitsRepository,
    MetaRepository,
    NewGeneration,
    Status,
    UsageRepository,
)
from bot.db.usage import SqliteUsageRepository

__all__ = [
    "Database",
    "GenerationRecord",
    "GenerationRepository",
    "LimitsRepository",
    "MetaRepository",
    "NewGeneration",
    "SqliteGenerationRepository",
    "SqliteLimitsRepository",
    "SqliteMetaRepository",
    "SqliteUsageRepository",
    "Status",
    "UsageRepository",
]
