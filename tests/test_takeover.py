"""Several bot processes on one PostgreSQL database: each generation has an owner; a process that
starts leaves a live one's jobs alone, a killed process's jobs are taken over, and a rolling deploy
hands the old process's waiting jobs to the new one at once."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen
from tests.test_startup import clean_env, finish, read_until, spawn_bot

#: Small heartbeat settings, so a killed process is found gone within about a second.
FAST_TAKEOVER = {"PROCESS_HEARTBEAT_SECONDS": "0.2", "PROCESS_STALE_SECONDS": "1", "PROCESS_POLL_SECONDS": "0.1"}


@pytest.fixture
def backend() -> str:
    """Only PostgreSQL takes several processes (a SQLite file has one)."""
    return "postgres"


async def start_process(
    processes: list[asyncio.subprocess.Process], discord_server: FakeDiscord, env: dict[str, str], cwd: Path
) -> asyncio.subprocess.Process:
    """`python -m bot` with `env`, once its gateway session is ready."""
    sessions = len(discord_server.gateway.sessions)
    process = await spawn_bot(env, cwd)
    processes.append(process)
    await discord_server.wait_for(
        lambda: len(discord_server.gateway.sessions) > sessions and discord_server.gateway.ready.is_set(),
        30,
        what="the new process's session",
    )
    await read_until(process, "invite the bot with")
    return process


def channel_posts(world: World, text: str) -> list[str]:
    return [m.content for m in world.channel.messages if text in m.content]


async def test_a_starting_process_leaves_a_live_processs_jobs_alone(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    first = await bots.start(DASHSCOPE_MAX_CONCURRENCY="1")
    qwen.hold()
    running = await imagine(discord_server, world.alice, world.channel, "heron 1")
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    waiting = await imagine(discord_server, world.bob, world.channel, "heron 2")
    await discord_server.wait_for(lambda: first.services.scheduler.waiting == 1)

    second = await bots.start(DASHSCOPE_MAX_CONCURRENCY="1")
    assert second.services.scheduler.waiting == second.services.scheduler.in_flight == 0
    qwen.release()
    assert (await running.wait_answer()).attachments
    assert (await waiting.wait_answer()).attachments
    await bots.stop()

    assert len(qwen.generation_requests) == 2  # neither made twice
    assert channel_posts(world, "restart") == []
    assert [r["status"] for r in await db.generations()] == ["succeeded", "succeeded"]


async def test_a_killed_processs_jobs_are_taken_over_by_a_live_one(
    tmp_path: Path,
    bot_env: dict[str, str],
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bots: BotRunner,
    processes: list[asyncio.subprocess.Process],
    db: TestDatabase,
) -> None:
    env = clean_env(**bot_env, **FAST_TAKEOVER)
    doomed = await start_process(processes, discord_server, env, tmp_path)
    qwen.hold()
    running = [await imagine(discord_server, world.alice, world.channel, "lynx 1")]
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    running.append(await imagine(discord_server, world.bob, world.channel, "lynx 2"))
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 2)
    waiting = await imagine(discord_server, world.moderator, world.channel, "lynx 3")
    await discord_server.wait_for(
        lambda: waiting.response_message is not None and "next in the queue" in waiting.response_message.content
    )
    await bots.start(**FAST_TAKEOVER)

    killed_at = time.monotonic()
    doomed.kill()
    await doomed.wait()
    qwen.release()
    await bots.wait_delivered(1)
    taken_over_in = time.monotonic() - killed_at

    assert taken_over_in < 30
    # The queued one is made again and answered in its own interaction, whose token still lives.
    assert (await waiting.wait_answer()).attachments
    # The two whose calls had been sent may exist, billed, out of reach: failed, not counted, their
    # members told with a Retry button.
    for interaction in running:
        answer = await interaction.wait_answer()
        assert "Press Retry" in answer.content and answer.components
    rows = {r["prompt"]: r for r in await db.generations()}
    assert rows["lynx 3"]["status"] == "succeeded"
    assert [(rows[p]["status"], rows[p]["error_code"]) for p in ("lynx 1", "lynx 2")] == [
        ("failed", "OutcomeUnknown"),
        ("failed", "OutcomeUnknown"),
    ]
    assert all(row["interaction_token"] is None for row in rows.values())  # kept no longer than needed
    assert len(qwen.generation_requests) == 3
    assert [m for m in world.channel.messages if m.interaction_id is None] == []  # nothing in the channel


async def test_in_async_mode_a_killed_processs_task_is_collected_not_paid_again(
    tmp_path: Path,
    bot_env: dict[str, str],
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bots: BotRunner,
    processes: list[asyncio.subprocess.Process],
    db: TestDatabase,
) -> None:
    async_mode = {"DASHSCOPE_API_MODE": "async", "DASHSCOPE_POLL_SECONDS": "0.05", **FAST_TAKEOVER}
    doomed = await start_process(processes, discord_server, clean_env(**bot_env, **async_mode), tmp_path)
    qwen.hold_downloads()
    asked = await imagine(discord_server, world.alice, world.channel, "otter")
    await qwen.wait_for(lambda: qwen.downloads_held == 1, timeout=30)
    await bots.start(**async_mode)

    doomed.kill()
    await doomed.wait()
    qwen.release_downloads()
    await bots.wait_delivered(1)

    assert (await asked.wait_answer()).attachments
    assert [r["status"] for r in await db.generations()] == ["succeeded"]
    assert len(qwen.task_creations) == 1  # collected from the stored task, not generated twice


async def test_a_rolling_deploy_hands_the_old_processs_waiting_jobs_to_the_new_one_at_once(
    tmp_path: Path,
    bot_env: dict[str, str],
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    processes: list[asyncio.subprocess.Process],
    db: TestDatabase,
) -> None:
    env = clean_env(**bot_env, SHUTDOWN_GRACE_SECONDS="30", DASHSCOPE_MAX_CONCURRENCY="1")
    for folder in ("old", "new"):
        (tmp_path / folder).mkdir()
    old = await start_process(processes, discord_server, env, tmp_path / "old")
    qwen.hold()
    running = await imagine(discord_server, world.alice, world.channel, "ibis 1")
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    world.guild.locale = "zh-CN"
    waiting = [
        await imagine(discord_server, world.bob, world.channel, "ibis 2"),
        # A Japanese member in a Chinese server: answered in Japanese, whichever process answers.
        await discord_server.invoke_command(
            world.moderator, world.channel, "imagine", {"prompt": "ibis 3"}, locale="ja"
        ),
    ]
    await discord_server.wait_for(
        lambda: all(ix.response_message is not None and "⏳" in ix.response_message.content for ix in waiting)
    )
    new = await start_process(processes, discord_server, env, tmp_path / "new")

    old.send_signal(signal.SIGTERM)
    # The new process takes the waiting jobs while the old one's running job still holds the only slot.
    await read_until(new, "taking over 2 generations")
    assert len(qwen.generation_requests) == 1
    qwen.release()
    old_log = await finish(old, timeout=60)

    assert old.returncode == 0, old_log[-3000:]
    assert "Traceback" not in old_log
    assert (await running.wait_answer()).attachments
    # The new process answers in the members' own interactions; nobody is told to wait for a restart.
    for interaction in waiting:
        assert (await interaction.wait_answer()).attachments
    english, japanese = (interaction.response_message for interaction in waiting)
    assert english is not None and japanese is not None
    assert [f["name"] for f in english.embeds[0]["fields"]][:2] == ["Size", "Seed"]
    assert [f["name"] for f in japanese.embeds[0]["fields"]][:2] == ["サイズ", "シード"]
    assert len(qwen.generation_requests) == 3  # nothing made twice
    assert [m for m in world.channel.messages if m.interaction_id is None] == []
    assert [r["status"] for r in await db.generations()] == ["succeeded"] * 3
    new.send_signal(signal.SIGTERM)
    await finish(new, timeout=60)
    assert new.returncode == 0
