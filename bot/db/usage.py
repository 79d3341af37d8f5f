"""Usage reports, the CSV export, and prompt retention, on either backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.db.database import Database
from bot.db.generations import COLUMNS, record_from_row
from bot.db.records import GenerationRecord, UsageSummary


class SqlUsageRepository:
    """Reads of the usage log for reports, and the retention clean-up."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def summary(self, guild_id: int, *, since: float, top: int = 5) -> UsageSummary:
        rows = await self._db.fetch(
            "SELECT status, model, COUNT(*) AS n FROM generations WHERE guild_id = ? AND requested_at > ? "
            "GROUP BY status, model",
            (guild_id, since),
        )
        by_status: dict[str, int] = {}
        succeeded_by_model: dict[str, int] = {}
        for row in rows:
            status, model, count = row["status"], row["model"], row["n"]
            by_status[status] = by_status.get(status, 0) + count
            if status == "succeeded":
                succeeded_by_model[model] = count
        top_rows = await self._db.fetch(
            "SELECT member_id, COUNT(*) AS n FROM generations WHERE guild_id = ? AND requested_at > ? "
            "AND status = 'succeeded' GROUP BY member_id ORDER BY n DESC, member_id LIMIT ?",
            (guild_id, since, top),
        )
        top_members = tuple((row["member_id"], row["n"]) for row in top_rows)
        return UsageSummary(
            succeeded=by_status.get("succeeded", 0),
            failed=by_status.get("failed", 0),
            denied=by_status.get("denied", 0),
            in_progress=by_status.get("queued", 0) + by_status.get("running", 0),
            succeeded_by_model=succeeded_by_model,
            top_members=top_members,
        )

    async def rows(self, guild_id: int, *, since: float) -> AsyncIterator[GenerationRecord]:
        async for row in self._db.stream(
            f"SELECT {COLUMNS} FROM generations WHERE guild_id = ? AND requested_at > ? ORDER BY id",
            (guild_id, since),
        ):
            yield record_from_row(row)

    async def scrub_prompts(self, *, before: float, batch: int = 500) -> int:
        # In small transactions, so a large backlog never holds the write lock long enough to
        # delay an admission (and with it an acknowledgement Discord wants within 3 seconds).
        scrubbed = 0
        while True:
            changed = await self._db.execute(
                "UPDATE generations SET prompt = NULL, negative_prompt = NULL WHERE id IN ("
                f"SELECT id FROM generations {self._db.dialect.indexed_by('generations_prompt_age')} "
                "WHERE prompt IS NOT NULL AND requested_at < ? LIMIT ?)",
                (before, batch),
            )
            scrubbed += changed
            if changed < batch:
                return scrubbed
