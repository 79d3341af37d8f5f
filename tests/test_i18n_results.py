"""Results, progress, Details, forms, channel fallbacks and recovery notices in the reader's language:
the member's for what answers their interaction, the server's for what is posted without one."""

from __future__ import annotations

import time
from typing import Any

import discord

from bot.client import QwenImagineBot
from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World
from tests.database import TestDatabase
from tests.fakes.discord import FakeAttachment, FakeChannel, FakeDiscord, FakeInteraction, FakeMember, FakeMessage
from tests.fakes.qwen import FakeQwen
from tests.test_edit import picture

MODAL = 9
ATTACH_FILES = discord.Permissions(attach_files=True).value
#: What a member typed, in Japanese and Chinese: shown exactly as typed, in every language.
PROMPT = "夕暮れの灯台と黒猫、油絵風 黄昏时的灯塔"


async def imagine_as(
    discord_server: FakeDiscord,
    member: FakeMember,
    channel: FakeChannel,
    locale: str,
    prompt: str = PROMPT,
    **options: Any,
) -> FakeInteraction:
    """/imagine by `member`, whose Discord client is set to `locale`."""
    return await discord_server.invoke_command(member, channel, "imagine", {"prompt": prompt, **options}, locale=locale)


def buttons(message: FakeMessage) -> dict[str, str]:
    """label -> custom_id of a message's buttons."""
    return {c["label"]: c["custom_id"] for row in message.components for c in row["components"] if c["type"] == 2}


def fields(message: FakeMessage) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0]["fields"]}


def form_labels(modal: dict[str, Any]) -> dict[str, str]:
    """custom_id -> label of a modal's text inputs (in action rows, or in label components)."""
    labels = {}
    for top in modal["components"]:
        for item in top.get("components") or [top.get("component") or {}]:
            if item.get("type") == 4:
                labels[item["custom_id"]] = item.get("label") or top.get("label")
    return labels


def channel_posts(channel: FakeChannel) -> list[FakeMessage]:
    """The bot's own posts in the channel (not interaction responses)."""
    return [m for m in channel.messages if m.interaction_id is None]


async def test_a_japanese_member_follows_the_queue_and_reads_the_result_in_japanese(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    carol, dave = (world.guild.add_member(name=name, permissions=MEMBER_PERMISSIONS) for name in ("carol", "dave"))
    bot = await bots.start()
    qwen.hold()
    for member in (world.alice, world.bob):  # the two slots are busy
        await imagine_as(discord_server, member, world.channel, "en-US", "a red fox")
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 2)

    def shows(ix: FakeInteraction, text: str) -> bool:
        return ix.response_message is not None and text in ix.response_message.content

    second = await imagine_as(discord_server, carol, world.channel, "ja", seed=42)
    await discord_server.wait_for(lambda: bot.services.scheduler.waiting == 1)
    third = await imagine_as(discord_server, dave, world.channel, "ja")
    await discord_server.wait_for(lambda: shows(third, "⏳ 順番待ちです。あなたの前に 1 枚あります。"))
    await discord_server.wait_for(lambda: shows(second, "⏳ 次があなたの番です。"))
    qwen.release(1)
    await discord_server.wait_for(lambda: shows(second, "🎨 画像を生成しています…"))
    qwen.release()

    result = await second.wait_answer()
    [embed] = result.embeds
    assert embed["description"] == PROMPT  # the prompt exactly as typed
    assert fields(result) == {
        "サイズ": "1328×1328",
        "シード": "`42`",
        "モデル": "qwen-image-plus",
        "プロンプトの書き換え": "オン",
    }
    assert embed["author"]["name"] == "carol さんが生成"
    assert embed["footer"]["text"] == "リクエスト: carol · シード 42"
    [row] = [r for r in await db.generations() if r["member_id"] == carol.id]
    assert set(buttons(result)) == {"再生成", "リミックス", "編集", "詳細", "削除"}
    assert buttons(result)["詳細"] == f"qi:details:{row['id']}"
    assert (row["locale"], row["guild_locale"], row["prompt"]) == ("ja", "en-US", PROMPT)
    assert "シード" not in (await third.wait_answer()).content  # dave's result: his own, not a queue note


async def test_a_japanese_member_reads_details_and_the_remix_and_edit_forms_in_japanese(
    discord_server: FakeDiscord, qwen: FakeQwen, bot: QwenImagineBot, bots: BotRunner, world: World
) -> None:
    options: dict[str, Any] = {"negative_prompt": "ぼやけ、文字", "seed": 7, "enhance": True}
    first = await (await imagine_as(discord_server, world.alice, world.channel, "ja", **options)).wait_answer()
    await bots.wait_delivered(1)
    assert fields(first)["ネガティブプロンプト"] == "ぼやけ、文字"

    details = await (
        await discord_server.click_button(world.alice, first, buttons(first)["詳細"], locale="ja")
    ).wait_answer()
    [embed] = details.embeds
    assert details.ephemeral and embed["title"].startswith("画像 #")
    reproduce = (
        f"**プロンプト**\n{PROMPT}\n\n**再現するには**\n```\n/imagine prompt:{PROMPT} negative_prompt:ぼやけ、文字"
    )
    assert embed["description"].startswith(reproduce)
    assert {"ネガティブプロンプト", "サイズ", "シード", "モデル", "プロンプトの書き換え", "リクエスト"} <= set(
        fields(details)
    )
    assert fields(details)["プロンプトの書き換え"] == "オン"
    assert embed["footer"]["text"].startswith("同じシードと同じ設定なら似た画像になります")
    assert "プロンプトの書き換えがオンでした" in embed["footer"]["text"]

    remix = await discord_server.click_button(world.bob, first, buttons(first)["リミックス"], locale="ja")
    assert (await remix.wait_ack()).type == MODAL and remix.modal is not None
    assert remix.modal["title"] == "画像をリミックス"
    assert form_labels(remix.modal) == {
        "prompt": "プロンプト",
        "negative_prompt": "ネガティブプロンプト",
        "seed": "シード（空欄でランダム）",
        "size": "サイズ（幅*高さ）",
        "enhance": "プロンプトの書き換え（on または off）",
    }
    edit = await discord_server.click_button(world.bob, first, buttons(first)["編集"], locale="ja")
    assert (await edit.wait_ack()).type == MODAL and edit.modal is not None
    assert edit.modal["title"] == "画像を編集"
    assert form_labels(edit.modal)["prompt"] == "変更する内容"

    remixed = await (
        await discord_server.submit_modal(world.bob, remix, {"prompt": "夜の灯台"}, locale="ja")
    ).wait_answer()
    assert remixed.content.startswith(f"<@{world.alice.id}> さんの画像をリミックス")
    assert remixed.embeds[0]["description"] == "夜の灯台"


async def test_a_japanese_members_several_image_edit_and_its_menu_are_in_japanese(
    discord_server: FakeDiscord, qwen: FakeQwen, bot: QwenImagineBot, world: World
) -> None:
    options = {"prompt": "猫を冬の景色に", "image": FakeAttachment("a.png", picture()), "count": 2, "seed": 10}
    answer = await (
        await discord_server.invoke_command(world.alice, world.channel, "edit", options, locale="ja")
    ).wait_answer()
    assert answer.content == "シード: 1: `10`, 2: `11`"
    assert [embed["description"] for embed in answer.embeds] == ["猫を冬の景色に"] * 2
    assert answer.embeds[0]["author"]["name"] == "alice さんが編集"
    assert fields(answer)["編集元"] == "画像 1 枚"
    [menu] = [item for row in answer.components for item in row["components"] if item["type"] == 3]
    assert menu["placeholder"] == "画像を選んで編集・リミックス・再生成・詳細表示…"
    assert [option["label"] for option in menu["options"]][:4] == [
        "画像 1 を編集",
        "画像 1 をリミックス",
        "画像 1 を再生成",
        "画像 1 の詳細",
    ]
    assert set(buttons(answer)) == {"削除"}


async def test_a_japanese_member_whose_answer_was_lost_reads_japanese_and_gets_a_retry_button(
    discord_server: FakeDiscord, qwen: FakeQwen, bot: QwenImagineBot, world: World
) -> None:
    qwen.drop_next()
    notice = await (await imagine_as(discord_server, world.alice, world.channel, "ja")).wait_answer()
    assert set(buttons(notice)) == {"再試行"}
    qwen.drop_next()
    options = {"prompt": "猫を冬の景色に", "image": FakeAttachment("a.png", picture())}
    lost_edit = await (
        await discord_server.invoke_command(world.alice, world.channel, "edit", options, locale="ja")
    ).wait_answer()
    assert lost_edit.content.startswith("⚠️ 編集中に画像サービスからの応答が途絶えました。")
    assert lost_edit.components == []


async def test_a_chinese_servers_channel_fallback_is_in_chinese_for_an_english_member(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    world.guild.locale = "zh-CN"
    await bots.start()
    qwen.hold()
    interaction = await imagine_as(discord_server, world.alice, world.channel, "en-US", seed=9)
    await interaction.wait_ack()
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 1)
    discord_server.expire_token(interaction)  # fifteen minutes later: the image goes to the channel
    qwen.release()
    await bots.wait_delivered(1)

    [post] = channel_posts(world.channel)
    assert post.attachments and post.pinged_user_ids() == {world.alice.id}
    assert post.embeds[0]["description"] == PROMPT
    assert fields(post) == {"尺寸": "1328×1328", "种子": "`9`", "模型": "qwen-image-plus", "提示词改写": "开"}
    assert set(buttons(post)) == {"重新生成", "重混", "编辑", "详情", "删除"}
    [row] = await db.generations()
    assert (row["locale"], row["guild_locale"], row["message_id"]) == ("en-US", "zh-CN", post.id)


async def test_an_english_member_in_a_chinese_server_is_answered_in_english(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    world.guild.locale = "zh-CN"
    await bots.start()
    result = await (await imagine_as(discord_server, world.alice, world.channel, "en-US")).wait_answer()
    assert set(fields(result)) == {"Size", "Seed", "Model", "Prompt rewriting"}
    assert set(buttons(result)) == {"Reroll", "Remix", "Edit", "Details", "Delete"}


async def test_a_french_member_gets_english(
    discord_server: FakeDiscord, qwen: FakeQwen, bot: QwenImagineBot, world: World
) -> None:
    result = await (await imagine_as(discord_server, world.alice, world.channel, "fr", seed=3)).wait_answer()
    assert result.embeds[0]["description"] == PROMPT
    assert fields(result) == {"Size": "1328×1328", "Seed": "`3`", "Model": "qwen-image-plus", "Prompt rewriting": "On"}
    assert set(buttons(result)) == {"Reroll", "Remix", "Edit", "Details", "Delete"}
    assert result.embeds[0]["author"]["name"] == "alice imagined"


async def test_recovery_after_a_restart_speaks_the_servers_language(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World, db: TestDatabase
) -> None:
    await bots.start()
    await bots.stop()
    insert = (
        "INSERT INTO generations (guild_id, channel_id, member_id, requested_at, status, model, size, seed, "
        "prompt_extend, prompt, locale, guild_locale) "
        "VALUES (?, ?, ?, ?, ?, 'qwen-image-plus', '1328*1328', 3, 0, ?, 'en-US', ?)"
    )
    guild, channel, now = world.guild.id, world.channel.id, time.time()
    # Too old to make again: the member is told, in the server's language (Taiwan).
    await db.execute(insert, (guild, channel, world.alice.id, now - 7 * 3600, "running", "stale", "zh-TW"))
    # Recent: made again and posted, in the server's language (Japanese).
    await db.execute(insert, (guild, channel, world.bob.id, now - 60, "queued", PROMPT, "ja"))
    await bots.start()
    await bots.wait_delivered(1)
    await discord_server.wait_for(lambda: len(channel_posts(world.channel)) == 2)

    [notice] = [p for p in channel_posts(world.channel) if not p.attachments]
    assert notice.pinged_user_ids() == {world.alice.id}
    assert "要求的影像因機器人重新啟動而未能完成。這不會計入你的使用限額，請重新要求。" in notice.content
    [resumed] = [p for p in channel_posts(world.channel) if p.attachments]
    assert resumed.content == f"<@{world.bob.id}> ボットの再起動前にリクエストされた画像です："
    assert resumed.embeds[0]["description"] == PROMPT
    assert fields(resumed)["シード"] == "`3`"
    assert set(buttons(resumed)) == {"再生成", "リミックス", "編集", "詳細", "削除"}


async def test_a_refusal_names_the_missing_permission_in_the_members_language(
    discord_server: FakeDiscord, qwen: FakeQwen, bot: QwenImagineBot, world: World, db: TestDatabase
) -> None:
    [role] = world.guild.me.roles
    world.channel.set_permissions(role, deny=ATTACH_FILES)
    refused = await (await imagine_as(discord_server, world.alice, world.channel, "ja")).wait_answer()
    assert refused.ephemeral and "ファイルを添付" in refused.content
    [row] = await db.generations()
    assert (row["status"], row["error_code"]) == ("denied", "missing_permissions:attach_files")
    assert qwen.generation_requests == []


async def test_log_channel_posts_speak_the_servers_language(
    discord_server: FakeDiscord, bot: QwenImagineBot, world: World
) -> None:
    world.guild.locale = "zh-CN"
    modlog = world.guild.add_channel("mod-log")
    await (
        await discord_server.invoke_command(
            world.moderator, world.channel, "settings", {"channel": modlog}, subcommand="log-channel", locale="ja"
        )
    ).wait_answer()
    await (
        await discord_server.invoke_command(
            world.moderator, world.channel, "settings", {"word": "gore"}, subcommand="words add", locale="ja"
        )
    ).wait_answer()
    await discord_server.wait_for(lambda: len(modlog.visible_messages()) == 2)
    posts = [post.content for post in modlog.visible_messages()]
    assert any(f"{world.moderator.mention} 更改了 **blocked word**：无 → gore" in post for post in posts)
