"""API slots shared by every process on one PostgreSQL database: leases per (lane, slot)."""

from __future__ import annotations

from bot.db.database import Database
from bot.db.postgres.notify import notify_sql

#: The database's own clock, so processes on different hosts agree on when a lease ends.
NOW = "EXTRACT(EPOCH FROM clock_timestamp())"


class SqlSlotLeases:
    """Slots as lease rows: taken when free or when their holder's lease ran out."""

    def __init__(self, database: Database, *, holder: str, lease_seconds: float = 30.0) -> None:
        self._db = database
        self.holder = holder
        self.lease_seconds = lease_seconds

    async def acquire(self, lane: str, limit: int) -> int | None:
        """Take the first free one of the lane's first `limit` slots (one statement); None while all
        are held (or while another process takes the one that looked free)."""
        row = await self._db.fetch_one(
            "INSERT INTO api_slots (lane, slot, holder, lease_until) "
            f"SELECT :lane, free.slot, :holder, {NOW} + :lease FROM generate_series(0, :limit - 1) AS free(slot) "
            "WHERE NOT EXISTS (SELECT 1 FROM api_slots held WHERE held.lane = :lane AND held.slot = free.slot "
            f"AND held.holder IS NOT NULL AND held.lease_until >= {NOW}) ORDER BY free.slot LIMIT 1 "
            "ON CONFLICT (lane, slot) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until "
            f"WHERE api_slots.holder IS NULL OR api_slots.lease_until < {NOW} RETURNING slot",
            {"lane": lane, "holder": self.holder, "lease": self.lease_seconds, "limit": limit},
        )
        return int(row["slot"]) if row is not None else None

    async def release(self, lane: str, slot: int) -> None:
        """Give a slot back (if this process still holds it), and tell the other processes."""
        await self._db.fetch(
            "WITH freed AS (UPDATE api_slots SET holder = NULL, lease_until = 0 "
            "WHERE lane = :lane AND slot = :slot AND holder = :holder RETURNING slot) "
            f"SELECT {notify_sql('holder')} FROM freed",
            {"lane": lane, "slot": slot, "holder": self.holder},
        )

    async def renew(self) -> None:
        """Extend the leases of every slot this process holds."""
        await self._db.execute(
            f"UPDATE api_slots SET lease_until = {NOW} + ? WHERE holder = ?", (self.lease_seconds, self.holder)
        )


#: Advisory lock class (the first key of pg_advisory_xact_lock(int, int)) of a lane's pacing.
PACING_LOCK = 0x716D_0004


class SqlSubmissionPacing:
    """Submission turns per lane in the database: at most `per_second` in any second, over every process."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def reserve(self, lane: str, per_second: int) -> float:
        """Reserve the lane's next submission turn; return how many seconds until it comes."""
        async with self._db.transaction() as queries:
            await queries.fetch(f"SELECT pg_advisory_xact_lock({PACING_LOCK}, hashtext(?))", (lane,))
            row = await queries.fetch_one(
                f"SELECT {NOW} AS now, (SELECT at FROM api_submissions WHERE lane = :lane "
                "ORDER BY at DESC LIMIT 1 OFFSET :skip) AS nth",
                {"lane": lane, "skip": per_second - 1},
            )
            assert row is not None
            now, nth = float(row["now"]), row["nth"]
            turn = now if nth is None else max(now, float(nth) + 1.0)
            await queries.execute("INSERT INTO api_submissions (lane, at) VALUES (?, ?)", (lane, turn))
            await queries.execute("DELETE FROM api_submissions WHERE lane = ? AND at < ?", (lane, now - 5.0))
        return turn - now
