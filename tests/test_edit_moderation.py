"""Edits pass the same moderation as every other way of making an image, and model and budget
changes are on the same record, log channel included. Through the fakes, on both backends."""

from __future__ import annotations

from bot.client import QwenImagineBot
from tests.conftest import BotRunner, World
from tests.database import TestDatabase
from tests.fakes.discord import FakeAttachment, FakeDiscord
from tests.fakes.qwen import FakeQwen
from tests.moderation import codes, command, settings
from tests.test_edit import picture
from tests.test_limits import outcome


async def test_an_edit_outside_the_allowed_channels_is_refused_privately_and_sends_nothing(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    lounge = world.guild.add_channel("lounge")
    await settings(discord_server, world, "channels add", channel=world.channel)
    image = FakeAttachment("cat.png", picture())
    refused = await discord_server.invoke_command(
        world.alice, lounge, "edit", {"prompt": "make it night", "image": image}
    )
    admitted, text = await outcome(refused)
    assert not admitted
    assert "can't be made in this channel" in text and world.channel.mention in text
    assert qwen.edits == []
    assert await codes(db) == [("denied", "wrong_channel")]
    allowed = await discord_server.invoke_command(
        world.alice, world.channel, "edit", {"prompt": "make it night", "image": image}
    )
    assert (await allowed.wait_answer()).attachments
    assert len(qwen.edits) == 1


async def test_an_edit_whose_instruction_has_a_blocked_word_is_refused_before_anything_is_sent(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    await settings(discord_server, world, "words add", word="gore")
    image = FakeAttachment("cat.png", picture())
    refused = await discord_server.invoke_command(
        world.alice, world.channel, "edit", {"prompt": "add some ＧＯＲＥ", "image": image}
    )
    admitted, text = await outcome(refused)
    assert not admitted
    assert "Your prompt contains “gore”" in text
    assert qwen.edits == []
    assert await codes(db) == [("denied", "blocked_word")]


async def test_model_and_budget_changes_are_recorded_and_posted_in_the_log_channel(
    discord_server: FakeDiscord, world: World, bots: BotRunner, db: TestDatabase
) -> None:
    await bots.start(ENABLED_MODELS="qwen-image-plus,qwen-image,qwen-image-edit-plus")
    modlog = world.guild.add_channel("mod-log")
    await settings(discord_server, world, "log-channel", channel=modlog)
    chosen = await discord_server.invoke_command(
        world.moderator, world.channel, "settings", {"model": "qwen-image"}, subcommand="model text"
    )
    await chosen.wait_answer()
    await command(discord_server, world.moderator, world.channel, "limits", "budget", usd=12.5)
    rows = await db.rows("SELECT setting, old_value, new_value FROM settings_audit ORDER BY id")
    assert [(r["setting"], r["old_value"], r["new_value"]) for r in rows][1:] == [
        ("model.text", "qwen-image-plus", "qwen-image"),
        ("budget_usd", None, "12.50"),
    ]
    await discord_server.wait_for(lambda: len(modlog.visible_messages()) == len(rows))
    posted = "\n".join(message.content for message in modlog.visible_messages())
    assert "qwen-image" in posted and "12.50" in posted
