"""The /usage CSV export: read in pages, written through a spooled file, cut at the upload limit."""

from __future__ import annotations

import csv
import io
import tracemalloc

from bot.db import Database, SqlUsageRepository
from bot.services.usage import SPOOL_BYTES, Period, UsageService
from tests.conftest import BotRunner, World
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord
from tests.test_limits import insert_past

GUILD = 1


async def fill(database: Database, rows: int, *, guild: int = GUILD, at: float = 1_000_000.0) -> None:
    """`rows` usage rows of `guild`, one a second from `at` on, with ~300-character prompts."""
    await database.execute_many(
        "INSERT INTO generations (guild_id, channel_id, member_id, requested_at, status, model, size, seed, "
        "prompt_extend, prompt) VALUES (?, 2, 3, ?, 'succeeded', 'qwen-image-plus', '1328*1328', ?, 1, ?)",
        [(guild, at + n, n, f"a fox number {n} " + "in the snow " * 24) for n in range(rows)],
    )


async def test_rows_come_in_pages_oldest_first_with_ties_by_id(db: TestDatabase) -> None:
    database = await db.opened()
    repo = SqlUsageRepository(database)
    await fill(database, 3, at=100.0)  # ids 1-3 at 100, 101, 102
    await fill(database, 3, at=101.0)  # ids 4-6 at 101, 102, 103: ties with 2 and 3
    await fill(database, 2, guild=9, at=100.0)  # another guild's
    await fill(database, 1, at=50.0)  # before the period
    seen = [(r.requested_at, r.id) async for r in repo.rows(GUILD, since=99.0, batch=2)]
    assert seen == [(100.0, 1), (101.0, 2), (101.0, 4), (102.0, 3), (102.0, 5), (103.0, 6)]
    assert [r.id async for r in repo.rows(GUILD, since=101.0, batch=1)] == [3, 5, 6]


async def peak_export_memory(database: Database, guild: int, rows: int) -> tuple[int, int]:
    """(tracemalloc peak, CSV size) of exporting the `rows` rows of `guild`."""
    await fill(database, rows, guild=guild, at=0.0)
    service = UsageService(SqlUsageRepository(database), region="intl", retention_days=90, clock=lambda: 1e6)
    tracemalloc.start()
    try:
        with await service.export_csv(guild, Period.MONTH, max_bytes=2**40) as export:
            _, peak = tracemalloc.get_traced_memory()
            assert export.rows == rows and export.complete
            return peak, export.size
    finally:
        tracemalloc.stop()


async def test_the_export_of_a_large_guild_takes_no_more_memory_than_a_small_one(db: TestDatabase) -> None:
    database = await db.opened()
    small_peak, small_size = await peak_export_memory(database, 1, 4_000)
    large_peak, large_size = await peak_export_memory(database, 2, 20_000)
    assert small_size > SPOOL_BYTES  # both spill to disk
    assert large_size > 4.5 * small_size
    # Held in memory, five times the rows would take five times the memory.
    assert large_peak < 1.5 * small_peak, (small_peak, large_peak)


async def test_a_large_export_is_uploaded_whole_and_a_too_large_one_is_cut_at_the_limit(
    discord_server: FakeDiscord, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start()
    await insert_past(db, world, world.alice, [60.0 + n for n in range(6_000)], prompt="a long prompt " * 20)
    ids = [row["id"] for row in await db.rows("SELECT id FROM generations ORDER BY requested_at, id")]

    async def export(limit: int | None) -> tuple[str, list[dict[str, str]], int]:
        ix = await discord_server.invoke_command(
            world.moderator, world.channel, "usage", {"period": "day", "export": True}, attachment_size_limit=limit
        )
        message = await ix.wait_answer()
        [attachment] = message.attachments
        text = attachment.data.decode()
        return message.embeds[0]["footer"]["text"], list(csv.DictReader(io.StringIO(text))), len(attachment.data)

    footer, rows, size = await export(None)
    assert size > SPOOL_BYTES and footer == "CSV: 6,000 rows"
    assert [int(r["id"]) for r in rows] == ids  # oldest first
    footer, cut, size = await export(300_000)
    assert size <= 300_000 and 0 < len(cut) < 6000
    assert footer == f"CSV: {len(cut):,} rows (cut short at the upload limit: pick a shorter period)"
    assert cut == rows[: len(cut)]
