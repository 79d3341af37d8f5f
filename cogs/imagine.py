"""/imagine: parse the options, acknowledge, generate, reply with the image."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import QwenImagineBot
from bot.i18n.commands import described
from bot.qwen import MAX_SEED, NEGATIVE_PROMPT_LIMIT, PROMPT_LIMIT
from bot.services import Services
from bot.sizes import ImageSize
from bot.ui.results import generate_and_deliver

log = logging.getLogger(__name__)

ImagineHandler = Callable[
    [discord.Interaction, str, str | None, str | None, int | None, bool, str | None], Awaitable[None]
]


def size_choice(size: ImageSize) -> app_commands.Choice[str]:
    """A size as a choice; a ratio's own label is named in each member's language."""
    key = size.label_key
    name = described(key, width=size.width, height=size.height) if key else size.choice_name
    return app_commands.Choice(name=name, value=size.value)


def build_imagine_command(
    sizes: tuple[ImageSize, ...], handler: ImagineHandler, models: tuple[str, ...] = ()
) -> app_commands.Command:  # type: ignore[type-arg]
    """The /imagine command; its size choices come from the configured size table, and it offers a
    model choice when more than one text-to-image model is enabled."""
    if len(models) > 1:
        return _with_model_choice(sizes, handler, models)

    @app_commands.command(name="imagine", description=described("cmd.imagine"))
    @app_commands.describe(
        prompt=described("cmd.imagine.prompt", limit=PROMPT_LIMIT),
        size=described("cmd.imagine.size"),
        negative_prompt=described("cmd.imagine.negative_prompt", limit=NEGATIVE_PROMPT_LIMIT),
        seed=described("cmd.imagine.seed", max=MAX_SEED),
        enhance=described("cmd.imagine.enhance"),
    )
    @app_commands.choices(size=[size_choice(s) for s in sizes])
    @app_commands.guild_only()
    async def imagine(
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_LIMIT],
        size: str | None = None,
        negative_prompt: app_commands.Range[str, 1, NEGATIVE_PROMPT_LIMIT] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        enhance: bool = True,
    ) -> None:
        await handler(interaction, prompt, size, negative_prompt, seed, enhance, None)

    return imagine


def _with_model_choice(
    sizes: tuple[ImageSize, ...], handler: ImagineHandler, models: tuple[str, ...]
) -> app_commands.Command:  # type: ignore[type-arg]
    @app_commands.command(name="imagine", description=described("cmd.imagine"))
    @app_commands.describe(
        prompt=described("cmd.imagine.prompt", limit=PROMPT_LIMIT),
        size=described("cmd.imagine.size"),
        negative_prompt=described("cmd.imagine.negative_prompt", limit=NEGATIVE_PROMPT_LIMIT),
        seed=described("cmd.imagine.seed", max=MAX_SEED),
        enhance=described("cmd.imagine.enhance"),
        model=described("cmd.imagine.model"),
    )
    @app_commands.choices(
        size=[size_choice(s) for s in sizes],
        model=[app_commands.Choice(name=m, value=m) for m in models],
    )
    @app_commands.guild_only()
    async def imagine(
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_LIMIT],
        size: str | None = None,
        negative_prompt: app_commands.Range[str, 1, NEGATIVE_PROMPT_LIMIT] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        enhance: bool = True,
        model: str | None = None,
    ) -> None:
        await handler(interaction, prompt, size, negative_prompt, seed, enhance, model)

    return imagine


class ImagineCog(commands.Cog):
    """The /imagine command."""

    def __init__(self, bot: QwenImagineBot, services: Services) -> None:
        self.bot = bot
        self.services = services
        models = services.models.enabled("text") if services.models else ()
        self.command = build_imagine_command(services.generation.sizes, self.imagine, models)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.command)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.command.name)

    async def imagine(
        self,
        interaction: discord.Interaction,
        prompt: str,
        size: str | None,
        negative_prompt: str | None,
        seed: int | None,
        enhance: bool,
        model: str | None = None,
    ) -> None:
        """Validate the options, then admit, acknowledge, generate and post."""
        if self.services.models is not None and interaction.guild_id is not None:
            model = await self.services.models.pick(interaction.guild_id, "text", model)
        request = self.services.generation.build_request(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            member_id=interaction.user.id,
            prompt=prompt,
            size=size,
            negative_prompt=negative_prompt,
            seed=seed,
            prompt_extend=enhance,
            model=model,
        )
        await generate_and_deliver(interaction, self.services, request)


async def setup(bot: QwenImagineBot) -> None:
    """Load the cog with the bot's services."""
    await bot.add_cog(ImagineCog(bot, bot.services))
