"""Several API keys (one per account), each a lane with its own slots, pacing and 429 backoff."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bot.lanes import fingerprint
from tests.conftest import BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen
from tests.logs import watch_log

SECOND_KEY = "second-account-key"


@pytest.fixture
def keys(qwen: FakeQwen) -> tuple[str, str]:
    return qwen.api_key, qwen.add_key(SECOND_KEY)


async def test_two_keys_run_two_accounts_worth_of_jobs(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, keys: tuple[str, str]
) -> None:
    await bots.start(DASHSCOPE_API_KEY=",".join(keys), MAX_JOBS_PER_MEMBER="10")
    qwen.hold()
    interactions = [await imagine(discord_server, world.alice, world.channel, f"fox {n}") for n in range(6)]
    await qwen.wait_for(lambda: qwen.in_flight == 4)
    assert Counter(qwen.key_of(r) for r in qwen.generation_requests) == {keys[0]: 2, keys[1]: 2}
    qwen.release()
    await asyncio.gather(*(ix.wait_answer() for ix in interactions))
    assert qwen.max_in_flight_by_key == {keys[0]: 2, keys[1]: 2}
    assert qwen.throttled == 0


async def test_a_models_own_concurrency_is_counted_per_key(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, keys: tuple[str, str]
) -> None:
    # The built-in catalogue: qwen-image-plus allows 2 at a time per account, so two keys run 4.
    await bots.start(DASHSCOPE_API_KEY=",".join(keys), MAX_JOBS_PER_MEMBER="10", MODEL_CATALOGUE_FILE="")
    qwen.hold()
    interactions = [await imagine(discord_server, world.alice, world.channel, f"fox {n}") for n in range(6)]
    await qwen.wait_for(lambda: qwen.in_flight == 4)
    assert Counter(qwen.key_of(r) for r in qwen.generation_requests) == {keys[0]: 2, keys[1]: 2}
    qwen.release()
    await asyncio.gather(*(ix.wait_answer() for ix in interactions))
    assert qwen.throttled == 0


async def test_a_rejected_key_leaves_the_rotation_and_its_job_succeeds_on_another(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase, keys: tuple[str, str]
) -> None:
    qwen.reject_key(keys[0], "Arrearage")
    with watch_log("bot") as log:
        await bots.start(DASHSCOPE_API_KEY=",".join(keys))
        for prompt in ("a fox", "a second fox"):
            message = await (await imagine(discord_server, world.alice, world.channel, prompt)).wait_answer()
            assert message.attachments
    assert [qwen.key_of(r) for r in qwen.generation_requests] == [keys[0], keys[1], keys[1]]
    [line] = log.messages("leaves the rotation")
    assert fingerprint(keys[0]) in line and "Arrearage" in line
    text = "\n".join(record.getMessage() for record in log.records)
    assert keys[0] not in text and keys[1] not in text
    assert [row["status"] for row in await db.generations()] == ["succeeded", "succeeded"]


async def test_with_every_key_rejected_members_are_told_the_bot_is_misconfigured(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase, keys: tuple[str, str]
) -> None:
    qwen.reject_key(keys[0])
    qwen.reject_key(keys[1], "AccessDenied")
    await bots.start(DASHSCOPE_API_KEY=",".join(keys))
    message = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    assert "setup problem" in message.content
    assert [qwen.key_of(r) for r in qwen.generation_requests] == list(keys)
    [row] = await db.generations()
    assert row["status"] == "failed"


async def test_after_a_restart_a_task_is_polled_with_the_key_that_created_it(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase, keys: tuple[str, str]
) -> None:
    both = ",".join(keys)
    qwen.reject_key(keys[0])  # for now: the task is created with the second key
    await bots.start(
        DASHSCOPE_API_KEY=both, DASHSCOPE_API_MODE="async", DASHSCOPE_POLL_SECONDS="0.02", SHUTDOWN_GRACE_SECONDS="0"
    )
    qwen.hold()
    await imagine(discord_server, world.alice, world.channel, "a lantern")
    await qwen.wait_for(lambda: any(r.path.startswith("/api/v1/tasks/") for r in qwen.requests))
    [row] = await db.generations()
    assert row["task_lane"] == fingerprint(keys[1])
    await bots.stop()
    qwen.release()
    qwen.rejected_keys.clear()  # both keys work again; the task still belongs to the second account

    await bots.start(DASHSCOPE_API_KEY=both, DASHSCOPE_API_MODE="async", DASHSCOPE_POLL_SECONDS="0.02")
    await bots.wait_delivered(1)
    # Polled, not created (and billed) again: the only task made is the second key's.
    assert [(qwen.key_of(r), r.answered) for r in qwen.task_creations] == [(keys[0], 401), (keys[1], 200)]
    polls = [r for r in qwen.requests if r.path.startswith("/api/v1/tasks/")]
    assert {qwen.key_of(r) for r in polls} == {keys[1]}
    assert [r["status"] for r in await db.generations()] == ["succeeded"]
