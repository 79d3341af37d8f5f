"""Bot processes and the generations each one owns, on either backend.

Each process registers a random token and beats a heartbeat on the database's clock. A generation is
admitted owned by the process that received it; one whose owner is gone (no row, or a heartbeat older
than `stale_seconds`) or that was handed over (no owner) is claimed by a live process in one UPDATE, so
two processes never both take one. One process owns a SQLite file: there every other token is an
earlier run of it.
"""

from __future__ import annotations

from bot.db.database import Database
from bot.db.generations import COLUMNS, record_from_row
from bot.db.records import GenerationRecord

#: The database's own clock in unix seconds, so processes on different hosts agree on what is stale.
NOW = {
    "postgres": "EXTRACT(EPOCH FROM clock_timestamp())",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
#: A process row this much older than stale is deleted (its generations were taken over long ago).
FORGET_AFTER_SECONDS = 3600.0
#: Queue turns older than this are forgotten (their guilds come back as newcomers).
TURNS_KEPT_SECONDS = 24 * 3600.0


class SqlProcessRegistry:
    """This process's row in `processes`, and the generations it claims or hands over."""

    def __init__(self, database: Database, *, token: str, stale_seconds: float = 15.0) -> None:
        self._db = database
        self.token = token
        self.stale_seconds = stale_seconds
        self._now = NOW[database.dialect.name]
        #: Several processes share PostgreSQL; a SQLite file has one.
        self.shared = database.dialect.name == "postgres"

    async def register(self) -> None:
        """Join (or beat the heartbeat)."""
        await self._db.execute(
            f"INSERT INTO processes (id, heartbeat) VALUES (:me, {self._now}) "
            "ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat",
            {"me": self.token},
        )

    async def heartbeat(self) -> None:
        """Say this process is alive; forget processes long gone."""
        await self.register()
        await self._db.execute(
            f"DELETE FROM processes WHERE heartbeat < {self._now} - :forget",
            {"forget": self.stale_seconds + FORGET_AFTER_SECONDS},
        )
        await self._db.execute(
            f"DELETE FROM queue_turns WHERE served_at < {self._now} - :forget", {"forget": TURNS_KEPT_SECONDS}
        )

    async def set_draining(self) -> None:
        """This process is shutting down: it takes no more generations."""
        await self._db.execute("UPDATE processes SET draining = TRUE WHERE id = ?", (self.token,))

    async def leave(self) -> None:
        """This process is gone: whatever it still owns may be taken over at once."""
        await self._db.execute("DELETE FROM processes WHERE id = ?", (self.token,))

    async def claim_orphans(self) -> list[GenerationRecord]:
        """Take every unfinished generation that has no live owner; return them, oldest first."""
        if self.shared:
            live = f"SELECT id FROM processes WHERE heartbeat >= {self._now} - :stale"
            owned_by_the_dead = f"status IN ('queued', 'running') AND (owner IS NULL OR owner NOT IN ({live}))"
            lock = " FOR UPDATE SKIP LOCKED"
        else:
            owned_by_the_dead = "status IN ('queued', 'running') AND (owner IS NULL OR owner <> :me)"
            lock = ""
        rows = await self._db.fetch(
            f"UPDATE generations SET owner = :me WHERE id IN "
            f"(SELECT id FROM generations WHERE {owned_by_the_dead}{lock}) AND {owned_by_the_dead} "
            f"RETURNING {COLUMNS}, interaction_token AS reply_token",
            {"me": self.token, "stale": self.stale_seconds},
        )
        if self.shared:
            # A dead process's API slots too: its calls ended with it, so they need not wait for the lease.
            await self._db.execute(
                f"UPDATE api_slots SET holder = NULL, lease_until = 0 WHERE holder IS NOT NULL AND holder NOT IN "
                f"(SELECT id FROM processes WHERE heartbeat >= {self._now} - :stale) "
                "AND holder IN (SELECT id FROM processes)",
                {"stale": self.stale_seconds},
            )
        return sorted((record_from_row(row) for row in rows), key=lambda record: record.id)

    async def hand_over(self, generation_ids: list[int]) -> tuple[list[int], bool]:
        """Give up waiting generations this process still owns (queued, no owner) for another process
        to run; return those handed over, and whether a live process that takes work is there to take
        them now (else they wait for the next start)."""
        if not generation_ids:
            return [], False
        handed = []
        async with self._db.transaction() as tx:
            for generation_id in generation_ids:
                row = await tx.fetch_one(
                    "UPDATE generations SET owner = NULL, status = 'queued', started_at = NULL "
                    "WHERE id = :id AND owner = :me AND status IN ('queued', 'running') AND COALESCE(inputs, 0) = 0 "
                    "RETURNING id",
                    {"id": generation_id, "me": self.token},
                )
                if row is not None:
                    handed.append(int(row["id"]))
        return handed, await self.others_alive()

    async def others_alive(self) -> bool:
        """Whether another process is alive and taking work."""
        if not self.shared:
            return False
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS n FROM processes "
            f"WHERE id <> :me AND NOT draining AND heartbeat >= {self._now} - :stale",
            {"me": self.token, "stale": self.stale_seconds},
        )
        return row is not None and int(row["n"]) > 0
