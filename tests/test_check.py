"""`python -m bot check` as a process, against the fakes: one line per check, nothing paid for."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from bot.db.database import load_migrations
from bot.db.postgres.connection import location
from bot.lanes import fingerprint
from tests.conftest import BotRunner, World
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen
from tests.test_startup import clean_env, closed_port


async def run_check(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, list[str], str]:
    """`python -m bot check` (or `args`); return the exit status, stdout's lines and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *(args or ("check",)),
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode().splitlines(), stderr.decode()


def line_of(lines: list[str], name: str) -> str:
    [line] = [line for line in lines if line[5:].startswith(name)]
    return line


def database_shown(env: dict[str, str]) -> str:
    """How the check names the database: the SQLite file, or PostgreSQL's host and database (no password)."""
    return location(env["DATABASE_URL"]) if "DATABASE_URL" in env else env["DATABASE_PATH"]


#: Tests about the SQLite file itself (its folder, its process lock).
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


async def test_all_checks_pass_print_the_invite_and_pay_for_nothing(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, qwen: FakeQwen, backend: str
) -> None:
    code, lines, stderr = await run_check(clean_env(**bot_env), tmp_path)
    assert code == 0, (lines, stderr)
    assert lines[0] == "ok   settings"
    assert line_of(lines, "discord token").startswith(
        f"ok   discord token: logged in as {discord_server.bot_user.username}"
    )
    assert line_of(lines, "image API key") == f"ok   image API key: accepted in region intl ({qwen.base_url})"
    version = len(load_migrations(backend))
    assert line_of(lines, "database") == f"ok   database: {database_shown(bot_env)} (schema version {version})"
    assert lines[-1] == (
        f"invite the bot with https://discord.com/oauth2/authorize?client_id={discord_server.application_id}"
        "&scope=bot+applications.commands&permissions=51200"
    )
    assert len(lines) == 5
    assert stderr == ""
    # A task query is free: nothing was generated.
    assert qwen.generation_requests == [] and qwen.task_creations == []
    assert [r.path.rsplit("/", 1)[0] for r in qwen.requests] == ["/api/v1/tasks"]
    database_url = [bot_env["DATABASE_URL"]] if "DATABASE_URL" in bot_env else []
    for secret in (discord_server.token, qwen.api_key, *database_url):
        assert secret not in "\n".join(lines) + stderr


async def test_a_token_discord_rejects_fails_its_line_and_the_others_still_run(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, qwen: FakeQwen
) -> None:
    code, lines, stderr = await run_check(clean_env(**{**bot_env, "DISCORD_TOKEN": "not-the-token"}), tmp_path)
    assert code == 1
    assert line_of(lines, "discord token").startswith("FAIL discord token: Discord rejected the token")
    assert line_of(lines, "image API key").startswith("ok   ")
    assert line_of(lines, "database").startswith("ok   ")
    assert not any("invite" in line for line in lines)
    assert "not-the-token" not in "\n".join(lines) + stderr


async def test_an_api_key_the_api_rejects_fails_its_line(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, qwen: FakeQwen
) -> None:
    code, lines, stderr = await run_check(clean_env(**{**bot_env, "DASHSCOPE_API_KEY": "sk-wrong-region"}), tmp_path)
    assert code == 1
    assert line_of(lines, "image API key") == (
        "FAIL image API key: the image API rejected DASHSCOPE_API_KEY (InvalidApiKey); "
        "a key works only in its own region, and DASHSCOPE_REGION is intl"
    )
    assert line_of(lines, "discord token").startswith("ok   ")
    assert "sk-wrong-region" not in "\n".join(lines) + stderr
    assert qwen.generation_requests == [] and qwen.task_creations == []


@sqlite_only
async def test_a_database_path_that_cannot_be_created_fails_its_line(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, qwen: FakeQwen
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    path = tmp_path / "a-file" / "bot.sqlite3"
    code, lines, _ = await run_check(clean_env(**{**bot_env, "DATABASE_PATH": str(path)}), tmp_path)
    assert code == 1
    assert line_of(lines, "database").startswith(f"FAIL database: cannot open {path} (")


@sqlite_only
async def test_a_database_a_running_bot_holds_fails_its_line(
    tmp_path: Path, bot_env: dict[str, str], bots: BotRunner, world: World
) -> None:
    await bots.start()
    code, lines, _ = await run_check(clean_env(**bot_env), tmp_path)
    assert code == 1
    assert line_of(lines, "database") == (
        f"FAIL database: another bot process is using the database {bot_env['DATABASE_PATH']}; "
        "stop it first (or use PostgreSQL for several processes)."
    )


@pytest.mark.parametrize("backend", ["postgres"])
async def test_an_unreachable_postgresql_fails_its_line_at_once_without_its_password(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, qwen: FakeQwen
) -> None:
    url = f"postgresql://bot:hunter2-secret@127.0.0.1:{closed_port()}/qwen"
    code, lines, stderr = await run_check(clean_env(**{**bot_env, "DATABASE_URL": url}), tmp_path)
    assert code == 1
    assert line_of(lines, "database").startswith("FAIL database: PostgreSQL at 127.0.0.1:")
    assert line_of(lines, "discord token").startswith("ok   ")
    assert "hunter2-secret" not in "\n".join(lines) + stderr


async def test_unreachable_services_fail_their_lines(tmp_path: Path, bot_env: dict[str, str]) -> None:
    port = closed_port()
    discord_url, api_url = f"http://127.0.0.1:{port}/api/v10", f"http://127.0.0.1:{port}/api/v1"
    env = clean_env(**{**bot_env, "DISCORD_API_BASE_URL": discord_url, "DASHSCOPE_BASE_URL": api_url})
    code, lines, _ = await run_check(env, tmp_path)
    assert code == 1
    assert line_of(lines, "discord token").startswith(f"FAIL discord token: cannot reach Discord at {discord_url} (")
    assert line_of(lines, "image API key").startswith(f"FAIL image API key: cannot reach the image API at {api_url} (")


async def test_malformed_settings_exit_2_before_any_other_check(tmp_path: Path) -> None:
    env = clean_env(DISCORD_TOKEN="t", DASHSCOPE_API_KEY="k", DASHSCOPE_REGION="mars")
    code, lines, stderr = await run_check(env, tmp_path)
    assert code == 2
    assert lines == ["FAIL settings: DASHSCOPE_REGION: one of intl, cn (got 'mars')"]
    assert stderr == ""


async def test_an_unknown_command_prints_the_usage_and_exits_2(tmp_path: Path) -> None:
    code, lines, stderr = await run_check(clean_env(), tmp_path, "chek")
    assert code == 2
    assert lines == []
    assert stderr.strip() == "usage: python -m bot [check | migrate]"


async def test_every_api_key_is_checked_and_named_by_its_fingerprint(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, qwen: FakeQwen, backend: str
) -> None:
    second = qwen.add_key("second-account-key")
    qwen.reject_key(second)
    env = clean_env(**{**bot_env, "DASHSCOPE_API_KEY": f"{qwen.api_key},{second}"})
    code, lines, stderr = await run_check(env, tmp_path)
    assert code == 1, (lines, stderr)
    assert line_of(lines, f"image API key {fingerprint(qwen.api_key)}").startswith("ok ")
    assert line_of(lines, f"image API key {fingerprint(second)}").startswith("FAIL")
    output = "\n".join(lines) + stderr
    assert qwen.api_key not in output and second not in output
