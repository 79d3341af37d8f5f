"""Posting each recorded settings change to the server's log channel, if it has one."""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.db.records import AuditEntry
from bot.i18n import speaking, t
from bot.services import Services
from bot.ui.replies import NO_MENTIONS, server_locale

log = logging.getLogger(__name__)


def audit_line(entry: AuditEntry) -> str:
    """`<t:..:f> @actor changed **setting**: old → new` (sent with mentions disabled)."""
    old = entry.old_value if entry.old_value is not None else t("audit.none")
    new = entry.new_value if entry.new_value is not None else t("audit.none")
    at, actor = f"<t:{int(entry.at)}:f>", f"<@{entry.actor_id}>"
    return t("audit.changed", at=at, actor=actor, setting=entry.setting, old=old, new=new)


async def announce(
    interaction: discord.Interaction[Any], services: Services, entry: AuditEntry | None, *, to: int | None = None
) -> None:
    """Post a recorded change in the guild's log channel, or in channel `to` (after the moderator has had
    their answer); a channel the bot can't post in is logged, never an error for the moderator."""
    if entry is None:
        return
    channel_id = to or await services.settings.audit.log_channel(entry.guild_id)
    if channel_id is None:
        return
    channel = interaction.client.get_partial_messageable(channel_id, guild_id=entry.guild_id)
    with speaking(server_locale(interaction)):  # the log channel is the server's: its language
        line = audit_line(entry)[:2000]
    try:
        await channel.send(line, allowed_mentions=NO_MENTIONS)
    except discord.HTTPException as exc:
        log.warning("could not post settings change %s in log channel %s: %s", entry.id, channel_id, exc.status)
