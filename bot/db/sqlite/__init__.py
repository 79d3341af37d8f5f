"""SQLite: one file, one writer (this process), WAL mode with a background checkpointer."""

from bot.db.sqlite.connection import SqliteDatabase

__all__ = ["SqliteDatabase"]
