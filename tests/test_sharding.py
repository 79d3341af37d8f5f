"""SHARD_COUNT and SHARD_IDS: gateway shards in one process or split over several, through the fakes."""

from __future__ import annotations

import json
import signal
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from discord.ext import commands

from bot.settings import SettingsError, load_settings
from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeChannel, FakeDiscord, FakeMember
from tests.fakes.discord.gateway import GatewaySession, shard_of
from tests.fakes.qwen import FakeQwen
from tests.test_processes import count_interactions
from tests.test_startup import clean_env, closed_port, finish, is_log_line, read_until, run_bot_process, spawn_bot

REQUIRED = {"DISCORD_TOKEN": "t", "DASHSCOPE_API_KEY": "k"}
POSTGRES = {**REQUIRED, "DATABASE_URL": "postgresql://bot@db.example/bot"}


@dataclass
class Place:
    """A guild's channel and a member there."""

    channel: FakeChannel
    member: FakeMember


def other_shard_guild(discord_server: FakeDiscord, world: World) -> Place:
    """A second guild, on the other of two shards than the world's guild."""
    other = 1 - shard_of(world.guild.id, 2)
    guild = discord_server.add_guild(name="Sculptors", shard=(other, 2))
    return Place(guild.add_channel(name="studio"), guild.add_member(name="carol", permissions=MEMBER_PERMISSIONS))


def receivers(discord_server: FakeDiscord, interaction_id: int) -> list[GatewaySession]:
    """The gateway sessions an interaction was sent to."""
    return [
        s
        for s in discord_server.gateway.sessions.values()
        if any(
            json.loads(f.text).get("d", {}).get("id") == str(interaction_id)
            for f in s.log
            if '"t": "INTERACTION_CREATE"' in f.text
        )
    ]


async def test_one_process_holds_every_shard_and_serves_both(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    second = other_shard_guild(discord_server, world)
    bot = await bots.start(SHARD_COUNT="2")
    assert isinstance(bot, commands.AutoShardedBot)
    assert sorted(s.shard or [] for s in discord_server.gateway.sessions.values()) == [[0, 2], [1, 2]]
    assert sorted(bot.shards) == [0, 1] and {g.shard_id for g in bot.guilds} == {0, 1}
    assert [shard for shard, _ in bot.latencies] == [0, 1]
    first = await imagine(discord_server, world.alice, world.channel)
    other = await imagine(discord_server, second.member, second.channel, "a blue whale")
    for interaction in (first, other):
        assert (await interaction.wait_answer()).attachments
        assert interaction.errors == []
    await bots.wait_delivered(2)
    shards = [[s.shard for s in receivers(discord_server, ix.id)] for ix in (first, other)]
    assert shards == [[[shard_of(world.guild.id, 2), 2]], [[1 - shard_of(world.guild.id, 2), 2]]]
    assert [row["status"] for row in await db.generations()] == ["succeeded", "succeeded"]
    await bots.stop()
    # Shutdown closes every shard's connection (a client's own close ends its session).
    sessions = discord_server.gateway.sessions.values()
    await discord_server.wait_for(lambda: all(s.invalid and s.socket is None for s in sessions), what="both closed")


@pytest.mark.parametrize("backend", ["postgres"])
async def test_two_processes_split_the_shards_each_serving_its_own(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    second = other_shard_guild(discord_server, world)
    handled: Counter[int] = Counter()
    for shard in (0, 1):
        bot = await bots.start(SHARD_COUNT="2", SHARD_IDS=str(shard))
        assert [g.id for g in bot.guilds] == [g for g in discord_server.world.guilds if shard_of(g, 2) == shard]
        count_interactions(bot, handled, shard)
    assert sum(discord_server.commands.calls.values()) == 1  # the second process found the commands synced
    first = await imagine(discord_server, world.alice, world.channel)
    other = await imagine(discord_server, second.member, second.channel, "a blue whale")
    for interaction in (first, other):
        assert (await interaction.wait_answer()).attachments
        assert interaction.errors == []
    await bots.wait_delivered(2)
    assert handled == {0: 1, 1: 1}
    assert len(qwen.generation_requests) == 2


@pytest.mark.parametrize("backend", ["postgres"])
async def test_during_a_deploy_an_interaction_two_processes_receive_is_answered_once(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    other_shard_guild(discord_server, world)  # a guild on each shard: starting waits until both are up
    handled: Counter[int] = Counter()
    for name in (0, 1):  # the old process and the new one, both holding both shards for a moment
        count_interactions(await bots.start(SHARD_COUNT="2"), handled, name)
    discord_server.interaction_routing = "everywhere"
    interaction = await imagine(discord_server, world.alice, world.channel)
    await interaction.wait_answer()
    await bots.wait_delivered(1)
    assert len(receivers(discord_server, interaction.id)) == 2
    assert sum(handled.values()) == 1
    assert len(qwen.generation_requests) == 1


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({**POSTGRES, "SHARD_IDS": "0"}, "SHARD_IDS: needs SHARD_COUNT"),
        ({**POSTGRES, "SHARD_COUNT": "2", "SHARD_IDS": "0,2"}, "from 0 to 1 (SHARD_COUNT is 2), each once (got 2)"),
        ({**POSTGRES, "SHARD_COUNT": "4", "SHARD_IDS": "1,3,1"}, "(1 is given twice)"),
        ({**POSTGRES, "SHARD_COUNT": "2", "SHARD_IDS": "0;1"}, "('0;1' is not a number)"),
        ({**POSTGRES, "SHARD_COUNT": "2", "SHARD_IDS": "one"}, "('one' is not a number)"),
        ({**POSTGRES, "SHARD_COUNT": "0"}, "SHARD_COUNT: a whole number from 1 to"),
        ({**POSTGRES, "SHARD_COUNT": "two"}, "SHARD_COUNT: a whole number from 1 to"),
        ({**REQUIRED, "SHARD_COUNT": "3", "SHARD_IDS": "1"}, "with SQLite one process holds every shard"),
    ],
)
def test_bad_shard_settings_are_one_clear_line(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert says in message and "\n" not in message
    assert message.startswith(f"{caught.value.name}: ") and caught.value.name in ("SHARD_COUNT", "SHARD_IDS")


def test_shard_settings() -> None:
    assert load_settings(REQUIRED).held_shards == ()
    every = load_settings({**REQUIRED, "SHARD_COUNT": "3"})
    assert (every.shard_count, every.shard_ids, every.held_shards) == (3, (), (0, 1, 2))
    named = load_settings({**POSTGRES, "SHARD_COUNT": "4", "SHARD_IDS": " 3, 1 "})
    assert (named.shard_ids, named.held_shards) == ((1, 3), (1, 3))
    # SQLite: naming every shard is one process holding them all.
    assert load_settings({**REQUIRED, "SHARD_COUNT": "2", "SHARD_IDS": "1,0"}).held_shards == (0, 1)
    missing = "no process would hold shards 0, 2"
    with pytest.raises(SettingsError, match=missing):
        load_settings({**REQUIRED, "SHARD_COUNT": "4", "SHARD_IDS": "1,3"})


async def identify(discord_server: FakeDiscord, shard: object) -> tuple[int | None, list[dict[str, object]]]:
    """IDENTIFY on the fake's gateway with this `shard` field: the close code (None if still open) and the
    dispatches received up to READY's last GUILD_CREATE."""
    payload: dict[str, object] = {"token": discord_server.token, "intents": 1, "properties": {}}
    if shard is not None:
        payload["shard"] = shard
    events: list[dict[str, object]] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(discord_server.gateway_url) as ws:
        await ws.receive_json()  # HELLO
        await ws.send_json({"op": 2, "d": payload})
        while True:
            message = await ws.receive()
            if message.type is not aiohttp.WSMsgType.TEXT:
                return ws.close_code, events
            events.append(json.loads(message.data))
            ready: dict[str, list[object]] = events[0]["d"]  # type: ignore[assignment]
            if len(events) == 1 + len(ready["guilds"]):
                return None, events


async def test_the_fake_gateway_sends_each_shard_its_own_guilds(discord_server: FakeDiscord) -> None:
    guilds = [discord_server.add_guild(name=f"g{n}", shard=(n % 3, 3)) for n in range(6)]
    for shard_id in range(3):
        code, events = await identify(discord_server, [shard_id, 3])
        assert code is None
        assert events[0]["d"]["shard"] == [shard_id, 3]  # type: ignore[index]
        created = [int(e["d"]["id"]) for e in events[1:]]  # type: ignore[index]
        assert created == [g.id for g in guilds if shard_of(g.id, 3) == shard_id]
    code, events = await identify(discord_server, None)
    assert code is None and len(events) == 1 + len(guilds)


@pytest.mark.parametrize("shard", [[2, 2], [-1, 2], [0, 0], [0], "0,1", [0.5, 2]])
async def test_the_fake_gateway_refuses_an_invalid_shard(discord_server: FakeDiscord, shard: object) -> None:
    code, _ = await identify(discord_server, shard)
    assert code == 4010


async def test_the_fake_gateway_requires_sharding_for_too_many_guilds(discord_server: FakeDiscord) -> None:
    for n in range(3):
        discord_server.add_guild(name=f"g{n}", shard=(n % 2, 2))
    discord_server.gateway.max_guilds_per_session = 2
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bot {discord_server.token}"}
        async with session.get(f"{discord_server.api_base_url}/gateway/bot", headers=headers) as response:
            assert (await response.json())["shards"] == 2
    assert (await identify(discord_server, None))[0] == 4011
    assert (await identify(discord_server, [0, 2]))[0] is None


async def test_a_sharded_bot_facing_an_unreachable_gateway_logs_one_line_per_attempt_and_stops_at_once(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, world: World
) -> None:
    unreachable = f"ws://127.0.0.1:{closed_port()}/"
    env = clean_env(**{**bot_env, "DISCORD_GATEWAY_URL": unreachable, "SHARD_COUNT": "2"})
    process = await spawn_bot(env, tmp_path)
    try:
        log = await read_until(process, "cannot reach Discord's gateway for shard 0")
    finally:
        process.send_signal(signal.SIGTERM)
        log += await finish(process, timeout=10)
    assert process.returncode == 0, log[-2000:]
    assert "Traceback" not in log
    assert "connecting gateway shard(s) 0, 1 of 2" in log
    assert all(is_log_line(line) for line in log.splitlines()), log


async def test_a_sharded_bot_retries_while_discord_is_unreachable(tmp_path: Path, bot_env: dict[str, str]) -> None:
    unreachable = f"http://127.0.0.1:{closed_port()}/api/v10"
    env = clean_env(**{**bot_env, "DISCORD_API_BASE_URL": unreachable, "SHARD_COUNT": "2"})
    process = await spawn_bot(env, tmp_path)
    try:
        log = await read_until(process, "cannot reach Discord")
        log += await read_until(process, "cannot reach Discord")  # it tried again
    finally:
        process.send_signal(signal.SIGTERM)
        log += await finish(process, timeout=10)
    assert process.returncode == 0, log[-2000:]
    assert "Traceback" not in log
    assert "retrying in 1 s" in log and "retrying in 2 s" in log


async def test_discord_requiring_sharding_stops_the_bot_with_one_line_and_shard_count_cures_it(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, bots: BotRunner, world: World
) -> None:
    other_shard_guild(discord_server, world)
    discord_server.gateway.max_guilds_per_session = 1  # Discord's 2,500, made small
    code, stderr = await run_bot_process(clean_env(**bot_env), tmp_path)
    assert code == 2, stderr[-2000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        "qwen-imagine: Discord requires sharding for this many servers (4011 Sharding required): set SHARD_COUNT, "
        "about one shard per 1,000 servers (see Sharding in the README)."
    )
    bot = await bots.start(SHARD_COUNT="2")
    assert len(bot.guilds) == 2
