"""DASHSCOPE_API_MODE=async: the task pair instead of the sync call, and no second payment after a restart."""

from __future__ import annotations

from tests.conftest import BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen

ASYNC = {"DASHSCOPE_API_MODE": "async", "DASHSCOPE_POLL_SECONDS": "0.02"}


async def test_async_mode_creates_a_task_polls_it_and_delivers(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start(**ASYNC)
    qwen.latency = 0.1
    interaction = await imagine(
        discord_server, world.alice, world.channel, "a paper boat", seed=8, negative_prompt="rain", enhance=False
    )
    answer = await interaction.wait_answer()
    assert answer.attachments[0].filename == "qwen-image-8.png"
    [create] = qwen.task_creations
    assert create.headers["X-DashScope-Async"] == "enable"
    assert create.body == {
        "model": "qwen-image-plus",
        "input": {"prompt": "a paper boat", "negative_prompt": "rain"},
        "parameters": {"size": "1328*1328", "n": 1, "seed": 8, "prompt_extend": False, "watermark": False},
    }
    assert qwen.generation_requests == []  # the sync endpoint was not used
    polls = [r for r in qwen.requests if r.path.startswith("/api/v1/tasks/")]
    assert len(polls) >= 2
    [row] = await db.generations()
    assert row["status"] == "succeeded" and row["task_id"]


async def test_a_failed_task_is_reported_like_a_failed_call(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start(**ASYNC)
    qwen.fail_next_task("DataInspectionFailed", "Output data may contain inappropriate content.")
    answer = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    assert "content filter" in answer.content
    assert [(r["status"], r["error_code"]) for r in await db.generations()] == [("failed", "DataInspectionFailed")]


async def test_a_restart_polls_the_submitted_task_instead_of_paying_again(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start(**ASYNC, SHUTDOWN_GRACE_SECONDS="0")
    qwen.hold()  # the task stays RUNNING
    interaction = await imagine(discord_server, world.alice, world.channel, "a lantern")
    await qwen.wait_for(lambda: len(qwen.task_creations) == 1)
    # The task id is stored before the task is first polled.
    await qwen.wait_for(lambda: any(r.path.startswith("/api/v1/tasks/") for r in qwen.requests))
    first_poll = next(r for r in qwen.requests if r.path.startswith("/api/v1/tasks/"))
    assert (await db.generations())[0]["task_id"] == first_poll.path.rsplit("/", 1)[1]
    await bots.stop()
    assert "restarting" in (await interaction.wait_answer()).content
    qwen.release()

    await bots.start(**ASYNC)
    await bots.wait_delivered(1)
    [post] = [m for m in world.channel.messages if m.interaction_id is None and m.attachments]
    assert post.pinged_user_ids() == {world.alice.id}
    assert len(qwen.task_creations) == 1  # polled, not created (and billed) again
    assert [r["status"] for r in await db.generations()] == ["succeeded"]
