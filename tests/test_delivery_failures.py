"""Nothing paid for and lost: refusals before any charge, uploads Discord won't take, requests released
when they can't go on, no blind retries of a sent image request, and progress that never has the last word."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import asyncpg
import discord
import pytest

from bot.db import PostgresDatabase, SqliteDatabase
from bot.db.database import load_migrations
from bot.i18n import t
from bot.ui.failures import GENERIC_FAILURE_KEY
from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord, FakeMember, FakeMessage
from tests.fakes.qwen import FakeQwen
from tests.postgres import TestPostgres

#: What an English member reads when something nobody expected went wrong.
GENERIC_FAILURE = t(GENERIC_FAILURE_KEY)

ATTACH_FILES = discord.Permissions(attach_files=True).value
EMBED_LINKS = discord.Permissions(embed_links=True).value
CHANNEL_MESSAGE = 4


def buttons(message: FakeMessage) -> dict[str, str]:
    """label -> custom_id of the message's buttons."""
    return {c["label"]: c["custom_id"] for row in message.components for c in row["components"]}


def bot_role_of(world: World) -> Any:
    [role] = world.guild.me.roles
    return role


def channel_posts(world: World, text: str) -> list[FakeMessage]:
    """The bot's own posts in the channel (not interaction responses) containing `text`."""
    return [m for m in world.channel.messages if m.interaction_id is None and text in m.content]


async def usage_fields(discord_server: FakeDiscord, world: World) -> dict[str, str]:
    ix = await discord_server.invoke_command(world.moderator, world.channel, "usage", {"period": "day"})
    return {f["name"]: f["value"] for f in (await ix.wait_answer()).embeds[0]["fields"]}


# ------------------------------------------------------------------ refused at admission


async def test_a_channel_where_the_bot_cannot_attach_files_is_refused_privately_and_charges_nothing(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start(DEFAULT_LIMITS="member/hour=1")
    world.channel.set_permissions(bot_role_of(world), deny=ATTACH_FILES)
    refused = await imagine(discord_server, world.alice, world.channel)
    ack = await refused.wait_ack()
    assert (ack.type, ack.ephemeral) == (CHANNEL_MESSAGE, True)  # answered at once, privately: no "thinking"
    text = (await refused.wait_answer()).content
    assert "I can't post images here: I'm missing the Attach Files permission in this channel" in text
    assert "Ask a moderator" in text
    assert qwen.generation_requests == []
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("denied", "missing_permissions:attach_files")
    # Not counted: the member's one image an hour is still there, in a channel the bot can post in.
    studio = world.guild.add_channel("studio")
    assert (await (await imagine(discord_server, world.alice, studio)).wait_answer()).attachments


async def test_reroll_and_remix_are_refused_where_the_bot_lost_its_permissions(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start()
    first = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    await bots.wait_delivered(1)
    world.channel.set_permissions(bot_role_of(world), deny=ATTACH_FILES | EMBED_LINKS)

    reroll = await discord_server.click_button(world.bob, first, buttons(first)["Reroll"])
    assert (await reroll.wait_ack()).ephemeral
    assert "missing the Attach Files and Embed Links permissions" in (await reroll.wait_answer()).content
    form = await discord_server.click_button(world.bob, first, buttons(first)["Remix"])
    await form.wait_ack()
    remix = await discord_server.submit_modal(world.bob, form, {"prompt": "a red fox at night"})
    assert (await remix.wait_ack()).ephemeral
    assert "missing the Attach Files and Embed Links permissions" in (await remix.wait_answer()).content

    assert len(qwen.generation_requests) == 1
    assert [r["status"] for r in await db.generations()] == ["succeeded", "denied", "denied"]


# ------------------------------------------------------------------ uploads Discord won't take


@pytest.mark.parametrize(
    ("status", "code", "message", "says"),
    [
        (403, 50013, "Missing Permissions", "I'm missing a permission in this channel"),
        (400, 50083, "Thread is archived", "this thread is archived"),
        (413, 40005, "Request entity too large", "larger than this channel's upload limit"),
    ],
)
async def test_an_upload_discord_refuses_is_explained_and_recorded_undelivered(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    bots: BotRunner,
    world: World,
    status: int,
    code: int,
    message: str,
    says: str,
    db: TestDatabase,
) -> None:
    await bots.start()
    discord_server.fail_uploads(status, code, message)
    answer = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    assert answer.content.startswith("⚠️ Your image was made, but")
    assert says in answer.content and "It doesn't count against your limits." in answer.content
    assert answer.attachments == [] and answer.embeds == []
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("undelivered", f"UploadFailed:{code}")
    assert row["request_id"].startswith("req-") and row["image_bytes"] > 0  # made, and billed
    assert len(qwen.generation_requests) == 1


async def test_undelivered_images_do_not_count_against_limits_but_show_in_usage_and_cost(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    await bots.start(DEFAULT_LIMITS="member/hour=1")
    discord_server.fail_uploads(403, 50013, "Missing Permissions")
    assert "was made, but" in (await (await imagine(discord_server, world.alice, world.channel)).wait_answer()).content
    assert (await (await imagine(discord_server, world.alice, world.channel)).wait_answer()).attachments
    fields = await usage_fields(discord_server, world)
    assert fields["Images"] == "2"  # both were made and billed
    assert fields["Undelivered"].startswith("1 ")
    assert fields["Estimated cost"].startswith("$0.06")


@pytest.mark.parametrize("cause", ["permission removed", "too large for the channel"])
async def test_a_channel_fallback_that_discord_refuses_leaves_a_notice_in_the_channel(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, cause: str, db: TestDatabase
) -> None:
    await bots.start()
    qwen.hold()
    interaction = await imagine(discord_server, world.alice, world.channel)
    await interaction.wait_ack()
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    discord_server.expire_token(interaction)  # so the image goes to the channel
    if cause == "permission removed":
        world.channel.set_permissions(bot_role_of(world), deny=ATTACH_FILES)
        says, code = "I'm missing a permission in this channel", "UploadFailed:50013"
    else:
        discord_server.channel_upload_limit = 1024
        says, code = "larger than this channel's upload limit", "UploadFailed:40005"
    qwen.release()
    await discord_server.wait_for(lambda: channel_posts(world, "was made, but"))
    [notice] = channel_posts(world, "was made, but")
    assert says in notice.content and notice.attachments == []
    assert notice.pinged_user_ids() == {world.alice.id}
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("undelivered", code)


async def test_a_503_on_a_channel_post_is_tried_again(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start()
    qwen.hold()
    interaction = await imagine(discord_server, world.alice, world.channel)
    await interaction.wait_ack()
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    discord_server.expire_token(interaction)
    discord_server.fail_uploads(503, 0, "upstream connect error")  # discord.py doesn't retry a 503 here
    qwen.release()
    await bots.wait_delivered(1)
    [post] = [m for m in world.channel.messages if m.interaction_id is None and m.attachments]
    posts = [s for m, p, s in discord_server.requests if m == "POST" and p.endswith(f"/{world.channel.id}/messages")]
    assert posts == [503, 200]
    [row] = await db.generations()
    assert (row["status"], row["message_id"]) == ("succeeded", post.id)


async def test_a_channel_post_that_keeps_failing_is_tried_three_times_then_recorded(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start()
    qwen.hold()
    interaction = await imagine(discord_server, world.alice, world.channel)
    await interaction.wait_ack()
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    discord_server.expire_token(interaction)
    discord_server.fail_uploads(503, 0, "upstream connect error", times=3)
    qwen.release()
    await discord_server.wait_for(lambda: channel_posts(world, "was made, but"))
    [notice] = channel_posts(world, "was made, but")
    assert "Discord wouldn't take the upload" in notice.content
    posts = [s for m, p, s in discord_server.requests if m == "POST" and p.endswith(f"/{world.channel.id}/messages")]
    assert posts == [503, 503, 503, 200]  # three tries of the image, then the notice
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("undelivered", "UploadFailed:503")


async def test_a_resumed_image_discord_refuses_is_recorded_undelivered(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start(SHUTDOWN_GRACE_SECONDS="0")
    qwen.hold()
    interaction = await imagine(discord_server, world.alice, world.channel)
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    await bots.stop()
    assert "restarting" in (await interaction.wait_answer()).content
    qwen.release()
    discord_server.fail_uploads(403, 50013, "Missing Permissions")
    await bots.start()
    await discord_server.wait_for(lambda: channel_posts(world, "was made, but"))
    [notice] = channel_posts(world, "was made, but")
    assert notice.pinged_user_ids() == {world.alice.id}
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("undelivered", "UploadFailed:50013")


# ------------------------------------------------------------------ released when they can't go on


async def test_a_request_whose_acknowledgement_is_lost_is_released_at_once(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    bot = await bots.start()
    discord_server.drop_next_callback()  # the connection breaks: not an HTTP error, and not acknowledged
    interaction = await imagine(discord_server, world.alice, world.channel)
    answer = await interaction.wait_answer()
    assert answer.ephemeral and GENERIC_FAILURE in answer.content
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("failed", "NotAcknowledged")
    assert await bot.services.generation.unfinished() == []  # nothing to make at the next start
    assert qwen.generation_requests == []


async def test_a_request_admitted_as_shutdown_begins_is_released_not_made_after_the_restart(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    bot = await bots.start(SHUTDOWN_GRACE_SECONDS="5")
    discord_server.hold_callbacks()
    interaction = await imagine(discord_server, world.alice, world.channel)
    await discord_server.wait_for(lambda: discord_server.held_callbacks == 1)  # admitted, acknowledging
    closing = asyncio.create_task(bot.close())
    await discord_server.wait_for(lambda: not bot.services.scheduler.accepting)
    discord_server.release_callbacks()
    answer = await interaction.wait_answer()
    assert "restarting" in answer.content and "try again" in answer.content
    await closing
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("failed", "Restarting")
    await bots.stop()

    bot = await bots.start()  # the member was told to try again: nothing of it is made or posted now
    assert await bot.services.generation.unfinished() == []
    ask = await imagine(discord_server, world.bob, world.channel)
    assert (await ask.wait_answer()).attachments
    assert len(qwen.generation_requests) == 1
    assert [m for m in world.channel.messages if m.interaction_id is None] == []


# ------------------------------------------------------------------ the service stopped answering


async def test_a_lost_answer_is_not_paid_for_twice_and_its_requester_can_retry(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start()
    qwen.drop_next()
    notice = await (await imagine(discord_server, world.alice, world.channel, seed=4242)).wait_answer()
    assert "stopped answering while making your image; it may have been made and billed" in notice.content
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("failed", "OutcomeUnknown")
    assert buttons(notice) == {"Retry": f"qi:retry:{row['id']}"}
    assert len(qwen.generation_requests) == 1

    others = await discord_server.click_button(world.bob, notice, f"qi:retry:{row['id']}")
    assert (await others.wait_ack()).ephemeral
    assert f"Only <@{world.alice.id}> can retry this image" in (await others.wait_answer()).content
    assert len(qwen.generation_requests) == 1

    again = await discord_server.click_button(world.alice, notice, f"qi:retry:{row['id']}")
    result = await again.wait_answer()
    assert result.attachments and result.attachments[0].filename == "qwen-image-4242.png"
    first, second = qwen.generation_requests
    assert second.body == first.body  # the same request, same seed
    await bots.wait_delivered(1)
    assert [(r["status"], r["seed"], r["member_id"]) for r in await db.generations()] == [
        ("failed", 4242, world.alice.id),
        ("succeeded", 4242, world.alice.id),
    ]


async def test_a_retry_button_from_another_server_or_with_a_malformed_id_is_refused(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    other = discord_server.add_guild(name="Elsewhere")
    elsewhere = other.add_channel(name="art")
    carol: FakeMember = other.add_member(name="carol", permissions=MEMBER_PERMISSIONS)
    await bots.start()
    qwen.drop_next()
    notice = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    # The same button on a message in another server (a modified client can send any custom_id).
    copy = elsewhere.add_message(other.me, "retry?", components=notice.components)
    refused = await discord_server.click_button(carol, copy, buttons(notice)["Retry"])
    assert (await refused.wait_ack()).ephemeral
    assert "That image isn't from here." in (await refused.wait_answer()).content
    # A malformed id is answered the same way, privately, without a traceback.
    row = [{"type": 1, "components": [{"type": 2, "style": 1, "label": "Retry", "custom_id": "qi:retry:07"}]}]
    forged = world.channel.add_message(world.guild.me, "retry?", components=row)
    malformed = await discord_server.click_button(world.alice, forged, "qi:retry:07")
    assert "That image isn't from here." in (await malformed.wait_answer()).content
    assert len(qwen.generation_requests) == 1


async def test_a_resumed_request_whose_answer_is_lost_gets_a_retry_button(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start(SHUTDOWN_GRACE_SECONDS="0")
    qwen.hold()
    await imagine(discord_server, world.alice, world.channel)
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    await bots.stop()
    qwen.release()
    qwen.drop_next()
    await bots.start()
    await discord_server.wait_for(lambda: channel_posts(world, "stopped answering"))
    [notice] = channel_posts(world, "stopped answering")
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("failed", "OutcomeUnknown")
    assert buttons(notice) == {"Retry": f"qi:retry:{row['id']}"}


# ------------------------------------------------------------------ progress never has the last word


def progress_edits() -> list[asyncio.Task[Any]]:
    """Queue-progress edits still pending or on their way, in this event loop (the bot runs in it)."""
    return [
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "") == "InteractionProgress._flush"
    ]


#: A trigger that refuses every job's start, per backend, and the error the bot then records.
NO_START = {
    "sqlite": (
        "CREATE TRIGGER no_start BEFORE UPDATE OF status ON generations WHEN NEW.status = 'running' "
        "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END",
    ),
    "postgres": (
        "CREATE FUNCTION no_start() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'disk I/O error'; END $$",
        "CREATE TRIGGER no_start BEFORE UPDATE OF status ON generations "
        "FOR EACH ROW WHEN (NEW.status = 'running') EXECUTE FUNCTION no_start()",
    ),
}
NO_START_ERROR = {"sqlite": "IntegrityError", "postgres": "RaiseError"}


async def test_a_failure_while_a_progress_edit_is_pending_is_the_last_word(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase, backend: str
) -> None:
    await bots.start(DASHSCOPE_MAX_CONCURRENCY="1")
    qwen.hold()
    await imagine(discord_server, world.alice, world.channel, "first")
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    waiting = await imagine(discord_server, world.bob, world.channel, "second")

    def shows(text: str) -> bool:
        return waiting.response_message is not None and text in waiting.response_message.content

    await discord_server.wait_for(lambda: shows("You're next in the queue"))
    # From now on the database refuses to start any job (a full disk, say): not a domain error.
    for statement in NO_START[backend]:
        await db.execute(statement)
    qwen.release()  # the slot frees: the second job starts ("Generating…" is queued for the message) and fails
    await waiting.wait_answer()
    await asyncio.gather(*progress_edits(), return_exceptions=True)
    assert waiting.response_message is not None
    assert waiting.response_message.content == f"⚠️ {GENERIC_FAILURE}"
    assert [(r["status"], r["error_code"]) for r in await db.generations()][1] == ("failed", NO_START_ERROR[backend])


# ------------------------------------------------------------------ the schema

GENERATIONS_SQLITE_INDEXES = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'generations'"
SCHEMA_VERSION_TABLE = "CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at double precision NOT NULL)"
GENERATIONS_INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'generations' ORDER BY indexname"


GENERATIONS_SQLITE_INDEXES = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'generations'"


async def test_the_undelivered_status_migration_keeps_rows_links_and_indexes(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA foreign_keys = ON")
    for number, script in load_migrations("sqlite")[:5]:
        connection.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    indexes_before = connection.execute(GENERATIONS_SQLITE_INDEXES).fetchall()
    insert = (
        "INSERT INTO generations (guild_id, channel_id, member_id, requested_at, status, model, size, seed, "
        "prompt_extend, prompt, parent_id, task_id, denied_until) "
        "VALUES (1, 2, 3, ?, ?, 'qwen-image-plus', '1328*1328', ?, 1, 'a fox', ?, ?, ?)"
    )
    now = time.time()
    connection.execute(insert, (now, "succeeded", 1, None, None, None))
    connection.execute(insert, (now, "succeeded", 2, 1, "task-2", None))
    connection.execute(insert, (now, "denied", 3, 2, None, now + 60))
    before = connection.execute("SELECT * FROM generations ORDER BY id").fetchall()
    connection.close()

    database = await SqliteDatabase.open(path)
    try:
        assert await database.schema_version() == len(load_migrations("sqlite"))
        async with database.transaction() as conn:
            await conn.execute("UPDATE generations SET status = 'undelivered' WHERE id = 2")
            with pytest.raises(sqlite3.IntegrityError):
                await conn.execute("UPDATE generations SET status = 'lost' WHERE id = 3")
    finally:
        await database.close()
    connection = sqlite3.connect(path)
    try:
        after = connection.execute("SELECT * FROM generations ORDER BY id").fetchall()
        # All but the status column (and columns later migrations add).
        assert [r[:7] + r[8 : len(before[0])] for r in after] == [r[:7] + r[8:] for r in before]
        assert [r[7] for r in after] == ["succeeded", "undelivered", "denied"]
        assert connection.execute(GENERATIONS_SQLITE_INDEXES).fetchall() == (indexes_before)
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("DELETE FROM generations WHERE id = 1")  # the parent link still acts
        assert connection.execute("SELECT parent_id FROM generations WHERE id = 2").fetchone() == (None,)
    finally:
        connection.close()


async def test_the_undelivered_status_migration_on_postgresql_keeps_rows_links_and_indexes(
    postgres: TestPostgres,
) -> None:
    async with postgres.fresh_database() as url:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(SCHEMA_VERSION_TABLE)
            for number, script in load_migrations("postgres")[:5]:
                async with connection.transaction():
                    await connection.execute(script)
                    await connection.execute("INSERT INTO schema_version VALUES ($1, 0)", number)
            indexes_before = await connection.fetch(GENERATIONS_INDEXES)
            insert = (
                "INSERT INTO generations (guild_id, channel_id, member_id, requested_at, status, model, size, seed, "
                "prompt_extend, prompt, parent_id, task_id, denied_until) "
                "VALUES (1, 2, 3, $1, $2, 'qwen-image-plus', '1328*1328', $3, 1, 'a fox', $4, $5, $6)"
            )
            now = time.time()
            await connection.execute(insert, now, "succeeded", 1, None, None, None)
            await connection.execute(insert, now, "succeeded", 2, 1, "task-2", None)
            await connection.execute(insert, now, "denied", 3, 2, None, now + 60)
            before = [dict(r) for r in await connection.fetch("SELECT * FROM generations ORDER BY id")]
        finally:
            await connection.close()

        database = await PostgresDatabase.open(url, retry=False)
        try:
            assert await database.schema_version() == len(load_migrations("postgres"))
            await database.execute("UPDATE generations SET status = 'undelivered' WHERE id = 2")
            with pytest.raises(asyncpg.CheckViolationError):
                await database.execute("UPDATE generations SET status = 'lost' WHERE id = 3")
        finally:
            await database.close()

        connection = await asyncpg.connect(url)
        try:
            after = [dict(r) for r in await connection.fetch("SELECT * FROM generations ORDER BY id")]
            kept = [{key: r[key] for key in before[0]} for r in after]  # columns later migrations add aside
            assert [{**r, "status": None} for r in kept] == [{**r, "status": None} for r in before]
            assert [r["status"] for r in after] == ["succeeded", "undelivered", "denied"]
            indexes_after = await connection.fetch(GENERATIONS_INDEXES)
            assert indexes_after == indexes_before
            # The same indexes as SQLite's rebuilt table (which recreates them all), and the primary key.
            sqlite_indexes = re.findall(r"CREATE INDEX (\w+)", load_migrations("sqlite")[5][1])
            assert {r["indexname"] for r in indexes_after} == {*sqlite_indexes, "generations_pkey"}
            await connection.execute("DELETE FROM generations WHERE id = 1")  # the parent link still acts
            assert await connection.fetchval("SELECT parent_id FROM generations WHERE id = 2") is None
        finally:
            await connection.close()
