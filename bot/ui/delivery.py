"""Posting a generated image, and what an upload Discord refuses means for the member and the usage log."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import discord

from bot.errors import UploadFailed
from bot.i18n import N_
from bot.services import Services
from bot.ui.presentation import failure_text
from bot.ui.replies import Files, Redraft, describe, reply, tell

log = logging.getLogger(__name__)

#: Errors a post can end in once discord.py (and `replies.with_retries`) gave up.
SEND_ERRORS = (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError)

_TOO_LARGE = 40005
_MISSING_ACCESS = 50001
_MISSING_PERMISSIONS = 50013
_ARCHIVED_THREAD = 50083
_UNKNOWN_CHANNEL = 10003


def upload_failure(error: BaseException | None) -> UploadFailed:
    """What the member reads, and the usage log's code, for an image that was made but not posted
    (`error` None: there was nowhere left to post it)."""
    if error is None:
        return UploadFailed("UploadFailed:NoChannel", N_("error.upload.no_channel"))
    if isinstance(error, aiohttp.ClientError | OSError | TimeoutError):
        return UploadFailed("UploadFailed:Network", N_("error.upload.network"))
    if not isinstance(error, discord.HTTPException):
        return UploadFailed("UploadFailed:Error", N_("error.upload.bot_side"))
    code = f"UploadFailed:{error.code or error.status}"
    if error.status == 413 or error.code == _TOO_LARGE:
        reason = N_("error.upload.too_large")
    elif error.code in (_MISSING_PERMISSIONS, _MISSING_ACCESS):
        reason = N_("error.upload.missing_permission")
    elif error.code == _ARCHIVED_THREAD:
        reason = N_("error.upload.archived_thread")
    elif error.code == _UNKNOWN_CHANNEL:
        reason = N_("error.upload.unknown_channel")
    elif error.status >= 500:
        reason = N_("error.upload.discord_unavailable")
    else:
        reason = N_("error.upload.refused")
    return UploadFailed(code, reason)


async def record_undelivered(services: Services, generation_id: int, error: BaseException | None) -> UploadFailed:
    """Mark a made image undelivered (billed, reported, not counted against limits); return the failure."""
    failure = upload_failure(error)
    log.warning("generation %d was made but not posted: %s", generation_id, describe(error) if error else "no channel")
    await services.generation.mark_undelivered(generation_id, failure.code)
    return failure


async def deliver_result(
    interaction: discord.Interaction[Any],
    services: Services,
    generation_id: int,
    *,
    compose: Redraft,
    file: Files,
    also: tuple[int, ...] = (),
) -> None:
    """Post a made image for `interaction` (its message, in the member's language, else its channel, in
    the server's: `compose` writes the text, embeds and buttons in the locale in force), remember where;
    if Discord won't take it, record it undelivered and tell the member wherever still possible. `also`:
    the other images of the same message (an edit with several results), recorded the same way."""
    error: BaseException | None = None
    try:
        draft = compose()
        message = await reply(
            interaction, content=draft.content, embed=draft.embed, file=file, view=draft.view, redraft=compose
        )
    except Exception as exc:
        if not isinstance(exc, SEND_ERRORS):
            log.error("unexpected error posting generation %d", generation_id, exc_info=exc)
        message, error = None, exc
    if message is None:
        failure = await record_undelivered(services, generation_id, error)
        for other in also:
            await record_undelivered(services, other, error)
        await tell(interaction, lambda: failure_text(failure.user_message))
        return
    for shown in (generation_id, *also):
        await services.generation.remember_message(shown, channel_id=message.channel.id, message_id=message.id)
    interaction.client.dispatch("generation_delivered", generation_id)
