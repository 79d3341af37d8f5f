"""The Retry button under a failure whose outcome is unknown: the same request again, for its requester."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord.ext import commands

from bot.client import QwenImagineBot
from bot.errors import ForeignGeneration
from bot.services import Services
from bot.services.generation import UsedMessage
from bot.ui.failures import report_error
from bot.ui.presentation import jump_url
from bot.ui.results import Credit, generate_and_deliver
from bot.ui.retry import RETRY_EVENT, RetryButton

log = logging.getLogger(__name__)


class RetryCog(commands.Cog):
    """Handles Retry clicks, on failure notices of any age."""

    def __init__(self, bot: QwenImagineBot, services: Services) -> None:
        self.bot = bot
        self.services = services

    async def cog_load(self) -> None:
        # Registered at start-up so the button keeps working on old notices.
        self.bot.add_dynamic_items(RetryButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(RetryButton)

    @commands.Cog.listener(f"on_{RETRY_EVENT}")
    async def on_retry(self, generation_id: int | None, interaction: discord.Interaction[Any]) -> None:
        """Make the same image again (same seed and options), as a new request of the member who asked."""
        try:
            await self.retry(interaction, generation_id)
        except Exception as error:
            await report_error(interaction, error)

    async def retry(self, interaction: discord.Interaction[Any], generation_id: int | None) -> None:
        """Only from the notice of a request of this server (see `GenerationService.generation_for`)."""
        message = interaction.message
        if message is None:
            raise ForeignGeneration("no message to act on")
        bot_id = self.bot.user.id if self.bot.user is not None else None
        used = UsedMessage(message.id, interaction.channel_id, sent_by_bot=message.author.id == bot_id)
        generation = self.services.generation
        record = await generation.generation_for(interaction.guild_id, generation_id, on=used)
        request = generation.retry_request(record, member_id=interaction.user.id, channel_id=interaction.channel_id)
        parents = await generation.lineage(record)
        credit = None
        if parents:
            parent = parents[0]
            credit = Credit(parent.member_id, jump_url(parent.guild_id, parent.channel_id, parent.message_id))
        log.info("generation %d retried by %s", record.id, interaction.user.id)
        await generate_and_deliver(interaction, self.services, request, credit=credit)


async def setup(bot: QwenImagineBot) -> None:
    """Load the cog with the bot's services."""
    await bot.add_cog(RetryCog(bot, bot.services))
