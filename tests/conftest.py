"""The harness: fake Discord and fake Qwen-Image servers, and the real bot pointed at them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.app import create_bot
from bot.client import QwenImagineBot
from bot.qwen.catalogue import load_catalogue
from bot.settings import load_settings
from cogs.limits import RETENTION_EVENT
from tests.database import TestDatabase
from tests.fakes.discord import FakeChannel, FakeDiscord, FakeGuild, FakeInteraction, FakeMember
from tests.fakes.qwen import FakeQwen
from tests.postgres import TestPostgres, postgres_server

MANAGE_GUILD = discord.Permissions(manage_guild=True).value
MEMBER_PERMISSIONS = discord.Permissions(send_messages=True, use_application_commands=True).value


@pytest.fixture
async def qwen() -> AsyncIterator[FakeQwen]:
    """The fake image API."""
    async with FakeQwen() as fake:
        yield fake


@pytest.fixture
async def discord_server() -> AsyncIterator[FakeDiscord]:
    """The fake Discord; discord.py's endpoints are restored afterwards."""
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord(token="fake-discord-bot-token") as fake:
        fake.is_progress = lambda message: message.content.startswith(("⏳", "🎨"))
        yield fake
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway
    fake.assert_no_spec_violations()  # the test that sent one fails


@dataclass
class World:
    """A guild with a channel, two members and a moderator."""

    guild: FakeGuild
    channel: FakeChannel
    alice: FakeMember
    bob: FakeMember
    moderator: FakeMember


@pytest.fixture
def world(discord_server: FakeDiscord) -> World:
    guild = discord_server.add_guild(name="Painters")
    channel = guild.add_channel(name="gallery")
    return World(
        guild=guild,
        channel=channel,
        alice=guild.add_member(name="alice", permissions=MEMBER_PERMISSIONS),
        bob=guild.add_member(name="bob", permissions=MEMBER_PERMISSIONS),
        moderator=guild.add_member(name="mod", permissions=MEMBER_PERMISSIONS | MANAGE_GUILD),
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[TestPostgres]:
    """The PostgreSQL server of this test session (started on first use)."""
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """Each test that runs the bot runs once per database backend."""
    return str(request.param)


@pytest.fixture
async def database_env(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    """Where the bot keeps its data: a SQLite file in the test's folder, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield {"DATABASE_PATH": str(tmp_path / "data" / "bot.sqlite3")}
        return
    server: TestPostgres = request.getfixturevalue("postgres")
    async with server.fresh_database() as url:
        yield {"DATABASE_URL": url}


@pytest.fixture
async def db(database_env: dict[str, str]) -> AsyncIterator[TestDatabase]:
    """The bot's database, for a test to read and arrange rows."""
    database = TestDatabase(database_env)
    try:
        yield database
    finally:
        await database.close()


#: The built-in models with the vendor's pace lifted (the real pace is tested on its own; elsewhere it
#: would only slow tests; the account-wide DASHSCOPE_MAX_CONCURRENCY governs), and qwen-image-max /
#: qwen-image-edit-max paced at 2 per 2 seconds.
FAST_MODELS = {
    "models": [
        {
            "name": spec.name,
            "does": spec.does,
            "sizes": list(spec.fixed_sizes)
            if spec.fixed_sizes
            else ({"min": spec.size_range[0], "max": spec.size_range[1]} if spec.size_range else None),
            "max_images": spec.max_images,
            "async": spec.has_async,
            "submissions": 2 if spec.name.endswith("-max") else 1000,
            "window_seconds": 2 if spec.name.endswith("-max") else 1,
            "concurrency": spec.concurrency if spec.name.endswith("-max") else 0,
            "price_usd": spec.price_usd,
        }
        for spec in load_catalogue().models.values()
    ]
}


@pytest.fixture
def bot_env(
    database_env: dict[str, str], qwen: FakeQwen, discord_server: FakeDiscord, tmp_path: Path
) -> dict[str, str]:
    """The environment `python -m bot` would read, pointed at the fakes and the test's database."""
    catalogue = tmp_path / "models.json"
    catalogue.write_text(json.dumps(FAST_MODELS))
    return {
        "MODEL_CATALOGUE_FILE": str(catalogue),
        **database_env,
        "DISCORD_TOKEN": discord_server.token,
        "DASHSCOPE_API_KEY": qwen.api_key,
        "DASHSCOPE_BASE_URL": qwen.base_url,
        "DASHSCOPE_RESULT_HOSTS": "127.0.0.1",
        "DISCORD_API_BASE_URL": discord_server.api_base_url,
        "DISCORD_GATEWAY_URL": discord_server.gateway_url,
        "DEFAULT_LIMITS": "none",
        "DISCORD_ATTACHMENT_HOSTS": "127.0.0.1",
        # The account's real pace (2 a second) is tested on its own; elsewhere it would only slow tests.
        "DASHSCOPE_MAX_SUBMITS_PER_SECOND": "1000",
    }


class BotRunner:
    """Starts and stops the real bot (as `python -m bot` builds it) inside the test's event loop."""

    def __init__(self, env: dict[str, str], discord_server: FakeDiscord) -> None:
        self.env = env
        self.discord = discord_server
        self._running: list[tuple[AbstractAsyncContextManager[QwenImagineBot], QwenImagineBot, asyncio.Task[None]]] = []
        self.delivered: list[int] = []
        self._delivery = asyncio.Condition()
        self.guilds_seen: set[int] = set()
        self._guilds = asyncio.Condition()
        #: Prompts cleared by each retention pass of the bot started last (the start-up pass first).
        self.retention_passes: list[int] = []
        self._retention = asyncio.Condition()

    async def _on_guild(self, guild: discord.Guild) -> None:
        async with self._guilds:
            self.guilds_seen.add(guild.id)
            self._guilds.notify_all()

    async def wait_guilds(self, *guild_ids: int, timeout: float = 15) -> None:
        """Wait until the bot has received (and cached) these guilds."""
        async with asyncio.timeout(timeout), self._guilds:
            await self._guilds.wait_for(lambda: self.guilds_seen.issuperset(guild_ids))

    async def _on_retention_applied(self, scrubbed: int) -> None:
        async with self._retention:
            self.retention_passes.append(scrubbed)
            self._retention.notify_all()

    async def wait_retention(self, passes: int = 1, timeout: float = 15) -> None:
        """Wait until the bot started last has finished `passes` retention passes."""
        async with asyncio.timeout(timeout), self._retention:
            await self._retention.wait_for(lambda: len(self.retention_passes) >= passes)

    async def _on_generation_delivered(self, generation_id: int) -> None:
        async with self._delivery:
            self.delivered.append(generation_id)
            self._delivery.notify_all()

    async def wait_delivered(self, count: int, timeout: float = 30) -> None:
        """Wait until `count` results have been delivered and their message ids stored."""
        async with asyncio.timeout(timeout), self._delivery:
            await self._delivery.wait_for(lambda: len(self.delivered) >= count)

    async def start(self, **overrides: str) -> QwenImagineBot:
        """Start a bot with the base environment plus `overrides`; wait until it is connected."""
        settings = load_settings({**self.env, **overrides})
        manager = create_bot(settings)
        bot = await manager.__aenter__()
        bot.add_listener(self._on_generation_delivered, "on_generation_delivered")
        bot.add_listener(self._on_guild, "on_guild_available")
        bot.add_listener(self._on_guild, "on_guild_join")
        bot.add_listener(self._on_retention_applied, "on_" + RETENTION_EVENT)
        self.guilds_seen.clear()
        self.retention_passes.clear()
        task = asyncio.create_task(bot.start(settings.discord_token.reveal()))
        self._running.append((manager, bot, task))
        # Every guild cached is enough: discord.py holds READY back two seconds for late GUILD_CREATEs.
        # A sharded bot gets only the guilds of the shards it holds.
        count, held = settings.shard_count, settings.held_shards
        guild_ids = [g for g in self.discord.world.guilds if count is None or (g >> 22) % count in held]
        ready = asyncio.create_task(self.wait_guilds(*guild_ids) if guild_ids else bot.wait_until_ready())
        done, _ = await asyncio.wait({ready, task}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            ready.cancel()
            task.result()  # re-raises why the bot stopped
        if ready not in done:
            raise TimeoutError("the bot did not become ready")
        return bot

    async def stop(self) -> None:
        """Close every bot started, newest first."""
        while self._running:
            manager, bot, task = self._running.pop()
            await bot.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=10)
            await manager.__aexit__(None, None, None)


@pytest.fixture
async def bots(bot_env: dict[str, str], discord_server: FakeDiscord) -> AsyncIterator[BotRunner]:
    """Start bots with `await bots.start()`; they are stopped at the end of the test."""
    runner = BotRunner(bot_env, discord_server)
    try:
        yield runner
    finally:
        await runner.stop()


@pytest.fixture
async def processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Bot processes a test starts; any still running at the end is killed."""
    started: list[asyncio.subprocess.Process] = []
    yield started
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.fixture
async def bot(bots: BotRunner, world: World) -> QwenImagineBot:
    """One running bot in the standard world."""
    return await bots.start()


async def imagine(
    discord_server: FakeDiscord, member: FakeMember, channel: FakeChannel, prompt: str = "a red fox", **options: Any
) -> FakeInteraction:
    """Invoke /imagine as `member` in `channel`."""
    attachment_size_limit = options.pop("attachment_size_limit", None)
    extra = {"attachment_size_limit": attachment_size_limit} if attachment_size_limit else {}
    return await discord_server.invoke_command(member, channel, "imagine", {"prompt": prompt, **options}, **extra)
