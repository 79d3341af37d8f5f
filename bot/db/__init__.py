"""Persistence: the SQLite connection, its migrations, and the repositories built on it."""

from bot.db.connection import Database
from bot.db.generations import SqliteGenerationRepository
from bot.db.meta import SqliteMetaRepository
from bot.db.records import GenerationRecord, GenerationRepository, MetaRepository, NewGeneration, Status

__all__ = [
    "Database",
    "GenerationRecord",
    "GenerationRepository",
    "MetaRepository",
    "NewGeneration",
    "SqliteGenerationRepository",
    "SqliteMetaRepository",
    "Status",
]
