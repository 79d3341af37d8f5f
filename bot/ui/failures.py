"""The one place an exception becomes what a member reads (and, if unexpected, a log entry)."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from bot.errors import QwenImagineError
from bot.i18n import N_, t
from bot.ui.presentation import failure_text
from bot.ui.replies import reply

log = logging.getLogger(__name__)

#: The failure nobody expected.
GENERIC_FAILURE_KEY = N_("error.unexpected")


def _expected_message(error: BaseException) -> str | None:
    """The sentence a member reads for an error the bot knows, in the locale in force; None for the rest."""
    if isinstance(error, QwenImagineError):
        return error.user_message
    if isinstance(error, app_commands.NoPrivateMessage):
        return t("error.guild_only")
    if isinstance(error, app_commands.MissingPermissions):
        return t("error.needs_manage_server")
    if isinstance(error, app_commands.CheckFailure):
        return t("error.check_failed")
    if isinstance(error, app_commands.TransformerError):
        return t("error.invalid_value", value=repr(error.value))
    return None


def user_message_for(error: BaseException) -> str:
    """The sentence a member reads for `error`, in the locale in force."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    return _expected_message(error) or t(GENERIC_FAILURE_KEY)


async def report_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    """Tell the member what went wrong (privately if nothing was sent yet); log what was unexpected."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    expected = _expected_message(original)
    message = expected or t(GENERIC_FAILURE_KEY)
    if expected is None:
        log.error("unexpected error handling interaction %s", interaction.id, exc_info=original)
    try:
        await reply(interaction, content=failure_text(message), ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not deliver an error message for interaction %s: %s", interaction.id, exc)
