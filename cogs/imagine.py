"""/imagine: parse the options, acknowledge, generate, reply with the image."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import QwenImagineBot
from bot.qwen import MAX_SEED, NEGATIVE_PROMPT_LIMIT, PROMPT_LIMIT
from bot.services import Services
from bot.sizes import ImageSize
from bot.ui.results import generate_and_deliver

log = logging.getLogger(__name__)

ImagineHandler = Callable[[discord.Interaction, str, str | None, str | None, int | None, bool], Awaitable[None]]


def build_imagine_command(sizes: tuple[ImageSize, ...], handler: ImagineHandler) -> app_commands.Command:  # type: ignore[type-arg]
    """The /imagine command; its size choices come from the configured size table."""

    @app_commands.command(name="imagine", description="Create an image from a text prompt with Qwen-Image")
    @app_commands.describe(
        prompt="What to draw (up to 800 characters)",
        size="Aspect ratio and resolution (default: square)",
        negative_prompt="What to keep out of the image (up to 500 characters)",
        seed=f"Reuse a seed to reproduce an image (0 to {MAX_SEED}); random when left out",
        enhance="Let the service rewrite and expand your prompt: better for short prompts, a little slower",
    )
    @app_commands.choices(size=[app_commands.Choice(name=s.choice_name, value=s.value) for s in sizes])
    @app_commands.guild_only()
    async def imagine(
        interaction: discord.Interaction,
        prompt: app_commands.Range[str, 1, PROMPT_LIMIT],
        size: str | None = None,
        negative_prompt: app_commands.Range[str, 1, NEGATIVE_PROMPT_LIMIT] | None = None,
        seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
        enhance: bool = True,
    ) -> None:
        await handler(interaction, prompt, size, negative_prompt, seed, enhance)

    return imagine


class ImagineCog(commands.Cog):
    """The /imagine command."""

    def __init__(self, bot: QwenImagineBot, services: Services) -> None:
        self.bot = bot
        self.services = services
        self.command = build_imagine_command(services.generation.sizes, self.imagine)

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
    ) -> None:
        """Validate the options, then admit, acknowledge, generate and post."""
        request = self.services.generation.build_request(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            member_id=interaction.user.id,
            prompt=prompt,
            size=size,
            negative_prompt=negative_prompt,
            seed=seed,
            prompt_extend=enhance,
        )
        await generate_and_deliver(interaction, self.services, request)


async def setup(bot: QwenImagineBot) -> None:
    """Load the cog with the bot's services."""
    await bot.add_cog(ImagineCog(bot, bot.services))
