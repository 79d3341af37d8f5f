"""What the bot needs in a channel to post a result there, read from the interaction itself."""

from __future__ import annotations

from typing import Any

import discord

from bot.i18n import N_, t

#: Each permission a result needs (its message, the image, the embed around it), and its name in Discord.
RESULT_PERMISSIONS = (
    ("send_messages", N_("perm.send_messages")),
    ("attach_files", N_("perm.attach_files")),
    ("embed_links", N_("perm.embed_links")),
)
#: In a thread, this one replaces Send Messages.
THREAD_SEND = ("send_messages_in_threads", N_("perm.send_messages_in_threads"))


def missing_result_permissions(interaction: discord.Interaction[Any]) -> tuple[str, ...]:
    """The permissions (their flag names, e.g. `attach_files`) the bot lacks in the interaction's
    channel to post a result."""
    granted = interaction.app_permissions
    needed = RESULT_PERMISSIONS
    if isinstance(interaction.channel, discord.Thread):
        needed = (THREAD_SEND, *RESULT_PERMISSIONS[1:])
    return tuple(flag for flag, _ in needed if not getattr(granted, flag))


def permission_names(flags: tuple[str, ...]) -> tuple[str, ...]:
    """The permissions' names as Discord shows them in the locale in force (`Attach Files`)."""
    names = dict((*RESULT_PERMISSIONS, THREAD_SEND))
    return tuple(t(names[flag]) for flag in flags)


def refusal_code(missing: tuple[str, ...]) -> str:
    """The usage log's error code for a refusal: `missing_permissions:attach_files,embed_links`."""
    return "missing_permissions:" + ",".join(missing)
