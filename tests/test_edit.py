"""Editing end to end: /edit, the Edit button and the "Edit image" menu, through the fakes."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from bot.client import QwenImagineBot
from tests.conftest import BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeAttachment, FakeDiscord, FakeMessage
from tests.fakes.qwen import FakeQwen

MODAL = 9


def picture(width: int = 512, height: int = 512, kind: str = "PNG", **save: Any) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(buffer, format=kind, **save)
    return buffer.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (400, 400), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def images_sent(qwen: FakeQwen, index: int = -1) -> list[str]:
    body = qwen.edits[index]
    return [item["image"] for item in body["input"]["messages"][0]["content"][:-1]]


def buttons(message: FakeMessage) -> dict[str, str]:
    return {
        item["label"]: item["custom_id"]
        for row in message.components
        for item in row["components"]
        if item.get("type") == 2
    }


async def edit(discord_server: FakeDiscord, world: World, prompt: str = "make it night", **options: Any) -> Any:
    return await discord_server.invoke_command(world.alice, world.channel, "edit", {"prompt": prompt, **options})


async def test_edit_sends_a_compliant_upload_byte_for_byte_and_posts_the_result(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    data = picture(600, 400, "JPEG")
    interaction = await edit(discord_server, world, image=FakeAttachment("cat.jpg", data), seed=42, enhance=False)
    message = await interaction.wait_answer()
    [uri] = images_sent(qwen)
    assert uri == "data:image/jpeg;base64," + base64.b64encode(data).decode()
    body = qwen.edits[0]
    assert body["model"] == "qwen-image-edit-plus"
    assert body["input"]["messages"][0]["content"][-1] == {"text": "make it night"}
    assert body["parameters"] == {"n": 1, "seed": 42, "prompt_extend": False, "watermark": False}
    [attachment] = message.attachments
    assert attachment.filename == "qwen-image-42.png"
    assert set(buttons(message)) == {"Reroll", "Remix", "Edit", "Details", "Delete"}
    await bots.wait_delivered(1)
    [row] = await db.generations()
    assert (row["status"], row["inputs"], row["model"], row["message_id"]) == (
        "succeeded",
        1,
        "qwen-image-edit-plus",
        message.id,
    )


async def test_three_inputs_and_three_results_arrive_in_one_message_each_with_its_actions(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    images = {
        "image": FakeAttachment("a.png", picture(512, 512)),
        "image2": FakeAttachment("b.webp", picture(640, 480, "WEBP")),
        "image3": FakeAttachment("c.png", picture(480, 640)),
    }
    interaction = await edit(discord_server, world, "the cat from Image 1 on the sofa", count=3, seed=10, **images)
    message = await interaction.wait_answer()
    assert len(images_sent(qwen)) == 3 and qwen.edits[0]["parameters"]["n"] == 3
    assert [a.filename for a in message.attachments] == ["qwen-image-10.png", "qwen-image-11.png", "qwen-image-12.png"]
    assert len(message.embeds) == 3
    await bots.wait_delivered(1)
    rows = await db.generations()
    assert [(r["status"], r["seed"], r["message_id"]) for r in rows] == [
        ("succeeded", 10 + n, message.id) for n in range(3)
    ]
    [menu] = [item for row in message.components for item in row["components"] if item.get("type") == 3]
    values = [option["value"] for option in menu["options"]]
    assert {f"edit:{r['id']}" for r in rows} <= set(values) and {f"remix:{r['id']}" for r in rows} <= set(values)
    # Pick "Edit image 2": the form opens on that image.
    opened = await discord_server.choose(world.bob, message, menu["custom_id"], [f"edit:{rows[1]['id']}"])
    assert (await opened.wait_ack()).type == MODAL
    submitted = await discord_server.submit_modal(world.bob, opened, {"prompt": "add snow", "count": "1"})
    second = await submitted.wait_answer()
    assert second.content.startswith(f"Edited from <@{world.alice.id}>'s image")
    assert second.pinged_user_ids() == set()
    sent = images_sent(qwen)
    assert len(sent) == 1 and base64.b64decode(sent[0].partition(",")[2]) == message.attachments[1].data


async def test_count_needs_room_for_every_image_in_the_limits(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner, db: TestDatabase
) -> None:
    await bots.start(DEFAULT_LIMITS="member/hour=3")
    interaction = await edit(discord_server, world, image=FakeAttachment("a.png", picture()), count=2)
    await interaction.wait_answer()
    refused = await edit(discord_server, world, image=FakeAttachment("a.png", picture()), count=2)
    answer = await refused.wait_answer()
    assert "limit of 3 images per member per hour" in answer.content and answer.ephemeral
    assert len(qwen.edits) == 1


@pytest.mark.parametrize(
    ("attachment", "reason"),
    [
        (FakeAttachment("notes.txt", b"hello there", "text/plain"), "Image 1 (notes.txt) isn't an image"),
        (
            FakeAttachment("tiny.png", picture(200, 300)),
            "Image 1 (tiny.png) is 200×300; each side must be at least 384",
        ),
        (FakeAttachment("huge.png", b"\0" * (11 * 1024 * 1024), "image/png"), "is 11.0 MB; the limit is 10 MB"),
        (
            FakeAttachment("icon.ico", picture(400, 400, "ICO", sizes=[(256, 256)]), "image/x-icon"),
            "ICO format; edits take",
        ),
        (FakeAttachment("fake.png", b"not really a png", "image/png"), "isn't an image I can read"),
    ],
)
async def test_a_bad_input_is_refused_privately_and_nothing_is_sent_or_charged(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    db: TestDatabase,
    attachment: FakeAttachment,
    reason: str,
) -> None:
    answer = await (await edit(discord_server, world, image=attachment)).wait_answer()
    assert reason in answer.content
    assert qwen.edits == [] and qwen.generation_requests == []
    assert all(row["status"] in ("failed", "denied") for row in await db.generations())


async def test_an_animated_gif_is_sent_as_its_first_frame_and_the_member_is_told(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    message = await (await edit(discord_server, world, image=FakeAttachment("dance.gif", animated_gif()))).wait_answer()
    assert "Image 1 (dance.gif) is animated: only its first frame is used." in message.content
    [uri] = images_sent(qwen)
    assert uri.startswith("data:image/png;base64,")
    frame = Image.open(io.BytesIO(base64.b64decode(uri.partition(",")[2])))
    assert frame.size == (400, 400) and getattr(frame, "n_frames", 1) == 1


async def test_a_too_large_image_is_scaled_down_to_fit(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    data = picture(4000, 1000)
    message = await (await edit(discord_server, world, image=FakeAttachment("wide.png", data))).wait_answer()
    assert "scaled down to 3072×768" in message.content
    [uri] = images_sent(qwen)
    assert Image.open(io.BytesIO(base64.b64decode(uri.partition(",")[2]))).size == (3072, 768)


async def test_the_content_filter_on_an_edit_is_explained_and_not_counted(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    qwen.fail_next(400, "DataInspectionFailed", "Input data may contain inappropriate content.")
    answer = await (await edit(discord_server, world, image=FakeAttachment("a.png", picture()), count=2)).wait_answer()
    assert "content filter" in answer.content.lower() or "inappropriate" in answer.content.lower()
    assert [row["status"] for row in await db.generations()] == ["failed", "failed"]


async def test_edit_button_on_a_result_edits_that_image_and_credits_its_creator(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    first = await (await imagine(discord_server, world.alice, world.channel, "a fox", seed=5)).wait_answer()
    await bots.wait_delivered(1)
    opened = await discord_server.click_button(world.bob, first, buttons(first)["Edit"])
    assert (await opened.wait_ack()).type == MODAL
    second = await (await discord_server.submit_modal(world.bob, opened, {"prompt": "make it winter"})).wait_answer()
    assert second.content.startswith(f"Edited from <@{world.alice.id}>'s image")
    [uri] = images_sent(qwen)
    assert base64.b64decode(uri.partition(",")[2]) == first.attachments[0].data
    await bots.wait_delivered(2)
    parent, child = await db.generations()
    assert (child["parent_id"], child["inputs"], child["member_id"]) == (parent["id"], 1, world.bob.id)


async def test_edit_image_menu_on_a_members_upload_uses_up_to_three_of_its_images(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    upload = await discord_server.post_message(
        world.alice,
        world.channel,
        "my pets",
        attachments=[FakeAttachment(f"p{n}.png", picture(500 + n, 500)) for n in range(4)]
        + [FakeAttachment("readme.txt", b"text", "text/plain")],
    )
    opened = await discord_server.invoke_message_command(world.alice, upload, "Edit image")
    assert (await opened.wait_ack()).type == MODAL
    answer = await (await discord_server.submit_modal(world.alice, opened, {"prompt": "all on one sofa"})).wait_answer()
    assert answer.attachments
    sent = images_sent(qwen)
    assert [base64.b64decode(uri.partition(",")[2]) for uri in sent] == [a.data for a in upload.attachments[:3]]


async def test_details_of_an_edited_image_show_its_model_lineage_and_edit_command(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner
) -> None:
    first = await (await imagine(discord_server, world.alice, world.channel, "a fox", seed=5)).wait_answer()
    await bots.wait_delivered(1)
    opened = await discord_server.click_button(world.bob, first, buttons(first)["Edit"])
    await opened.wait_ack()
    submitted = await discord_server.submit_modal(world.bob, opened, {"prompt": "make it winter", "seed": "9"})
    edited = await submitted.wait_answer()
    await bots.wait_delivered(2)
    details = await (await discord_server.click_button(world.bob, edited, buttons(edited)["Details"])).wait_answer()
    [embed] = details.embeds
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Model"] == "qwen-image-edit-plus"
    assert fields["Edited from"].startswith("#")
    assert "/edit prompt:make it winter seed:9" in embed["description"]
    rerolled = await (await discord_server.click_button(world.bob, edited, buttons(edited)["Reroll"])).wait_answer()
    assert "use **Edit** on it" in rerolled.content and rerolled.ephemeral


async def test_size_and_count_follow_the_chosen_edit_models_catalogue_entry(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner
) -> None:
    await bots.start(ENABLED_MODELS="qwen-image-plus,qwen-image-edit-plus,qwen-image-edit")
    image = FakeAttachment("a.png", picture())
    sized = await (await edit(discord_server, world, image=image, size="1024*1536", count=2)).wait_answer()
    assert qwen.edits[-1]["parameters"]["size"] == "1024*1536" and qwen.edits[-1]["parameters"]["n"] == 2
    assert len(sized.attachments) == 2
    for options, reason in (
        ({"model": "qwen-image-edit", "count": 2}, "qwen-image-edit makes one image per request."),
        ({"model": "qwen-image-edit", "size": "1024*1024"}, "qwen-image-edit picks the size itself"),
        ({"size": "4000*1000"}, "must be 512 to 2048 pixels"),
    ):
        answer = await (await edit(discord_server, world, image=image, **options)).wait_answer()
        assert answer.ephemeral and reason in answer.content
    assert len(qwen.edits) == 1


async def test_inputs_are_read_only_from_discords_attachment_hosts(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    upload = await discord_server.post_message(
        world.alice, world.channel, "mine", attachments=[FakeAttachment("p.png", picture())]
    )
    # The same picture, served by a reachable host that isn't Discord's (nor the configured one).
    qwen.add_file("p.png", upload.attachments[0].data, "image/png")
    upload.attachments[0].url = f"http://localhost:{qwen.port}/oss/p.png"
    opened = await discord_server.invoke_message_command(world.alice, upload, "Edit image")
    await opened.wait_ack()
    answer = await (await discord_server.submit_modal(world.alice, opened, {"prompt": "x"})).wait_answer()
    assert "I couldn't read Image 1 (p.png) from Discord" in answer.content
    assert qwen.edits == []
    assert [row["status"] for row in await db.generations()] == ["failed"]
