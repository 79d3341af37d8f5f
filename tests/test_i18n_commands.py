"""Commands in every language: descriptions synced with their translations, and the answers of /quota,
/limits, /usage, /settings and /edit in the member's language, through the fakes."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.client import QwenImagineBot
from bot.i18n import LOCALES
from bot.i18n import catalogues as catalogue_files
from bot.i18n.catalogues import catalogue_for
from tests.conftest import BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeDiscord, FakeMember
from tests.moderation import text_of
from tests.test_limits import insert_past, outcome

CHAT_INPUT, SUBCOMMAND, SUBCOMMAND_GROUP = 1, 1, 2


def translated(locale: str, key: str) -> str:
    return catalogue_for(locale).gettext(key)


def walk(options: list[dict[str, Any]], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every option below a command, subcommands and their options included, with its path."""
    for option in options:
        where = f"{path} {option['name']}"
        yield where, option
        if option.get("type") in (SUBCOMMAND, SUBCOMMAND_GROUP):
            yield from walk(option.get("options") or [], where)


def synced(discord_server: FakeDiscord) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in discord_server.synced_commands[None] if c.get("type", CHAT_INPUT) == CHAT_INPUT}


@pytest.fixture
def catalogues_patch(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A monkeypatch for the catalogues' place; afterwards they are read again from the real one."""
    yield monkeypatch
    monkeypatch.undo()
    catalogue_for.cache_clear()


# ---- the synced commands ---------------------------------------------------------------------------------


async def test_every_command_option_and_choice_is_described_in_each_language_and_names_stay_english(
    discord_server: FakeDiscord, bot: QwenImagineBot
) -> None:
    commands = synced(discord_server)
    assert {"imagine", "edit", "limits", "usage", "quota", "settings"} <= set(commands)
    described = 0
    for name, command in commands.items():
        assert not command.get("name_localizations"), name
        assert set(command["description_localizations"]) == set(LOCALES), name
        for where, option in walk(command.get("options") or [], name):
            assert not option.get("name_localizations"), where
            localized = option.get("description_localizations") or {}
            assert set(localized) == set(LOCALES), where
            assert all(text and text != option["description"] for text in localized.values()), where
            described += 1
    assert described > 40
    imagine_command = commands["imagine"]
    assert imagine_command["description_localizations"]["ja"] == "Qwen-Image でテキストから画像を作成します"
    options = {o["name"]: o for o in imagine_command["options"]}
    # Values in the English text are filled in each translation too.
    assert options["prompt"]["description"] == "What to draw (up to 800 characters)"
    assert options["prompt"]["description_localizations"]["ja"] == "描きたい内容（800 文字まで）"
    assert options["prompt"]["description_localizations"]["zh-TW"] == "要畫的內容（最多 800 個字元）"


async def test_size_and_limit_choices_are_named_in_each_language_and_keep_their_values(
    discord_server: FakeDiscord, bot: QwenImagineBot
) -> None:
    commands = synced(discord_server)
    sizes = {o["name"]: o for o in commands["imagine"]["options"]}["size"]["choices"]
    square = next(c for c in sizes if c["value"] == "1328*1328")
    assert square["name"] == "Square 1:1 (1328×1328)"
    assert square["name_localizations"] == {
        "ja": "正方形 1:1（1328×1328）",
        "ko": "정사각형 1:1 (1328×1328)",
        "zh-CN": "正方形 1:1（1328×1328）",
        "zh-TW": "正方形 1:1（1328×1328）",
    }
    assert all(set(c["name_localizations"]) == set(LOCALES) for c in sizes)
    limit_set = dict(walk(commands["limits"]["options"], "limits"))["limits set"]
    windows = {o["name"]: o for o in limit_set["options"]}["window"]["choices"]
    assert [c["value"] for c in windows] == ["hour", "day", "week", "month"]
    assert [c["name_localizations"]["ja"] for c in windows] == ["1時間", "1日", "1週間", "1か月"]
    periods = {o["name"]: o for o in commands["usage"]["options"]}["period"]["choices"]
    assert [c["name_localizations"]["zh-CN"] for c in periods] == ["1 天", "1 周", "1 个月"]


async def test_an_operators_own_size_label_is_kept_as_written_in_every_language(
    discord_server: FakeDiscord, bots: BotRunner, world: World
) -> None:
    await bots.start(QWEN_IMAGE_SIZES="Poster=1140*1472,1328*1328")
    sizes = {o["name"]: o for o in synced(discord_server)["imagine"]["options"]}["size"]["choices"]
    assert [c["name"] for c in sizes] == ["Poster (1140×1472)", "Square 1:1 (1328×1328)"]
    assert not sizes[0].get("name_localizations")
    assert sizes[1]["name_localizations"]["ko"] == "정사각형 1:1 (1328×1328)"


async def test_a_changed_translation_is_synced_at_the_next_start_and_an_unchanged_start_syncs_nothing(
    discord_server: FakeDiscord,
    bots: BotRunner,
    world: World,
    tmp_path: Path,
    catalogues_patch: pytest.MonkeyPatch,
) -> None:
    await bots.start()
    await bots.stop()
    await bots.start()
    await bots.stop()
    assert sum(discord_server.sync_calls.values()) == 1  # the second start found nothing changed

    locales = tmp_path / "locales"
    shutil.copytree(catalogue_files.LOCALE_DIR, locales)
    ja = locales / "ja.po"
    old = 'msgstr "あと何枚作成できるか、いつ枠が空くかを表示します"'
    assert old in ja.read_text(encoding="utf-8")
    ja.write_text(
        ja.read_text(encoding="utf-8").replace(old, 'msgstr "残りの画像生成枠を表示します"'), encoding="utf-8"
    )
    catalogues_patch.setattr(catalogue_files, "LOCALE_DIR", locales)
    catalogue_for.cache_clear()

    await bots.start()
    assert sum(discord_server.sync_calls.values()) == 2
    assert synced(discord_server)["quota"]["description_localizations"]["ja"] == "残りの画像生成枠を表示します"
    await bots.stop()
    await bots.start()
    assert sum(discord_server.sync_calls.values()) == 2


# ---- answers in the member's language ------------------------------------------------------------------


@pytest.fixture
async def limited(bots: BotRunner, world: World) -> QwenImagineBot:
    return await bots.start(DEFAULT_LIMITS="member/hour=2,server/day=1500")


async def ask(
    discord_server: FakeDiscord,
    member: FakeMember,
    world: World,
    name: str,
    subcommand: str | None = None,
    /,
    *,
    locale: str,
    **options: Any,
) -> str:
    ix = await discord_server.invoke_command(member, world.channel, name, options, subcommand=subcommand, locale=locale)
    message = await ix.wait_answer()
    assert message.ephemeral
    return text_of(message)


async def test_a_japanese_members_quota_is_in_japanese_with_numbers_written_the_japanese_way(
    discord_server: FakeDiscord, world: World, limited: QwenImagineBot, db: TestDatabase
) -> None:
    await insert_past(db, world, world.alice, [30 * 60])
    shown = await ask(discord_server, world.alice, world, "quota", locale="ja")
    assert "あなたの画像生成枠" in shown
    assert "• 1時間あたり残り **1/2** 枚（あなた）：<t:" in shown and "に 1 枚分空きます（既定）" in shown
    assert "• 1日あたり残り **1,499/1,500** 枚（サーバー全体）：<t:" in shown
    assert "left this" not in shown


async def test_a_member_whose_language_has_no_catalogue_gets_english(
    discord_server: FakeDiscord, world: World, limited: QwenImagineBot
) -> None:
    shown = await ask(discord_server, world.alice, world, "quota", locale="fr")
    assert "Your image quota" in shown
    assert "**2 of 2** left this hour (you)" in shown and "**1,500 of 1,500** left this day (the whole server)" in shown


@pytest.mark.parametrize(
    ("locale", "title"),
    [("ko", "내 이미지 한도"), ("zh-CN", "你的图片额度"), ("zh-TW", "你的影像額度"), ("en-GB", "Your image quota")],
)
async def test_quota_speaks_each_catalogue_language(
    discord_server: FakeDiscord, world: World, limited: QwenImagineBot, locale: str, title: str
) -> None:
    assert (await ask(discord_server, world.alice, world, "quota", locale=locale)).startswith(f"\n{title}")


async def test_a_paused_japanese_member_is_told_in_japanese(
    discord_server: FakeDiscord, world: World, limited: QwenImagineBot
) -> None:
    await ask(discord_server, world.moderator, world, "limits", "block", locale="en-US", member=world.alice)
    shown = await ask(discord_server, world.alice, world, "quota", locale="ja")
    assert shown.strip() == "このサーバーでは、モデレーターがあなたの画像生成を一時停止しています。"


async def test_a_japanese_moderator_reads_and_changes_limits_in_japanese(
    discord_server: FakeDiscord, world: World, limited: QwenImagineBot
) -> None:
    said = await ask(
        discord_server, world.moderator, world, "limits", "set", locale="ja", scope="member", window="week", max=1
    )
    assert said.startswith("制限を設定しました：メンバーごとに1週間あたり 1 枚。")
    shown = await ask(discord_server, world.moderator, world, "limits", "show", locale="ja")
    assert "画像の制限" in shown
    assert "• **メンバーごとに1時間あたり 2 枚**（既定）：まだ誰も使っていません" in shown
    assert "• **サーバー全体で1日あたり 1,500 枚**（既定）：0 枚使用済み" in shown
    assert "• **メンバーごとに1週間あたり 1 枚**（このサーバー独自、既定値なし）" in shown
    assert "失敗した画像は数えません" in shown
    said = await ask(discord_server, world.moderator, world, "limits", "block", locale="ja", member=world.bob)
    assert said.strip() == f"{world.bob.mention} はこのサーバーで画像を生成できなくなりました。"


async def test_a_japanese_moderators_usage_report_and_csv_headers_are_japanese_and_values_stay_plain(
    discord_server: FakeDiscord, world: World, limited: QwenImagineBot
) -> None:
    await outcome(await imagine(discord_server, world.alice, world.channel, seed=5))
    await outcome(await imagine(discord_server, world.alice, world.channel))
    await outcome(await imagine(discord_server, world.alice, world.channel))  # denied: member/hour=2
    ix = await discord_server.invoke_command(
        world.moderator, world.channel, "usage", {"period": "week", "export": True}, locale="ja"
    )
    message = await ix.wait_answer()
    [embed] = message.embeds
    assert embed["title"] == "直近 1 週間の利用状況"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert (fields["画像"], fields["失敗"], fields["拒否"]) == ("2", "0", "1")
    assert fields["推定費用"] == "$0.06（定価）"
    assert fields["モデル別"] == "qwen-image-plus：2 枚、$0.06"
    assert fields["よく使うメンバー"] == f"1. <@{world.alice.id}>: 2"
    assert embed["footer"]["text"] == "CSV：3 行"
    [attachment] = message.attachments
    rows = list(csv.reader(io.StringIO(attachment.data.decode())))
    assert rows[0][:7] == ["ID", "リクエスト日時", "開始日時", "完了日時", "メンバーID", "チャンネルID", "状態"]
    assert rows[0][-1] == "価格（USD）" and len(rows[0]) == 18
    assert [row[6] for row in rows[1:]] == ["succeeded", "succeeded", "denied"]
    assert rows[1][1].endswith("+00:00") and rows[1][10] == "5" and rows[1][-1] == "0.0300"


async def test_a_taiwanese_moderators_settings_are_in_traditional_chinese(
    discord_server: FakeDiscord, world: World, limited: QwenImagineBot
) -> None:
    said = await ask(discord_server, world.moderator, world, "settings", "words add", locale="zh-TW", word="gore")
    assert said.strip() == "包含「gore」的提示詞將被拒絕。"
    shown = await ask(discord_server, world.moderator, world, "settings", "show", locale="zh-TW")
    assert "影像設定" in shown and "影像服務本身的內容過濾一律在這些設定之上生效，且無法放寬。" in shown
    assert "頻道: 所有頻道" in shown
    assert "封鎖字詞: 1/500（見 /settings words list）" in shown
    assert "記錄頻道: 無" in shown
    assert "• 每位成員每小時 2 張（預設）" in shown and "• 全伺服器每天 1,500 張（預設）" in shown
    assert "被禁止的成員: 0" in shown
    assert "包括管理員" in shown


async def test_a_japanese_members_edit_without_an_image_is_refused_in_japanese(
    discord_server: FakeDiscord, world: World, limited: QwenImagineBot
) -> None:
    note = world.channel.add_message(world.bob, "no picture here")
    ix = await discord_server.invoke_message_command(world.alice, note, "Edit image", locale="ja")
    message = await ix.wait_answer()
    assert message.ephemeral and "そのメッセージには編集できる画像が添付されていません。" in message.content


async def test_a_korean_moderator_reads_and_chooses_the_servers_models_in_korean(
    discord_server: FakeDiscord, world: World, bots: BotRunner
) -> None:
    await bots.start(ENABLED_MODELS="qwen-image-plus,qwen-image-max,qwen-image-edit-plus")
    shown = await ask(discord_server, world.moderator, world, "settings", "model show", locale="ko")
    assert shown.strip().startswith("**텍스트→이미지**: qwen-image-plus (정가 장당 US$0.03)")
    assert "**편집**: " in shown and "  사용 가능: " in shown
    said = await ask(
        discord_server, world.moderator, world, "settings", "model text", locale="ko", model="qwen-image-max"
    )
    assert said.strip() == "이 서버의 텍스트→이미지 모델을 qwen-image-max(으)로 바꿨어요 (이전: qwen-image-plus)."
