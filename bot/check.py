"""`python -m bot check`: before the first start, check the settings, the Discord token, the image
API key and the database, one line each, and print the invite URL. Nothing is paid for.

The image API key is checked by asking for a task that does not exist (`GET {root}/tasks/<random
id>`): querying a task generates nothing, and only generated images are billed. The API answers an
accepted key with the task's status (UNKNOWN, for an id it never issued), and a rejected key, or a
key of the other region, with HTTP 401 InvalidApiKey. What the key may generate (model
entitlement, billing) only a generation can tell; the bot reports those on the first /imagine.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord

from bot.client import INVITE_PERMISSIONS, INVITE_SCOPES
from bot.db import Database, DatabaseSetupError, PostgresDatabase, SqliteDatabase
from bot.db.lock import DatabaseInUse
from bot.db.postgres.connection import location
from bot.errors import DatabaseUnavailable
from bot.lanes import fingerprint
from bot.logs import describe
from bot.settings import Secret, Settings, SettingsError, load_settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
#: Per HTTP request: a first-run check should answer quickly, or say what it could not reach.
REQUEST_SECONDS = 15.0
TOKEN_REJECTED = "Discord rejected the token (reset it on the Bot tab of the developer portal, copy it again)"
USER_AGENT = f"DiscordBot (https://github.com/Rapptz/discord.py, {discord.__version__}) qwen-imagine-check"


@dataclass(frozen=True)
class Outcome:
    """One check's verdict, printed as one line."""

    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        """`ok   name: detail` or `FAIL name: detail`."""
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}" + (f": {self.detail}" if self.detail else "")


def main(env: Mapping[str, str]) -> int:
    """Run every check against `env`; 0 if all pass, 1 if one fails, 2 if the settings are malformed."""
    try:
        settings = load_settings(env)
    except SettingsError as error:
        say(Outcome("settings", False, str(error)))
        return EXIT_CONFIG
    say(Outcome("settings", True))
    return asyncio.run(run_checks(settings))


async def run_checks(settings: Settings) -> int:
    """The checks that need the network and the disk, each printed as soon as it is known."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        discord_outcome, application_id = await check_discord(session, settings)
        outcomes = [discord_outcome]
        say(discord_outcome)
        for key in settings.api_keys:
            outcomes.append(say(await check_image_api(session, settings, key)))
    outcomes.append(say(await check_database(settings)))
    if application_id is not None:
        url = discord.utils.oauth_url(application_id, permissions=INVITE_PERMISSIONS, scopes=INVITE_SCOPES)
        print(f"invite the bot with {url}", flush=True)
    return EXIT_OK if all(outcome.ok for outcome in outcomes) else EXIT_FAILED


def say(outcome: Outcome) -> Outcome:
    """Print `outcome` at once (a slow check should not hide the ones before it)."""
    print(outcome.line(), flush=True)
    return outcome


async def check_discord(session: aiohttp.ClientSession, settings: Settings) -> tuple[Outcome, int | None]:
    """Does Discord accept the token? Returns the application id too, for the invite URL."""
    name = "discord token"
    base = settings.discord_api_base_url or discord.http.Route.BASE
    headers = {"Authorization": f"Bot {settings.discord_token.reveal()}", "User-Agent": USER_AGENT}
    application: dict[str, Any] | None = None
    try:
        status, user = await _get_json(session, f"{base}/users/@me", headers)
        if status == 200:
            status, application = await _get_json(session, f"{base}/oauth2/applications/@me", headers)
    except (aiohttp.ClientError, TimeoutError) as error:
        return Outcome(name, False, f"cannot reach Discord at {base} ({describe(error)})"), None
    if status == 401:
        return Outcome(name, False, TOKEN_REJECTED), None
    if status != 200 or user is None or application is None or not str(application.get("id", "")).isdigit():
        return Outcome(name, False, f"Discord's API at {base} answered HTTP {status}, not what the bot expects"), None
    application_id = int(application["id"])
    if application.get("interactions_endpoint_url"):
        detail = (
            "the application has an Interactions Endpoint URL; remove it in the developer portal "
            "(General Information), or slash commands never reach the bot"
        )
        return Outcome(name, False, detail), application_id
    return Outcome(name, True, f"logged in as {user.get('username')} (application {application_id})"), application_id


async def check_image_api(session: aiohttp.ClientSession, settings: Settings, key: Secret) -> Outcome:
    """Does the image API accept `key` in its region? Asks for a task that doesn't exist: free.
    With several keys, each is named by its fingerprint (never by the key)."""
    name = "image API key" if len(settings.api_keys) == 1 else f"image API key {fingerprint(key.reveal())}"
    root = settings.dashscope_base_url
    headers = {"Authorization": f"Bearer {key.reveal()}"}
    try:
        status, body = await _get_json(session, f"{root}/tasks/{uuid.uuid4()}", headers)
    except (aiohttp.ClientError, TimeoutError) as error:
        return Outcome(name, False, f"cannot reach the image API at {root} ({describe(error)})")
    code = str(body.get("code") or "") if body else ""
    if status == 401:
        detail = (
            f"the image API rejected DASHSCOPE_API_KEY ({code or 'HTTP 401'}); a key works only in its own "
            f"region, and DASHSCOPE_REGION is {settings.dashscope_region}"
        )
        return Outcome(name, False, detail)
    # An id it never issued: 200 with task_status UNKNOWN (or a 404 in the API's own JSON).
    if body is not None and (status == 200 or (status == 404 and body.get("request_id"))):
        return Outcome(name, True, f"accepted in region {settings.dashscope_region} ({root})")
    return Outcome(name, False, f"the image API at {root} answered HTTP {status} {code}".rstrip())


async def _get_json(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, dict[str, Any] | None]:
    """GET `url`: the HTTP status, and the body if it is a JSON object."""
    async with session.get(url, headers=headers) as response:
        try:
            body = await response.json(content_type=None)
        except ValueError:
            body = None
        return response.status, body if isinstance(body, dict) else None


async def check_database(settings: Settings) -> Outcome:
    """Does the database open (lock, for SQLite) and migrate? PostgreSQL is tried once, not waited for."""
    name = "database"
    url = settings.database_url.reveal() if settings.database_url is not None else None
    where = location(url) if url else str(settings.database_path)
    database: Database
    try:
        if url:
            database = await PostgresDatabase.open(url, retry=False)
        else:
            database = await SqliteDatabase.open(settings.database_path)
    except DatabaseInUse as error:
        return Outcome(name, False, str(error))
    except (DatabaseSetupError, DatabaseUnavailable) as error:  # each names where, never the password
        return Outcome(name, False, str(error))
    except (OSError, sqlite3.Error) as error:
        return Outcome(name, False, f"cannot open {where} ({describe(error)})")
    try:
        version = await database.schema_version()
    finally:
        await database.close()
    return Outcome(name, True, f"{where} (schema version {version})")
