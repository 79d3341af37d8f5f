"""Stopping `python -m bot`: SHUTDOWN_GRACE_SECONDS bounds the whole drain, a hung download or upload
included, and a second signal during the drain changes nothing."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from tests.conftest import BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen
from tests.test_startup import clean_env, finish, read_until, spawn_bot

GRACE = 2
#: What a stop may take beyond the grace: telling interrupted members, disconnecting, closing the database.
OVERHEAD = 6


async def start_bot(
    processes: list[asyncio.subprocess.Process], discord_server: FakeDiscord, env: dict[str, str], cwd: Path
) -> asyncio.subprocess.Process:
    process = await spawn_bot(env, cwd)
    processes.append(process)
    await discord_server.wait_ready(timeout=30)
    return process


async def stop_and_time(process: asyncio.subprocess.Process) -> tuple[float, str]:
    """SIGTERM; return how long the process took to exit and its log from then on."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    log = await finish(process, timeout=GRACE + OVERHEAD + 30)
    return time.monotonic() - started, log


async def test_a_hung_download_is_cut_at_the_grace_and_the_paid_image_recorded_undelivered(
    tmp_path: Path,
    bot_env: dict[str, str],
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    processes: list[asyncio.subprocess.Process],
    db: TestDatabase,
) -> None:
    process = await start_bot(
        processes, discord_server, clean_env(**bot_env, SHUTDOWN_GRACE_SECONDS=str(GRACE)), tmp_path
    )
    qwen.hold_downloads()
    interaction = await imagine(discord_server, world.alice, world.channel)
    await qwen.wait_for(lambda: qwen.downloads_held == 1, timeout=30)

    elapsed, log = await stop_and_time(process)

    assert process.returncode == 0, log[-3000:]
    assert elapsed < GRACE + OVERHEAD, f"took {elapsed:.1f} s"
    assert "Traceback" not in log
    # Sync mode: the image was generated (and billed); it can't be collected after a restart.
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("undelivered", "Interrupted")
    answer = await interaction.wait_answer()
    assert "made, but the bot restarted before it could be posted" in answer.content
    assert "doesn't count against your limits" in answer.content


async def test_in_async_mode_a_download_cut_at_the_grace_resumes_without_paying_again(
    tmp_path: Path,
    bot_env: dict[str, str],
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bots: BotRunner,
    processes: list[asyncio.subprocess.Process],
    db: TestDatabase,
) -> None:
    env = clean_env(
        **bot_env, SHUTDOWN_GRACE_SECONDS=str(GRACE), DASHSCOPE_API_MODE="async", DASHSCOPE_POLL_SECONDS="0.05"
    )
    process = await start_bot(processes, discord_server, env, tmp_path)
    qwen.hold_downloads()
    interaction = await imagine(discord_server, world.alice, world.channel)
    await qwen.wait_for(lambda: qwen.downloads_held == 1, timeout=30)

    elapsed, log = await stop_and_time(process)

    assert process.returncode == 0, log[-3000:]
    assert elapsed < GRACE + OVERHEAD, f"took {elapsed:.1f} s"
    [row] = await db.generations()
    assert row["status"] == "queued" and row["task_id"]
    assert "will be posted in this channel when the bot is back" in (await interaction.wait_answer()).content

    qwen.release_downloads()
    await bots.start(DASHSCOPE_API_MODE="async", DASHSCOPE_POLL_SECONDS="0.05")
    await bots.wait_delivered(1)
    assert [r["status"] for r in await db.generations()] == ["succeeded"]
    assert len(qwen.task_creations) == 1  # collected from the stored task, not generated twice


async def test_a_hung_upload_is_cut_at_the_grace_and_recorded_as_undelivered(
    tmp_path: Path,
    bot_env: dict[str, str],
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    processes: list[asyncio.subprocess.Process],
    db: TestDatabase,
) -> None:
    process = await start_bot(
        processes, discord_server, clean_env(**bot_env, SHUTDOWN_GRACE_SECONDS=str(GRACE)), tmp_path
    )
    discord_server.hold_uploads()
    interaction = await imagine(discord_server, world.alice, world.channel)
    await discord_server.wait_for(lambda: discord_server.uploads_held == 1, timeout=30)

    elapsed, log = await stop_and_time(process)

    assert process.returncode == 0, log[-3000:]
    assert elapsed < GRACE + OVERHEAD, f"took {elapsed:.1f} s"
    assert "Traceback" not in log
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("undelivered", "Interrupted")
    assert "before it could be posted" in (await interaction.wait_answer()).content


async def test_a_second_signal_during_the_drain_changes_nothing(
    tmp_path: Path,
    bot_env: dict[str, str],
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    processes: list[asyncio.subprocess.Process],
    db: TestDatabase,
) -> None:
    process = await start_bot(processes, discord_server, clean_env(**bot_env, SHUTDOWN_GRACE_SECONDS="20"), tmp_path)
    qwen.hold()
    # Both API slots busy, in a known order; then one request waiting for a slot.
    first = await imagine(discord_server, world.alice, world.channel, "wren 1")
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    second = await imagine(discord_server, world.bob, world.channel, "wren 2")
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 2)
    waiting = await imagine(discord_server, world.moderator, world.channel, "wren 3")
    await discord_server.wait_for(
        lambda: waiting.response_message is not None and "next in the queue" in waiting.response_message.content
    )

    process.send_signal(signal.SIGTERM)
    log = await read_until(process, "shutting down")
    process.send_signal(signal.SIGINT)  # Ctrl-C
    log += await read_until(process, "already shutting down")
    process.send_signal(signal.SIGTERM)
    assert "will be posted in this channel when the bot is back" in (await waiting.wait_answer()).content
    qwen.release()
    log += await finish(process)

    assert process.returncode == 0, log[-3000:]
    assert "Traceback" not in log
    assert "closed database" not in log and "database is closed" not in log and "no active connection" not in log
    assert log.count("already shutting down") == 1
    assert (await first.wait_answer()).attachments and (await second.wait_answer()).attachments
    assert [r["status"] for r in await db.generations()] == ["succeeded", "succeeded", "queued"]
