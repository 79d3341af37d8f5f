"""The one fair queue over every process on a PostgreSQL database: when each guild, and each member
of a guild, was last served, and which jobs other live processes hold waiting."""

from __future__ import annotations

from bot.db.database import Database
from bot.db.processes import NOW
from bot.services.jobs import Waiting

#: A guild's own row in queue_turns (members are Discord snowflakes, never 0).
GUILD_ROW = 0


class SqlQueueTurns:
    """Served times per guild and member (on the database's clock), shared by every process."""

    def __init__(self, database: Database, *, token: str, stale_seconds: float = 15.0) -> None:
        self._db = database
        self._token = token
        self._stale_seconds = stale_seconds
        self._now = NOW[database.dialect.name]

    async def snapshot(self) -> tuple[dict[int | tuple[int, int], float], list[Waiting]]:
        """When each guild and member with a waiting job anywhere was last served, and the first
        waiting job of each member queued in another live process (not draining)."""
        turns = await self._db.fetch(
            "SELECT guild_id, member_id, served_at FROM queue_turns WHERE guild_id IN "
            "(SELECT guild_id FROM generations WHERE status = 'queued')"
        )
        served: dict[int | tuple[int, int], float] = {}
        for row in turns:
            guild_id, member_id = int(row["guild_id"]), int(row["member_id"])
            served[guild_id if member_id == GUILD_ROW else (guild_id, member_id)] = float(row["served_at"])
        rows = await self._db.fetch(
            "SELECT guild_id, member_id, MIN(id) AS first FROM generations "
            "WHERE status = 'queued' AND owner <> :me AND owner IN "
            f"(SELECT id FROM processes WHERE NOT draining AND heartbeat >= {self._now} - :stale) "
            "GROUP BY guild_id, member_id",
            {"me": self._token, "stale": self._stale_seconds},
        )
        others = [Waiting(int(r["guild_id"] or 0), int(r["member_id"]), int(r["first"])) for r in rows]
        return served, others

    async def served(self, guild_id: int, member_id: int) -> None:
        """Record that a job of `member_id` in `guild_id` starts now (one statement: the guild's row
        and the member's)."""
        await self._db.execute(
            "INSERT INTO queue_turns (guild_id, member_id, served_at) "
            f"VALUES (:guild, :guild_row, {self._now}), (:guild, :member, {self._now}) "
            "ON CONFLICT (guild_id, member_id) DO UPDATE SET served_at = excluded.served_at",
            {"guild": guild_id, "guild_row": GUILD_ROW, "member": member_id},
        )
