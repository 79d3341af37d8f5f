"""`python -m bot migrate --from-sqlite PATH`: a SQLite installation moves to PostgreSQL and carries on."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bot.db.postgres.connection import location
from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeChannel, FakeDiscord
from tests.postgres import TestPostgres
from tests.test_remix import click, original
from tests.test_startup import clean_env


@pytest.fixture
def backend() -> str:
    """The bot starts on SQLite here; PostgreSQL is the destination."""
    return "sqlite"


async def migrate(cwd: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """`python -m bot migrate ...` as a process: (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "migrate",
        *args,
        cwd=cwd,
        env=clean_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def usage_fields(discord_server: FakeDiscord, world: World) -> dict[str, str]:
    ix = await discord_server.invoke_command(world.moderator, world.channel, "usage", {"period": "week"})
    return {f["name"]: f["value"] for f in (await ix.wait_answer()).embeds[0]["fields"]}


async def moderate(discord_server: FakeDiscord, world: World, subcommand: str, **options: object) -> str:
    ix = await discord_server.invoke_command(world.moderator, world.channel, "limits", options, subcommand=subcommand)
    message = await ix.wait_answer()
    return message.content + "".join(e.get("description", "") for e in message.embeds)


async def configure_moderation(discord_server: FakeDiscord, world: World) -> FakeChannel:
    """An allowed channel, a blocked word, a log channel and a role value; returns the log channel."""
    modlog = world.guild.add_channel("mod-log")
    for subcommand, options in (
        ("channels add", {"channel": world.channel}),
        ("words add", {"word": "gore"}),
        ("log-channel", {"channel": modlog}),
    ):
        ix = await discord_server.invoke_command(world.moderator, world.channel, "settings", options, subcommand)
        await ix.wait_answer()
    await moderate(
        discord_server, world, "set", scope="member", window="week", max=9, role=world.guild.add_role("vips")
    )
    # Changes are posted after their answers: both posts are in before the bot stops.
    await discord_server.wait_for(lambda: len(modlog.visible_messages()) == 2)
    return modlog


async def test_a_sqlite_installation_moves_to_postgresql_and_its_buttons_keep_working(
    tmp_path: Path,
    discord_server: FakeDiscord,
    bots: BotRunner,
    world: World,
    bot_env: dict[str, str],
    db: TestDatabase,
    postgres: TestPostgres,
) -> None:
    carol = world.guild.add_member(name="carol", permissions=MEMBER_PERMISSIONS)
    await bots.start()
    first = await original(discord_server, world, bots)
    remix = await (await click(discord_server, world.bob, first, "Reroll")).wait_answer()
    await bots.wait_delivered(2)
    await moderate(discord_server, world, "set", scope="member", window="day", max=1)
    denied = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    assert "limit of 1 image per member per day" in denied.content
    await moderate(discord_server, world, "block", member=carol)
    modlog = await configure_moderation(discord_server, world)
    before = await usage_fields(discord_server, world)
    copied = await db.generations()
    await bots.stop()
    await db.close()

    async with postgres.fresh_database() as url:
        code, out, err = await migrate(tmp_path, "--from-sqlite", bot_env["DATABASE_PATH"], DATABASE_URL=url)
        assert (code, err) == (0, ""), err
        assert out.splitlines()[1:] == [
            f"  meta             {1:>9}",
            f"  guild_limits     {1:>9}",
            f"  blocked_members  {1:>9}",
            f"  generations      {3:>9}",
            f"  allowed_channels {1:>9}",
            f"  blocked_words    {1:>9}",
            f"  role_limits      {1:>9}",
            f"  guild_log_channels {1:>9}",
            f"  settings_audit   {6:>9}",
        ]
        # A second copy would mix two histories: refused in one line, nothing changed.
        code, out, err = await migrate(tmp_path, "--from-sqlite", bot_env["DATABASE_PATH"], DATABASE_URL=url)
        assert (code, out) == (1, "")
        assert err.strip().splitlines() == [
            f"qwen-imagine: migrate: PostgreSQL at {location(url)} already has 3 generations; nothing was copied"
        ]

        await bots.start(DATABASE_URL=url)
        assert discord_server.sync_calls[None] == 1  # the sync hash came along: no second command sync
        assert await usage_fields(discord_server, world) == before
        details = await (await click(discord_server, world.moderator, remix, "Details")).wait_answer()
        assert details.ephemeral and "a koi pond" in details.embeds[0]["description"]
        fields = {f["name"]: f["value"] for f in details.embeds[0]["fields"]}
        assert fields["Remixed from"].startswith(f"#{copied[0]['id']} by <@{world.alice.id}>")
        rerolled = await (await click(discord_server, world.moderator, first, "Reroll")).wait_answer()
        assert rerolled.attachments and rerolled.content.startswith(f"Remixed from <@{world.alice.id}>")
        refused = await (await imagine(discord_server, carol, world.channel)).wait_answer()
        assert "paused image generation for you" in refused.content
        assert "1 image per member per day** (this server's own" in await moderate(discord_server, world, "show")
        # The moderators' settings came along, and new changes are recorded after the copied ones.
        refused = await (await imagine(discord_server, world.bob, world.channel, "gore")).wait_answer()
        assert "“gore”" in refused.content
        await moderate(discord_server, world, "unblock", member=carol)
        await discord_server.wait_for(lambda: len(modlog.visible_messages()) == 3)
        await bots.wait_delivered(3)
        await bots.stop()
        migrated = TestDatabase({"DATABASE_URL": url})
        try:
            rows = await migrated.generations()
            audit = [r["id"] for r in await migrated.rows("SELECT id FROM settings_audit ORDER BY id")]
        finally:
            await migrated.close()
    assert audit == list(range(1, 8))
    assert rows[: len(copied)] == copied  # ids, parent links and every value, exactly
    # New ids continue after the copied ones: the moderator's reroll, then carol's and bob's refused requests.
    last = copied[-1]["id"]
    assert [(r["id"], r["parent_id"], r["member_id"], r["status"]) for r in rows[len(copied) :]] == [
        (last + 1, copied[0]["id"], world.moderator.id, "succeeded"),
        (last + 2, None, carol.id, "denied"),
        (last + 3, None, world.bob.id, "denied"),
    ]


async def test_migrate_needs_a_database_url_and_an_existing_file(tmp_path: Path) -> None:
    code, _, err = await migrate(tmp_path, "--from-sqlite", str(tmp_path / "missing.sqlite3"))
    assert code == 2
    assert err.strip() == "qwen-imagine: configuration error: DATABASE_URL: required: the PostgreSQL to copy into"
    code, _, err = await migrate(
        tmp_path, "--from-sqlite", str(tmp_path / "missing.sqlite3"), DATABASE_URL="postgresql://u:hunter2@db/x"
    )
    assert code == 1
    assert err.strip() == f"qwen-imagine: migrate: there is no SQLite database at {tmp_path / 'missing.sqlite3'}"
