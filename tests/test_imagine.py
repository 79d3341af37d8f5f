"""/imagine end to end: the real bot, the fake Discord gateway and REST API, the fake Qwen-Image API."""

from __future__ import annotations

import pytest

from bot.client import QwenImagineBot
from bot.download import read_png_header
from bot.qwen import MAX_SEED
from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord, FakeMessage
from tests.fakes.qwen import FakeQwen, make_png

DEFERRED_CHANNEL_MESSAGE = 5


def option(command: dict[str, object], name: str) -> dict[str, object]:
    options = command["options"]
    assert isinstance(options, list)
    return next(o for o in options if o["name"] == name)


async def test_synced_command_schema(discord_server: FakeDiscord, bot: QwenImagineBot) -> None:
    [command] = [c for c in discord_server.synced_commands[None] if c["name"] == "imagine"]
    assert [o["name"] for o in command["options"]] == ["prompt", "size", "negative_prompt", "seed", "enhance"]
    prompt = option(command, "prompt")
    assert (prompt["type"], prompt["required"], prompt["min_length"], prompt["max_length"]) == (3, True, 1, 800)
    size = option(command, "size")
    assert size["choices"] == [
        {"name": "Wide 16:9 (1664×928)", "value": "1664*928"},
        {"name": "Landscape 4:3 (1472×1140)", "value": "1472*1140"},
        {"name": "Square 1:1 (1328×1328)", "value": "1328*1328"},
        {"name": "Portrait 3:4 (1140×1472)", "value": "1140*1472"},
        {"name": "Tall 9:16 (928×1664)", "value": "928*1664"},
    ]
    assert option(command, "negative_prompt")["max_length"] == 500
    seed = option(command, "seed")
    assert (seed["type"], seed["min_value"], seed["max_value"]) == (4, 0, MAX_SEED)
    assert option(command, "enhance")["type"] == 5
    assert not any(option(command, name).get("required") for name in ("size", "negative_prompt", "seed", "enhance"))
    assert command["contexts"] == [0]  # servers only


async def test_full_imagine_reaches_the_api_and_comes_back_as_an_attachment(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    interaction = await imagine(
        discord_server,
        world.alice,
        world.channel,
        "a lighthouse at dusk, oil painting",
        size="1664*928",
        negative_prompt="blurry, text",
        seed=1234,
        enhance=False,
    )
    ack = await interaction.wait_ack()
    assert ack.type == DEFERRED_CHANNEL_MESSAGE and not ack.ephemeral
    message = await interaction.wait_answer()

    [request] = qwen.generation_requests
    assert request.body == {
        "model": "qwen-image-plus",
        "input": {"messages": [{"role": "user", "content": [{"text": "a lighthouse at dusk, oil painting"}]}]},
        "parameters": {
            "size": "1664*928",
            "seed": 1234,
            "prompt_extend": False,
            "watermark": False,
            "negative_prompt": "blurry, text",
        },
    }
    [attachment] = message.attachments
    assert attachment.filename == "qwen-image-1234.png"
    assert read_png_header(attachment.data) == (1664, 928)
    [embed] = message.embeds
    assert embed["image"]["url"] == "attachment://qwen-image-1234.png"
    assert embed["description"] == "a lighthouse at dusk, oil painting"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields == {
        "Negative prompt": "blurry, text",
        "Size": "1664×928",
        "Seed": "`1234`",
        "Model": "qwen-image-plus",
        "Prompt rewriting": "Off",
    }
    assert "alice" in embed["author"]["name"]
    assert not message.ephemeral
    assert message.allowed_mentions == {"parse": []}

    await bots.wait_delivered(1)
    [row] = await db.generations()
    assert row["status"] == "succeeded"
    assert (row["guild_id"], row["channel_id"], row["member_id"]) == (world.guild.id, world.channel.id, world.alice.id)
    assert (row["size"], row["seed"], row["prompt_extend"], row["model"]) == ("1664*928", 1234, 0, "qwen-image-plus")
    assert row["request_id"].startswith("req-")
    assert row["image_bytes"] == len(attachment.data)
    assert row["message_id"] == message.id
    assert row["finished_at"] >= row["started_at"] >= row["requested_at"]


async def test_a_random_seed_is_drawn_sent_and_shown(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    message = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    [request] = qwen.generation_requests
    seed = request.body["parameters"]["seed"]
    assert isinstance(seed, int) and 0 <= seed <= MAX_SEED
    assert request.body["parameters"]["size"] == "1328*1328"
    assert request.body["parameters"]["prompt_extend"] is True
    assert "negative_prompt" not in request.body["parameters"]
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    assert fields["Seed"] == f"`{seed}` (random)"
    assert message.attachments[0].filename == f"qwen-image-{seed}.png"
    assert (await db.generations())[0]["seed"] == seed


async def test_the_acknowledgement_comes_before_any_network_work(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    qwen.hold()
    interaction = await imagine(discord_server, world.alice, world.channel)
    ack = await interaction.wait_ack()
    assert ack.elapsed < 3
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    assert interaction.followups == []
    qwen.release()
    assert (await interaction.wait_answer()).attachments


async def test_a_long_prompt_full_of_markdown_and_mentions_stays_within_limits_and_pings_nobody(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    prompt = ("@everyone <@" + str(world.bob.id) + "> **bold** _it_ `code` ~~s~~ ||x|| > q \\ ")[:100] * 8
    negative = "*_`|~>" * 83  # 498 characters that all need escaping
    interaction = await imagine(discord_server, world.alice, world.channel, prompt[:800], negative_prompt=negative)
    message = await interaction.wait_answer()
    assert discord_server.errors == []
    assert message.attachments
    embed = message.embeds[0]
    assert len(embed["description"]) <= 4096
    assert all(len(f["value"]) <= 1024 for f in embed["fields"])
    assert "\\*\\*bold\\*\\*" in embed["description"]
    assert not message.pings_everyone()
    assert message.pinged_user_ids() == set()
    assert qwen.generation_requests[0].body["input"]["messages"][0]["content"][0]["text"] == prompt[:800].strip()


@pytest.mark.parametrize(
    ("status", "code", "api_message", "says"),
    [
        (400, "DataInspectionFailed", "Input data may contain inappropriate content.", "content filter"),
        (400, "IPInfringementSuspect", "Input data is suspected of IP infringement.", "protected character"),
        (429, "Throttling.RateQuota", "Requests rate limit exceeded.", "busy right now"),
        (500, "InternalError", "An internal error has occured.", "had a problem"),
        (401, "InvalidApiKey", "Invalid API-key provided.", "tell a server moderator"),
        (
            400,
            "Arrearage",
            "Access denied, please make sure your account is in good standing.",
            "tell a server moderator",
        ),
    ],
)
async def test_api_failures_end_in_a_specific_friendly_message(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    caplog: pytest.LogCaptureFixture,
    status: int,
    code: str,
    api_message: str,
    says: str,
    db: TestDatabase,
) -> None:
    qwen.fail_next(status, code, api_message, times=10, headers={"Retry-After": "0"})
    message = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    assert says in message.content
    assert message.attachments == [] and message.embeds == []
    assert code not in message.content  # details stay in the log
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("failed", code)
    assert row["request_id"].startswith("req-injected")
    assert code in caplog.text
    assert "Ignoring exception" not in caplog.text


async def test_throttled_then_successful(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    qwen.fail_next(429, "Throttling.RateQuota", "Requests rate limit exceeded.", times=2, headers={"Retry-After": "0"})
    message = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    assert message.attachments
    assert [r.answered for r in qwen.generation_requests] == [429, 429, 200]
    assert (await db.generations())[0]["status"] == "succeeded"


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("html", "couldn't fetch it"),
        ("too_large", "larger than this channel's upload limit"),
        ("host_not_allowed", "couldn't fetch it"),
        ("https_to_loopback_name", "couldn't fetch it"),
    ],
)
async def test_downloads_that_are_not_a_safe_png_are_refused(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    case: str,
    says: str,
    db: TestDatabase,
) -> None:
    limit = 10 * 1024 * 1024
    if case == "html":
        qwen.add_file("page.html", b"<!doctype html><p>Access denied</p>", "text/html")
        qwen.next_image_url(lambda _: qwen.oss_url("page.html"))
    elif case == "too_large":
        limit = 2048  # the interaction says how large an upload may be
        qwen.add_file("big.png", make_png(1328, 1328) + b"\0" * 4096, "image/png")
        qwen.next_image_url(lambda _: qwen.oss_url("big.png"))
    elif case == "host_not_allowed":
        qwen.next_image_url(lambda url: url.replace("127.0.0.1", "127.0.0.2"))
    else:
        qwen.next_image_url(lambda url: url.replace("http://127.0.0.1", "https://localhost"))
    interaction = await imagine(discord_server, world.alice, world.channel, attachment_size_limit=limit)
    message = await interaction.wait_answer()
    assert says in message.content
    assert message.attachments == []
    [row] = await db.generations()
    assert row["status"] == "failed"
    assert row["error_code"] in {"ImageFetchFailed", "ImageTooLarge"}


async def test_an_expired_token_falls_back_to_a_channel_post(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, bots: BotRunner, db: TestDatabase
) -> None:
    qwen.hold()
    interaction = await imagine(discord_server, world.alice, world.channel, seed=9)
    await interaction.wait_ack()
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    discord_server.expire_token(interaction)
    qwen.release()

    def channel_post() -> FakeMessage | None:
        return next((m for m in world.channel.messages if m.interaction_id is None and m.attachments), None)

    await discord_server.wait_for(lambda: channel_post() is not None)
    post = channel_post()
    assert post is not None
    assert post.content.startswith(world.alice.mention)
    assert post.attachments[0].filename == "qwen-image-9.png"
    assert post.pinged_user_ids() == {world.alice.id}
    assert not post.pings_everyone()
    assert any(code == 50027 for _, code, _ in interaction.errors)
    await bots.wait_delivered(1)
    assert (await db.generations())[0]["message_id"] == post.id


async def test_a_blank_prompt_is_refused_privately_and_never_reaches_the_api(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot, db: TestDatabase
) -> None:
    interaction = await imagine(discord_server, world.alice, world.channel, "   ")
    ack = await interaction.wait_ack()
    assert ack.ephemeral
    message = await interaction.wait_answer()
    assert "can't be empty" in message.content
    assert message.ephemeral
    assert qwen.generation_requests == []
    assert await db.generations() == []


async def test_fifty_requests_at_once_are_all_delivered_without_upstream_throttling(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner, db: TestDatabase
) -> None:
    await bots.start(MAX_JOBS_PER_GUILD="50")
    members = [world.guild.add_member(name=f"member{i}", permissions=MEMBER_PERMISSIONS) for i in range(50)]
    interactions = [
        await imagine(discord_server, member, world.channel, f"fox {i}") for i, member in enumerate(members)
    ]
    messages = [await ix.wait_answer(timeout=60) for ix in interactions]
    assert [m.content for m in messages if not m.attachments] == []
    assert qwen.throttled == 0 and qwen.max_in_flight <= 2
    assert all(r["status"] == "succeeded" for r in await db.generations())


async def test_commands_are_synced_again_only_when_they_change(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    await bots.start()
    await bots.stop()
    await bots.start()
    assert discord_server.sync_calls == {None: 1}
    await bots.stop()
    # Development mode: the same commands, synced to one guild instead (instant for its members).
    await bots.start(COMMAND_GUILD_IDS=str(world.guild.id))
    assert discord_server.sync_calls == {None: 1, world.guild.id: 1}
    assert {c["name"] for c in discord_server.synced_commands[world.guild.id]} >= {"imagine", "limits", "Remix image"}
    answer = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    assert answer.attachments
