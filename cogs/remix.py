"""Remix: the result buttons (Reroll, Remix, Details, Delete), the remix form, and "Remix image"."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import QwenImagineBot
from bot.db import GenerationRecord
from bot.errors import GenerationUnavailable, InvalidRequest, NotAllowed
from bot.qwen import MAX_SEED, NEGATIVE_PROMPT_LIMIT, PROMPT_LIMIT
from bot.services import Services
from bot.services.generation import MISSING_RECORD
from bot.sizes import ImageSize
from bot.ui.failures import report_error
from bot.ui.presentation import details_embed, jump_url
from bot.ui.replies import NO_MENTIONS
from bot.ui.results import RESULT_ACTION_EVENT, Credit, ResultButton, generate_and_deliver

log = logging.getLogger(__name__)

_SIZE_TEXT = re.compile(r"^\s*(\d+)\s*[*x×X]\s*(\d+)\s*$")


def parse_seed(text: str) -> int | None:
    """A seed typed in the form; empty means a random one."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > MAX_SEED:
        raise InvalidRequest(f"The seed must be a whole number from 0 to {MAX_SEED}, or empty for a random one.")
    return int(text)


def parse_size(text: str, sizes: tuple[ImageSize, ...]) -> str:
    """A size typed as `W*H` (or `WxH`, or its name); returns the API string."""
    match = _SIZE_TEXT.match(text)
    if match:
        value = f"{int(match.group(1))}*{int(match.group(2))}"
        if any(s.value == value for s in sizes):
            return value
    for size in sizes:
        if text.strip().lower() in (size.label.lower(), size.choice_name.lower()):
            return size.value
    offered = ", ".join(s.value for s in sizes)
    raise InvalidRequest(f"{text.strip()!r} isn't a size this bot offers. Use one of: {offered}.")


def parse_on_off(text: str) -> bool:
    """`on`/`off` (and yes/no, true/false) from the form."""
    value = text.strip().lower()
    if value in ("on", "yes", "true", "1"):
        return True
    if value in ("off", "no", "false", "0"):
        return False
    raise InvalidRequest("Prompt rewriting must be on or off.")


def credit_for(record: GenerationRecord) -> Credit:
    """Credit to the creator of the image a remix starts from."""
    return Credit(record.member_id, jump_url(record.guild_id, record.channel_id, record.message_id))


def require_guild(interaction: discord.Interaction[Any]) -> int:
    """Remixes count against server limits, so they happen in servers only."""
    if interaction.guild_id is None:
        raise NotAllowed("Remixing works in servers only.")
    return interaction.guild_id


REMIX_FORM = re.compile(r"qi:remix-form:(?P<id>[0-9]{1,19})")


def remix_form(record: GenerationRecord, sizes: tuple[ImageSize, ...]) -> discord.ui.Modal:
    """The remix form, prefilled from the original (a seed left as it was reproduces the image).

    Its submission is read from the custom_id and the submitted values alone (see
    `RemixCog.on_interaction`), so a form left open for an hour, or across a restart, still works;
    the library's copy of the modal only needs to live long enough to be sent."""
    form = discord.ui.Modal(title="Remix image", timeout=60, custom_id=f"qi:remix-form:{record.id}")
    fields: list[discord.ui.TextInput[discord.ui.Modal]] = [
        discord.ui.TextInput(
            label="Prompt",
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            default=record.prompt,
            max_length=PROMPT_LIMIT,
        ),
        discord.ui.TextInput(
            label="Negative prompt",
            custom_id="negative_prompt",
            style=discord.TextStyle.paragraph,
            default=record.negative_prompt or None,
            max_length=NEGATIVE_PROMPT_LIMIT,
            required=False,
        ),
        discord.ui.TextInput(
            label="Seed (empty for a random one)",
            custom_id="seed",
            default=str(record.seed),
            max_length=10,
            required=False,
        ),
        discord.ui.TextInput(
            label="Size (width*height)",
            custom_id="size",
            default=record.size,
            max_length=40,
            placeholder=", ".join(s.value for s in sizes)[:100],
        ),
        discord.ui.TextInput(
            label="Prompt rewriting (on or off)",
            custom_id="enhance",
            default="on" if record.prompt_extend else "off",
            max_length=5,
        ),
    ]
    for field in fields:
        form.add_item(field)
    return form


def submitted_values(data: Any) -> dict[str, str]:
    """custom_id -> value of the text inputs in a MODAL_SUBMIT (in action rows or labels)."""
    values: dict[str, str] = {}
    for top in data.get("components") or []:
        for item in top.get("components") or [top.get("component") or {}]:
            if item.get("type") == discord.ComponentType.text_input.value:
                values[item["custom_id"]] = item.get("value") or ""
    return values


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
        self._handlers: dict[str, Callable[[discord.Interaction[Any], int], Awaitable[None]]] = {
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
    async def on_result_action(self, action: str, generation_id: int, interaction: discord.Interaction[Any]) -> None:
        """A result button was clicked."""
        try:
            await self._handlers[action](interaction, generation_id)
        except Exception as error:
            await report_error(interaction, error)

    async def reroll(self, interaction: discord.Interaction[Any], generation_id: int) -> None:
        """Same prompt and options, a new random seed, counted against the clicker's limits."""
        record = await self.services.generation.reusable(generation_id)
        request = self.services.generation.build_request(
            guild_id=require_guild(interaction),
            channel_id=interaction.channel_id,
            member_id=interaction.user.id,
            prompt=record.prompt or "",
            size=record.size,
            negative_prompt=record.negative_prompt,
            seed=None,
            prompt_extend=record.prompt_extend,
            parent_id=record.id,
            model=record.model,
        )
        await generate_and_deliver(interaction, self.services, request, credit=credit_for(record))

    async def open_remix_form(self, interaction: discord.Interaction[Any], generation_id: int) -> None:
        """Open the remix form prefilled from the original."""
        require_guild(interaction)
        record = await self.services.generation.reusable(generation_id)
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
            await self.submit_remix(interaction, int(match["id"]), submitted_values(interaction.data))
        except Exception as error:
            await report_error(interaction, error)

    async def submit_remix(
        self, interaction: discord.Interaction[Any], generation_id: int, values: dict[str, str]
    ) -> None:
        """Generate from a submitted remix form, crediting the original."""
        generation = self.services.generation
        record = await generation.reusable(generation_id)
        request = generation.build_request(
            guild_id=require_guild(interaction),
            channel_id=interaction.channel_id,
            member_id=interaction.user.id,
            prompt=values.get("prompt", ""),
            size=parse_size(values.get("size", ""), generation.sizes),
            negative_prompt=values.get("negative_prompt"),
            seed=parse_seed(values.get("seed", "")),
            prompt_extend=parse_on_off(values.get("enhance", "")),
            parent_id=record.id,
            model=record.model,
        )
        await generate_and_deliver(interaction, self.services, request, credit=credit_for(record))

    async def details(self, interaction: discord.Interaction[Any], generation_id: int) -> None:
        """Privately show everything needed to reproduce the image."""
        generation = self.services.generation
        record = await generation.record(generation_id)
        if record is None:
            raise GenerationUnavailable(MISSING_RECORD)
        lineage = await generation.lineage(generation_id)
        await interaction.response.send_message(
            embed=details_embed(record, lineage), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    async def delete(self, interaction: discord.Interaction[Any], generation_id: int) -> None:
        """Remove a result: its creator and moderators only."""
        record = await self.services.generation.record(generation_id)
        permissions = interaction.permissions
        is_moderator = permissions.manage_guild or permissions.manage_messages
        if not is_moderator and (record is None or record.member_id != interaction.user.id):
            raise NotAllowed("Only the member who asked for this image, or a moderator, can delete it.")
        await interaction.response.defer()
        if interaction.message is not None:
            await interaction.message.delete()
        if record is not None:
            await self.services.generation.forget_message(generation_id)
        log.info("generation %s deleted by %s", generation_id, interaction.user.id)

    async def remix_from_menu(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        """The "Remix image" context menu: the Remix button, from any of the bot's results."""
        record = None
        if self.bot.user is not None and message.author.id == self.bot.user.id:
            record = await self.services.generation.find_by_message(message.id)
        if record is None:
            raise NotAllowed("That isn't one of my images. Use Remix image on a result I posted.")
        await self.open_remix_form(interaction, record.id)


async def setup(bot: QwenImagineBot) -> None:
    """Load the cog with the bot's services."""
    await bot.add_cog(RemixCog(bot, bot.services))
