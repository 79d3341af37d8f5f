"""Remix by seed: persistent result buttons, the remix form, Details, Delete and the Remix image menu."""

from __future__ import annotations

from typing import Any

import discord
import pytest

from bot.client import QwenImagineBot
from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord, FakeInteraction, FakeMessage
from tests.fakes.qwen import FakeQwen, RecordedRequest

DEFERRED_CHANNEL_MESSAGE = 5
MODAL = 9


def buttons(message: FakeMessage) -> dict[str, str]:
    """label -> custom_id of the message's buttons."""
    return {c["label"]: c["custom_id"] for row in message.components for c in row["components"]}


def modal_values(modal: dict[str, Any]) -> dict[str, str]:
    """custom_id -> prefilled value of a modal's text inputs (action rows or labels)."""
    values = {}
    for top in modal["components"]:
        for item in top.get("components") or [top.get("component") or {}]:
            if item.get("type") == 4:
                values[item["custom_id"]] = item.get("value") or ""
    return values


def parameters(request: RecordedRequest) -> dict[str, Any]:
    return {"prompt": request.body["input"]["messages"][0]["content"][0]["text"], **request.body["parameters"]}


async def original(discord_server: FakeDiscord, world: World, bots: BotRunner, **options: Any) -> FakeMessage:
    """Alice's result to remix."""
    options = {"negative_prompt": "fog", "size": "928*1664", "seed": 77, "enhance": False, **options}
    delivered = len(bots.delivered)  # counted first: the delivery may be recorded before the answer is seen
    message = await (await imagine(discord_server, world.alice, world.channel, "a koi pond", **options)).wait_answer()
    await bots.wait_delivered(delivered + 1)
    return message


async def click(discord_server: FakeDiscord, member: Any, message: FakeMessage, label: str) -> FakeInteraction:
    return await discord_server.click_button(member, message, buttons(message)[label])


async def test_every_result_carries_its_buttons(
    discord_server: FakeDiscord, world: World, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    message = await original(discord_server, world, bots)
    [row] = await db.generations()
    assert buttons(message) == {
        "Reroll": f"qi:reroll:{row['id']}",
        "Remix": f"qi:remix:{row['id']}",
        "Edit": f"qi:edit:{row['id']}",
        "Details": f"qi:details:{row['id']}",
        "Delete": f"qi:delete:{row['id']}",
    }


async def test_reroll_keeps_everything_but_the_seed_and_credits_the_creator(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    first = await original(discord_server, world, bots)
    interaction = await click(discord_server, world.bob, first, "Reroll")
    ack = await interaction.wait_ack()
    assert ack.type == DEFERRED_CHANNEL_MESSAGE and not ack.ephemeral
    second = await interaction.wait_answer()
    assert second.id != first.id and second.attachments
    before, after = (parameters(r) for r in qwen.generation_requests)
    assert after["seed"] != before["seed"]
    assert {k: v for k, v in after.items() if k != "seed"} == {k: v for k, v in before.items() if k != "seed"}
    assert second.content == (
        f"Remixed from <@{world.alice.id}>'s image: "
        f"https://discord.com/channels/{world.guild.id}/{world.channel.id}/{first.id}"
    )
    assert second.pinged_user_ids() == set()
    await bots.wait_delivered(2)
    parent, child = await db.generations()
    assert (child["parent_id"], child["member_id"]) == (parent["id"], world.bob.id)
    assert buttons(second)["Reroll"] == f"qi:reroll:{child['id']}"


async def test_remix_opens_a_prefilled_form_and_keeps_the_seed(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner
) -> None:
    first = await original(discord_server, world, bots)
    opened = await click(discord_server, world.bob, first, "Remix")
    assert (await opened.wait_ack()).type == MODAL
    assert opened.modal is not None
    assert modal_values(opened.modal) == {
        "prompt": "a koi pond",
        "negative_prompt": "fog",
        "seed": "77",
        "size": "928*1664",
        "enhance": "off",
    }
    submitted = await discord_server.submit_modal(world.bob, opened, {"prompt": "a koi pond at night"})
    result = await submitted.wait_answer()
    assert result.attachments and result.content.startswith(f"Remixed from <@{world.alice.id}>'s image")
    remixed = parameters(qwen.generation_requests[-1])
    assert remixed == {**parameters(qwen.generation_requests[0]), "prompt": "a koi pond at night"}


async def test_an_unchanged_remix_and_a_repeated_command_send_the_original_request(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner
) -> None:
    first = await original(discord_server, world, bots)
    opened = await click(discord_server, world.bob, first, "Remix")
    await opened.wait_ack()
    await (await discord_server.submit_modal(world.bob, opened, {})).wait_answer()
    await original(discord_server, world, bots)
    bodies = [r.body for r in qwen.generation_requests]
    assert bodies[0] == bodies[1] == bodies[2]


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("seed", "lucky", "The seed must be a whole number"),
        ("size", "1024*1024", "isn't a size this bot offers"),
        ("enhance", "maybe", "must be on or off"),
        ("prompt", "   ", "can't be empty"),
    ],
)
async def test_bad_form_input_is_answered_privately(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    bots: BotRunner,
    field: str,
    value: str,
    says: str,
) -> None:
    first = await original(discord_server, world, bots)
    opened = await click(discord_server, world.bob, first, "Remix")
    await opened.wait_ack()
    submitted = await discord_server.submit_modal(world.bob, opened, {field: value})
    reply = await submitted.wait_answer()
    assert reply.ephemeral and says in reply.content
    assert len(qwen.generation_requests) == 1


async def test_a_remix_counts_against_the_clickers_limit(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start(DEFAULT_LIMITS="member/hour=2")
    first = await original(discord_server, world, bots)
    for _ in range(2):
        assert (await (await click(discord_server, world.bob, first, "Reroll")).wait_answer()).attachments
    denied = await click(discord_server, world.bob, first, "Reroll")
    assert (await denied.wait_ack()).ephemeral
    assert "limit of 2 images per member per hour" in (await denied.wait_answer()).content
    # The creator's own allowance is untouched by bob's remixes.
    assert (await (await click(discord_server, world.alice, first, "Reroll")).wait_answer()).attachments
    assert [(r["member_id"], r["status"]) for r in await db.generations()] == [
        (world.alice.id, "succeeded"),
        (world.bob.id, "succeeded"),
        (world.bob.id, "succeeded"),
        (world.bob.id, "denied"),
        (world.alice.id, "succeeded"),
    ]


async def test_buttons_work_after_a_restart(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    await bots.start()
    first = await original(discord_server, world, bots)
    await bots.stop()
    await bots.start()
    result = await (await click(discord_server, world.bob, first, "Reroll")).wait_answer()
    assert result.attachments and result.content.startswith("Remixed from")
    opened = await click(discord_server, world.bob, first, "Remix")
    assert (await opened.wait_ack()).type == MODAL
    details = await (await click(discord_server, world.bob, first, "Details")).wait_answer()
    assert details.ephemeral and "a koi pond" in details.embeds[0]["description"]


async def test_details_show_how_to_reproduce_and_the_lineage(
    discord_server: FakeDiscord, world: World, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    first = await original(discord_server, world, bots, enhance=True)
    second = await (await click(discord_server, world.bob, first, "Reroll")).wait_answer()
    await bots.wait_delivered(2)
    details = await (await click(discord_server, world.moderator, second, "Details")).wait_answer()
    assert details.ephemeral
    embed = details.embeds[0]
    parent, child = await db.generations()
    assert embed["title"] == f"Image #{child['id']}"
    assert (
        f"/imagine prompt:a koi pond negative_prompt:fog size:928*1664 seed:{child['seed']} enhance:True"
        in (embed["description"])
    )
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Seed"] == f"`{child['seed']}`" and fields["Model"] == "qwen-image-plus"
    assert fields["Remixed from"].startswith(f"#{parent['id']} by <@{world.alice.id}>")
    assert f"<@{world.bob.id}>" in fields["Requested"]
    assert "consistent image, not an identical one" in embed["footer"]["text"]
    assert "Prompt rewriting was on" in embed["footer"]["text"]


async def test_delete_is_for_the_creator_and_moderators(
    discord_server: FakeDiscord, world: World, bot: QwenImagineBot, bots: BotRunner
) -> None:
    first = await original(discord_server, world, bots)
    refused = await click(discord_server, world.bob, first, "Delete")
    reply = await refused.wait_answer()
    assert reply.ephemeral and "Only the member who asked for this image, or a moderator" in reply.content
    assert not first.deleted
    await (await click(discord_server, world.alice, first, "Delete")).wait_ack()
    await discord_server.wait_for(lambda: first.deleted)
    second = await original(discord_server, world, bots)
    await (await click(discord_server, world.moderator, second, "Delete")).wait_ack()
    await discord_server.wait_for(lambda: second.deleted)


async def test_the_remix_image_menu_works_on_results_and_refuses_other_messages(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner
) -> None:
    first = await original(discord_server, world, bots)
    opened = await discord_server.invoke_message_command(world.bob, first, "Remix image")
    assert (await opened.wait_ack()).type == MODAL
    assert opened.modal is not None and modal_values(opened.modal)["seed"] == "77"

    chatter = await discord_server.post_message(world.alice, world.channel, "look at my cat")
    refused = await discord_server.invoke_message_command(world.bob, chatter, "Remix image")
    assert "isn't one of my images" in (await refused.wait_answer()).content

    qwen.fail_next(400, "DataInspectionFailed", "Input data may contain inappropriate content.")
    failure = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    refused = await discord_server.invoke_message_command(world.bob, failure, "Remix image")
    reply = await refused.wait_answer()
    assert reply.ephemeral and "isn't one of my images" in reply.content


@pytest.mark.parametrize("gone", ["prompt", "row"])
async def test_a_click_on_an_image_past_retention_explains_itself(
    discord_server: FakeDiscord, world: World, bot: QwenImagineBot, bots: BotRunner, gone: str, db: TestDatabase
) -> None:
    first = await original(discord_server, world, bots)
    if gone == "prompt":
        await db.execute("UPDATE generations SET prompt = NULL, negative_prompt = NULL")
    else:
        await db.execute("DELETE FROM generations")
    reply = await (await click(discord_server, world.bob, first, "Reroll")).wait_answer()
    assert reply.ephemeral
    assert ("retention period" if gone == "prompt" else "can't find this image's details") in reply.content


async def test_manage_messages_is_enough_to_delete(
    discord_server: FakeDiscord, world: World, bot: QwenImagineBot, bots: BotRunner
) -> None:
    janitor = world.guild.add_member(
        name="janitor", permissions=MEMBER_PERMISSIONS | discord.Permissions(manage_messages=True).value
    )
    first = await original(discord_server, world, bots)
    await (await click(discord_server, janitor, first, "Delete")).wait_ack()
    await discord_server.wait_for(lambda: first.deleted)


async def test_a_remix_form_left_open_across_a_restart_still_works(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    await bots.start()
    first = await original(discord_server, world, bots)
    opened = await click(discord_server, world.bob, first, "Remix")
    await opened.wait_ack()
    await bots.stop()
    await bots.start()
    result = await (
        await discord_server.submit_modal(world.bob, opened, {"prompt": "a koi pond, winter"})
    ).wait_answer()
    assert result.attachments
    assert parameters(qwen.generation_requests[-1])["prompt"] == "a koi pond, winter"
    assert parameters(qwen.generation_requests[-1])["seed"] == 77
