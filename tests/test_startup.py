"""`python -m bot` as a process: configuration errors, a rejected token, secrets kept out of the log."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bot.settings import load_settings
from tests.conftest import World, imagine
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen

REPO = Path(__file__).resolve().parent.parent


def clean_env(**values: str) -> dict[str, str]:
    """A minimal environment: no inherited bot settings, the checkout importable."""
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **values}


async def spawn_bot(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    """`python -m bot` in `cwd` with exactly `env`; its stderr (the log) is piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_bot_process(env: dict[str, str], cwd: Path, timeout: float = 30) -> tuple[int, str]:
    process = await spawn_bot(env, cwd)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_a_missing_setting_stops_start_up_with_one_clear_line(tmp_path: Path) -> None:
    code, stderr = await run_bot_process(clean_env(DASHSCOPE_API_KEY="k"), tmp_path)
    assert code == 2
    assert stderr.strip().splitlines() == [
        "qwen-imagine: configuration error: DISCORD_TOKEN: required: your bot's token from the Discord developer portal"
    ]


async def test_a_malformed_setting_in_dotenv_is_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DISCORD_TOKEN=t\nDASHSCOPE_API_KEY=k\nDASHSCOPE_REGION=mars\n")
    code, stderr = await run_bot_process(clean_env(), tmp_path)
    assert code == 2
    assert "Traceback" not in stderr
    assert stderr.strip() == "qwen-imagine: configuration error: DASHSCOPE_REGION: one of intl, cn (got 'mars')"


async def test_a_token_discord_rejects_exits_1_with_one_line(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord
) -> None:
    env = clean_env(**{**bot_env, "DISCORD_TOKEN": "not-the-token"})
    code, stderr = await run_bot_process(env, tmp_path)
    assert code == 1
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "qwen-imagine: Discord rejected DISCORD_TOKEN: check the bot token."
    assert "not-the-token" not in stderr


async def test_secrets_stay_out_of_the_log_even_at_debug(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, qwen: FakeQwen, world: World
) -> None:
    env = clean_env(**bot_env, LOG_LEVEL="DEBUG")
    process = await spawn_bot(env, tmp_path)
    try:
        await discord_server.wait_ready(timeout=30)
        interaction = await imagine(discord_server, world.alice, world.channel)
        assert (await interaction.wait_answer(timeout=30)).attachments
    finally:
        process.send_signal(signal.SIGTERM)
        _, raw = await asyncio.wait_for(process.communicate(), 30)
    log = raw.decode()
    assert process.returncode == 0, log[-2000:]
    assert "invite the bot with https://discord.com/oauth2/authorize?client_id=" in log
    assert "permissions=51200" in log and "scope=bot+applications.commands" in log
    assert "INTERACTION_CREATE" in log  # DEBUG really was on
    database_secrets = load_settings(env).database_secrets  # the PostgreSQL URL and its password
    for secret in (discord_server.token, qwen.api_key, interaction.token, *filter(None, database_secrets)):
        assert secret not in log
