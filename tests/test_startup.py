"""`python -m bot` as a process: configuration errors, a rejected token, secrets kept out of the log."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

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


async def read_until(process: asyncio.subprocess.Process, text: str, timeout: float = 30) -> str:
    """Read the process's log up to and including the first line containing `text`; return what was read."""
    assert process.stderr is not None
    read: list[str] = []
    async with asyncio.timeout(timeout):
        while not read or text not in read[-1]:
            line = await process.stderr.readline()
            if not line:
                raise AssertionError(f"the process ended before logging {text!r}:\n{''.join(read)[-3000:]}")
            read.append(line.decode())
    return "".join(read)


async def finish(process: asyncio.subprocess.Process, timeout: float = 30) -> str:
    """Wait for the process to exit; return the rest of its log."""
    _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    return stderr.decode()


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


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def is_log_line(line: str) -> bool:
    """A line the bot's log formatter wrote (a traceback's lines are not)."""
    return re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ", line) is not None


async def test_the_start_up_log_says_nothing_about_voice(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, world: World
) -> None:
    process = await spawn_bot(clean_env(**bot_env), tmp_path)
    try:
        log = await read_until(process, "invite the bot with")
        await discord_server.wait_ready(timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        log += await finish(process)
    assert process.returncode == 0, log[-2000:]
    assert "voice" not in log.lower()


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL takes several processes
async def test_a_second_process_on_the_same_database_exits_3_with_one_line(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, world: World
) -> None:
    env = clean_env(**bot_env)
    first = await spawn_bot(env, tmp_path)
    try:
        await read_until(first, "invite the bot with")
        code, stderr = await run_bot_process(env, tmp_path, timeout=15)
        assert code == 3
        assert stderr.splitlines() == [
            f"qwen-imagine: another bot process is using the database {bot_env['DATABASE_PATH']}; "
            "stop it first (or use PostgreSQL for several processes)."
        ]
    finally:
        first.kill()  # SIGKILL: the lock goes with the process
        await first.wait()
    third = await spawn_bot(env, tmp_path)
    try:
        await read_until(third, "invite the bot with")
    finally:
        third.send_signal(signal.SIGTERM)
        log = await finish(third)
    assert third.returncode == 0, log[-2000:]


async def test_an_unreachable_discord_is_retried_one_line_per_attempt_until_sigterm(
    tmp_path: Path, bot_env: dict[str, str]
) -> None:
    unreachable = f"http://127.0.0.1:{closed_port()}/api/v10"
    process = await spawn_bot(clean_env(**{**bot_env, "DISCORD_API_BASE_URL": unreachable}), tmp_path)
    try:
        log = await read_until(process, "cannot reach Discord")
        log += await read_until(process, "cannot reach Discord")  # it tried again
    finally:
        process.send_signal(signal.SIGTERM)
        log += await finish(process, timeout=10)
    assert process.returncode == 0, log[-2000:]
    assert "Traceback" not in log
    assert all(is_log_line(line) for line in log.splitlines()), log
    attempts = [line for line in log.splitlines() if "cannot reach Discord" in line]
    assert f"cannot reach Discord at {unreachable} (ClientConnectorError: Cannot connect to host" in attempts[0]
    assert "retrying in 1 s" in attempts[0] and "retrying in 2 s" in attempts[1]


async def test_an_unreachable_gateway_is_one_line_per_attempt_and_sigterm_still_stops_at_once(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, world: World
) -> None:
    unreachable = f"ws://127.0.0.1:{closed_port()}/"
    process = await spawn_bot(clean_env(**{**bot_env, "DISCORD_GATEWAY_URL": unreachable}), tmp_path)
    try:
        log = await read_until(process, "cannot reach Discord's gateway")
    finally:
        process.send_signal(signal.SIGTERM)
        log += await finish(process, timeout=10)
    assert process.returncode == 0, log[-2000:]
    assert "Traceback" not in log
    assert all(is_log_line(line) for line in log.splitlines()), log


async def test_sigterm_in_the_middle_of_the_gateway_handshake_exits_0_quietly(
    tmp_path: Path, bot_env: dict[str, str], discord_server: FakeDiscord, world: World
) -> None:
    discord_server.gateway.greeting.clear()  # the bot's socket is open, its HELLO not yet sent
    process = await spawn_bot(clean_env(**bot_env), tmp_path)
    try:
        log = await read_until(process, "invite the bot with")
        await discord_server.wait_for(lambda: discord_server.gateway.sockets)
    finally:
        process.send_signal(signal.SIGTERM)
        log += await finish(process)
    assert process.returncode == 0, log[-2000:]
    assert "Traceback" not in log
