"""Moderators decide where (allowed channels), what (blocked words) and for whom (role limits),
and every change is on record (/settings audit, the log channel): through the fakes, on both backends."""

from __future__ import annotations

import logging
from typing import Any

import discord
import pytest

from bot.client import QwenImagineBot
from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeChannel, FakeDiscord, FakeMember, FakeMessage
from tests.fakes.qwen import FakeQwen
from tests.test_limits import outcome

MODAL = 9


def text_of(message: FakeMessage) -> str:
    """A message's content, embed descriptions and field values, as one string."""
    parts = [message.content]
    for embed in message.embeds:
        parts.append(embed.get("title") or "")
        parts.append(embed.get("description") or "")
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
        parts.append((embed.get("footer") or {}).get("text", ""))
    return "\n".join(parts)


async def command(
    discord_server: FakeDiscord,
    member: FakeMember,
    channel: FakeChannel,
    name: str,
    subcommand: str | None = None,
    /,
    **options: Any,
) -> FakeMessage:
    """Invoke a command and return its (private) answer."""
    ix = await discord_server.invoke_command(member, channel, name, options, subcommand=subcommand)
    message = await ix.wait_answer()
    assert message.ephemeral
    return message


async def settings(discord_server: FakeDiscord, world: World, subcommand: str, /, **options: Any) -> str:
    """/settings <subcommand> by the moderator, in the world's channel."""
    return text_of(await command(discord_server, world.moderator, world.channel, "settings", subcommand, **options))


def buttons(message: FakeMessage) -> dict[str, str]:
    return {c["label"]: c["custom_id"] for row in message.components for c in row["components"]}


async def codes(db: TestDatabase) -> list[tuple[str, str | None]]:
    return [(row["status"], row["error_code"]) for row in await db.generations()]


# ---- permissions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subcommand", "options"),
    [
        ("show", {}),
        ("channels add", {"channel": "gallery"}),
        ("channels remove", {"channel": "gallery"}),
        ("channels list", {}),
        ("words add", {"word": "gore"}),
        ("words remove", {"word": "gore"}),
        ("words list", {}),
        ("audit", {}),
        ("log-channel", {"channel": "gallery"}),
    ],
)
async def test_every_settings_subcommand_is_refused_for_a_member_in_code(
    discord_server: FakeDiscord,
    world: World,
    bot: QwenImagineBot,
    db: TestDatabase,
    subcommand: str,
    options: dict[str, Any],
) -> None:
    options = {k: (world.channel if v == "gallery" else v) for k, v in options.items()}
    message = await command(discord_server, world.alice, world.channel, "settings", subcommand, **options)
    assert "Manage Server" in message.content
    for table in ("allowed_channels", "blocked_words", "guild_log_channels", "settings_audit"):
        assert await db.value(f"SELECT COUNT(*) FROM {table}") == 0


async def test_role_limits_are_refused_for_a_member_in_code(
    discord_server: FakeDiscord, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    role = world.guild.add_role("artists")
    message = await command(
        discord_server, world.alice, world.channel, "limits", "set", scope="member", window="hour", max=50, role=role
    )
    assert "Manage Server" in message.content
    assert await db.value("SELECT COUNT(*) FROM role_limits") == 0


async def test_settings_is_a_hidden_group_of_subcommands(discord_server: FakeDiscord, bot: QwenImagineBot) -> None:
    synced = {c["name"]: c for c in discord_server.synced_commands[None]}
    settings_command = synced["settings"]
    assert settings_command["default_member_permissions"] == 32  # Manage Server
    assert settings_command["contexts"] == [0]
    options = {o["name"]: o for o in settings_command["options"]}
    assert set(options) == {"show", "channels", "words", "audit", "log-channel"}
    assert {o["name"] for o in options["channels"]["options"]} == {"add", "remove", "list"}
    assert {o["name"] for o in options["words"]["options"]} == {"add", "remove", "list"}
    limits_set = next(o for o in synced["limits"]["options"] if o["name"] == "set")
    role = next(o for o in limits_set["options"] if o["name"] == "role")
    assert role["type"] == 8 and not role.get("required")


# ---- where ----------------------------------------------------------------------------------------


async def test_with_a_channel_list_images_are_made_only_there_and_members_are_told_where(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    lounge = world.guild.add_channel("lounge")
    assert (await outcome(await imagine(discord_server, world.alice, lounge)))[0]  # no list: everywhere

    assert "Images can now be made in" in await settings(discord_server, world, "channels add", channel=world.channel)
    admitted, text = await outcome(await imagine(discord_server, world.alice, lounge))
    assert not admitted
    assert "can't be made in this channel" in text and world.channel.mention in text
    assert len(qwen.generation_requests) == 1
    assert (await codes(db))[-1] == ("denied", "wrong_channel")
    assert (await outcome(await imagine(discord_server, world.alice, world.channel)))[0]
    assert world.channel.mention in await settings(discord_server, world, "channels list")

    assert "every channel" in await settings(discord_server, world, "channels remove", channel=world.channel)
    assert (await outcome(await imagine(discord_server, world.alice, lounge)))[0]
    assert len(qwen.generation_requests) == 3


async def test_threads_follow_their_parent_channel(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    lounge = world.guild.add_channel("lounge")
    await settings(discord_server, world, "channels add", channel=world.channel)
    inside = world.channel.add_thread("foxes")
    private = world.channel.add_thread("secret foxes", private=True)
    outside = lounge.add_thread("chatter")
    assert (await outcome(await imagine(discord_server, world.alice, inside)))[0]
    assert (await outcome(await imagine(discord_server, world.alice, private)))[0]
    admitted, text = await outcome(await imagine(discord_server, world.alice, outside))
    assert not admitted and world.channel.mention in text
    assert len(qwen.generation_requests) == 2


async def test_buttons_on_old_results_in_other_channels_are_refused(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner
) -> None:
    lounge = world.guild.add_channel("lounge")
    old = await (await imagine(discord_server, world.alice, lounge, "a koi pond")).wait_answer()
    await bots.wait_delivered(1)
    await settings(discord_server, world, "channels add", channel=world.channel)

    reroll = await discord_server.click_button(world.bob, old, buttons(old)["Reroll"])
    admitted, text = await outcome(reroll)
    assert not admitted and world.channel.mention in text
    remix = await discord_server.click_button(world.bob, old, buttons(old)["Remix"])
    assert (await remix.wait_ack()).type != MODAL
    assert world.channel.mention in (await remix.wait_answer()).content
    details = await discord_server.click_button(world.bob, old, buttons(old)["Details"])
    assert "a koi pond" in text_of(await details.wait_answer())  # reading an old result still works
    assert len(qwen.generation_requests) == 1


async def test_a_remix_form_opened_before_the_list_is_refused_on_submit(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner
) -> None:
    lounge = world.guild.add_channel("lounge")
    old = await (await imagine(discord_server, world.alice, lounge, "a koi pond")).wait_answer()
    await bots.wait_delivered(1)
    opened = await discord_server.click_button(world.bob, old, buttons(old)["Remix"])
    assert (await opened.wait_ack()).type == MODAL
    await settings(discord_server, world, "channels add", channel=world.channel)
    admitted, text = await outcome(await discord_server.submit_modal(world.bob, opened, {"prompt": "a koi at dusk"}))
    assert not admitted and world.channel.mention in text
    assert len(qwen.generation_requests) == 1


# ---- what -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "negative_prompt", "entry", "field"),
    [
        ("a GORE scene", None, "gore", "prompt"),
        ("ｇｏｒｅ at night", None, "gore", "prompt"),  # full-width Latin
        ("a calm lake", "Ｇore", "gore", "negative prompt"),
        ("ｶﾞｿﾘﾝスタンドの絵", None, "ガソリン", "prompt"),  # half-width kana
        ("画一个流血的场面", None, "流血", "prompt"),  # Chinese inside longer text
    ],
)
async def test_a_prompt_with_a_blocked_word_is_refused_privately_before_anything_is_sent(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    db: TestDatabase,
    prompt: str,
    negative_prompt: str | None,
    entry: str,
    field: str,
) -> None:
    for word in ("gore", "ガソリン", "流血", "an unrelated phrase"):
        assert "will be refused" in await settings(discord_server, world, "words add", word=word)
    options = {"negative_prompt": negative_prompt} if negative_prompt else {}
    admitted, text = await outcome(await imagine(discord_server, world.alice, world.channel, prompt, **options))
    assert not admitted
    assert f"Your {field} contains “{entry}”" in text
    assert "unrelated" not in text  # the rule is named, the list is not echoed
    assert qwen.generation_requests == []
    assert await codes(db) == [("denied", "blocked_word")]


async def test_latin_words_inside_longer_words_are_not_refused(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    await settings(discord_server, world, "words add", word="ass")
    await settings(discord_server, world, "words add", word="gore")
    admitted, _ = await outcome(
        await imagine(discord_server, world.alice, world.channel, "a gorgeous classic brass band, gorey sky")
    )
    assert admitted
    assert len(qwen.generation_requests) == 1


async def test_rerolls_and_remixes_are_checked_for_blocked_words(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner
) -> None:
    old = await (await imagine(discord_server, world.alice, world.channel, "a koi pond")).wait_answer()
    await bots.wait_delivered(1)
    await settings(discord_server, world, "words add", word="KOI")
    admitted, text = await outcome(await discord_server.click_button(world.bob, old, buttons(old)["Reroll"]))
    assert not admitted and "“koi”" in text
    opened = await discord_server.click_button(world.bob, old, buttons(old)["Remix"])
    await opened.wait_ack()
    admitted, text = await outcome(await discord_server.submit_modal(world.bob, opened, {"prompt": "a koi, winter"}))
    assert not admitted and "“koi”" in text
    assert len(qwen.generation_requests) == 1


async def test_moderators_list_and_remove_words_and_bad_input_is_told_why(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    assert "“gore”" in await settings(discord_server, world, "words add", word="  ＧＯＲＥ ")
    assert "already blocked" in await settings(discord_server, world, "words add", word="gore")
    assert "at most 100" in await settings(discord_server, world, "words add", word="x" * 101)
    assert "letter or digit" in await settings(discord_server, world, "words add", word="!!!")
    listed = await settings(discord_server, world, "words list")
    assert "“gore”" in listed and "1 of 500" in listed
    assert "allowed again" in await settings(discord_server, world, "words remove", word="Gore")
    assert "was not blocked" in await settings(discord_server, world, "words remove", word="gore")
    assert (await outcome(await imagine(discord_server, world.alice, world.channel, "gore")))[0]


async def test_a_server_holds_at_most_500_entries(
    discord_server: FakeDiscord, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    await db.execute_many(
        "INSERT INTO blocked_words (guild_id, word, added_by, added_at) VALUES (?, ?, 1, 0)",
        [(world.guild.id, f"word{n}") for n in range(500)],
    )
    assert "already blocks 500" in await settings(discord_server, world, "words add", word="one more")
    assert await db.value("SELECT COUNT(*) FROM blocked_words") == 500


# ---- for whom ------------------------------------------------------------------------------------------


async def set_role(discord_server: FakeDiscord, world: World, role: Any, max_count: int | None) -> str:
    options: dict[str, Any] = {"scope": "member", "window": "hour", "role": role}
    if max_count is not None:
        options["max"] = max_count
    return text_of(await command(discord_server, world.moderator, world.channel, "limits", "set", **options))


async def test_a_member_gets_their_most_generous_roles_value_until_the_role_is_removed(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner
) -> None:
    await bots.start(DEFAULT_LIMITS="member/hour=1")
    artists, patrons = world.guild.add_role("artists"), world.guild.add_role("patrons")
    carol = world.guild.add_member("carol", permissions=MEMBER_PERMISSIONS, roles=[artists, patrons])
    assert artists.mention in await set_role(discord_server, world, artists, 2)
    await set_role(discord_server, world, patrons, 3)

    for _ in range(3):
        assert (await outcome(await imagine(discord_server, carol, world.channel)))[0]
    admitted, text = await outcome(await imagine(discord_server, carol, world.channel))
    assert not admitted and "limit of 3 images per member per hour" in text
    # Bob holds no role: the default.
    assert (await outcome(await imagine(discord_server, world.bob, world.channel)))[0]
    admitted, text = await outcome(await imagine(discord_server, world.bob, world.channel))
    assert not admitted and "limit of 1 image per member per hour" in text

    quota = text_of(await command(discord_server, carol, world.channel, "quota"))
    assert "**0 of 3** left this hour (you)" in quota and f"role {patrons.mention}" in quota
    shown = text_of(await command(discord_server, world.moderator, world.channel, "limits", "show"))
    assert f"{artists.mention}: 2 per member per hour" in shown and f"{patrons.mention}: 3" in shown

    # Patrons removed from carol (the interaction carries her roles): artists' 2 apply, already used up.
    carol.role_ids.remove(patrons.id)
    quota = text_of(await command(discord_server, carol, world.channel, "quota"))
    assert "**0 of 2** left this hour (you)" in quota and f"role {artists.mention}" in quota
    # The role's value removed: back to the default.
    assert "no longer has its own hour value" in await set_role(discord_server, world, artists, None)
    quota = text_of(await command(discord_server, carol, world.channel, "quota"))
    assert "**0 of 1** left this hour (you)" in quota and "(default)" in quota
    assert len(qwen.generation_requests) == 4


async def test_blocking_wins_over_a_generous_role(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner
) -> None:
    await bots.start(DEFAULT_LIMITS="member/hour=1")
    vips = world.guild.add_role("vips")
    carol = world.guild.add_member("carol", permissions=MEMBER_PERMISSIONS, roles=[vips])
    await set_role(discord_server, world, vips, 100000)
    await command(discord_server, world.moderator, world.channel, "limits", "block", member=carol)
    admitted, text = await outcome(await imagine(discord_server, carol, world.channel))
    assert not admitted and "paused image generation for you" in text
    assert qwen.generation_requests == []


async def test_role_values_are_for_member_windows_only(
    discord_server: FakeDiscord, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    role = world.guild.add_role("artists")
    message = await command(
        discord_server, world.moderator, world.channel, "limits", "set", scope="server", window="day", max=5, role=role
    )
    assert "member windows only" in message.content
    assert await db.value("SELECT COUNT(*) FROM role_limits") == 0


async def test_limits_apply_to_moderators_too(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner
) -> None:
    await bots.start(DEFAULT_LIMITS="member/hour=1")
    assert (await outcome(await imagine(discord_server, world.moderator, world.channel)))[0]
    admitted, text = await outcome(await imagine(discord_server, world.moderator, world.channel))
    assert not admitted and "limit of 1 image per member per hour" in text


# ---- on record -------------------------------------------------------------------------------------------


async def test_every_change_is_audited_and_posted_in_the_log_channel_without_pings(
    discord_server: FakeDiscord, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    modlog = world.guild.add_channel("mod-log")
    vips = world.guild.add_role("vips", mentionable=True)
    assert modlog.mention in await settings(discord_server, world, "log-channel", channel=modlog)
    mod = world.moderator
    await command(discord_server, mod, world.channel, "limits", "set", scope="member", window="hour", max=7)
    await set_role(discord_server, world, vips, 30)
    await command(discord_server, mod, world.channel, "limits", "block", member=world.alice)
    await command(discord_server, mod, world.channel, "limits", "unblock", member=world.alice)
    await settings(discord_server, world, "channels add", channel=world.channel)
    await settings(discord_server, world, "words add", word="gore")
    await command(discord_server, mod, world.channel, "limits", "reset")
    # Nothing changed: nothing recorded.
    await command(discord_server, mod, world.channel, "limits", "block", member=world.bob)
    await command(discord_server, mod, world.channel, "limits", "block", member=world.bob)

    rows = await db.rows("SELECT guild_id, actor_id, setting, old_value, new_value FROM settings_audit ORDER BY id")
    assert [(r["setting"], r["old_value"], r["new_value"]) for r in rows] == [
        ("log channel", None, modlog.mention),
        ("limit member/hour", "none", "7"),
        (f"role limit {vips.mention} member/hour", None, "30"),
        (f"block {world.alice.mention}", "allowed", "blocked"),
        (f"block {world.alice.mention}", "blocked", "allowed"),
        ("channels", "every channel", world.channel.mention),
        ("blocked word", None, "gore"),
        ("limits", "member/hour=7", "defaults"),
        (f"block {world.bob.mention}", "allowed", "blocked"),
    ]
    assert {(r["guild_id"], r["actor_id"]) for r in rows} == {(world.guild.id, mod.id)}

    await discord_server.wait_for(lambda: len(modlog.visible_messages()) == len(rows))
    posts = modlog.visible_messages()
    assert f"{mod.mention} changed **limit member/hour**: none → 7" in posts[1].content
    assert vips.mention in posts[2].content
    for post in posts:
        assert post.author.id == discord_server.world.bot_user.id
        assert post.pinged_user_ids() == set() and post.pinged_role_ids() == set()

    audit = await settings(discord_server, world, "audit")
    assert audit.index(f"block {world.bob.mention}") < audit.index("limit member/hour")  # newest first
    assert "changed **blocked word**: none → gore" in audit


async def test_settings_show_has_the_whole_configuration_and_the_content_filter_note(
    discord_server: FakeDiscord, world: World, bot: QwenImagineBot
) -> None:
    modlog = world.guild.add_channel("mod-log")
    vips = world.guild.add_role("vips")
    await settings(discord_server, world, "channels add", channel=world.channel)
    await settings(discord_server, world, "words add", word="gore")
    await settings(discord_server, world, "log-channel", channel=modlog)
    await set_role(discord_server, world, vips, 9)
    shown = await settings(discord_server, world, "show")
    assert "content filter always applies" in shown and "cannot be loosened" in shown
    assert f"Channels: {world.channel.mention}" in shown
    assert "Blocked words: 1 of 500" in shown
    assert f"Log channel: {modlog.mention}" in shown
    assert f"{vips.mention}: 9 per member per hour" in shown
    assert "moderators included" in shown
    assert "stop posting" not in shown
    assert "Changes are no longer posted" in await settings(discord_server, world, "log-channel")
    assert "Log channel: none" in await settings(discord_server, world, "show")


async def test_a_log_channel_the_bot_cannot_post_in_is_refused_and_a_lost_one_never_fails_a_change(
    discord_server: FakeDiscord, world: World, bot: QwenImagineBot, db: TestDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    closed = world.guild.add_channel("closed")
    closed.set_permissions(world.guild.everyone, deny=discord.Permissions(send_messages=True).value)
    assert "I can't post in" in await settings(discord_server, world, "log-channel", channel=closed)
    assert await db.value("SELECT COUNT(*) FROM guild_log_channels") == 0

    modlog = world.guild.add_channel("mod-log")
    await settings(discord_server, world, "log-channel", channel=modlog)
    await discord_server.wait_for(lambda: len(modlog.visible_messages()) == 1)
    # The bot loses access later: the change still goes through and is recorded; the failure is logged.
    modlog.set_permissions(world.guild.everyone, deny=discord.Permissions(send_messages=True).value)
    with caplog.at_level(logging.WARNING, logger="bot.ui.audit_log"):
        assert "will be refused" in await settings(discord_server, world, "words add", word="gore")
        await discord_server.wait_for(lambda: "could not post settings change" in caplog.text)
    assert await db.value("SELECT COUNT(*) FROM settings_audit") == 2
    assert len(modlog.visible_messages()) == 1
