"""Per-guild limits, moderator controls, usage reports and quota, through the fakes and the real database."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time

import pytest

from bot.client import QwenImagineBot
from bot.limits import Limit, RoleLimit, Scope, SourcedLimit, Window, effective_limits, limits_for_member, parse_limits
from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord, FakeInteraction, FakeMember
from tests.fakes.qwen import FakeQwen

DEFERRED = 5
RELATIVE_TIME = re.compile(r"<t:(\d+):R>")


async def statuses(db: TestDatabase) -> list[str]:
    return [row["status"] for row in await db.generations()]


async def insert_past(
    db: TestDatabase,
    world: World,
    member: FakeMember,
    ages: list[float],
    status: str = "succeeded",
    prompt: str = "an old fox",
) -> None:
    """Usage rows as if `member` had asked `ages` seconds ago."""
    now = time.time()
    await db.execute_many(
        "INSERT INTO generations (guild_id, channel_id, member_id, requested_at, status, model, size, seed, "
        "prompt_extend, prompt) VALUES (?, ?, ?, ?, ?, 'qwen-image-plus', '1328*1328', 1, 1, ?)",
        [(world.guild.id, world.channel.id, member.id, now - age, status, prompt) for age in ages],
    )


async def outcome(interaction: FakeInteraction) -> tuple[bool, str]:
    """(admitted, text): admitted requests are deferred publicly; denials are ephemeral replies."""
    ack = await interaction.wait_ack()
    message = await interaction.wait_answer(timeout=30)
    if ack.type == DEFERRED and not ack.ephemeral:
        return True, message.content
    assert message.ephemeral
    return False, message.content


@pytest.fixture
async def limited(bots: BotRunner, world: World) -> QwenImagineBot:
    return await bots.start(DEFAULT_LIMITS="member/hour=2,server/day=4")


async def test_a_member_over_their_limit_is_told_privately_and_never_reaches_the_api(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, limited: QwenImagineBot, db: TestDatabase
) -> None:
    for _ in range(2):
        assert (await outcome(await imagine(discord_server, world.alice, world.channel)))[0]
    before = time.time()
    admitted, text = await outcome(await imagine(discord_server, world.alice, world.channel))
    assert not admitted
    assert "limit of 2 images per member per hour" in text
    match = RELATIVE_TIME.search(text)
    assert match and before + 3590 <= int(match.group(1)) <= time.time() + 3601
    assert len(qwen.generation_requests) == 2
    # Another member is unaffected.
    assert (await outcome(await imagine(discord_server, world.bob, world.channel)))[0]
    assert await statuses(db) == ["succeeded", "succeeded", "denied", "succeeded"]


async def test_the_server_limit_counts_everyone_and_other_guilds_are_unaffected(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, limited: QwenImagineBot, bots: BotRunner
) -> None:
    other = discord_server.add_guild(name="Elsewhere")
    other_channel = other.add_channel(name="art")
    stranger = other.add_member(name="carol", permissions=MEMBER_PERMISSIONS)
    await bots.wait_guilds(other.id)
    for member in (world.alice, world.alice, world.bob, world.moderator):
        assert (await outcome(await imagine(discord_server, member, world.channel)))[0]
    admitted, text = await outcome(await imagine(discord_server, world.bob, world.channel))
    assert not admitted
    assert "This server has reached its limit of 4 images for the whole server per day" in text
    assert (await outcome(await imagine(discord_server, stranger, other_channel)))[0]


async def test_windows_slide(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, limited: QwenImagineBot, db: TestDatabase
) -> None:
    # One image 61 minutes ago has left the hour; one 59 minutes ago has not.
    await insert_past(db, world, world.alice, [61 * 60, 59 * 60])
    assert (await outcome(await imagine(discord_server, world.alice, world.channel)))[0]
    admitted, text = await outcome(await imagine(discord_server, world.alice, world.channel))
    assert not admitted
    # The next slot frees when the 59-minute-old image turns 60 minutes old.
    match = RELATIVE_TIME.search(text)
    assert match and abs(int(match.group(1)) - (time.time() + 60)) <= 3


async def test_failed_generations_are_not_counted(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, limited: QwenImagineBot, db: TestDatabase
) -> None:
    qwen.fail_next(400, "DataInspectionFailed", "Input data may contain inappropriate content.", times=3)
    for _ in range(3):
        message = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
        assert "content filter" in message.content
    assert (await outcome(await imagine(discord_server, world.alice, world.channel)))[0]
    assert await statuses(db) == ["failed", "failed", "failed", "succeeded"]


async def test_concurrent_admission_is_exact(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start(DEFAULT_LIMITS="server/day=3")
    members = [world.guild.add_member(name=f"m{i}", permissions=MEMBER_PERMISSIONS) for i in range(50)]
    interactions = await asyncio.gather(*(imagine(discord_server, m, world.channel) for m in members))
    results = await asyncio.gather(*(outcome(ix) for ix in interactions))
    assert sum(admitted for admitted, _ in results) == 3
    assert len(qwen.generation_requests) == 3
    assert sorted(await statuses(db)) == ["denied"] * 47 + ["succeeded"] * 3


async def test_blocked_members_and_zero_limits(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, limited: QwenImagineBot
) -> None:
    reply = await (
        await discord_server.invoke_command(
            world.moderator, world.channel, "limits", {"member": world.alice}, subcommand="block"
        )
    ).wait_answer()
    assert reply.ephemeral and "can no longer generate" in reply.content
    admitted, text = await outcome(await imagine(discord_server, world.alice, world.channel))
    assert not admitted and "paused image generation for you" in text
    await (
        await discord_server.invoke_command(
            world.moderator, world.channel, "limits", {"member": world.alice}, subcommand="unblock"
        )
    ).wait_answer()
    assert (await outcome(await imagine(discord_server, world.alice, world.channel)))[0]

    await (
        await discord_server.invoke_command(
            world.moderator, world.channel, "limits", {"scope": "server", "window": "week", "max": 0}, subcommand="set"
        )
    ).wait_answer()
    admitted, text = await outcome(await imagine(discord_server, world.bob, world.channel))
    assert not admitted and "turned off in this server" in text


async def test_moderators_set_show_and_reset_limits(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, limited: QwenImagineBot
) -> None:
    async def limits(subcommand: str, **options: object) -> str:
        ix = await discord_server.invoke_command(
            world.moderator, world.channel, "limits", options, subcommand=subcommand
        )
        message = await ix.wait_answer()
        assert message.ephemeral
        return message.content + "".join(e.get("description", "") for e in message.embeds)

    assert "Limit set: 10 images per member per hour" in await limits("set", scope="member", window="hour", max=10)
    assert "Limit set: 1 image per member per week" in await limits("set", scope="member", window="week", max=1)
    shown = await limits("show")
    assert "10 images per member per hour** (this server's own; default 2)" in shown
    assert "1 image per member per week** (this server's own; no default)" in shown
    assert "4 images for the whole server per day** (default): 0 used" in shown
    # max left out: back to the default for that pair only.
    assert "back to its default: 2 images per member per hour" in await limits("set", scope="member", window="hour")
    assert "1 image per member per week" in await limits("show")
    await limits("reset")
    shown = await limits("show")
    assert "per week" not in shown and "2 images per member per hour** (default)" in shown


@pytest.mark.parametrize(
    ("command", "options", "subcommand"),
    [
        ("limits", {}, "show"),
        ("limits", {"scope": "member", "window": "hour", "max": 100000}, "set"),
        ("limits", {}, "reset"),
        ("limits", {"member": "bob"}, "block"),
        ("usage", {"period": "day"}, None),
    ],
)
async def test_a_member_without_manage_server_is_refused_in_code(
    discord_server: FakeDiscord,
    world: World,
    limited: QwenImagineBot,
    command: str,
    options: dict[str, object],
    subcommand: str | None,
    db: TestDatabase,
) -> None:
    # default_permissions only hides commands; an admin can widen who sees them, so the bot checks again.
    options = {k: (world.bob if v == "bob" else v) for k, v in options.items()}
    ix = await discord_server.invoke_command(world.alice, world.channel, command, options, subcommand=subcommand)
    message = await ix.wait_answer()
    assert message.ephemeral
    assert "Manage Server" in message.content
    assert await statuses(db) == []
    assert await db.value("SELECT COUNT(*) FROM guild_limits") == 0
    assert await db.value("SELECT COUNT(*) FROM blocked_members") == 0


async def test_the_moderator_commands_are_hidden_by_default(
    discord_server: FakeDiscord, limited: QwenImagineBot
) -> None:
    synced = {c["name"]: c for c in discord_server.synced_commands[None]}
    assert synced["limits"]["default_member_permissions"] == 32  # Manage Server
    assert synced["usage"]["default_member_permissions"] == 32
    assert synced["quota"].get("default_member_permissions") is None
    assert synced["limits"]["contexts"] == [0]
    subcommands = {o["name"]: o for o in synced["limits"]["options"]}
    assert set(subcommands) == {"show", "set", "budget", "reset", "block", "unblock"}
    assert synced["settings"]["default_member_permissions"] == 32
    set_options = {o["name"]: o for o in subcommands["set"]["options"]}
    assert [c["value"] for c in set_options["scope"]["choices"]] == ["member", "server"]
    assert [c["value"] for c in set_options["window"]["choices"]] == ["hour", "day", "week", "month"]
    assert (set_options["max"]["min_value"], set_options["max"]["max_value"]) == (0, 100000)
    assert not set_options["max"].get("required")


async def test_quota_shows_what_is_left_and_when_it_frees(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, limited: QwenImagineBot, db: TestDatabase
) -> None:
    await insert_past(db, world, world.alice, [30 * 60])
    message = await (await discord_server.invoke_command(world.alice, world.channel, "quota", {})).wait_answer()
    assert message.ephemeral
    text = message.embeds[0]["description"]
    assert "**1 of 2** left this hour (you): one more frees up <t:" in text
    assert "**3 of 4** left this day (the whole server)" in text
    await insert_past(db, world, world.alice, [10 * 60])
    message = await (await discord_server.invoke_command(world.alice, world.channel, "quota", {})).wait_answer()
    assert "**0 of 2** left this hour (you): next image allowed <t:" in message.embeds[0]["description"]


async def test_usage_report_and_csv_export(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, limited: QwenImagineBot, db: TestDatabase
) -> None:
    await outcome(await imagine(discord_server, world.alice, world.channel, "=cmd|' /C calc'!A0", seed=5))
    await outcome(await imagine(discord_server, world.alice, world.channel, 'a fox, "quoted", with, commas'))
    await outcome(await imagine(discord_server, world.alice, world.channel))  # denied: member/hour=2
    qwen.fail_next(500, "InternalError", "boom", times=4, headers={"Retry-After": "0"})
    await outcome(await imagine(discord_server, world.bob, world.channel))
    ix = await discord_server.invoke_command(
        world.moderator, world.channel, "usage", {"period": "week", "export": True}
    )
    message = await ix.wait_answer()
    assert message.ephemeral
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    assert (fields["Images"], fields["Failures"], fields["Denied"]) == ("2", "1", "1")
    assert fields["Estimated cost"] == "$0.06 (list price)"
    assert fields["Top members"] == f"1. <@{world.alice.id}>: 2"
    [attachment] = message.attachments
    assert attachment.filename.startswith(f"usage-{world.guild.id}-week-") and attachment.filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(attachment.data.decode())))
    stored = await db.generations()
    assert [int(r["id"]) for r in rows] == [row["id"] for row in stored]
    assert [r["status"] for r in rows] == ["succeeded", "succeeded", "denied", "failed"]
    assert rows[0]["prompt"] == "'=cmd|' /C calc'!A0"  # defused for spreadsheets
    assert rows[1]["prompt"] == 'a fox, "quoted", with, commas'
    assert (rows[0]["seed"], rows[2]["error_code"], rows[3]["error_code"]) == (
        "5",
        "limit:member/hour",
        "InternalError",
    )
    assert int(rows[0]["member_id"]) == world.alice.id


async def test_limits_and_usage_survive_a_restart(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    await bots.start(DEFAULT_LIMITS="member/hour=5")
    await (
        await discord_server.invoke_command(
            world.moderator, world.channel, "limits", {"scope": "member", "window": "hour", "max": 1}, subcommand="set"
        )
    ).wait_answer()
    assert (await outcome(await imagine(discord_server, world.alice, world.channel)))[0]
    await bots.stop()
    await bots.start(DEFAULT_LIMITS="member/hour=5")
    assert discord_server.sync_calls[None] == 1  # the command tree did not change
    admitted, text = await outcome(await imagine(discord_server, world.alice, world.channel))
    assert not admitted and "1 image per member per hour" in text
    ix = await discord_server.invoke_command(world.moderator, world.channel, "usage", {"period": "day"})
    fields = {f["name"]: f["value"] for f in (await ix.wait_answer()).embeds[0]["fields"]}
    assert (fields["Images"], fields["Denied"]) == ("1", "1")


async def test_old_prompts_are_cleared_and_counts_stay(
    discord_server: FakeDiscord, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start()
    await bots.wait_retention()  # nothing to clear yet
    await insert_past(db, world, world.alice, [91 * 86400, 89 * 86400])
    await bots.stop()
    await bots.start()
    await bots.wait_retention()  # the pass at start-up
    assert bots.retention_passes == [1]
    rows = await db.rows("SELECT prompt, status FROM generations ORDER BY requested_at")
    assert [(r["prompt"], r["status"]) for r in rows] == [(None, "succeeded"), ("an old fox", "succeeded")]


async def test_old_prompts_of_refused_and_failed_requests_are_cleared_too(
    discord_server: FakeDiscord, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start()
    await bots.wait_retention()
    for status in ("denied", "failed"):
        await insert_past(db, world, world.alice, [91 * 86400, 89 * 86400], status=status, prompt=f"a {status} fox")
    await bots.stop()
    await bots.start()
    await bots.wait_retention()
    assert bots.retention_passes == [2]
    rows = await db.rows("SELECT prompt, status FROM generations ORDER BY status, requested_at")
    assert [(r["prompt"], r["status"]) for r in rows] == [
        (None, "denied"),
        ("a denied fox", "denied"),
        (None, "failed"),
        ("a failed fox", "failed"),
    ]


def test_default_limits_syntax() -> None:
    assert parse_limits("member/hour=5, server/day=200") == (
        Limit(Scope.MEMBER, Window.HOUR, 5),
        Limit(Scope.SERVER, Window.DAY, 200),
    )
    assert parse_limits("none") == ()
    for bad in (
        "member/hour",
        "guild/day=3",
        "member/year=3",
        "member/day=-1",
        "member/day=100001",
        "member/day=1,member/day=2",
        "",
    ):
        with pytest.raises(ValueError, match=r"\w"):
            parse_limits(bad)


def test_a_guild_value_replaces_the_default_for_its_pair_only() -> None:
    defaults = parse_limits("member/hour=5,member/day=20,server/day=200")
    own = (Limit(Scope.MEMBER, Window.DAY, 50), Limit(Scope.SERVER, Window.MONTH, 1000))
    assert effective_limits(defaults, own) == (
        Limit(Scope.MEMBER, Window.HOUR, 5),
        Limit(Scope.MEMBER, Window.DAY, 50),
        Limit(Scope.SERVER, Window.DAY, 200),
        Limit(Scope.SERVER, Window.MONTH, 1000),
    )


def test_a_member_gets_the_most_generous_of_their_roles_values() -> None:
    defaults = parse_limits("member/hour=2,member/day=10,server/day=100")
    own = (Limit(Scope.MEMBER, Window.HOUR, 3),)
    roles = (
        RoleLimit(role_id=1, window=Window.HOUR, max_count=5),
        RoleLimit(role_id=2, window=Window.HOUR, max_count=20),
        RoleLimit(role_id=3, window=Window.HOUR, max_count=1),
        RoleLimit(role_id=1, window=Window.WEEK, max_count=50),
    )
    both = {s.limit.key: s for s in limits_for_member(defaults, own, roles, (1, 2, 3))}
    assert both[(Scope.MEMBER, Window.HOUR)] == SourcedLimit(Limit(Scope.MEMBER, Window.HOUR, 20), "role", 2)
    assert both[(Scope.MEMBER, Window.DAY)] == SourcedLimit(Limit(Scope.MEMBER, Window.DAY, 10), "default")
    assert both[(Scope.MEMBER, Window.WEEK)].limit.max_count == 50
    assert both[(Scope.SERVER, Window.DAY)] == SourcedLimit(Limit(Scope.SERVER, Window.DAY, 100), "default")
    # Without role 2 the next most generous applies; with no role at all, the server's own value.
    assert {s.limit.key: s for s in limits_for_member(defaults, own, roles, (1, 3))}[
        (Scope.MEMBER, Window.HOUR)
    ].limit.max_count == 5
    nobody = {s.limit.key: s for s in limits_for_member(defaults, own, roles, (99,))}
    assert nobody[(Scope.MEMBER, Window.HOUR)] == SourcedLimit(Limit(Scope.MEMBER, Window.HOUR, 3), "server")
    assert (Scope.MEMBER, Window.WEEK) not in nobody


async def test_returning_a_limit_to_its_default_is_audited_even_when_the_number_is_the_same(
    discord_server: FakeDiscord, world: World, limited: QwenImagineBot, db: TestDatabase
) -> None:
    for options in ({"max": 2}, {}):
        await (
            await discord_server.invoke_command(
                world.moderator, world.channel, "limits", {"scope": "member", "window": "hour", **options}, "set"
            )
        ).wait_answer()
    rows = await db.rows("SELECT setting, old_value, new_value FROM settings_audit ORDER BY id")
    assert [(r["setting"], r["old_value"], r["new_value"]) for r in rows] == [
        ("limit member/hour", "2 (default)", "2"),
        ("limit member/hour", "2", "2 (default)"),
    ]
