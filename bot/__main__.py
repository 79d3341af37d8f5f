"""`python -m bot`: read the settings, then run the bot until it is stopped.
`python -m bot check`: check the settings, the token, the API key and the database, then exit.
`python -m bot migrate --from-sqlite PATH`: copy a SQLite database into the PostgreSQL of DATABASE_URL."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import discord
from dotenv import load_dotenv

from bot import check, migrate
from bot.app import run
from bot.db import DatabaseSetupError
from bot.db.lock import DatabaseInUse
from bot.logs import configure_logging
from bot.settings import SettingsError, load_settings

EXIT_LOGIN = 1
EXIT_CONFIG = 2
EXIT_DATABASE_IN_USE = 3


def _check(args: Sequence[str], env: Mapping[str, str]) -> int:
    if args:
        print(USAGE, file=sys.stderr)
        return EXIT_CONFIG
    return check.main(env)


#: `python -m bot <command> [arguments]`: each takes its arguments and the environment, and returns
#: the exit status.
COMMANDS: dict[str, Callable[[Sequence[str], Mapping[str, str]], int]] = {"check": _check, "migrate": migrate.main}
USAGE = f"usage: python -m bot [{' | '.join(COMMANDS)}]"


def main(argv: list[str] | None = None) -> int:
    """Run the bot, or the command named in `argv`; return the process exit status."""
    args = sys.argv[1:] if argv is None else argv
    # The .env of the directory the bot is started from; real environment variables win.
    load_dotenv(Path.cwd() / ".env", override=False)
    if not args:
        return run_bot(os.environ)
    command = COMMANDS.get(args[0])
    if command is None:
        print(USAGE, file=sys.stderr)
        return EXIT_CONFIG
    return command(args[1:], os.environ)


def run_bot(env: Mapping[str, str]) -> int:
    """Start the bot and run it until it is stopped."""
    try:
        settings = load_settings(env)
    except SettingsError as error:
        print(f"qwen-imagine: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(
        settings.log_level_number,
        secrets=(settings.discord_token.reveal(), settings.dashscope_api_key.reveal(), *settings.database_secrets),
    )
    try:
        asyncio.run(run(settings))
    except discord.LoginFailure:
        print("qwen-imagine: Discord rejected DISCORD_TOKEN: check the bot token.", file=sys.stderr)
        return EXIT_LOGIN
    except discord.ConnectionClosed as error:
        print(f"qwen-imagine: {gateway_refusal(error)}", file=sys.stderr)
        return EXIT_CONFIG if error.code in (SHARD_INVALID, SHARDING_REQUIRED) else EXIT_LOGIN
    except DatabaseSetupError as error:
        print(f"qwen-imagine: DATABASE_URL: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except DatabaseInUse as error:
        print(f"qwen-imagine: {error}", file=sys.stderr)
        return EXIT_DATABASE_IN_USE
    except KeyboardInterrupt:
        pass
    return 0


#: Gateway close codes about shards: the shard settings are wrong, or Discord wants the bot sharded.
SHARD_INVALID, SHARDING_REQUIRED = 4010, 4011


def gateway_refusal(error: discord.ConnectionClosed) -> str:
    """Why Discord closed the gateway for good, in one line, with what to change."""
    if error.code == SHARDING_REQUIRED:
        return (
            "Discord requires sharding for this many servers (4011 Sharding required): set SHARD_COUNT, "
            "about one shard per 1,000 servers (see Sharding in the README)."
        )
    if error.code == SHARD_INVALID:
        return "Discord refused the shard settings (4010 Invalid shard): check SHARD_COUNT and SHARD_IDS."
    reason = f": {error.reason}" if error.reason else ""
    return f"Discord closed the gateway connection (code {error.code}{reason})."


if __name__ == "__main__":
    sys.exit(main())
