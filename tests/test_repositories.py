"""The repositories' contract, written once and run against both backends (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.db import (
    Database,
    NewGeneration,
    SqlGenerationRepository,
    SqlLimitsRepository,
    SqlMetaRepository,
    SqlUsageRepository,
    Status,
    open_database,
)
from bot.db.records import DenialKind, QueueCaps
from bot.limits import Limit, Scope, Window, parse_limits

#: Discord ids are 64-bit snowflakes; these are near the top of the range.
GUILD = 1_576_662_177_123_663_872
MEMBER = 1_576_662_177_123_663_873
OTHER_MEMBER = 9_223_372_036_854_775_000
CHANNEL = 1_576_662_177_123_663_874


@pytest.fixture
async def database(database_env: dict[str, str]) -> AsyncIterator[Database]:
    """The test's database (either backend), opened and migrated as the bot does it."""
    opened = await open_database(url=database_env.get("DATABASE_URL"), path=Path(database_env.get("DATABASE_PATH", "")))
    try:
        yield opened
    finally:
        await opened.close()


def request(member: int = MEMBER, *, prompt: str = "a fox", parent: int | None = None) -> NewGeneration:
    return NewGeneration(GUILD, CHANNEL, member, "qwen-image-plus", "1328*1328", 2**31 - 1, True, prompt, "", parent)


async def test_a_generation_round_trips_with_64_bit_ids_and_its_lineage(database: Database) -> None:
    generations = SqlGenerationRepository(database)
    at = time.time()
    parent = await generations.create(request(), status=Status.QUEUED, at=at)
    child = await generations.create(request(OTHER_MEMBER, parent=parent), status=Status.QUEUED, at=at + 1)
    grandchild = await generations.create(request(parent=child), status=Status.QUEUED, at=at + 2)
    await generations.mark_running(parent, at=at + 3)
    await generations.mark_succeeded(parent, at=at + 4, request_id="req-1", image_bytes=123)
    await generations.set_message(parent, channel_id=CHANNEL, message_id=OTHER_MEMBER)
    record = await generations.get(parent)
    assert record is not None
    assert (record.guild_id, record.member_id, record.channel_id, record.message_id) == (
        GUILD,
        MEMBER,
        CHANNEL,
        OTHER_MEMBER,
    )
    assert (record.status, record.requested_at, record.finished_at) == (Status.SUCCEEDED, at, at + 4)
    assert (record.prompt_extend, record.seed, record.negative_prompt) == (True, 2**31 - 1, None)
    assert await generations.find_by_message(OTHER_MEMBER) == record
    assert [r.id for r in await generations.ancestors(grandchild)] == [child, parent]
    await generations.clear_message(parent)
    assert await generations.find_by_message(OTHER_MEMBER) is None
    assert await generations.get(grandchild + 100) is None


async def test_unfinished_generations_are_requeued_and_failures_keep_their_request_id(database: Database) -> None:
    generations = SqlGenerationRepository(database)
    first = await generations.create(request(), status=Status.QUEUED, at=1.0)
    second = await generations.create(request(), status=Status.QUEUED, at=2.0)
    done = await generations.create(request(), status=Status.QUEUED, at=3.0)
    await generations.mark_running(first, at=4.0)
    await generations.set_task_id(first, "task-1")
    await generations.mark_failed(done, at=5.0, error_code="Boom", request_id="req-9")
    await generations.mark_failed(done, at=6.0, error_code="Again")
    assert [(r.id, r.status, r.task_id) for r in await generations.unfinished()] == [
        (first, Status.RUNNING, "task-1"),
        (second, Status.QUEUED, None),
    ]
    await generations.mark_queued([first, second, done])
    assert [(r.id, r.status, r.started_at) for r in await generations.unfinished()] == [
        (first, Status.QUEUED, None),
        (second, Status.QUEUED, None),
    ]
    failed = await generations.get(done)
    assert failed is not None and (failed.status, failed.error_code, failed.request_id) == (
        Status.FAILED,
        "Again",
        "req-9",
    )


async def test_simultaneous_admissions_never_share_a_slot(database: Database) -> None:
    limits = SqlLimitsRepository(database)
    server_day = parse_limits("server/day=3")
    members = [MEMBER + n for n in range(40)]
    admissions = await asyncio.gather(*(limits.admit(request(m), server_day, at=time.time()) for m in members))
    assert sum(a.denial is None for a in admissions) == 3
    assert {a.denial.kind for a in admissions if a.denial} == {DenialKind.LIMIT}
    assert len({a.generation_id for a in admissions}) == 40  # every request has its row, denied too


async def test_admission_checks_blocks_caps_and_limits_in_order(database: Database) -> None:
    limits = SqlLimitsRepository(database)
    caps = QueueCaps(per_member=2, per_guild=3)
    member_hour = (Limit(Scope.MEMBER, Window.HOUR, 5),)
    now = time.time()
    assert (await limits.admit(request(), member_hour, at=now, caps=caps)).denial is None
    assert (await limits.admit(request(), member_hour, at=now, caps=caps)).denial is None
    denied = await limits.admit(request(), member_hour, at=now, caps=caps)
    assert denied.denial is not None and (denied.denial.kind, denied.denial.cap) == (DenialKind.MEMBER_QUEUE, 2)
    assert (await limits.admit(request(OTHER_MEMBER), member_hour, at=now, caps=caps)).denial is None
    denied = await limits.admit(request(OTHER_MEMBER + 1), member_hour, at=now, caps=caps)
    assert denied.denial is not None and denied.denial.kind is DenialKind.SERVER_QUEUE
    assert await limits.block(GUILD, MEMBER, by=OTHER_MEMBER, at=now)
    assert not await limits.block(GUILD, MEMBER, by=OTHER_MEMBER, at=now)  # already blocked
    denied = await limits.admit(request(), member_hour, at=now, caps=caps)
    assert denied.denial is not None and denied.denial.kind is DenialKind.BLOCKED
    assert await limits.blocked_members(GUILD) == (MEMBER,)
    assert await limits.unblock(GUILD, MEMBER)
    assert not await limits.unblock(GUILD, MEMBER)
    closed = await limits.admit(request(OTHER_MEMBER + 2), (Limit(Scope.SERVER, Window.WEEK, 0),), at=now)
    assert closed.denial is not None and closed.denial.code == "limit:server/week"


async def test_a_full_limit_says_when_it_frees_and_the_quota_agrees(database: Database) -> None:
    limits = SqlLimitsRepository(database)
    member_hour = Limit(Scope.MEMBER, Window.HOUR, 2)
    now = time.time()
    for age in (50 * 60, 20 * 60):
        assert (await limits.admit(request(), (member_hour,), at=now - age)).denial is None
    denied = await limits.admit(request(), (member_hour,), at=now)
    assert denied.denial is not None and denied.denial.retry_at == pytest.approx(now - 50 * 60 + 3600)
    use = await limits.window_use(GUILD, MEMBER, member_hour, at=now)
    assert (use.used, use.remaining) == (2, 0)
    assert use.next_frees_at == use.allowed_again_at == pytest.approx(now - 50 * 60 + 3600)
    server_day = await limits.window_use(GUILD, 0, Limit(Scope.SERVER, Window.DAY, 10), at=now)
    assert (server_day.used, server_day.allowed_again_at) == (2, None)
    assert await limits.busiest_member(GUILD, since=now - 3600) == (MEMBER, 2)


async def test_guild_limits_are_set_replaced_cleared_and_reset(database: Database) -> None:
    limits = SqlLimitsRepository(database)
    await limits.set_limit(GUILD, Limit(Scope.MEMBER, Window.HOUR, 5), by=MEMBER, at=1.0)
    await limits.set_limit(GUILD, Limit(Scope.MEMBER, Window.HOUR, 7), by=MEMBER, at=2.0)
    await limits.set_limit(GUILD, Limit(Scope.SERVER, Window.MONTH, 100000), by=MEMBER, at=3.0)
    assert set(await limits.own_limits(GUILD)) == {
        Limit(Scope.MEMBER, Window.HOUR, 7),
        Limit(Scope.SERVER, Window.MONTH, 100000),
    }
    assert await limits.clear_limit(GUILD, Scope.MEMBER, Window.HOUR)
    assert not await limits.clear_limit(GUILD, Scope.MEMBER, Window.HOUR)
    assert await limits.reset_limits(GUILD) == 1
    assert await limits.own_limits(GUILD) == ()


async def test_usage_summary_and_rows_cover_the_period_only(database: Database) -> None:
    generations = SqlGenerationRepository(database)
    usage = SqlUsageRepository(database)
    old = await generations.create(request(), status=Status.SUCCEEDED, at=100.0)
    made = [await generations.create(request(m), status=Status.SUCCEEDED, at=1000.0) for m in (MEMBER, MEMBER, 7)]
    failed = await generations.create(request(), status=Status.FAILED, at=1000.0)
    summary = await usage.summary(GUILD, since=500.0)
    assert (summary.succeeded, summary.failed, summary.denied, summary.in_progress) == (3, 1, 0, 0)
    assert summary.succeeded_by_model == {"qwen-image-plus": 3}
    assert summary.top_members == ((MEMBER, 2), (7, 1))
    assert [r.id async for r in usage.rows(GUILD, since=500.0)] == [*made, failed]
    assert old not in [r.id async for r in usage.rows(GUILD, since=500.0)]


async def test_retention_clears_a_backlog_in_small_batches(database: Database) -> None:
    generations = SqlGenerationRepository(database)
    for age_days in (100, 99, 98, 97, 96, 1):
        new = NewGeneration(1, 2, 3, "qwen-image-plus", "1328*1328", 4, True, f"prompt {age_days}", "neg")
        await generations.create(new, status=Status.SUCCEEDED, at=time.time() - age_days * 86400)
    scrubbed = await SqlUsageRepository(database).scrub_prompts(before=time.time() - 90 * 86400, batch=2)
    assert scrubbed == 5
    kept = [await generations.get(n) for n in range(1, 7)]
    assert [(r.prompt, r.negative_prompt) for r in kept if r] == [(None, None)] * 5 + [("prompt 1", "neg")]


async def test_meta_values_are_replaced(database: Database) -> None:
    meta = SqlMetaRepository(database)
    assert await meta.get("command_sync_hash") is None
    await meta.set("command_sync_hash", "a")
    await meta.set("command_sync_hash", "b")
    assert await meta.get("command_sync_hash") == "b"


async def test_a_failed_transaction_leaves_nothing_behind(database: Database) -> None:
    async def write_then_fail() -> None:
        async with database.transaction() as tx:
            await tx.execute("INSERT INTO meta (key, value) VALUES (:key, :value)", {"key": "k", "value": "v"})
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await write_then_fail()
    assert await database.fetch("SELECT key FROM meta") == []
