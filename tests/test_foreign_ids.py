"""Ids that cross servers or messages, and malformed numbers: every result action acts only on an
image of the interaction's own server (and, for buttons, on the message that shows it)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest

from bot.client import QwenImagineBot
from bot.errors import ForeignGeneration
from tests.conftest import MANAGE_GUILD, MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeChannel, FakeDiscord, FakeGuild, FakeInteraction, FakeMember, FakeMessage
from tests.fakes.qwen import FakeQwen

SECRET = "a koi pond behind the old mill that only server A knows about"
REFUSAL = ForeignGeneration().user_message
MODAL = 9
ACTIONS = ("reroll", "remix", "details", "delete")


@dataclass
class ServerB:
    """A second server with the same bot: a member, a moderator, and alice (a member of both)."""

    guild: FakeGuild
    channel: FakeChannel
    mallory: FakeMember
    moderator: FakeMember
    alice: FakeMember


@pytest.fixture
def server_b(discord_server: FakeDiscord, world: World) -> ServerB:
    guild = discord_server.add_guild(name="Sculptors")
    return ServerB(
        guild=guild,
        channel=guild.add_channel(name="studio"),
        mallory=guild.add_member(name="mallory", permissions=MEMBER_PERMISSIONS),
        moderator=guild.add_member(name="b-mod", permissions=MEMBER_PERMISSIONS | MANAGE_GUILD),
        alice=guild.add_existing_user(world.alice.user, permissions=MEMBER_PERMISSIONS),
    )


@pytest.fixture
async def bot(bots: BotRunner, world: World, server_b: ServerB) -> QwenImagineBot:
    """One bot in both servers."""
    return await bots.start()


def buttons(message: FakeMessage) -> dict[str, str]:
    """label -> custom_id of the message's buttons."""
    return {c["label"]: c["custom_id"] for row in message.components for c in row["components"]}


def forged_buttons(*custom_ids: str) -> list[dict[str, Any]]:
    """An action row of buttons with any custom_ids, as a modified client presents them."""
    return [{"type": 1, "components": [{"type": 2, "style": 2, "label": c[:80], "custom_id": c} for c in custom_ids]}]


def forged_message(channel: FakeChannel, author: FakeMember, *custom_ids: str) -> FakeMessage:
    """A message that carries result buttons it was never given by the bot."""
    return channel.add_message(author, "free images, click here", components=forged_buttons(*custom_ids))


async def result_in_a(discord_server: FakeDiscord, world: World, bots: BotRunner) -> FakeMessage:
    """Alice's result in server A."""
    options = {"negative_prompt": "fog", "size": "928*1664", "seed": 77, "enhance": False}
    delivered = len(bots.delivered)  # counted first: the delivery may be recorded before the answer is seen
    message = await (await imagine(discord_server, world.alice, world.channel, SECRET, **options)).wait_answer()
    await bots.wait_delivered(delivered + 1)
    return message


async def refused(interaction: FakeInteraction) -> FakeMessage:
    """The interaction got the private "isn't from here" and nothing else."""
    ack = await interaction.wait_ack()
    answer = await interaction.wait_answer()
    assert ack.ephemeral and answer.ephemeral and ack.type != MODAL
    assert REFUSAL in answer.content
    return answer


def seen_in(discord_server: FakeDiscord, *channels: FakeChannel) -> str:
    """Everything the bot sent into these channels: messages (private ones too), acks and forms."""
    sent = [m.to_payload() for channel in channels for m in channel.messages]
    for interaction in discord_server.interactions.values():
        if interaction.channel in channels:
            sent.append({"ack": interaction.ack.data if interaction.ack else None, "modal": interaction.modal})
    return json.dumps(sent, ensure_ascii=False)


def assert_log_is_clean(caplog: pytest.LogCaptureFixture, *member_texts: str) -> None:
    """No error, no traceback, and none of the member's text in the log (texts too short or too
    common to tell apart from the log's own numbers are not looked for)."""
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    for text in member_texts:
        if not text.isascii() or len(text.strip()) >= 10:
            assert text.strip() not in caplog.text


@pytest.mark.parametrize("action", ACTIONS)
async def test_a_button_with_another_servers_image_is_refused_and_changes_nothing(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    server_b: ServerB,
    bot: QwenImagineBot,
    bots: BotRunner,
    action: str,
    db: TestDatabase,
) -> None:
    first = await result_in_a(discord_server, world, bots)
    a_id = (await db.generations())[0]["id"]
    forged = forged_message(server_b.channel, server_b.mallory, *(f"qi:{a}:{a_id}" for a in ACTIONS))
    calls, usage = len(qwen.requests), await db.generations()

    # B's moderator: under Delete, moderation rights of one server reach no other server's image.
    await refused(await discord_server.click_button(server_b.moderator, forged, f"qi:{action}:{a_id}"))

    assert len(qwen.requests) == calls and (await db.generations()) == usage
    assert not first.deleted and not forged.deleted
    assert SECRET not in seen_in(discord_server, server_b.channel)


async def test_the_creator_cannot_delete_their_image_from_another_server(
    discord_server: FakeDiscord, world: World, server_b: ServerB, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    first = await result_in_a(discord_server, world, bots)
    a_id = (await db.generations())[0]["id"]
    forged = forged_message(server_b.channel, server_b.alice, f"qi:delete:{a_id}")
    await refused(await discord_server.click_button(server_b.alice, forged, f"qi:delete:{a_id}"))
    assert not first.deleted and not forged.deleted
    assert (await db.generations())[0]["message_id"] == first.id


async def test_a_remix_form_naming_another_servers_image_is_refused(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    server_b: ServerB,
    bot: QwenImagineBot,
    bots: BotRunner,
    db: TestDatabase,
) -> None:
    await result_in_a(discord_server, world, bots)
    a_id = (await db.generations())[0]["id"]
    calls, usage = len(qwen.requests), await db.generations()
    values = {"prompt": "a koi pond", "seed": "77", "size": "928*1664", "enhance": "off"}
    submitted = await discord_server.submit_forged_modal(
        server_b.mallory, server_b.channel, f"qi:remix-form:{a_id}", values
    )
    await refused(submitted)
    assert len(qwen.requests) == calls and (await db.generations()) == usage
    seen = seen_in(discord_server, server_b.channel)
    assert SECRET not in seen and str(world.channel.id) not in seen


async def test_the_remix_image_menu_in_another_server_shows_nothing_of_the_image(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    server_b: ServerB,
    bot: QwenImagineBot,
    bots: BotRunner,
    db: TestDatabase,
) -> None:
    await result_in_a(discord_server, world, bots)
    a_id = (await db.generations())[0]["id"]
    forged = forged_message(server_b.channel, server_b.mallory, *(f"qi:{a}:{a_id}" for a in ACTIONS))
    calls, usage = len(qwen.requests), await db.generations()
    menu = await discord_server.invoke_message_command(server_b.mallory, forged, "Remix image")
    assert (await menu.wait_ack()).ephemeral
    assert "isn't one of my images" in (await menu.wait_answer()).content
    assert len(qwen.requests) == calls and (await db.generations()) == usage
    assert SECRET not in seen_in(discord_server, server_b.channel)


async def test_the_remix_image_menu_checks_the_server_of_the_image_it_finds(
    discord_server: FakeDiscord, world: World, server_b: ServerB, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    # A row recorded for another server than the message it names (only a damaged or hand-edited
    # database has one) is refused like any foreign image.
    b_result = await (await imagine(discord_server, server_b.mallory, server_b.channel, SECRET)).wait_answer()
    await bots.wait_delivered(1)
    await db.execute("UPDATE generations SET guild_id = ?", (world.guild.id,))
    await refused(await discord_server.invoke_message_command(server_b.mallory, b_result, "Remix image"))


@pytest.mark.parametrize("action", ACTIONS)
async def test_a_button_of_this_servers_image_on_another_message_is_refused(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    bots: BotRunner,
    action: str,
    db: TestDatabase,
) -> None:
    first = await result_in_a(discord_server, world, bots)
    a_id = (await db.generations())[0]["id"]
    forged = forged_message(world.channel, world.bob, *(f"qi:{a}:{a_id}" for a in ACTIONS))
    calls = len(qwen.requests)
    # The creator, who may delete the image itself, still deletes nothing through another message.
    await refused(await discord_server.click_button(world.alice, forged, f"qi:{action}:{a_id}"))
    assert len(qwen.requests) == calls and len(await db.generations()) == 1
    assert not first.deleted and not forged.deleted
    assert (await db.generations())[0]["message_id"] == first.id


@pytest.mark.parametrize(
    "bad_id",
    [
        "²",
        "12345678901234567890",
        "9999999999999999999",
        "9223372036854775808",
        "-0",
        "-1",
        "+1",
        "0",
        "01",
        "１２３",
        " 1",
        "1 ",
        "1\n",
        "",
        "1e3",
        "0x1",
    ],
)
async def test_a_malformed_id_in_a_button_is_answered_privately_without_a_traceback(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    bots: BotRunner,
    caplog: pytest.LogCaptureFixture,
    bad_id: str,
    db: TestDatabase,
) -> None:
    caplog.set_level(logging.INFO)
    await result_in_a(discord_server, world, bots)
    calls = len(qwen.requests)
    forged = forged_message(world.channel, world.bob, f"qi:reroll:{bad_id}")
    await refused(await discord_server.click_button(world.bob, forged, f"qi:reroll:{bad_id}"))
    assert len(qwen.requests) == calls and len(await db.generations()) == 1
    assert_log_is_clean(caplog, bad_id)


@pytest.mark.parametrize("bad_id", ["²", "12345678901234567890", "9999999999999999999", "-0", "１"])
async def test_a_malformed_id_in_a_remix_form_is_answered_privately_without_a_traceback(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    caplog: pytest.LogCaptureFixture,
    bad_id: str,
    db: TestDatabase,
) -> None:
    caplog.set_level(logging.INFO)
    values = {"prompt": "a koi pond", "seed": "", "size": "1328*1328", "enhance": "on"}
    submitted = await discord_server.submit_forged_modal(world.bob, world.channel, f"qi:remix-form:{bad_id}", values)
    await refused(submitted)
    assert qwen.requests == [] and (await db.generations()) == []
    assert_log_is_clean(caplog, bad_id)


async def open_form(discord_server: FakeDiscord, member: FakeMember, result: FakeMessage) -> FakeInteraction:
    opened = await discord_server.click_button(member, result, buttons(result)["Remix"])
    assert (await opened.wait_ack()).type == MODAL
    return opened


@pytest.mark.parametrize("seed", ["²", "-0", "+5", "٣", "1e3", "1 2", "2147483648", "４２９４９６７２９６"])
async def test_a_malformed_seed_in_the_form_is_answered_privately_without_a_traceback(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    bots: BotRunner,
    caplog: pytest.LogCaptureFixture,
    seed: str,
    db: TestDatabase,
) -> None:
    caplog.set_level(logging.INFO)
    first = await result_in_a(discord_server, world, bots)
    submitted = await discord_server.submit_modal(
        world.bob, await open_form(discord_server, world.bob, first), {"seed": seed}
    )
    answer = await submitted.wait_answer()
    assert answer.ephemeral and "The seed must be a whole number from 0 to 2147483647" in answer.content
    assert len(qwen.generation_requests) == 1 and len(await db.generations()) == 1
    assert_log_is_clean(caplog, seed)


async def test_a_seed_longer_than_the_form_allows_is_refused_too(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    bots: BotRunner,
    caplog: pytest.LogCaptureFixture,
    db: TestDatabase,
) -> None:
    caplog.set_level(logging.INFO)
    await result_in_a(discord_server, world, bots)
    seed = "12345678901234567890"
    values = {"prompt": "a koi pond", "seed": seed, "size": "1328*1328", "enhance": "on"}
    form = f"qi:remix-form:{(await db.generations())[0]['id']}"
    answer = await (await discord_server.submit_forged_modal(world.bob, world.channel, form, values)).wait_answer()
    assert answer.ephemeral and "The seed must be a whole number" in answer.content
    assert len(qwen.generation_requests) == 1 and len(await db.generations()) == 1
    assert_log_is_clean(caplog, seed)


@pytest.mark.parametrize("size", ["9" * 5000 + "*1328", "²*²", "１３２８*１３２８x"])
async def test_a_malformed_size_is_answered_privately_without_a_traceback(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    bots: BotRunner,
    caplog: pytest.LogCaptureFixture,
    size: str,
    db: TestDatabase,
) -> None:
    caplog.set_level(logging.INFO)
    await result_in_a(discord_server, world, bots)
    values = {"prompt": "a koi pond", "seed": "", "size": size, "enhance": "on"}
    form = f"qi:remix-form:{(await db.generations())[0]['id']}"
    answer = await (await discord_server.submit_forged_modal(world.bob, world.channel, form, values)).wait_answer()
    assert answer.ephemeral and "isn't a size this bot offers" in answer.content
    assert len(answer.content) < 400
    assert len(qwen.generation_requests) == 1 and len(await db.generations()) == 1
    assert_log_is_clean(caplog, size)


async def test_full_width_digits_in_the_form_read_as_the_digits_they_are(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner
) -> None:
    first = await result_in_a(discord_server, world, bots)
    opened = await open_form(discord_server, world.bob, first)
    changed = {"seed": " １２３ ", "size": "１３２８＊１３２８".replace("＊", "*")}
    assert (await (await discord_server.submit_modal(world.bob, opened, changed)).wait_answer()).attachments
    parameters = qwen.generation_requests[-1].body["parameters"]
    assert (parameters["seed"], parameters["size"]) == (123, "1328*1328")


@pytest.mark.parametrize("action", ACTIONS)
async def test_a_button_outside_any_server_is_refused(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    bots: BotRunner,
    action: str,
    db: TestDatabase,
) -> None:
    # A direct message (or a user-installed app's private channel) has no server: nothing is "from here".
    await result_in_a(discord_server, world, bots)
    a_id = (await db.generations())[0]["id"]
    dm = world.guild.open_dm(world.bob)
    shown = dm.add_message(
        discord_server.bot_user, "an image", components=forged_buttons(*(f"qi:{a}:{a_id}" for a in ACTIONS))
    )
    # Even as the image's own message (as if it had been posted there), only the missing server refuses it.
    await db.execute("UPDATE generations SET channel_id = ?, message_id = ?", (dm.id, shown.id))
    calls = len(qwen.requests)
    clicked = await discord_server.click_button(world.bob, shown, f"qi:{action}:{a_id}")
    assert "guild_id" not in clicked.payload() and "member" not in clicked.payload()
    await refused(clicked)
    assert len(qwen.requests) == calls and len(await db.generations()) == 1 and not shown.deleted
    assert SECRET not in seen_in(discord_server, dm)


async def test_a_remix_form_outside_any_server_is_refused(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    await result_in_a(discord_server, world, bots)
    dm = world.guild.open_dm(world.bob)
    values = {"prompt": "a koi pond", "seed": "", "size": "1328*1328", "enhance": "on"}
    form = f"qi:remix-form:{(await db.generations())[0]['id']}"
    await refused(await discord_server.submit_forged_modal(world.bob, dm, form, values))
    assert len(qwen.generation_requests) == 1 and len(await db.generations()) == 1


async def test_a_result_whose_message_is_not_stored_yet_works_on_the_bots_message_only(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    # Between posting a result and remembering its message: the row has no message_id yet.
    first = await result_in_a(discord_server, world, bots)
    a_id = (await db.generations())[0]["id"]
    await db.execute("UPDATE generations SET message_id = NULL")
    details = await (await discord_server.click_button(world.bob, first, f"qi:details:{a_id}")).wait_answer()
    assert details.ephemeral and SECRET in details.embeds[0]["description"]
    forged = forged_message(world.channel, world.bob, f"qi:delete:{a_id}", f"qi:details:{a_id}")
    await refused(await discord_server.click_button(world.alice, forged, f"qi:delete:{a_id}"))
    await refused(await discord_server.click_button(world.bob, forged, f"qi:details:{a_id}"))
    assert not forged.deleted and not first.deleted
    await (await discord_server.click_button(world.alice, first, f"qi:delete:{a_id}")).wait_ack()
    await discord_server.wait_for(lambda: first.deleted)


async def test_buttons_work_on_a_result_posted_to_the_channel_after_the_token_expired(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner
) -> None:
    qwen.hold()
    interaction = await imagine(discord_server, world.alice, world.channel, SECRET)
    await interaction.wait_ack()
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    discord_server.expire_token(interaction)
    qwen.release()
    await bots.wait_delivered(1)
    [post] = [m for m in world.channel.messages if m.interaction_id is None and m.attachments]
    details = await (await discord_server.click_button(world.bob, post, buttons(post)["Details"])).wait_answer()
    assert details.ephemeral and SECRET in details.embeds[0]["description"]
    assert (
        await (await discord_server.click_button(world.bob, post, buttons(post)["Reroll"])).wait_answer()
    ).attachments


async def test_buttons_work_on_a_result_delivered_after_a_restart(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, server_b: ServerB
) -> None:
    await bots.start(SHUTDOWN_GRACE_SECONDS="0")
    qwen.hold()
    interaction = await imagine(discord_server, world.alice, world.channel, SECRET)
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    await bots.stop()
    assert "restarting" in (await interaction.wait_answer()).content
    qwen.release()
    await bots.start()
    await bots.wait_delivered(1)
    [post] = [m for m in world.channel.messages if m.interaction_id is None and m.attachments]
    details = await (await discord_server.click_button(world.bob, post, buttons(post)["Details"])).wait_answer()
    assert details.ephemeral and SECRET in details.embeds[0]["description"]
    await (await discord_server.click_button(world.alice, post, buttons(post)["Delete"])).wait_ack()
    await discord_server.wait_for(lambda: post.deleted)


async def test_details_leave_out_what_it_was_remixed_from_in_another_server(
    discord_server: FakeDiscord, world: World, server_b: ServerB, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    # A remix across servers can't be made; a row from before that rule (or a hand-edited one) stays hidden.
    first = await result_in_a(discord_server, world, bots)
    b_result = await (await imagine(discord_server, server_b.mallory, server_b.channel, "a heron")).wait_answer()
    await bots.wait_delivered(2)
    a_id = (await db.generations())[0]["id"]
    await db.execute("UPDATE generations SET parent_id = ? WHERE guild_id = ?", (a_id, server_b.guild.id))
    details = await (
        await discord_server.click_button(server_b.mallory, b_result, buttons(b_result)["Details"])
    ).wait_answer()
    assert details.ephemeral and "a heron" in details.embeds[0]["description"]
    assert "Remixed from" not in [field["name"] for field in details.embeds[0]["fields"]]
    seen = seen_in(discord_server, server_b.channel)
    assert SECRET not in seen and str(first.id) not in seen
