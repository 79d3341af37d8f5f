"""Several bot processes on one PostgreSQL database (here: two bots in one event loop)."""

from __future__ import annotations

import asyncio
from collections import Counter

import discord
import pytest

from bot.client import QwenImagineBot
from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen
from tests.logs import watch_log
from tests.test_limits import outcome


@pytest.fixture
def backend() -> str:
    """Only PostgreSQL takes several processes (a SQLite file has one)."""
    return "postgres"


def count_interactions(bot: QwenImagineBot, seen: Counter[int], name: int) -> None:
    async def on_interaction(interaction: discord.Interaction[QwenImagineBot]) -> None:
        seen[name] += 1

    bot.add_listener(on_interaction, "on_interaction")


async def test_an_interaction_both_processes_receive_is_answered_once(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    handled: Counter[int] = Counter()
    count_interactions(await bots.start(), handled, 0)
    count_interactions(await bots.start(), handled, 1)
    discord_server.interaction_routing = "everywhere"
    interaction = await imagine(discord_server, world.alice, world.channel)
    await interaction.wait_answer()
    await bots.wait_delivered(1)
    received = [
        s for s in discord_server.gateway.sessions.values() if any('"INTERACTION_CREATE"' in f.text for f in s.log)
    ]
    assert len(received) == 2
    assert sum(handled.values()) == 1
    assert interaction.errors == []
    assert len(qwen.generation_requests) == 1
    assert [row["status"] for row in await db.generations()] == ["succeeded"]


async def test_processes_starting_together_sync_commands_once(
    discord_server: FakeDiscord, bots: BotRunner, world: World
) -> None:
    await asyncio.gather(bots.start(), bots.start())
    assert sum(discord_server.commands.calls.values()) == 1


async def test_admission_is_exact_across_processes(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    handled: Counter[int] = Counter()
    count_interactions(await bots.start(DEFAULT_LIMITS="server/day=3"), handled, 0)
    count_interactions(await bots.start(DEFAULT_LIMITS="server/day=3"), handled, 1)
    discord_server.interaction_routing = "spread"
    members = [world.guild.add_member(name=f"m{i}", permissions=MEMBER_PERMISSIONS) for i in range(50)]
    interactions = await asyncio.gather(*(imagine(discord_server, m, world.channel) for m in members))
    results = await asyncio.gather(*(outcome(ix) for ix in interactions))
    assert handled[0] == handled[1] == 25
    assert sum(admitted for admitted, _ in results) == 3
    assert sorted(row["status"] for row in await db.generations()) == ["denied"] * 47 + ["succeeded"] * 3


async def test_queue_caps_hold_across_processes(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    for _ in range(2):
        await bots.start(MAX_JOBS_PER_GUILD="4")
    discord_server.interaction_routing = "spread"
    qwen.hold()
    members = [world.guild.add_member(name=f"m{i}", permissions=MEMBER_PERMISSIONS) for i in range(20)]
    interactions = await asyncio.gather(*(imagine(discord_server, m, world.channel) for m in members))
    acks = await asyncio.gather(*(ix.wait_ack() for ix in interactions))
    assert sum(not ack.ephemeral for ack in acks) == 4
    qwen.release()
    await bots.wait_delivered(4)
    assert Counter(row["status"] for row in await db.generations()) == {"denied": 16, "succeeded": 4}


async def test_a_process_starting_during_another_ones_sync_does_not_sync_again(
    discord_server: FakeDiscord, bots: BotRunner, world: World
) -> None:
    discord_server.hold_command_syncs()
    with watch_log("bot.db.meta") as log:
        first = asyncio.create_task(bots.start())
        await discord_server.wait_for(lambda: discord_server.syncs_held == 1, 15, what="the first sync")
        second = asyncio.create_task(bots.start())
        # The second process either waits for the first one's sync, or (unguarded) syncs as well.
        waiting = asyncio.create_task(log.wait_for("another process is in a start-up step"))
        syncing = asyncio.create_task(discord_server.wait_for(lambda: discord_server.syncs_held == 2, 15, what="2"))
        await asyncio.wait({waiting, syncing}, return_when=asyncio.FIRST_COMPLETED)
        for task in (waiting, syncing):
            task.cancel()
        discord_server.release_command_syncs()
        await asyncio.gather(first, second)
    assert sum(discord_server.commands.calls.values()) == 1


async def test_the_accounts_slots_are_shared_by_every_process(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    for _ in range(2):
        await bots.start(MAX_JOBS_PER_MEMBER="10")
    discord_server.interaction_routing = "spread"
    qwen.hold()
    interactions = [await imagine(discord_server, world.alice, world.channel, f"fox {n}") for n in range(8)]
    await asyncio.gather(*(ix.wait_ack() for ix in interactions))
    await qwen.wait_for(lambda: qwen.in_flight == 2)
    qwen.release()
    await asyncio.gather(*(ix.wait_answer() for ix in interactions))
    assert qwen.max_in_flight_by_key == {qwen.api_key: 2}
    assert qwen.throttled == 0
    assert len(qwen.generation_requests) == 8


async def test_the_accounts_submission_pace_holds_over_every_process(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    for _ in range(2):
        await bots.start(MAX_JOBS_PER_MEMBER="10", DASHSCOPE_MAX_SUBMITS_PER_SECOND="2")
    discord_server.interaction_routing = "spread"
    interactions = [await imagine(discord_server, world.alice, world.channel, f"fox {n}") for n in range(8)]
    await asyncio.gather(*(ix.wait_answer() for ix in interactions))
    times = sorted(r.at for r in qwen.generation_requests)
    assert len(times) == 8 and qwen.throttled == 0
    # At most 2 in any second (less a little for the trip from the database's clock to the API).
    assert min(later - earlier for earlier, later in zip(times, times[2:], strict=False)) >= 0.9
