"""/settings model: moderators choose their server's text-to-image and edit models among the enabled ones.

A subcommand group attached under `/settings` (owned by `cogs.settings`, loaded first); each change is
kept in the audit trail and posted in the server's log channel."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import QwenImagineBot
from bot.i18n import N_, money, t
from bot.i18n.commands import described
from bot.services.models import KINDS, ModelService
from bot.ui.audit_log import announce
from bot.ui.replies import NO_MENTIONS
from cogs.settings import attach_to_settings

log = logging.getLogger(__name__)

MANAGE_GUILD = discord.Permissions(manage_guild=True)
#: For each kind of model: its line in `show`, and the answer to a choice (the same model, a new one).
_SAID = {
    "text": (N_("models.line.text"), N_("models.now.text"), N_("models.changed.text")),
    "edit": (N_("models.line.edit"), N_("models.now.edit"), N_("models.changed.edit")),
}
#: The description of each kind's command and of its `model` option.
_DESCRIBED = {
    "text": (described("cmd.settings.model.text"), described("cmd.settings.model.text.model")),
    "edit": (described("cmd.settings.model.edit"), described("cmd.settings.model.edit.model")),
}


def build_model_group(models: ModelService) -> app_commands.Group:
    """The `model` subcommand group: show, and one command per kind with the enabled models as choices."""
    group = app_commands.Group(name="model", description=described("cmd.settings.model"))

    @group.command(name="show", description=described("cmd.settings.model.show"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def show(interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        lines = []
        for kind in KINDS:
            current = await models.current(interaction.guild_id, kind)
            spec = models.spec(current)
            enabled = ", ".join(models.enabled(kind)) or t("models.none")
            lines.append(t(_SAID[kind][0], model=current, price=money(spec.price("intl"))))
            lines.append(t("models.enabled", models=enabled))
        await interaction.response.send_message("\n".join(lines), ephemeral=True, allowed_mentions=NO_MENTIONS)

    for kind in KINDS:
        group.add_command(_chooser(models, kind))
    return group


def _chooser(models: ModelService, kind: str) -> app_commands.Command:  # type: ignore[type-arg]
    choices = [app_commands.Choice(name=name, value=name) for name in models.enabled(kind)]
    description, model_description = _DESCRIBED[kind]

    @app_commands.command(name=kind, description=description)
    @app_commands.describe(model=model_description)
    @app_commands.choices(model=choices)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def choose(interaction: discord.Interaction, model: str) -> None:
        assert interaction.guild_id is not None
        old, new, entry = await models.choose(interaction.guild_id, kind, model, actor_id=interaction.user.id)
        log.info("guild %s: %s model %s -> %s by %s", interaction.guild_id, kind, old, new, interaction.user.id)
        _, now, changed = _SAID[kind]
        text = t(changed, model=new, old=old) if old != new else t(now, model=new)
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
