"""Remix: the result buttons (Reroll, Remix, Details, Delete), the remix form, and "Remix image"."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import QwenImagineBot
from bot.db import GenerationRecord
from bot.errors import ForeignGeneration, NotAllowed
from bot.i18n import t
from bot.services import Services
from bot.services.generation import UsedMessage, parse_generation_id
from bot.ui.failures import report_error
from bot.ui.presentation import details_embed, jump_url
from bot.ui.remix_form import REMIX_FORM, parse_on_off, parse_seed, parse_size, remix_form, submitted_values
from bot.ui.replies import NO_MENTIONS
from bot.ui.results import RESULT_ACTION_EVENT, Credit, ResultButton, generate_and_deliver, origin_of

log = logging.getLogger(__name__)

#: What a result button does with the generation it was checked to act on.
ResultHandler = Callable[[discord.Interaction[Any], GenerationRecord], Awaitable[None]]


def credit_for(record: GenerationRecord) -> Credit:
    """Credit to the creator of the image a remix starts from."""
    return Credit(record.member_id, jump_url(record.guild_id, record.channel_id, record.message_id))


class RemixCog(commands.Cog):
    """Everything a member can do with a result."""

    def __init__(self, bot: QwenImagineBot, services: Services) -> None:
        self.bot = bot
        self.services = services
        self.context_menu = app_commands.ContextMenu(
            name="Remix image",
            callback=self.remix_from_menu,
            allowed_contexts=app_commands.AppCommandContext(guild=True),
        )
        self._handlers: dict[str, ResultHandler] = {
            "reroll": self.reroll,
            "remix": self.open_remix_form,
            "details": self.details,
            "delete": self.delete,
        }

    async def cog_load(self) -> None:
        # Registered at start-up so buttons on any old result keep working.
        self.bot.add_dynamic_items(ResultButton)
        self.bot.tree.add_command(self.context_menu)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ResultButton)
        self.bot.tree.remove_command(self.context_menu.name, type=self.context_menu.type)

    @commands.Cog.listener(f"on_{RESULT_ACTION_EVENT}")
    async def on_result_action(
        self, action: str, generation_id: int | None, interaction: discord.Interaction[Any]
    ) -> None:
        """A result button was clicked: act on its generation if it is this server's and this message's."""
        if action not in self._handlers:
            return  # another cog's button (Edit)
        try:
            record = await self.services.generation.generation_for(
                interaction.guild_id, generation_id, on=self.used_message(interaction, interaction.message)
            )
            await self._handlers[action](interaction, record)
        except Exception as error:
            await report_error(interaction, error)

    def used_message(self, interaction: discord.Interaction[Any], message: discord.Message | None) -> UsedMessage:
        """The message a button or the menu was used on (it is in the interaction's channel)."""
        if message is None:
            raise ForeignGeneration("no message to act on")
        bot_id = self.bot.user.id if self.bot.user is not None else None
        return UsedMessage(message.id, interaction.channel_id, sent_by_bot=message.author.id == bot_id)

    async def reroll(self, interaction: discord.Interaction[Any], record: GenerationRecord) -> None:
        """Same prompt and options, a new random seed, counted against the clicker's limits."""
        record = self.services.generation.reusable(record)
        model, note = await self.model_for(interaction, record)
        request = self.services.generation.build_request(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            member_id=interaction.user.id,
            prompt=record.prompt or "",
            size=record.size,
            negative_prompt=record.negative_prompt,
            seed=None,
            prompt_extend=record.prompt_extend,
            parent_id=record.id,
            model=model,
        )
        await generate_and_deliver(interaction, self.services, request, credit=credit_for(record), note=note)

    async def model_for(
        self, interaction: discord.Interaction[Any], record: GenerationRecord
    ) -> tuple[str, str | None]:
        """The image's own model while it is enabled, else the server's current one (and a note saying so)."""
        if self.services.models is None or interaction.guild_id is None:
            return record.model, None
        return await self.services.models.reuse(interaction.guild_id, "text", record.model)

    async def open_remix_form(self, interaction: discord.Interaction[Any], record: GenerationRecord) -> None:
        """Open the remix form prefilled from the original."""
        record = self.services.generation.reusable(record)
        await self.services.settings.check(record.guild_id or 0, origin_of(interaction))
        await interaction.response.send_modal(remix_form(record, self.services.generation.sizes))

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """A submitted remix form: generate with what the member edited."""
        if interaction.type is not discord.InteractionType.modal_submit or interaction.data is None:
            return
        match = REMIX_FORM.fullmatch(str(interaction.data.get("custom_id", "")))
        if match is None:
            return
        try:
            await self.submit_remix(interaction, parse_generation_id(match["id"]), submitted_values(interaction.data))
        except Exception as error:
            await report_error(interaction, error)

    async def submit_remix(
        self, interaction: discord.Interaction[Any], generation_id: int | None, values: dict[str, str]
    ) -> None:
        """Generate from a submitted remix form (of an image of this server), crediting the original."""
        generation = self.services.generation
        record = generation.reusable(await generation.generation_for(interaction.guild_id, generation_id))
        model, note = await self.model_for(interaction, record)
        request = generation.build_request(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            member_id=interaction.user.id,
            prompt=values.get("prompt", ""),
            size=parse_size(values.get("size", ""), generation.sizes),
            negative_prompt=values.get("negative_prompt"),
            seed=parse_seed(values.get("seed", "")),
            prompt_extend=parse_on_off(values.get("enhance", "")),
            parent_id=record.id,
            model=model,
        )
        await generate_and_deliver(interaction, self.services, request, credit=credit_for(record), note=note)

    async def details(self, interaction: discord.Interaction[Any], record: GenerationRecord) -> None:
        """Privately show everything needed to reproduce the image."""
        lineage = await self.services.generation.lineage(record)
        await interaction.response.send_message(
            embed=details_embed(record, lineage), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    async def delete(self, interaction: discord.Interaction[Any], record: GenerationRecord) -> None:
        """Remove a result (the clicked message, checked to be the image's own): its creator and moderators only."""
        permissions = interaction.permissions
        is_moderator = permissions.manage_guild or permissions.manage_messages
        if not is_moderator and record.member_id != interaction.user.id:
            raise NotAllowed(t("imagine.delete_not_allowed"))
        await interaction.response.defer()
        if interaction.message is not None:
            await interaction.message.delete()
        await self.services.generation.forget_message(record.id)
        log.info("generation %s deleted by %s", record.id, interaction.user.id)

    async def remix_from_menu(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        """The "Remix image" context menu: the Remix button, from any of the bot's results."""
        record = None
        if self.bot.user is not None and message.author.id == self.bot.user.id:
            record = await self.services.generation.find_by_message(message.id)
        if record is None:
            raise NotAllowed(t("imagine.not_my_image"))
        used = self.used_message(interaction, message)
        await self.open_remix_form(
            interaction, await self.services.generation.generation_for(interaction.guild_id, record.id, on=used)
        )


async def setup(bot: QwenImagineBot) -> None:
    """Load the cog with the bot's services."""
    await bot.add_cog(RemixCog(bot, bot.services))
