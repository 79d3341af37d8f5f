"""Helpers for the moderation tests: run moderator commands and read their private answers."""

from __future__ import annotations

from typing import Any

from tests.conftest import World
from tests.database import TestDatabase
from tests.fakes.discord import FakeChannel, FakeDiscord, FakeMember, FakeMessage

MODAL = 9


def text_of(message: FakeMessage) -> str:
    """A message's content, embed descriptions and field values, as one string."""
    parts = [message.content]
    for embed in message.embeds:
        parts.append(embed.get("title") or "")
        parts.append(embed.get("description") or "")
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
        parts.append((embed.get("footer") or {}).get("text", ""))
    return "\n".join(parts)


async def command(
    discord_server: FakeDiscord,
    member: FakeMember,
    channel: FakeChannel,
    name: str,
    subcommand: str | None = None,
    /,
    **options: Any,
) -> FakeMessage:
    """Invoke a command and return its (private) answer."""
    ix = await discord_server.invoke_command(member, channel, name, options, subcommand=subcommand)
    message = await ix.wait_answer()
    assert message.ephemeral
    return message


async def settings(discord_server: FakeDiscord, world: World, subcommand: str, /, **options: Any) -> str:
    """/settings <subcommand> by the moderator, in the world's channel."""
    return text_of(await command(discord_server, world.moderator, world.channel, "settings", subcommand, **options))


def buttons(message: FakeMessage) -> dict[str, str]:
    return {c["label"]: c["custom_id"] for row in message.components for c in row["components"]}


async def codes(db: TestDatabase) -> list[tuple[str, str | None]]:
    return [(row["status"], row["error_code"]) for row in await db.generations()]


async def set_role(discord_server: FakeDiscord, world: World, role: Any, max_count: int | None) -> str:
    options: dict[str, Any] = {"scope": "member", "window": "hour", "role": role}
    if max_count is not None:
        options["max"] = max_count
    return text_of(await command(discord_server, world.moderator, world.channel, "limits", "set", **options))
