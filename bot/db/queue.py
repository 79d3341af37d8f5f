"""API slots shared by every process on one PostgreSQL database: leases per (lane, slot)."""

from __future__ import annotations

from bot.db.database import Database

#: The database's own clock, so processes on different hosts agree on when a lease ends.
NOW = "EXTRACT(EPOCH FROM clock_timestamp())"


class SqlSlotLeases:
    """Slots as lease rows: taken when free or when their holder's lease ran out."""

    def __init__(self, database: Database, *, holder: str, lease_seconds: float = 30.0) -> None:
        self._db = database
        self.holder = holder
        self.lease_seconds = lease_seconds

    async def acquire(self, lane: str, limit: int) -> int | None:
        """Take one of the lane's first `limit` slots; None while all are held."""
        for slot in range(limit):
            row = await self._db.fetch_one(
                "INSERT INTO api_slots (lane, slot, holder, lease_until) "
                f"VALUES (:lane, :slot, :holder, {NOW} + :lease) "
                f"ON CONFLICT (lane, slot) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until "
                f"WHERE api_slots.holder IS NULL OR api_slots.lease_until < {NOW} RETURNING slot",
                {"lane": lane, "slot": slot, "holder": self.holder, "lease": self.lease_seconds},
            )
            if row is not None:
                return slot
        return None

    async def release(self, lane: str, slot: int) -> None:
        """Give a slot back (if this process still holds it)."""
        await self._db.execute(
            "UPDATE api_slots SET holder = NULL, lease_until = 0 WHERE lane = ? AND slot = ? AND holder = ?",
            (lane, slot, self.holder),
        )

    async def renew(self) -> None:
        """Extend the leases of every slot this process holds."""
        await self._db.execute(
            f"UPDATE api_slots SET lease_until = {NOW} + ? WHERE holder = ?", (self.lease_seconds, self.holder)
        )
