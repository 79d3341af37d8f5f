"""One way to answer an interaction: its response, a followup, or the channel once it has expired."""

from __future__ import annotations

import logging
from collections.abc import Callable

import discord

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
#: Discord's "Invalid Webhook Token": the 15-minute interaction token has expired.
EXPIRED_TOKEN = 50027
#: Discord's "Unknown interaction": it was not acknowledged within 3 seconds.
UNKNOWN_INTERACTION = 10062


def is_expired(error: discord.HTTPException) -> bool:
    """Whether Discord refused because the interaction or its token is gone."""
    return error.code in (EXPIRED_TOKEN, UNKNOWN_INTERACTION)


async def reply(
    interaction: discord.Interaction,
    *,
    content: str | None = None,
    embed: discord.Embed | None = None,
    file: Callable[[], discord.File] | None = None,
    view: discord.ui.View | None = None,
    ephemeral: bool = False,
) -> discord.Message | None:
    """Send a message answering `interaction` and return it (None if it could not be delivered).

    `file` is a factory because a discord.File can be sent only once and a fallback may need a second.
    Mentions are disabled, except the requester's in a channel fallback.
    """
    files = [file()] if file else []
    try:
        if not interaction.response.is_done():
            callback = await interaction.response.send_message(
                content=content,
                embed=embed or discord.utils.MISSING,
                files=files,
                view=view or discord.utils.MISSING,
                ephemeral=ephemeral,
                allowed_mentions=NO_MENTIONS,
            )
            resource = callback.resource if callback else None
            return resource if isinstance(resource, discord.Message) else None
        return await interaction.followup.send(
            content=content or discord.utils.MISSING,
            embed=embed or discord.utils.MISSING,
            files=files,
            view=view or discord.utils.MISSING,
            ephemeral=ephemeral,
            allowed_mentions=NO_MENTIONS,
            wait=True,
        )
    except discord.HTTPException as error:
        if not is_expired(error):
            raise
        log.info("interaction %s expired (code %s); posting to its channel", interaction.id, error.code)
    if ephemeral:
        return None  # a private answer has nowhere public to go
    return await post_to_channel(interaction, content=content, embed=embed, file=file, view=view)


async def post_to_channel(
    interaction: discord.Interaction,
    *,
    content: str | None,
    embed: discord.Embed | None,
    file: Callable[[], discord.File] | None,
    view: discord.ui.View | None = None,
) -> discord.Message | None:
    """Post in the interaction's channel instead, mentioning (and pinging) only the requester."""
    channel = interaction.channel
    if not isinstance(channel, discord.abc.Messageable):
        log.warning("interaction %s expired and has no channel to post to", interaction.id)
        return None
    text = f"{interaction.user.mention} {content}" if content else interaction.user.mention
    try:
        return await channel.send(
            content=text,
            embed=embed or discord.utils.MISSING,
            files=[file()] if file else discord.utils.MISSING,
            view=view or discord.utils.MISSING,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=[interaction.user]),
        )
    except discord.HTTPException as error:
        log.warning("could not post to channel %s: %s", getattr(channel, "id", None), error)
        return None
