"""/settings model: moderators choose their server's text-to-image and edit models among the enabled ones.

A subcommand group attached under `/settings` (owned by `cogs.settings`, loaded first); each change is
kept in the audit trail and posted in the server's log channel."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import QwenImagineBot
from bot.services.budget import dollars
from bot.services.models import KINDS, ModelService
from bot.ui.audit_log import announce
from bot.ui.replies import NO_MENTIONS
from cogs.settings import attach_to_settings

log = logging.getLogger(__name__)

MANAGE_GUILD = discord.Permissions(manage_guild=True)


def build_model_group(models: ModelService) -> app_commands.Group:
    """The `model` subcommand group: show, and one command per kind with the enabled models as choices."""
    group = app_commands.Group(name="model", description="Which models this server uses")

    @group.command(name="show", description="This server's models and the enabled ones")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def show(interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        lines = []
        for kind, label in KINDS.items():
            current = await models.current(interaction.guild_id, kind)
            spec = models.spec(current)
            enabled = ", ".join(models.enabled(kind)) or "none"
            lines.append(f"**{label.capitalize()}**: {current} (list price {dollars(spec.price('intl'))} per image)")
            lines.append(f"  enabled: {enabled}")
        await interaction.response.send_message("\n".join(lines), ephemeral=True, allowed_mentions=NO_MENTIONS)

    for kind, label in KINDS.items():
        group.add_command(_chooser(models, kind, label))
    return group


def _chooser(models: ModelService, kind: str, label: str) -> app_commands.Command:  # type: ignore[type-arg]
    choices = [app_commands.Choice(name=name, value=name) for name in models.enabled(kind)]

    @app_commands.command(name=kind, description=f"Choose this server's {label} model")
    @app_commands.describe(model=f"One of the {label} models the operator enabled")
    @app_commands.choices(model=choices)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def choose(interaction: discord.Interaction, model: str) -> None:
        assert interaction.guild_id is not None
        old, new, entry = await models.choose(interaction.guild_id, kind, model, actor_id=interaction.user.id)
        log.info("guild %s: %s model %s -> %s by %s", interaction.guild_id, kind, old, new, interaction.user.id)
        text = f"This server's {label} model is now {new}" + (f" (was {old})." if old != new else ".")
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        client = interaction.client
        assert isinstance(client, QwenImagineBot)
        await announce(interaction, client.services, entry)

    return choose


class ModelsCog(commands.Cog):
    """Registers `/settings model`."""

    def __init__(self, bot: QwenImagineBot, models: ModelService) -> None:
        self.bot = bot
        self.model_group = build_model_group(models)

    async def cog_load(self) -> None:
        attach_to_settings(self.bot, self.model_group)

    async def cog_unload(self) -> None:
        settings = self.bot.tree.get_command("settings")
        if isinstance(settings, app_commands.Group):
            settings.remove_command(self.model_group.name)


async def setup(bot: QwenImagineBot) -> None:
    """Load the cog with the bot's model service."""
    assert bot.services.models is not None
    await bot.add_cog(ModelsCog(bot, bot.services.models))
