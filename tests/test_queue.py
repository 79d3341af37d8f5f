"""The job queue: slots kept full and never overfull, fairness, progress, caps, AIMD, durability."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.qwen import GenerationParams, QwenImageClient, RetryPolicy
from bot.services.jobs import FairQueue, Job
from bot.services.scheduler import Scheduler
from bot.settings import Secret
from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord, FakeGuild, FakeInteraction, FakeMember
from tests.fakes.qwen import FakeQwen
from tests.test_startup import clean_env, spawn_bot

PARAMS = GenerationParams(model="qwen-image-plus", prompt="a heron", size="1328*1328", seed=1, prompt_extend=False)


def prompt_of(request: object) -> str:
    return request.body["input"]["messages"][0]["content"][0]["text"]  # type: ignore[attr-defined,no-any-return]


def members(guild: FakeGuild, count: int, prefix: str) -> list[FakeMember]:
    return [guild.add_member(name=f"{prefix}{i}", permissions=MEMBER_PERMISSIONS) for i in range(count)]


# ------------------------------------------------------------------ the fair queue on its own


async def test_fair_queue_order_is_round_robin_over_guilds_then_members() -> None:
    queue: FairQueue[None] = FairQueue()

    def job(guild: int, member: int, n: int) -> Job[None]:
        return Job(generation_id=n, guild_id=guild, member_id=member, work=lambda: asyncio.sleep(0))

    for n, (guild, member) in enumerate([(1, 10)] * 3 + [(1, 11)] * 2 + [(2, 20)] + [(3, 30)] * 2):
        queue.push(job(guild, member, n))
    predicted = [j.generation_id for j in queue.in_order()]
    popped = [queue.pop().generation_id for _ in range(len(queue))]
    # Guilds, then members, take turns in the order they first queued.
    assert popped == [0, 5, 6, 3, 7, 1, 4, 2]
    assert predicted == popped


async def test_fair_queue_prediction_matches_pops_for_random_queues() -> None:
    rng = random.Random(7)
    for _ in range(50):
        queue: FairQueue[None] = FairQueue()
        for n in range(rng.randint(1, 40)):
            queue.push(Job(n, rng.randint(1, 4), rng.randint(1, 5), work=lambda: asyncio.sleep(0)))
        predicted = [j.generation_id for j in queue.in_order()]
        assert predicted == [queue.pop().generation_id for _ in range(len(queue))]


# ------------------------------------------------------------------ the scheduler with the real API client


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_429_storm_lowers_concurrency_and_it_recovers(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    now = [0.0]
    scheduler: Scheduler[object] = Scheduler(max_concurrency=2, submits_per_second=1000, clock=lambda: now[0])
    api = QwenImageClient(
        session, base_url=qwen.base_url, api_key=Secret(qwen.api_key), pacer=scheduler, retry=RetryPolicy(max_retries=5)
    )
    scheduler.start()
    try:
        # Another program shares the account: the API refuses us four times in a row.
        qwen.fail_next(
            429, "Throttling.RateQuota", "Requests rate limit exceeded.", times=4, headers={"Retry-After": "0"}
        )
        await scheduler.run(Job(1, 1, 1, work=lambda: api.generate(PARAMS)))
        assert scheduler.throttle_count == 4
        assert scheduler.limit == 1
        # Still holding back: successes during the hold do not raise the limit.
        await scheduler.run(Job(2, 1, 1, work=lambda: api.generate(PARAMS)))
        assert scheduler.limit == 1
        now[0] += 31
        for n in range(3):
            await scheduler.run(Job(3 + n, 1, 1, work=lambda: api.generate(PARAMS)))
        assert scheduler.limit == 2
    finally:
        await scheduler.stop(grace=1)


class WatchedPacer:
    """The scheduler as the API client's pacer, noting when each submission asked for its turn and
    when it was let go (the client sends right after)."""

    def __init__(self, scheduler: Scheduler[object]) -> None:
        self.scheduler = scheduler
        self.asked: list[float] = []
        self.released: dict[int, float] = {}

    async def before_submit(self, model: str | None = None) -> None:
        n = len(self.asked)
        self.asked.append(time.monotonic())  # no await before the scheduler books the turn: same order
        await self.scheduler.before_submit(model)
        self.released[n] = time.monotonic()

    def throttled(self) -> None:
        self.scheduler.throttled()

    def succeeded(self) -> None:
        self.scheduler.succeeded()


async def test_submissions_are_paced(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    scheduler: Scheduler[object] = Scheduler(max_concurrency=2, submits_per_second=10)
    pacer = WatchedPacer(scheduler)
    api = QwenImageClient(session, base_url=qwen.base_url, api_key=Secret(qwen.api_key), pacer=pacer)
    scheduler.start()
    try:
        await asyncio.gather(*(scheduler.run(Job(n, n % 3, n, work=lambda: api.generate(PARAMS))) for n in range(12)))
    finally:
        await scheduler.stop(grace=1)
    # At most 10 in any second: each submission goes a second or more after the one 10 before it
    # asked (timed where the pacer decides, so a slow first connection cannot blur it; the 1 µs is
    # the event loop's licence to fire a timer up to its clock's resolution early).
    assert len(pacer.released) == len(qwen.generation_requests) == 12
    assert all(pacer.released[n] >= pacer.asked[n - 10] + 1.0 - 1e-6 for n in range(10, 12))
    assert qwen.max_in_flight <= 2 and qwen.throttled == 0


# ------------------------------------------------------------------ through Discord


async def test_a_burst_from_several_guilds_never_overfills_the_slots(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    other = discord_server.add_guild(name="Other")
    other_channel = other.add_channel(name="art")
    third = discord_server.add_guild(name="Third")
    third_channel = third.add_channel(name="art")
    await bots.start()
    qwen.latency = 0.02
    senders = [(m, world.channel) for m in members(world.guild, 10, "a")]
    senders += [(m, other_channel) for m in members(other, 10, "b")]
    senders += [(m, third_channel) for m in members(third, 10, "c")]
    interactions = await asyncio.gather(
        *(imagine(discord_server, m, c, f"fox {i}") for i, (m, c) in enumerate(senders))
    )
    answers = await asyncio.gather(*(ix.wait_answer(timeout=60) for ix in interactions))
    assert all(a.attachments for a in answers)
    assert qwen.max_in_flight == 2
    assert qwen.throttled == 0


async def test_a_single_job_guild_gets_a_slot_within_one_turn(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    busy_members = members(world.guild, 7, "busy")
    quiet = discord_server.add_guild(name="Quiet")
    quiet_channel = quiet.add_channel(name="art")
    [loner] = members(quiet, 1, "loner")
    bot = await bots.start(DASHSCOPE_MAX_CONCURRENCY="1")  # one slot, so the order of starts is exact
    qwen.hold()
    senders = [(i, m) for i in range(3) for m in busy_members][:20]
    busy = [await imagine(discord_server, m, world.channel, f"busy {i}") for i, m in senders]
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    await asyncio.gather(*(ix.wait_ack() for ix in busy))
    lonely = await imagine(discord_server, loner, quiet_channel, "the quiet one")
    await discord_server.wait_for(lambda: bot.services.scheduler.waiting == 20)  # 19 busy jobs and the quiet one
    qwen.release()
    await lonely.wait_answer(timeout=60)
    order = [prompt_of(r) for r in qwen.generation_requests]
    # A busy job held the slot; the quiet guild's job is the very next to start.
    assert order.index("the quiet one") == 1


async def test_queue_positions_are_shown_and_updated(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    carol, dave = members(world.guild, 2, "late")
    bot = await bots.start()
    qwen.hold()
    running = [await imagine(discord_server, m, world.channel) for m in (world.alice, world.bob)]
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 2)

    def shows(ix: FakeInteraction, text: str) -> bool:
        return ix.response_message is not None and text in ix.response_message.content

    # One after the other, so that carol is queued first (simultaneous requests queue in any order).
    second = await imagine(discord_server, carol, world.channel)
    await discord_server.wait_for(lambda: bot.services.scheduler.waiting == 1)
    third = await imagine(discord_server, dave, world.channel)
    await discord_server.wait_for(lambda: shows(third, "In the queue: 1 image ahead of you"))
    await discord_server.wait_for(lambda: shows(second, "You're next in the queue"))
    assert running[0].response_message is None  # a job that started at once shows no queue note
    qwen.release(1)  # one slot frees: carol starts, dave moves up
    await discord_server.wait_for(lambda: shows(third, "You're next in the queue"))
    await discord_server.wait_for(lambda: shows(second, "Generating your image"))
    qwen.release()
    answers = await asyncio.gather(*(ix.wait_answer() for ix in [*running, second, third]))
    assert all(a.attachments and a.content == "" for a in answers)


async def test_queue_caps_refuse_at_once_and_charge_nothing(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start(MAX_JOBS_PER_MEMBER="2", MAX_JOBS_PER_GUILD="3")
    qwen.hold()
    for _ in range(2):
        await (await imagine(discord_server, world.alice, world.channel)).wait_ack()
    refused = await imagine(discord_server, world.alice, world.channel)
    assert (await refused.wait_ack()).ephemeral
    assert "You already have 2 images waiting or in progress" in (await refused.wait_answer()).content
    await (await imagine(discord_server, world.bob, world.channel)).wait_ack()
    refused = await imagine(discord_server, world.moderator, world.channel)
    assert "This server already has 3 images waiting" in (await refused.wait_answer()).content
    qwen.release()
    assert len(qwen.generation_requests) <= 3
    statuses = [r["status"] for r in await db.generations()]
    assert statuses.count("denied") == 2


async def test_jobs_interrupted_by_a_restart_are_delivered_to_the_channel_afterwards(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    bot = await bots.start(SHUTDOWN_GRACE_SECONDS="0")
    qwen.hold()
    askers = [world.alice, world.bob, world.moderator]
    interactions = [await imagine(discord_server, m, world.channel, f"koi {i}") for i, m in enumerate(askers)]
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 2)
    # All three in the queue before shutdown (a request still being admitted then would be released).
    await discord_server.wait_for(lambda: bot.services.scheduler.waiting == 1)
    await bots.stop()
    for ix in interactions:
        assert "restarting" in (await ix.wait_answer()).content
    assert [r["status"] for r in await db.generations()] == ["queued"] * 3
    qwen.release()

    await bots.start()
    await bots.wait_delivered(3)
    posts = [m for m in world.channel.messages if m.interaction_id is None and m.attachments]
    assert sorted(p.pinged_user_ids().pop() for p in posts) == sorted(m.id for m in askers)
    assert all("before the bot restarted" in p.content for p in posts)
    assert [r["status"] for r in await db.generations()] == ["succeeded"] * 3
    assert all(r["message_id"] for r in await db.generations())


async def test_old_unfinished_jobs_are_failed_and_the_member_told(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start()
    await bots.stop()
    await db.execute(
        "INSERT INTO generations (guild_id, channel_id, member_id, requested_at, status, model, size, seed, "
        "prompt_extend, prompt) VALUES (?, ?, ?, ?, 'running', 'qwen-image-plus', '1328*1328', 3, 1, 'stale')",
        (world.guild.id, world.channel.id, world.alice.id, time.time() - 7 * 3600),
    )
    await bots.start()
    await discord_server.wait_for(lambda: any("couldn't be finished" in m.content for m in world.channel.messages))
    [post] = [m for m in world.channel.messages if "couldn't be finished" in m.content]
    assert post.pinged_user_ids() == {world.alice.id}
    assert [(r["status"], r["error_code"]) for r in await db.generations()] == [("failed", "Interrupted")]
    assert qwen.generation_requests == []


async def test_new_requests_are_refused_once_shutdown_begins(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    bot = await bots.start(SHUTDOWN_GRACE_SECONDS="30")
    qwen.hold()
    running = await imagine(discord_server, world.alice, world.channel)
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    closing = asyncio.create_task(bot.close())
    await discord_server.wait_for(lambda: not bot.services.scheduler.accepting)
    late = await imagine(discord_server, world.bob, world.channel)
    assert (await late.wait_ack()).ephemeral
    assert "restarting" in (await late.wait_answer()).content
    qwen.release()
    assert (await running.wait_answer()).attachments  # finished within the grace period
    await closing
    assert [r["status"] for r in await db.generations()] == ["succeeded"]


async def test_sigterm_lets_running_jobs_finish_keeps_the_rest_and_exits_0(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, qwen: FakeQwen, world: World, db: TestDatabase
) -> None:
    process = await spawn_bot(clean_env(**bot_env, SHUTDOWN_GRACE_SECONDS="20"), tmp_path)
    try:
        await discord_server.wait_ready(timeout=30)
        qwen.hold()
        # One after the other, so the first two asked are the two running (simultaneous ones start in any order).
        interactions = [await imagine(discord_server, world.alice, world.channel, "crane 0")]
        await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
        interactions.append(await imagine(discord_server, world.bob, world.channel, "crane 1"))
        await qwen.wait_for(lambda: len(qwen.generation_requests) == 2)
        interactions.append(await imagine(discord_server, world.moderator, world.channel, "crane 2"))
        await asyncio.gather(*(ix.wait_ack() for ix in interactions))
        # The third in the queue before shutdown, not merely acknowledged: a request still being admitted
        # then is released (and told to try again), not kept. Its queue note shows that it waits.
        waiting = interactions[2]
        await discord_server.wait_for(
            lambda: waiting.response_message is not None and "next in the queue" in waiting.response_message.content
        )
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        async with asyncio.timeout(30):
            while b"shutting down" not in await process.stderr.readline():
                pass
        qwen.release()
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()[-2000:]
    first, second, third = [await ix.wait_answer() for ix in interactions]
    assert first.attachments and second.attachments
    assert "restarting" in third.content
    statuses = [r["status"] for r in await db.generations()]
    assert statuses == ["succeeded", "succeeded", "queued"]
