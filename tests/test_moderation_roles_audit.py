"""Moderators decide for whom (role limits), and every change is on record (/settings audit, the
log channel, /settings show). Through the fakes, on both backends."""

from __future__ import annotations

import logging

import discord
import pytest

from bot.client import QwenImagineBot
from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen
from tests.moderation import command, set_role, settings, text_of
from tests.test_limits import outcome

# ---- for whom ------------------------------------------------------------------------------------------


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
    posts = modlog.visible_messages()  # each is posted after its answer: in any order
    assert any(f"{mod.mention} changed **limit member/hour**: none → 7" in post.content for post in posts)
    assert any(f"**role limit {vips.mention} member/hour**: none → 30" in post.content for post in posts)
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
    await discord_server.wait_for(lambda: len(modlog.visible_messages()) == 2)  # log channel, role
    assert "Changes are no longer posted" in await settings(discord_server, world, "log-channel")
    assert "Log channel: none" in await settings(discord_server, world, "show")
    # The channel left behind is told it is no longer the log channel.
    await discord_server.wait_for(lambda: len(modlog.visible_messages()) == 3)
    assert f"**log channel**: {modlog.mention} → none" in modlog.visible_messages()[-1].content


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
