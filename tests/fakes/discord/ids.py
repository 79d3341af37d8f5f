"""Snowflake ids and Discord's timestamp format."""

from __future__ import annotations

import datetime
import time

DISCORD_EPOCH_MS = 1420070400000


def utcnow() -> datetime.datetime:
    """Timezone-aware now."""
    return datetime.datetime.now(datetime.UTC)


def iso(moment: datetime.datetime) -> str:
    """Discord's ISO8601 timestamp format."""
    return moment.isoformat()


class Snowflakes:
    """Generates increasing snowflakes carrying the current wall-clock time (discord.py derives created_at)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        """A fresh, strictly increasing snowflake."""
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        candidate = max(candidate, self._last + 1)
        self._last = candidate
        return candidate

    def next_on_shard(self, shard_id: int, shard_count: int) -> int:
        """A fresh snowflake whose guild would be on this shard: `(id >> 22) % shard_count == shard_id`."""
        candidate = self.next()
        while (candidate >> 22) % shard_count != shard_id:
            candidate = ((candidate >> 22) + 1) << 22
        self._last = candidate
        return candidate
