"""What only PostgreSQL has: DATABASE_URL, migrations kept in the database under a lock, admission
serialised across processes, and a database that goes away."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.db import PostgresDatabase, SqlLimitsRepository
from bot.db.database import load_migrations
from bot.db.postgres.connection import location
from bot.db.postgres.parameters import arguments, numbered
from bot.db.records import NewGeneration
from bot.limits import parse_limits
from bot.settings import Secret, SettingsError, load_settings
from tests.conftest import BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen
from tests.logs import watch_log
from tests.postgres import Relay, TestPostgres
from tests.test_startup import clean_env, run_bot_process, spawn_bot

REQUIRED = {"DISCORD_TOKEN": "discord-secret-token", "DASHSCOPE_API_KEY": "sk-secret-key"}
GUILD = 1_576_662_177_123_663_872


@pytest.fixture
def backend() -> str:
    """Everything here is about PostgreSQL."""
    return "postgres"


@pytest.fixture
def database_url(database_env: dict[str, str]) -> str:
    """The test's own PostgreSQL database, new and empty."""
    return database_env["DATABASE_URL"]


@pytest.fixture
async def relay(postgres: TestPostgres, database_url: str) -> AsyncIterator[Relay]:
    """A port in front of the test's database that the test can stop and start (not started yet)."""
    relay = Relay(postgres, database_url)
    try:
        yield relay
    finally:
        await relay.close()


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_database_url_selects_postgresql_and_stays_secret(scheme: str) -> None:
    url = f"{scheme}://bot:pa%40ss-w0rd@db.example.com:5432/qwen"
    settings = load_settings({**REQUIRED, "DATABASE_URL": url})
    assert settings.database_url == Secret(url)
    assert "pa%40ss" not in repr(settings) and "pa%40ss" not in str(settings.database_url)
    assert set(settings.database_secrets) == {url, "pa%40ss-w0rd", "pa@ss-w0rd"}
    assert load_settings(REQUIRED).database_url is None  # without it: SQLite at DATABASE_PATH


@pytest.mark.parametrize("url", ["mysql://bot:hunter2@db/qwen", "postgresql://bot:hunter2@db:port/qwen"])
def test_a_bad_database_url_is_named_without_its_password(url: str) -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL") as raised:
        load_settings({**REQUIRED, "DATABASE_URL": url})
    assert "hunter2" not in str(raised.value)


# ------------------------------------------------------------------ placeholders


def test_shared_placeholders_become_numbered_ones_once_per_name() -> None:
    sql = "SELECT :a, ':a', \"x:y\", :b::text, :a -- :c\nFROM t WHERE x = :b"
    assert numbered(sql) == ("SELECT $1, ':a', \"x:y\", $2::text, $1 -- :c\nFROM t WHERE x = $2", ("a", "b"))
    assert arguments(sql, {"b": 2, "a": 1, "unused": 3}) == (numbered(sql)[0], (1, 2))
    assert arguments("UPDATE t SET a = ? WHERE id = ?", (5, 6)) == ("UPDATE t SET a = $1 WHERE id = $2", (5, 6))
    with pytest.raises(TypeError):
        arguments("SELECT ?", ())
    with pytest.raises(ValueError, match="either"):
        numbered("SELECT ?, :a")


# ------------------------------------------------------------------ migrations


async def test_migrations_are_recorded_in_the_database_and_run_once(database_url: str) -> None:
    database = await PostgresDatabase.open(database_url)
    await database.close()
    database = await PostgresDatabase.open(database_url)  # nothing left to apply: it would fail on "exists"
    try:
        assert await database.schema_version() == len(load_migrations("postgres")) == len(load_migrations("sqlite"))
        versions = await database.fetch("SELECT version FROM schema_version ORDER BY version")
        assert [row["version"] for row in versions] == list(range(1, len(load_migrations("postgres")) + 1))
        columns = {
            row["column_name"]: row["data_type"]
            for row in await database.fetch(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'generations'"
            )
        }
    finally:
        await database.close()
    assert {columns[c] for c in ("id", "guild_id", "channel_id", "member_id", "message_id", "parent_id")} == {"bigint"}
    assert {columns[c] for c in ("requested_at", "started_at", "finished_at", "denied_until")} == {"double precision"}


async def test_two_processes_starting_at_once_migrate_once(database_url: str) -> None:
    first, second = await asyncio.gather(PostgresDatabase.open(database_url), PostgresDatabase.open(database_url))
    try:
        assert await first.schema_version() == await second.schema_version() == len(load_migrations("postgres"))
    finally:
        await first.close()
        await second.close()


async def test_the_log_names_the_database_but_never_its_password(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="bot.db")
    database = await PostgresDatabase.open(database_url)
    await database.close()
    password = database_url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
    database_name = database_url.rsplit("/", 1)[1].split("?", 1)[0]
    assert f"/{database_name}" in caplog.text
    assert not password or password not in caplog.text


# ------------------------------------------------------------------ admission across processes


async def test_admission_is_exact_across_processes(database_url: str) -> None:
    # Two pools are two sets of server sessions, as two bot processes would have.
    first, second = await asyncio.gather(PostgresDatabase.open(database_url), PostgresDatabase.open(database_url))
    try:
        server_day = parse_limits("server/day=5")
        repositories = [SqlLimitsRepository(first), SqlLimitsRepository(second)]

        async def ask(n: int) -> bool:
            new = NewGeneration(GUILD, 1, 1000 + n, "qwen-image-plus", "1328*1328", n, True, "a fox")
            admission = await repositories[n % 2].admit(new, server_day, at=time.time())
            return admission.denial is None

        admitted = await asyncio.gather(*(ask(n) for n in range(60)))
    finally:
        await first.close()
        await second.close()
    assert sum(admitted) == 5


# ------------------------------------------------------------------ a database that goes away


async def test_an_unreachable_database_at_start_is_one_line_per_attempt_until_it_answers(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner, relay: Relay
) -> None:
    with watch_log("bot.db") as log:
        starting = asyncio.create_task(bots.start(DATABASE_URL=relay.url))
        try:
            attempts = await log.wait_for("is unreachable", count=2)
            await relay.start()  # the server answers at last
            await starting
        finally:
            starting.cancel()
    assert attempts[0].startswith(f"PostgreSQL at 127.0.0.1:{relay.port}/t_")
    assert "ConnectionRefusedError" in attempts[0] and attempts[0].endswith("trying again in 0.5 s")
    assert attempts[1].endswith("trying again in 1.0 s")  # backing off
    assert not [r for r in log.records if r.exc_info]  # no traceback
    assert (await (await imagine(discord_server, world.alice, world.channel)).wait_answer()).attachments


async def test_the_bot_process_waits_for_an_unreachable_database_without_a_traceback(
    tmp_path: Path, bot_env: dict[str, str], relay: Relay
) -> None:
    process = await spawn_bot(clean_env(**{**bot_env, "DATABASE_URL": relay.url}), tmp_path)
    assert process.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while sum("is unreachable" in line for line in lines) < 2:
                lines.append((await process.stderr.readline()).decode())
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
    log = "".join(lines)
    assert "Traceback" not in log
    password = urlsplit(relay.url).password
    assert password and password not in log
    assert f"PostgreSQL at 127.0.0.1:{relay.port}/" in log


async def test_a_database_lost_while_running_fails_requests_cleanly_until_it_is_back(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bots: BotRunner,
    relay: Relay,
    postgres: TestPostgres,
    database_url: str,
    db: TestDatabase,
) -> None:
    await relay.start()
    await bots.start(DATABASE_URL=relay.url)
    # Requests at once: the pool holds several connections, all of which the outage will end.
    before = await asyncio.gather(*(imagine(discord_server, m, world.channel) for m in (world.alice, world.moderator)))
    for ix in before:
        assert (await ix.wait_answer()).attachments
    # The server goes away: it ends the bot's sessions and takes no new ones.
    await relay.stop()
    admin = await postgres.admin()
    try:
        ended = await admin.fetchval(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
            urlsplit(database_url).path.lstrip("/"),
        )
    finally:
        await admin.close()
    assert ended >= 1
    refused = await imagine(discord_server, world.bob, world.channel, "a lost fox")
    assert (await refused.wait_ack()).ephemeral  # never acknowledged as queued
    assert "database is unavailable" in (await refused.wait_answer()).content
    assert not any("a lost fox" in str(r.body) for r in qwen.requests)
    # The server is back: the next request goes through as if nothing happened.
    await relay.start()
    assert (await (await imagine(discord_server, world.bob, world.channel)).wait_answer()).attachments
    rows = await db.generations()
    assert [r["status"] for r in rows] == ["succeeded"] * 3
    assert [r["member_id"] for r in rows][-1] == world.bob.id  # and nothing for the refused request


async def test_a_database_that_refuses_the_bot_stops_it_with_one_line(
    tmp_path: Path, bot_env: dict[str, str], postgres: TestPostgres
) -> None:
    url = postgres.url("no_such_database")
    code, stderr = await run_bot_process(clean_env(**{**bot_env, "DATABASE_URL": url}), tmp_path)
    assert code == 2
    assert "Traceback" not in stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith(f"qwen-imagine: DATABASE_URL: PostgreSQL at {location(url)} refused the bot: ")
    assert "no_such_database" in line
    password = urlsplit(url).password
    assert not password or password not in stderr
