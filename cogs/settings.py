"""/settings (moderators): where members may generate, which words they may not use, the audit and log channel.

`SettingsCog.settings` is the `/settings` group; other cogs attach their own subcommand groups to it
with `attach_to_settings`."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import QwenImagineBot
from bot.db.records import AuditEntry
from bot.i18n import N_, number, t
from bot.i18n.commands import described
from bot.services import Services
from bot.services.settings import GuildSettings
from bot.services.words import MAX_WORD_LENGTH, MAX_WORDS
from bot.ui.audit_log import announce, audit_line
from bot.ui.presentation import EMBED_COLOUR
from bot.ui.replies import NO_MENTIONS
from cogs.limits import describe_limit, role_line

log = logging.getLogger(__name__)

MANAGE_GUILD = discord.Permissions(manage_guild=True)
CONTENT_FILTER_NOTE = N_("settings.filter_note")


def guild_id_of(interaction: discord.Interaction[Any]) -> int:
    """The guild of a guild-only command."""
    assert interaction.guild_id is not None
    return interaction.guild_id


def attach_to_settings(bot: commands.Bot, group: app_commands.Group) -> None:
    """Add a subcommand group to `/settings` (load `cogs.settings` first)."""
    settings = bot.tree.get_command("settings")
    if not isinstance(settings, app_commands.Group):
        raise RuntimeError("cogs.settings must be loaded before groups are attached to /settings")
    settings.add_command(group)


class SettingsCog(commands.Cog):
    """Moderators choose the channels and the blocked words, and read the record of changes."""

    settings = app_commands.Group(
        name="settings",
        description=described("cmd.settings"),
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        default_permissions=MANAGE_GUILD,
    )
    channels = app_commands.Group(name="channels", description=described("cmd.settings.channels"), parent=settings)
    words = app_commands.Group(name="words", description=described("cmd.settings.words"), parent=settings)

    def __init__(self, bot: QwenImagineBot, services: Services) -> None:
        self.bot = bot
        self.services = services

    async def _answer(self, interaction: discord.Interaction[Any], text: str, entry: AuditEntry | None = None) -> None:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        await announce(interaction, self.services, entry)

    @settings.command(name="show", description=described("cmd.settings.show"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def show(self, interaction: discord.Interaction[Any]) -> None:
        guild_id = guild_id_of(interaction)
        current = await self.services.settings.show(guild_id)
        limits = await self.services.limits.overview(guild_id)
        roles = await self.services.limits.role_limits(guild_id)
        blocked = await self.services.limits.blocked(guild_id)
        lines = [
            t("settings.limit_line", rule=describe_limit(row.limit), origin=t("settings.origin.default"))
            if row.is_default
            else t("settings.limit_line", rule=describe_limit(row.limit), origin=t("settings.origin.own"))
            for row in limits
        ]
        lines += [role_line(r) for r in roles]
        embed = settings_embed(current)
        embed.add_field(name=t("settings.limits"), value="\n".join(lines)[:1024] or t("settings.none"), inline=False)
        embed.add_field(name=t("settings.blocked_members"), value=number(len(blocked)))
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @channels.command(name="add", description=described("cmd.settings.channels.add"))
    @app_commands.describe(channel=described("cmd.settings.channels.add.channel"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def channels_add(self, interaction: discord.Interaction[Any], channel: discord.TextChannel) -> None:
        guild_id = guild_id_of(interaction)
        _same_guild(channel, guild_id)
        entry = await self.services.settings.allow_channel(guild_id, channel.id, by=interaction.user.id)
        if entry:
            text = t("settings.channels.added", channel=channel.mention)
        else:
            text = t("settings.channels.already", channel=channel.mention)
        await self._answer(interaction, text, entry)

    @channels.command(name="remove", description=described("cmd.settings.channels.remove"))
    @app_commands.describe(channel=described("cmd.settings.channels.remove.channel"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def channels_remove(self, interaction: discord.Interaction[Any], channel: discord.TextChannel) -> None:
        guild_id = guild_id_of(interaction)
        _same_guild(channel, guild_id)
        entry = await self.services.settings.disallow_channel(guild_id, channel.id, by=interaction.user.id)
        left = await self.services.settings.channels(guild_id)
        if entry:
            text = t("settings.channels.removed", channel=channel.mention)
        else:
            text = t("settings.channels.not_listed", channel=channel.mention)
        if not left:
            text = t("settings.channels.now_empty", said=text)
        await self._answer(interaction, text, entry)

    @channels.command(name="list", description=described("cmd.settings.channels.list"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def channels_list(self, interaction: discord.Interaction[Any]) -> None:
        allowed = await self.services.settings.channels(guild_id_of(interaction))
        text = (
            t("settings.channels.list", channels=", ".join(f"<#{c}>" for c in allowed))
            if allowed
            else t("settings.channels.list_empty")
        )
        await self._answer(interaction, text)

    @words.command(name="add", description=described("cmd.settings.words.add"))
    @app_commands.describe(word=described("cmd.settings.words.add.word", max=MAX_WORD_LENGTH))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def words_add(self, interaction: discord.Interaction[Any], word: app_commands.Range[str, 1, 200]) -> None:
        entry, change = await self.services.settings.add_word(guild_id_of(interaction), word, by=interaction.user.id)
        text = t("settings.words.added", word=entry) if change else t("settings.words.already", word=entry)
        await self._answer(interaction, text, change)

    @words.command(name="remove", description=described("cmd.settings.words.remove"))
    @app_commands.describe(word=described("cmd.settings.words.remove.word"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def words_remove(self, interaction: discord.Interaction[Any], word: app_commands.Range[str, 1, 200]) -> None:
        entry, change = await self.services.settings.remove_word(guild_id_of(interaction), word, by=interaction.user.id)
        text = t("settings.words.removed", word=entry) if change else t("settings.words.not_blocked", word=entry)
        await self._answer(interaction, text, change)

    @words.command(name="list", description=described("cmd.settings.words.list"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def words_list(self, interaction: discord.Interaction[Any]) -> None:
        entries = await self.services.settings.words(guild_id_of(interaction))
        title = t("settings.words.title", count=number(len(entries)), max=number(MAX_WORDS))
        embed = discord.Embed(title=title, colour=EMBED_COLOUR)
        embed.description = _bounded(", ".join(f"“{e}”" for e in entries), 4000) or t("settings.words.none")
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @settings.command(name="audit", description=described("cmd.settings.audit"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def audit(self, interaction: discord.Interaction[Any]) -> None:
        entries = await self.services.settings.audit.recent(guild_id_of(interaction))
        lines = [audit_line(entry) for entry in entries]
        embed = discord.Embed(title=t("settings.audit.title"), colour=EMBED_COLOUR)
        embed.description = _bounded("\n".join(lines), 4000) or t("settings.audit.none")
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @settings.command(name="log-channel", description=described("cmd.settings.log_channel"))
    @app_commands.describe(channel=described("cmd.settings.log_channel.channel"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def log_channel(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel | None = None
    ) -> None:
        guild_id = guild_id_of(interaction)
        if channel is not None:
            _same_guild(channel, guild_id)
            granted = channel.permissions_for(channel.guild.me)
            if not (granted.view_channel and granted.send_messages):
                await self._answer(interaction, t("settings.log.cannot_post", channel=channel.mention))
                return
        previous = await self.services.settings.audit.log_channel(guild_id)
        entry = await self.services.settings.set_log_channel(
            guild_id, channel.id if channel else None, by=interaction.user.id
        )
        text = t("settings.log.set", channel=channel.mention) if channel else t("settings.log.off")
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        # The channel left behind hears that it is no longer the log channel.
        await announce(interaction, self.services, entry, to=None if channel else previous)


def _same_guild(channel: discord.abc.GuildChannel, guild_id: int) -> None:
    if channel.guild.id != guild_id:
        raise app_commands.CheckFailure("channel of another server")


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def settings_embed(current: GuildSettings) -> discord.Embed:
    """/settings show: channels, words and log channel (limits are added by the caller)."""
    embed = discord.Embed(title=t("settings.title"), description=t(CONTENT_FILTER_NOTE), colour=EMBED_COLOUR)
    channels = ", ".join(f"<#{c}>" for c in current.channels) or t("settings.channels.every")
    embed.add_field(name=t("settings.channels"), value=_bounded(channels, 1024), inline=False)
    words = t("settings.words.count", count=number(len(current.words)), max=number(MAX_WORDS))
    embed.add_field(name=t("settings.words"), value=words)
    log_channel = f"<#{current.log_channel}>" if current.log_channel else t("settings.none")
    embed.add_field(name=t("settings.log_channel"), value=log_channel)
    embed.set_footer(text=t("settings.footer"))
    return embed


async def setup(bot: QwenImagineBot) -> None:
    """Load the cog with the bot's services."""
    await bot.add_cog(SettingsCog(bot, bot.services))
