"""Processes on one PostgreSQL database wake each other: a slot one gives back is taken at once by a
job waiting in another, without waiting for its next poll; the connection that hears it is opened
again when the server drops it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

import bot.services.scheduler
from bench.queue_makespan import prompt_of
from bot.client import QwenImagineBot
from bot.db.postgres.notify import APPLICATION_NAME
from tests.conftest import BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen
from tests.logs import LogWatch, watch_log

#: The account's one slot, so the second job can only start once the first gives its slot back.
ONE_SLOT = {"DASHSCOPE_MAX_CONCURRENCY": "1", "MAX_JOBS_PER_MEMBER": "5"}
LISTENING = "listening for other processes' notices"


@pytest.fixture
def backend() -> str:
    """Only PostgreSQL takes several processes (a SQLite file has one)."""
    return "postgres"


@pytest.fixture
def no_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process waiting for a slot held elsewhere would look again only after an hour."""
    monkeypatch.setattr(bot.services.scheduler, "SLOT_POLL_SECONDS", 3600.0)


@pytest.fixture
async def notices(caplog: pytest.LogCaptureFixture) -> AsyncIterator[LogWatch]:
    caplog.set_level(logging.DEBUG, logger="bot.db.postgres.notify")
    with watch_log("bot.db.postgres.notify") as watch:
        yield watch


async def start_two_processes_one_busy(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, notices: LogWatch
) -> QwenImagineBot:
    """Process A runs a job in the account's one slot (held by the fake API); B starts, listening."""
    await bots.start(**ONE_SLOT)
    qwen.hold()
    await imagine(discord_server, world.alice, world.channel, "first")
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    other = await bots.start(**ONE_SLOT)  # interactions reach the newest process from now on
    await notices.wait_for(LISTENING, count=2)
    return other


async def the_slot_passes_to_the_other_process(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, other: QwenImagineBot
) -> None:
    """B queues a job; A's job ends and gives the slot back: B's job starts (B never polls again)."""
    second = await imagine(discord_server, world.bob, world.channel, "second")
    await discord_server.wait_for(lambda: other.services.scheduler.waiting == 1)

    qwen.release(1)
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 2, timeout=10)

    assert prompt_of(qwen.generation_requests[1].body) == "second"
    qwen.release()
    assert (await second.wait_answer()).attachments


async def test_a_slot_given_back_in_one_process_starts_a_job_waiting_in_another_at_once(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, no_poll: None, notices: LogWatch
) -> None:
    other = await start_two_processes_one_busy(discord_server, qwen, bots, world, notices)
    await the_slot_passes_to_the_other_process(discord_server, qwen, world, other)


async def test_a_dropped_notice_connection_is_opened_again(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    bots: BotRunner,
    world: World,
    db: TestDatabase,
    no_poll: None,
    notices: LogWatch,
) -> None:
    other = await start_two_processes_one_busy(discord_server, qwen, bots, world, notices)
    ended = await db.rows(
        "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity "
        "WHERE application_name = ? AND datname = current_database()",
        (APPLICATION_NAME,),
    )
    assert [row["ended"] for row in ended] == [True, True]
    lost = await notices.wait_for("lost the connection that hears other processes' notices", count=2)
    await notices.wait_for(LISTENING, count=4)

    await the_slot_passes_to_the_other_process(discord_server, qwen, world, other)
    assert len(lost) == 2  # one line each
