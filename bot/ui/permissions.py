"""What the bot needs in a channel to post a result there, read from the interaction itself."""

from __future__ import annotations

from typing import Any

import discord

from bot.errors import CannotPostHere

#: Each permission a result needs (its message, the image, the embed around it), and its name in Discord.
RESULT_PERMISSIONS = (
    ("send_messages", "Send Messages"),
    ("attach_files", "Attach Files"),
    ("embed_links", "Embed Links"),
)
#: In a thread, this one replaces Send Messages.
THREAD_SEND = ("send_messages_in_threads", "Send Messages in Threads")


def missing_result_permissions(interaction: discord.Interaction[Any]) -> tuple[str, ...]:
    """The names of the permissions the bot lacks in the interaction's channel to post a result."""
    granted = interaction.app_permissions
    needed = RESULT_PERMISSIONS
    if isinstance(interaction.channel, discord.Thread):
        needed = (THREAD_SEND, *RESULT_PERMISSIONS[1:])
    return tuple(name for flag, name in needed if not getattr(granted, flag))


def refusal_code(error: CannotPostHere) -> str:
    """The usage log's error code for a refusal: `missing_permissions:attach_files,embed_links`."""
    return "missing_permissions:" + ",".join(name.lower().replace(" ", "_") for name in error.missing)
