"""Answer a member's interaction from a process that never received it: the generation was handed
over or taken over, and its stored token still lives, so its original response is edited over REST."""

from __future__ import annotations

import logging
import time
from typing import cast

import discord

from bot.db import GenerationRecord
from bot.ui.replies import NO_MENTIONS, Embeds, Files, _embeds, _files, describe

log = logging.getLogger(__name__)

#: An interaction token lives 15 minutes; past this, answer in the channel instead.
TOKEN_LIFETIME_SECONDS = 14.5 * 60
#: The message id Discord's webhook routes give an interaction's original response.
ORIGINAL = cast(int, "@original")


def can_answer(client: discord.Client, record: GenerationRecord, token: str | None) -> bool:
    """Whether `record`'s interaction can still be answered (its token is known and alive)."""
    fresh = time.time() - record.requested_at < TOKEN_LIFETIME_SECONDS
    return bool(token) and client.application_id is not None and fresh


async def edit_original(
    client: discord.Client,
    record: GenerationRecord,
    token: str | None,
    *,
    content: str | None,
    embed: Embeds,
    file: Files,
    view: discord.ui.View | None = None,
) -> discord.Message | None:
    """Replace the "thinking" or queue message of `record`'s interaction (`token`, see
    `GenerationService.reply_token`); None if that can't be done
    (no token, expired, refused), so the caller posts in the channel instead."""
    if not can_answer(client, record, token):
        return None
    assert client.application_id is not None and token is not None
    webhook = discord.Webhook.partial(client.application_id, token, client=client)
    try:
        return await webhook.edit_message(
            ORIGINAL,
            content=content,
            embeds=_embeds(embed),
            attachments=_files(file),
            view=view,
            allowed_mentions=NO_MENTIONS,
        )
    except discord.HTTPException as error:
        log.info("generation %d: its interaction can't be answered (%s)", record.id, describe(error))
        return None
