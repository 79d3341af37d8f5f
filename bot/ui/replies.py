"""One way to answer an interaction: its response, its deferred message, or the channel once it has expired."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import discord

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
#: Discord's "Invalid Webhook Token": the 15-minute interaction token has expired.
EXPIRED_TOKEN = 50027
#: Discord's "Unknown interaction": it was not acknowledged within 3 seconds.
UNKNOWN_INTERACTION = 10062
#: Discord's "Too Many Requests".
RATE_LIMITED = 429
#: Further rounds of discord.py's five attempts for an answer Discord keeps rate limiting.
RATE_LIMIT_ROUNDS = 5
#: The longest wait taken from a 429's headers.
MAX_RATE_LIMIT_WAIT = 30.0
T = TypeVar("T")


def is_expired(error: discord.HTTPException) -> bool:
    """Whether Discord refused because the interaction or its token is gone."""
    return error.code in (EXPIRED_TOKEN, UNKNOWN_INTERACTION)


def is_deferred_message(interaction: discord.Interaction[Any]) -> bool:
    """Whether the interaction was acknowledged with a "thinking" message that the answer replaces."""
    return interaction.response.type is discord.InteractionResponseType.deferred_channel_message


async def reply(
    interaction: discord.Interaction[Any],
    *,
    content: str | None = None,
    embed: discord.Embed | None = None,
    file: Callable[[], discord.File] | None = None,
    view: discord.ui.View | None = None,
    ephemeral: bool = False,
) -> discord.Message | None:
    """Answer `interaction` and return the message (None if it could not be delivered).

    Not yet acknowledged: the response itself (private if `ephemeral`). Deferred with a "thinking"
    message: that message is replaced (its visibility was fixed when it was deferred). Otherwise a
    followup. `file` is a factory because a discord.File can be sent only once and a fallback may
    need a second. Mentions are disabled, except the requester's in a channel fallback. A 429 that
    outlasts discord.py's own retries is waited out (see `patiently`), so a busy channel loses no answer.
    """
    try:
        return await patiently(
            lambda: _answer(interaction, content=content, embed=embed, file=file, view=view, ephemeral=ephemeral)
        )
    except discord.HTTPException as error:
        if not is_expired(error):
            raise
        log.info("interaction %s expired (code %s); posting to its channel", interaction.id, error.code)
    if ephemeral and not is_deferred_message(interaction):
        return None  # a private answer has nowhere public to go
    channel = interaction.channel
    if not isinstance(channel, discord.abc.Messageable):
        log.warning("interaction %s expired and has no channel to post to", interaction.id)
        return None
    return await post_to_channel(channel, interaction.user.id, content=content, embed=embed, file=file, view=view)


async def _answer(
    interaction: discord.Interaction[Any],
    *,
    content: str | None,
    embed: discord.Embed | None,
    file: Callable[[], discord.File] | None,
    view: discord.ui.View | None,
    ephemeral: bool,
) -> discord.Message | None:
    if not interaction.response.is_done():
        callback = await interaction.response.send_message(
            content=content,
            embed=embed or discord.utils.MISSING,
            files=[file()] if file else discord.utils.MISSING,
            view=view or discord.utils.MISSING,
            ephemeral=ephemeral,
            allowed_mentions=NO_MENTIONS,
        )
        resource = callback.resource if callback else None
        return resource if isinstance(resource, discord.Message) else None
    if is_deferred_message(interaction):
        return await interaction.edit_original_response(
            content=content,
            embed=embed,
            attachments=[file()] if file else [],
            view=view,
            allowed_mentions=NO_MENTIONS,
        )
    return await interaction.followup.send(
        content=content or discord.utils.MISSING,
        embed=embed or discord.utils.MISSING,
        files=[file()] if file else discord.utils.MISSING,
        view=view or discord.utils.MISSING,
        ephemeral=ephemeral,
        allowed_mentions=NO_MENTIONS,
        wait=True,
    )


def rate_limit_wait(error: discord.HTTPException) -> float:
    """How long Discord asked us to wait in a 429, from its headers (bounded)."""
    headers = getattr(error.response, "headers", None) or {}
    for name in ("X-RateLimit-Reset-After", "Retry-After"):
        try:
            return min(max(float(headers[name]), 0.05), MAX_RATE_LIMIT_WAIT)
        except (KeyError, TypeError, ValueError):
            continue
    return 1.0


async def patiently(send: Callable[[], Awaitable[T]]) -> T:
    """`send()`, tried again while Discord still answers 429 once discord.py's own retries are spent:
    a burst in one channel can keep a shared bucket full for longer than those few attempts."""
    for attempt in itertools.count(1):
        try:
            return await send()
        except discord.HTTPException as error:
            if error.status != RATE_LIMITED or attempt > RATE_LIMIT_ROUNDS:
                raise
            wait = rate_limit_wait(error)
            log.info("still rate limited after discord.py's retries; trying again in %.2f s", wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


async def post_to_channel(
    channel: discord.abc.Messageable,
    requester_id: int,
    *,
    content: str | None,
    embed: discord.Embed | None,
    file: Callable[[], discord.File] | None,
    view: discord.ui.View | None = None,
) -> discord.Message | None:
    """Post in a channel, mentioning (and pinging) only the requester."""
    mention = f"<@{requester_id}>"
    try:
        return await patiently(
            lambda: channel.send(
                content=f"{mention} {content}" if content else mention,
                embed=embed or discord.utils.MISSING,
                files=[file()] if file else discord.utils.MISSING,
                view=view or discord.utils.MISSING,
                allowed_mentions=discord.AllowedMentions(
                    everyone=False, roles=False, users=[discord.Object(requester_id)]
                ),
            )
        )
    except discord.HTTPException as error:
        log.warning("could not post to channel %s: %s", getattr(channel, "id", None), error)
        return None
