"""One fair queue over every process on a PostgreSQL database: a job waits its turn against every
other server's jobs, whichever process received them."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.queue_makespan import prompt_of
from bot.services.jobs import Job, Waiting, fairest
from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen


@pytest.fixture
def backend() -> str:
    """Only PostgreSQL takes several processes (a SQLite file has one)."""
    return "postgres"


async def test_a_one_job_guild_on_another_process_starts_before_a_busy_guilds_waiting_jobs(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    quiet = discord_server.add_guild(name="Sculptors")
    quiet_channel = quiet.add_channel(name="studio")
    loner = quiet.add_member(name="carol", permissions=MEMBER_PERMISSIONS)
    settings = {"DASHSCOPE_MAX_CONCURRENCY": "1", "MAX_JOBS_PER_MEMBER": "20"}
    busy = await bots.start(**settings)
    qwen.hold()
    for n in range(20):
        await imagine(discord_server, world.alice, world.channel, f"busy {n}")
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    await discord_server.wait_for(lambda: busy.services.scheduler.waiting == 19)
    other = await bots.start(**settings)  # interactions now reach the newest process
    lone = await imagine(discord_server, loner, quiet_channel, "lone")
    await discord_server.wait_for(lambda: other.services.scheduler.waiting == 1)

    qwen.release(1)  # the account's one slot frees: the next job over both processes starts
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 2)

    assert prompt_of(qwen.generation_requests[1].body) == "lone"
    qwen.release()
    assert (await lone.wait_answer()).attachments


async def test_the_fairest_job_over_every_process_is_the_least_recently_served_guild_then_member() -> None:
    def job(guild: int, member: int, generation_id: int) -> Job[None]:
        return Job(generation_id, guild, member, work=lambda: asyncio.sleep(0))

    mine = [job(1, 10, 5), job(1, 11, 7), job(2, 20, 9)]
    elsewhere = [Waiting(3, 30, 8), Waiting(1, 12, 6)]
    # Nobody served yet: ties by arrival, over both processes.
    assert fairest(mine, elsewhere, {}) is mine[0]
    # Guild 1 just served: guild 3 (another process's) waited longer than guild 2? Never served either:
    # arrival decides (8 < 9), so another process's job goes first.
    assert fairest(mine, elsewhere, {1: 5.0, (1, 10): 5.0}) == elsewhere[0]
    assert fairest(mine, [], {1: 5.0, (1, 10): 5.0}) is mine[2]
    # Within a guild, the least recently served member: member 11 never was.
    assert fairest(mine, [], {1: 1.0, 2: 2.0, (1, 10): 1.0}) is mine[1]


async def test_a_waiting_job_another_process_does_not_start_does_not_hold_up_the_queue(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start()
    # A live process (its heartbeat far ahead) whose waiting job, first in turn, it never starts.
    await db.execute(
        "INSERT INTO processes (id, heartbeat) VALUES ('stuck', EXTRACT(EPOCH FROM clock_timestamp()) + 3600)"
    )
    await db.execute(
        "INSERT INTO generations (guild_id, channel_id, member_id, requested_at, status, model, size, seed, "
        "prompt_extend, prompt, owner) "
        "VALUES (?, ?, ?, ?, 'queued', 'qwen-image-plus', '1328*1328', 3, 1, 'x', 'stuck')",
        (1, 2, 3, time.time()),
    )
    interaction = await imagine(discord_server, world.alice, world.channel)
    assert (await interaction.wait_answer()).attachments
