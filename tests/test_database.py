"""The database module: migrations, and checkpoints that keep the write-ahead log off the hot path."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bot.db import NewGeneration, SqliteDatabase, Status
from bot.db.database import load_migrations
from bot.db.generations import INSERT_GENERATION, insert_parameters


async def test_migrations_run_once_and_record_their_version(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "bot.sqlite3"
    database = await SqliteDatabase.open(path)
    assert await database.schema_version() == len(load_migrations("sqlite"))
    await database.close()
    database = await SqliteDatabase.open(path)  # nothing left to apply: it would fail on "table exists"
    assert await database.schema_version() == len(load_migrations("sqlite"))
    await database.close()
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "generations", "guild_limits", "blocked_members"} <= tables


async def test_the_write_ahead_log_is_checkpointed_by_the_other_connection(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    database = await SqliteDatabase.open(path, checkpoint_seconds=3600)
    try:
        rows = [
            insert_parameters(
                NewGeneration(1, 2, 3, "qwen-image-plus", "1328*1328", n, True, "x" * 800),
                Status.SUCCEEDED,
                time.time(),
            )
            for n in range(6000)
        ]
        await database.execute_many(INSERT_GENERATION, rows)
        # Past SQLite's usual 1000-page trigger, yet the bot's own connection did not checkpoint.
        pages, copied = await database.checkpoint()
        assert pages > 1000
        assert copied == pages
    finally:
        await database.close()
    assert not (tmp_path / "bot.sqlite3-wal").exists() or (tmp_path / "bot.sqlite3-wal").stat().st_size == 0
