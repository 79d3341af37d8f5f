"""Moderators decide where members may generate (allowed channels, threads) and what they may not
ask for (blocked words); every /settings subcommand is theirs alone. Through the fakes, on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from bot.client import QwenImagineBot
from tests.conftest import BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen
from tests.moderation import MODAL, buttons, codes, command, settings, text_of
from tests.test_limits import outcome

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
    assert set(options) == {"show", "channels", "words", "audit", "log-channel", "model"}
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
