"""Settings: defaults, validation, and secrets that never print themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import REGION_ROOTS, Secret, SettingsError, load_settings
from bot.sizes import DEFAULT_SIZES, parse_size_table

REQUIRED = {"DISCORD_TOKEN": "discord-secret-token", "DASHSCOPE_API_KEY": "sk-secret-key"}


def test_defaults() -> None:
    settings = load_settings(REQUIRED)
    assert settings.dashscope_region == "intl"
    assert settings.dashscope_base_url == REGION_ROOTS["intl"]
    assert settings.result_hosts == ("*.aliyuncs.com",)
    assert settings.model == "qwen-image-plus"
    assert settings.database_path == Path("data/qwen-imagine.sqlite3")
    assert settings.discord_api_base_url is None and settings.discord_gateway_url is None
    assert settings.command_guild_ids == ()
    assert settings.log_level == "INFO"
    assert settings.sizes == DEFAULT_SIZES and settings.default_size == "1328*1328"
    assert (settings.max_concurrency, settings.max_submits_per_second, settings.max_retries) == (2, 2.0, 3)
    assert (settings.use_async_tasks, settings.poll_seconds) == (False, 3.0)
    assert (settings.max_jobs_per_member, settings.max_jobs_per_guild, settings.shutdown_grace_seconds) == (3, 30, 25.0)
    assert settings.usage_retention_days == 90
    assert [(limit.scope.value, limit.window.value, limit.max_count) for limit in settings.default_limits] == [
        ("member", "hour", 5),
        ("member", "day", 20),
        ("server", "day", 200),
    ]


def test_region_picks_the_api_root_and_an_override_wins() -> None:
    assert load_settings({**REQUIRED, "DASHSCOPE_REGION": "cn"}).dashscope_base_url == REGION_ROOTS["cn"]
    settings = load_settings(
        {**REQUIRED, "DASHSCOPE_REGION": "cn", "DASHSCOPE_BASE_URL": "http://127.0.0.1:8080/api/v1/"}
    )
    assert settings.dashscope_base_url == "http://127.0.0.1:8080/api/v1"


def test_lists_are_parsed() -> None:
    settings = load_settings(
        {
            **REQUIRED,
            "COMMAND_GUILD_IDS": " 123, 456 ,",
            "DASHSCOPE_RESULT_HOSTS": "*.aliyuncs.com, 127.0.0.1",
            "QWEN_IMAGE_SIZES": "1664*928,1472*1104,1328*1328,1104*1472,928*1664",
            "QWEN_IMAGE_DEFAULT_SIZE": "1664*928",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.command_guild_ids == (123, 456)
    assert settings.result_hosts == ("*.aliyuncs.com", "127.0.0.1")
    assert [s.choice_name for s in settings.sizes][1] == "Landscape 4:3 (1472×1104)"
    assert settings.default_size == "1664*928"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"DASHSCOPE_API_KEY": "k"}, "DISCORD_TOKEN"),
        ({"DISCORD_TOKEN": "t", "DASHSCOPE_API_KEY": "  "}, "DASHSCOPE_API_KEY"),
        ({**REQUIRED, "DASHSCOPE_REGION": "eu"}, "DASHSCOPE_REGION"),
        ({**REQUIRED, "QWEN_IMAGE_MODEL": "dall-e"}, "QWEN_IMAGE_MODEL"),
        ({**REQUIRED, "DASHSCOPE_BASE_URL": "dashscope.example"}, "DASHSCOPE_BASE_URL"),
        ({**REQUIRED, "DISCORD_GATEWAY_URL": "http://127.0.0.1/gw"}, "DISCORD_GATEWAY_URL"),
        ({**REQUIRED, "COMMAND_GUILD_IDS": "12,abc"}, "COMMAND_GUILD_IDS"),
        ({**REQUIRED, "DASHSCOPE_RESULT_HOSTS": "https://x.example/"}, "DASHSCOPE_RESULT_HOSTS"),
        ({**REQUIRED, "QWEN_IMAGE_SIZES": "1328x1328"}, "QWEN_IMAGE_SIZES"),
        ({**REQUIRED, "QWEN_IMAGE_DEFAULT_SIZE": "1024*1024"}, "QWEN_IMAGE_DEFAULT_SIZE"),
        ({**REQUIRED, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({**REQUIRED, "DASHSCOPE_MAX_CONCURRENCY": "0"}, "DASHSCOPE_MAX_CONCURRENCY"),
        ({**REQUIRED, "DASHSCOPE_API_MODE": "batch"}, "DASHSCOPE_API_MODE"),
        ({**REQUIRED, "DASHSCOPE_POLL_SECONDS": "soon"}, "DASHSCOPE_POLL_SECONDS"),
        ({**REQUIRED, "DEFAULT_LIMITS": "member/hour"}, "DEFAULT_LIMITS"),
        ({**REQUIRED, "MAX_JOBS_PER_MEMBER": "0"}, "MAX_JOBS_PER_MEMBER"),
        ({**REQUIRED, "SHUTDOWN_GRACE_SECONDS": "-1"}, "SHUTDOWN_GRACE_SECONDS"),
        ({**REQUIRED, "PROCESS_HEARTBEAT_SECONDS": "0"}, "PROCESS_HEARTBEAT_SECONDS"),
        ({**REQUIRED, "PROCESS_STALE_SECONDS": "9"}, "PROCESS_STALE_SECONDS"),
    ],
)
def test_bad_settings_name_the_setting(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert caught.value.name == name
    assert str(caught.value).startswith(f"{name}: ")


def test_secrets_never_print_themselves() -> None:
    settings = load_settings(REQUIRED)
    shown = repr(settings) + str(settings) + f"{settings.discord_token}"
    assert "discord-secret-token" not in shown and "sk-secret-key" not in shown
    assert settings.discord_token.reveal() == "discord-secret-token"
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


def test_size_table_labels_unnamed_sizes_by_ratio() -> None:
    sizes = parse_size_table("1472*1140, Poster=1140*1472, 1000*300")
    assert [s.label for s in sizes] == ["Landscape 4:3", "Poster", "10:3"]
    with pytest.raises(ValueError, match="twice"):
        parse_size_table("1328*1328,1328*1328")
