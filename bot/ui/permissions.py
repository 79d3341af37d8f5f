"""What the bot needs in a channel to post a result there, read from the interaction itself."""

from __future__ import annotations

from typing import Any

import discord

#: Each permission a result needs (its message, the image, the embed around it); `bot.errors` names them.
RESULT_PERMISSIONS = ("send_messages", "attach_files", "embed_links")
#: In a thread, this one replaces Send Messages.
THREAD_SEND = "send_messages_in_threads"


def missing_result_permissions(interaction: discord.Interaction[Any]) -> tuple[str, ...]:
    """The permissions (their flag names, e.g. `attach_files`) the bot lacks in the interaction's
    channel to post a result."""
    granted = interaction.app_permissions
    needed = RESULT_PERMISSIONS
    if isinstance(interaction.channel, discord.Thread):
        needed = (THREAD_SEND, *RESULT_PERMISSIONS[1:])
    return tuple(flag for flag in needed if not getattr(granted, flag))


def refusal_code(missing: tuple[str, ...]) -> str:
    """The usage log's error code for a refusal: `missing_permissions:attach_files,embed_links`."""
    return "missing_permissions:" + ",".join(missing)
