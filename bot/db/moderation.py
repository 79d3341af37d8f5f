"""Allowed channels, blocked words, the log channel and the settings audit, on either backend."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.db.database import Database, Row
from bot.db.records import AuditEntry

_AUDIT_COLUMNS = "id, guild_id, actor_id, at, setting, old_value, new_value"


class SqlModerationRepository:
    """A guild's moderation settings and the record of their changes."""

    def __init__(self, database: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self._clock = clock

    async def allowed_channels(self, guild_id: int) -> tuple[int, ...]:
        rows = await self._db.fetch(
            "SELECT channel_id FROM allowed_channels WHERE guild_id = ? ORDER BY added_at, channel_id", (guild_id,)
        )
        return tuple(row["channel_id"] for row in rows)

    async def allow_channel(self, guild_id: int, channel_id: int, *, by: int, at: float) -> bool:
        inserted = await self._db.execute(
            "INSERT INTO allowed_channels (guild_id, channel_id, added_by, added_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (guild_id, channel_id, by, at),
        )
        return inserted > 0

    async def disallow_channel(self, guild_id: int, channel_id: int) -> bool:
        deleted = await self._db.execute(
            "DELETE FROM allowed_channels WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id)
        )
        return deleted > 0

    async def blocked_words(self, guild_id: int) -> tuple[str, ...]:
        rows = await self._db.fetch(
            "SELECT word FROM blocked_words WHERE guild_id = ? ORDER BY added_at, word", (guild_id,)
        )
        return tuple(row["word"] for row in rows)

    async def add_word(self, guild_id: int, word: str, *, by: int, at: float, max_words: int) -> bool:
        """Counted and inserted in one statement, serialised per guild: the cap holds under races."""
        rows = await self._db.fetch_serialised(
            "INSERT INTO blocked_words (guild_id, word, added_by, added_at) "
            "SELECT CAST(:guild AS BIGINT), CAST(:word AS TEXT), CAST(:by AS BIGINT), CAST(:at AS DOUBLE PRECISION) "
            "WHERE (SELECT COUNT(*) FROM blocked_words WHERE guild_id = :guild) < :max "
            "ON CONFLICT DO NOTHING RETURNING word",
            {"guild": guild_id, "word": word, "by": by, "at": at, "max": max_words},
            key=guild_id,
        )
        return bool(rows)

    async def remove_word(self, guild_id: int, word: str) -> bool:
        deleted = await self._db.execute("DELETE FROM blocked_words WHERE guild_id = ? AND word = ?", (guild_id, word))
        return deleted > 0

    async def log_channel(self, guild_id: int) -> int | None:
        row = await self._db.fetch_one("SELECT channel_id FROM guild_log_channels WHERE guild_id = ?", (guild_id,))
        return int(row["channel_id"]) if row else None

    async def set_log_channel(self, guild_id: int, channel_id: int | None, *, by: int, at: float) -> None:
        if channel_id is None:
            await self._db.execute("DELETE FROM guild_log_channels WHERE guild_id = ?", (guild_id,))
            return
        await self._db.execute(
            "INSERT INTO guild_log_channels (guild_id, channel_id, updated_by, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (guild_id) DO UPDATE SET channel_id = excluded.channel_id, "
            "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (guild_id, channel_id, by, at),
        )

    async def record_change(
        self, guild_id: int, actor_id: int, setting: str, old: str | None, new: str | None
    ) -> AuditEntry:
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                "INSERT INTO settings_audit (guild_id, actor_id, at, setting, old_value, new_value) "
                f"VALUES (?, ?, ?, ?, ?, ?) RETURNING {_AUDIT_COLUMNS}",
                (guild_id, actor_id, self._clock(), setting, old, new),
            )
        assert row is not None
        return _entry(row)

    async def audit(self, guild_id: int, *, latest: int) -> tuple[AuditEntry, ...]:
        rows = await self._db.fetch(
            f"SELECT {_AUDIT_COLUMNS} FROM settings_audit WHERE guild_id = ? ORDER BY at DESC, id DESC LIMIT ?",
            (guild_id, latest),
        )
        return tuple(_entry(row) for row in rows)


def _entry(row: Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        guild_id=row["guild_id"],
        actor_id=row["actor_id"],
        at=float(row["at"]),
        setting=row["setting"],
        old_value=row["old_value"],
        new_value=row["new_value"],
    )
