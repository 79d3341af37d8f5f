"""Usage reports, the CSV export, and prompt retention, on either backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.db.database import Database
from bot.db.generations import COLUMNS, record_from_row
from bot.db.records import GenerationRecord, UsageSummary

#: Rows read per query by `rows()`.
EXPORT_BATCH = 1000
#: Larger than any row id: the page before the first one "ends" at (since, MAX_ROW_ID).
MAX_ROW_ID = 2**63 - 1


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
            if status in ("succeeded", "undelivered"):
                succeeded_by_model[model] = succeeded_by_model.get(model, 0) + count
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
            undelivered=by_status.get("undelivered", 0),
        )

    async def rows(self, guild_id: int, *, since: float, batch: int = EXPORT_BATCH) -> AsyncIterator[GenerationRecord]:
        # A page at a time, each after the last row of the one before (oldest first, ties by id): memory
        # stays flat however many rows there are, and no read stays open between pages.
        after: tuple[float, int] = (since, MAX_ROW_ID)
        while True:
            page = [
                record_from_row(row)
                for row in await self._db.fetch(
                    f"SELECT {COLUMNS} FROM generations {self._db.dialect.indexed_by('generations_guild_time')} "
                    "WHERE guild_id = ? AND requested_at >= ? AND (requested_at, id) > (?, ?) "
                    "ORDER BY requested_at, id LIMIT ?",
                    (guild_id, after[0], *after, batch),
                )
            ]
            for record in page:
                yield record
            if len(page) < batch:
                return
            after = (page[-1].requested_at, page[-1].id)

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
