"""The one place an exception becomes what a member reads (and, if unexpected, a log entry)."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from bot.errors import QwenImagineError
from bot.ui.presentation import failure_text
from bot.ui.replies import reply

log = logging.getLogger(__name__)

GENERIC_FAILURE = "Something went wrong on the bot's side. Please try again; if it keeps happening, tell a moderator."


def user_message_for(error: BaseException) -> str:
    """The sentence a member reads for `error`."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, QwenImagineError):
        return error.user_message
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command works in servers only."
    if isinstance(error, app_commands.MissingPermissions):
        return "You need the Manage Server permission to do that."
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    if isinstance(error, app_commands.TransformerError):
        return f"That value isn't valid: {error.value!r}."
    return GENERIC_FAILURE


async def report_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Tell the member what went wrong (privately if nothing was sent yet); log what was unexpected."""
    message = user_message_for(error)
    if message is GENERIC_FAILURE:
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        log.error("unexpected error handling interaction %s", interaction.id, exc_info=original)
    try:
        await reply(interaction, content=failure_text(message), ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not deliver an error message for interaction %s: %s", interaction.id, exc)
