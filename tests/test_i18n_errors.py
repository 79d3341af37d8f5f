"""Every error and denial a member reads is in the member's language (the server's only when the
member's is unknown), English otherwise. Through the fakes, on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from bot.client import QwenImagineBot
from bot.errors import CannotPostHere, LimitDenied, Localized
from bot.i18n import money, speaking, t
from bot.limits import Limit, Scope, Window
from tests.conftest import BotRunner, World
from tests.fakes.discord import FakeAttachment, FakeChannel, FakeDiscord, FakeMember, FakeMessage
from tests.fakes.qwen import FakeQwen
from tests.moderation import settings
from tests.test_edit import animated_gif, buttons, picture
from tests.test_limits import outcome


async def imagine_in(
    discord_server: FakeDiscord,
    member: FakeMember,
    channel: FakeChannel,
    locale: str,
    prompt: str = "a red fox",
    **options: Any,
) -> tuple[bool, str]:
    """/imagine as `member` whose Discord client speaks `locale`: (admitted, what they read)."""
    interaction = await discord_server.invoke_command(
        member, channel, "imagine", {"prompt": prompt, **options}, locale=locale
    )
    return await outcome(interaction)


async def edit_answer(discord_server: FakeDiscord, world: World, locale: str, **options: Any) -> FakeMessage:
    """/edit as alice whose client speaks `locale`; the answer."""
    interaction = await discord_server.invoke_command(
        world.alice, world.channel, "edit", {"prompt": "make it night", **options}, locale=locale
    )
    return await interaction.wait_answer()


# ---------------------------------------------------------------- Japanese


async def test_a_japanese_member_over_the_rate_limit_reads_the_denial_in_japanese(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner
) -> None:
    await bots.start(DEFAULT_LIMITS="member/hour=2")
    for _ in range(2):
        assert (await imagine_in(discord_server, world.alice, world.channel, "ja"))[0]
    admitted, text = await imagine_in(discord_server, world.alice, world.channel, "ja")
    assert not admitted  # private (outcome checks the denial is ephemeral)
    assert "このサーバーの上限（メンバー1人あたり1時間に2枚）に達しました。" in text
    assert "次の画像は <t:" in text and ":R> から作成できます。" in text
    assert "limit" not in text
    assert len(qwen.generation_requests) == 2


async def test_a_japanese_members_prompt_rejected_by_the_content_filter_is_explained_in_japanese(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    qwen.fail_next(400, "DataInspectionFailed", "Input data may contain inappropriate content.")
    interaction = await discord_server.invoke_command(
        world.alice, world.channel, "imagine", {"prompt": "a red fox"}, locale="ja"
    )
    answer = await interaction.wait_answer()
    assert "画像サービスのコンテンツフィルターにより、このリクエストは拒否されました。" in answer.content
    assert "content filter" not in answer.content and "DataInspectionFailed" not in answer.content


@pytest.mark.parametrize(
    ("status", "code", "locale", "says"),
    [
        (400, "IPInfringementSuspect", "ja", "保護されたキャラクター・ブランド・作品を求めていると判断しました。"),
        (429, "Throttling.RateQuota", "ja", "画像サービスが混み合っています。"),
        (401, "InvalidApiKey", "ja", "サーバーのモデレーターにお知らせください。"),
        (500, "InternalError", "zh-TW", "影像服務在產生影像時發生問題，請稍後再試。"),
        (429, "Throttling.RateQuota", "ko", "지금은 이미지 서비스가 혼잡합니다. 잠시 후 다시 시도해 주십시오."),
    ],
)
async def test_the_image_services_failures_are_explained_in_the_members_language(
    discord_server: FakeDiscord,
    qwen: FakeQwen,
    world: World,
    bot: QwenImagineBot,
    status: int,
    code: str,
    locale: str,
    says: str,
) -> None:
    qwen.fail_next(status, code, "the service's own words", times=10, headers={"Retry-After": "0"})
    interaction = await discord_server.invoke_command(
        world.alice, world.channel, "imagine", {"prompt": "a red fox"}, locale=locale
    )
    answer = await interaction.wait_answer()
    assert says in answer.content
    assert code not in answer.content and "the service's own words" not in answer.content


async def test_a_japanese_members_bad_edit_input_is_named_and_explained_in_japanese(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    answer = await edit_answer(discord_server, world, "ja", image=FakeAttachment("tiny.png", picture(200, 300)))
    assert "画像1（tiny.png）は 200×300 です。各辺は 384 ピクセル以上必要です。" in answer.content
    answer = await edit_answer(
        discord_server, world, "ja", image=FakeAttachment("notes.txt", b"hello there", "text/plain")
    )
    assert "画像1（notes.txt）は画像ではありません。" in answer.content
    assert qwen.edits == []


async def test_a_japanese_member_is_told_in_japanese_how_their_input_was_changed(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    answer = await edit_answer(discord_server, world, "ja", image=FakeAttachment("dance.gif", animated_gif()))
    assert "画像1（dance.gif）はアニメーション画像のため、最初のフレームのみを使用します。" in answer.content
    assert answer.attachments


async def test_a_full_queue_is_explained_in_japanese_with_its_count(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner
) -> None:
    await bots.start(MAX_JOBS_PER_MEMBER="1", MAX_JOBS_PER_GUILD="2")
    qwen.hold()
    await (await discord_server.invoke_command(world.alice, world.channel, "imagine", {"prompt": "a"})).wait_ack()
    admitted, mine = await imagine_in(discord_server, world.alice, world.channel, "ja")
    assert not admitted
    assert "待機中または作成中の画像がすでに1枚あります。" in mine
    await (await discord_server.invoke_command(world.bob, world.channel, "imagine", {"prompt": "b"})).wait_ack()
    admitted, everyone = await imagine_in(discord_server, world.moderator, world.channel, "ja")
    assert not admitted
    assert "このサーバーではすでに2枚の画像が待機中です。数分後にもう一度お試しください。" in everyone
    _, english = await imagine_in(discord_server, world.alice, world.channel, "en-GB")
    assert "You already have 1 image waiting or in progress. Please wait for it to finish" in english
    qwen.release()


# ---------------------------------------------------------------- Korean, Chinese


async def test_a_korean_member_denied_by_a_blocked_word_reads_korean(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    await settings(discord_server, world, "words add", word="gore")
    admitted, text = await imagine_in(discord_server, world.alice, world.channel, "ko", "a gore scene")
    assert not admitted
    assert "프롬프트에 이 서버 관리자가 차단한 표현이 포함되어 있습니다: “gore”." in text
    assert qwen.generation_requests == []


async def test_a_taiwanese_member_in_a_channel_where_generating_is_off_reads_traditional_chinese(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    lounge = world.guild.add_channel("lounge")
    other = world.guild.add_channel("studio")
    await settings(discord_server, world, "channels add", channel=world.channel)
    await settings(discord_server, world, "channels add", channel=other)
    admitted, text = await imagine_in(discord_server, world.alice, lounge, "zh-TW")
    assert not admitted
    assert "此頻道無法產生影像。" in text
    assert f"{world.channel.mention}、{other.mention}" in text  # listed the way Chinese lists
    assert qwen.generation_requests == []


async def test_a_mainland_chinese_member_over_the_budget_reads_simplified_chinese(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner
) -> None:
    await bots.start(MONTHLY_BUDGET_USD="0.03")  # one qwen-image-plus image
    assert (await imagine_in(discord_server, world.alice, world.channel, "zh-CN"))[0]
    admitted, text = await imagine_in(discord_server, world.bob, world.channel, "zh-CN")
    assert not admitted
    with speaking("zh-CN"):
        budget = money(0.03)
    assert budget == "US$0.03"
    assert f"机器人每月的图片预算 {budget} 已用完。预算将于 <t:" in text
    assert "（下月 1 日，UTC）重置。" in text
    assert len(qwen.generation_requests) == 1


async def test_a_member_without_the_permission_is_told_in_their_language(
    discord_server: FakeDiscord, world: World, bot: QwenImagineBot
) -> None:
    denied = await discord_server.invoke_command(
        world.alice, world.channel, "settings", {"model": "qwen-image-edit-plus"}, subcommand="model edit", locale="ja"
    )
    answer = await denied.wait_answer()
    assert answer.ephemeral and "この操作には「サーバー管理」の権限が必要です。" in answer.content


async def test_a_reroll_made_with_another_model_says_so_in_the_members_language(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner
) -> None:
    await bots.start(ENABLED_MODELS="qwen-image,qwen-image-edit-plus", QWEN_IMAGE_MODEL="qwen-image")
    asked = await discord_server.invoke_command(world.alice, world.channel, "imagine", {"prompt": "a"})
    first = await asked.wait_answer()
    await bots.wait_delivered(1)
    await bots.stop()
    await bots.start()
    again = await discord_server.click_button(world.bob, first, buttons(first)["Reroll"], locale="zh-CN")
    second = await again.wait_answer()
    assert "qwen-image 已不再启用，因此这张图片改用 qwen-image-plus 生成。" in second.content


# ---------------------------------------------------------------- which language


async def test_a_member_whose_language_has_no_catalogue_reads_english(
    discord_server: FakeDiscord, world: World, bots: BotRunner
) -> None:
    await bots.start(DEFAULT_LIMITS="member/hour=1")
    assert (await imagine_in(discord_server, world.alice, world.channel, "fr"))[0]
    admitted, text = await imagine_in(discord_server, world.alice, world.channel, "fr")
    assert not admitted
    assert "You've reached this server's limit of 1 image per member per hour. The next image is allowed <t:" in text


async def test_the_members_language_wins_over_the_servers_for_a_reply(
    discord_server: FakeDiscord, world: World, bots: BotRunner
) -> None:
    world.guild.locale = "zh-CN"
    await bots.start(DEFAULT_LIMITS="member/hour=1")
    assert (await imagine_in(discord_server, world.alice, world.channel, "ja"))[0]
    admitted, text = await imagine_in(discord_server, world.alice, world.channel, "ja")
    assert not admitted
    assert "このサーバーの上限（メンバー1人あたり1時間に1枚）に達しました。" in text
    assert "服务器" not in text


async def test_a_member_with_an_unknown_language_in_a_chinese_server_reads_chinese(
    discord_server: FakeDiscord, world: World, bots: BotRunner
) -> None:
    world.guild.locale = "zh-CN"
    await bots.start(DEFAULT_LIMITS="member/hour=1")
    assert (await imagine_in(discord_server, world.alice, world.channel, "fr"))[0]
    admitted, text = await imagine_in(discord_server, world.alice, world.channel, "fr")
    assert not admitted
    assert "你已达到本服务器的限额（每位成员每小时 1 张）。" in text


# ---------------------------------------------------------------- plurals and lists


async def test_a_limit_denial_says_image_or_images_in_english_and_has_one_form_in_japanese(
    discord_server: FakeDiscord, world: World, bots: BotRunner
) -> None:
    await bots.start(DEFAULT_LIMITS="member/hour=1")
    assert (await imagine_in(discord_server, world.alice, world.channel, "en-US"))[0]
    _, one = await imagine_in(discord_server, world.alice, world.channel, "en-US")
    _, one_ja = await imagine_in(discord_server, world.alice, world.channel, "ja")
    await discord_server.invoke_command(
        world.moderator, world.channel, "limits", {"scope": "member", "window": "hour", "max": 2}, subcommand="set"
    )
    assert (await imagine_in(discord_server, world.alice, world.channel, "en-US"))[0]
    _, two = await imagine_in(discord_server, world.alice, world.channel, "en-US")
    _, two_ja = await imagine_in(discord_server, world.alice, world.channel, "ja")
    assert "You've reached this server's limit of 1 image per member per hour." in one
    assert "You've reached this server's limit of 2 images per member per hour." in two
    assert "このサーバーの上限（メンバー1人あたり1時間に1枚）に達しました。" in one_ja
    assert "このサーバーの上限（メンバー1人あたり1時間に2枚）に達しました。" in two_ja


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "You asked for 1,500 images, more than this server's limit of 1,000 images per member per day."),
        ("ja", "1,500枚をリクエストしましたが、このサーバーの上限（メンバー1人あたり1日に1,000枚）を超えています。"),
        ("ko", "1,500장을 요청했지만 이 서버의 한도(멤버당 하루에 1,000장)를 넘습니다."),
    ],
)
def test_counts_in_a_denial_are_written_with_the_locales_digit_grouping(locale: str, expected: str) -> None:
    limit = Limit(Scope.MEMBER, Window.DAY, 1000)
    denied = LimitDenied("deny.more_than_limit", count=1500, limit=Localized(limit.describe))
    with speaking(locale):
        assert denied.user_message == expected


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "missing the Attach Files and Embed Links permissions in this channel"),
        ("ja", "このチャンネルでファイルを添付、埋め込みリンクの権限がありません。"),
        ("ko", "이 채널에서 파일 첨부, 링크 첨부 권한이 없습니다."),
        ("zh-CN", "我在此频道缺少附加文件、嵌入链接权限。"),
        ("zh-TW", "我在此頻道缺少附加檔案、嵌入連結權限。"),
    ],
)
def test_missing_permissions_are_named_and_listed_the_way_each_language_does(locale: str, expected: str) -> None:
    refusal = CannotPostHere(("attach_files", "embed_links"))
    with speaking(locale):
        assert expected in refusal.user_message
    assert str(refusal) == "missing attach_files, embed_links"  # the log's detail stays English


def test_an_error_reads_in_the_locale_in_force_when_it_is_read_not_when_it_was_raised() -> None:
    with speaking("ja"):
        denied = LimitDenied("deny.blocked")
    with speaking("ko"):
        assert denied.user_message == t("deny.blocked")
        assert denied.user_message == "이 서버의 관리자가 회원님의 이미지 생성을 일시 중지했습니다."
    assert "paused image generation" in str(denied)  # the log reads English
