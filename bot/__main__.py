"""`python -m bot`: read the settings, then run the bot until it is stopped."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import discord
from dotenv import load_dotenv

from bot import migrate
from bot.app import run
from bot.db import DatabaseSetupError
from bot.logs import configure_logging
from bot.settings import SettingsError, load_settings

EXIT_CONFIG = 2
EXIT_LOGIN = 1


def main() -> int:
    """Start the bot (or run a subcommand); return the process exit status."""
    # The .env of the directory the bot is started from; real environment variables win.
    load_dotenv(Path.cwd() / ".env", override=False)
    if sys.argv[1:2] == ["migrate"]:
        return migrate.main(sys.argv[2:], os.environ)
    try:
        settings = load_settings(os.environ)
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
    except DatabaseSetupError as error:
        print(f"qwen-imagine: DATABASE_URL: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
