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
from bot.services import Services
from bot.services.settings import GuildSettings
from bot.services.words import MAX_WORD_LENGTH, MAX_WORDS
from bot.ui.audit_log import announce, audit_line
from bot.ui.presentation import EMBED_COLOUR
from bot.ui.replies import NO_MENTIONS

log = logging.getLogger(__name__)

MANAGE_GUILD = discord.Permissions(manage_guild=True)
CONTENT_FILTER_NOTE = (
    "The image service's own content filter always applies on top of these settings and cannot be loosened."
)


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
        description="See and change where and how images are made in this server",
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        default_permissions=MANAGE_GUILD,
    )
    channels = app_commands.Group(name="channels", description="The channels images may be made in", parent=settings)
    words = app_commands.Group(name="words", description="Words and phrases kept out of prompts", parent=settings)

    def __init__(self, bot: QwenImagineBot, services: Services) -> None:
        self.bot = bot
        self.services = services

    async def _answer(self, interaction: discord.Interaction[Any], text: str, entry: AuditEntry | None = None) -> None:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        await announce(interaction, self.services, entry)

    @settings.command(name="show", description="This server's whole image configuration")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def show(self, interaction: discord.Interaction[Any]) -> None:
        guild_id = guild_id_of(interaction)
        current = await self.services.settings.show(guild_id)
        limits = await self.services.limits.overview(guild_id)
        roles = await self.services.limits.role_limits(guild_id)
        blocked = await self.services.limits.blocked(guild_id)
        lines = [f"• {row.limit.describe()} ({'default' if row.is_default else 'own'})" for row in limits]
        lines += [f"• <@&{r.role_id}>: {r.max_count} per member per {r.window.value}" for r in roles]
        embed = settings_embed(current)
        embed.add_field(name="Limits", value="\n".join(lines)[:1024] or "none", inline=False)
        embed.add_field(name="Blocked members", value=str(len(blocked)))
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @channels.command(name="add", description="Allow image generation in a channel (its threads too)")
    @app_commands.describe(channel="The channel to allow")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def channels_add(self, interaction: discord.Interaction[Any], channel: discord.TextChannel) -> None:
        guild_id = guild_id_of(interaction)
        _same_guild(channel, guild_id)
        entry = await self.services.settings.allow_channel(guild_id, channel.id, by=interaction.user.id)
        text = f"Images can now be made in {channel.mention}." if entry else f"{channel.mention} was already allowed."
        await self._answer(interaction, text + " Other channels are refused while the list is not empty.", entry)

    @channels.command(name="remove", description="Stop allowing image generation in a channel")
    @app_commands.describe(channel="The channel to remove from the list")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def channels_remove(self, interaction: discord.Interaction[Any], channel: discord.TextChannel) -> None:
        guild_id = guild_id_of(interaction)
        _same_guild(channel, guild_id)
        entry = await self.services.settings.disallow_channel(guild_id, channel.id, by=interaction.user.id)
        left = await self.services.settings.channels(guild_id)
        text = f"{channel.mention} is no longer on the list." if entry else f"{channel.mention} was not on the list."
        if not left:
            text += " The list is empty: images can be made in every channel."
        await self._answer(interaction, text, entry)

    @channels.command(name="list", description="The channels images may be made in")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def channels_list(self, interaction: discord.Interaction[Any]) -> None:
        allowed = await self.services.settings.channels(guild_id_of(interaction))
        text = (
            "Images can be made in: " + ", ".join(f"<#{c}>" for c in allowed)
            if allowed
            else ("No channels are listed: images can be made in every channel.")
        )
        await self._answer(interaction, text)

    @words.command(name="add", description="Refuse prompts that contain a word or phrase")
    @app_commands.describe(word=f"A word or phrase (up to {MAX_WORD_LENGTH} characters)")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def words_add(self, interaction: discord.Interaction[Any], word: app_commands.Range[str, 1, 200]) -> None:
        entry, change = await self.services.settings.add_word(guild_id_of(interaction), word, by=interaction.user.id)
        text = f"Prompts containing “{entry}” will be refused." if change else f"“{entry}” was already blocked."
        await self._answer(interaction, text, change)

    @words.command(name="remove", description="Allow a blocked word or phrase again")
    @app_commands.describe(word="The word or phrase to allow again")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def words_remove(self, interaction: discord.Interaction[Any], word: app_commands.Range[str, 1, 200]) -> None:
        entry, change = await self.services.settings.remove_word(guild_id_of(interaction), word, by=interaction.user.id)
        text = f"“{entry}” is allowed again." if change else f"“{entry}” was not blocked."
        await self._answer(interaction, text, change)

    @words.command(name="list", description="The blocked words and phrases")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def words_list(self, interaction: discord.Interaction[Any]) -> None:
        entries = await self.services.settings.words(guild_id_of(interaction))
        embed = discord.Embed(title=f"Blocked words ({len(entries)} of {MAX_WORDS})", colour=EMBED_COLOUR)
        embed.description = _bounded(", ".join(f"“{e}”" for e in entries), 4000) or "None."
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @settings.command(name="audit", description="The latest changes to this server's settings")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def audit(self, interaction: discord.Interaction[Any]) -> None:
        entries = await self.services.settings.audit.recent(guild_id_of(interaction))
        lines = [audit_line(entry) for entry in entries]
        embed = discord.Embed(title="Latest settings changes", colour=EMBED_COLOUR)
        embed.description = _bounded("\n".join(lines), 4000) or "No changes recorded yet."
        await interaction.response.send_message(embed=embed, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @settings.command(name="log-channel", description="Also post every settings change in a channel")
    @app_commands.describe(channel="Where to post changes; leave out to stop posting them")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def log_channel(
        self, interaction: discord.Interaction[Any], channel: discord.TextChannel | None = None
    ) -> None:
        guild_id = guild_id_of(interaction)
        if channel is not None:
            _same_guild(channel, guild_id)
            granted = channel.permissions_for(channel.guild.me)
            if not (granted.view_channel and granted.send_messages):
                await self._answer(
                    interaction,
                    f"I can't post in {channel.mention}: let me View Channel and Send Messages there first.",
                )
                return
        previous = await self.services.settings.audit.log_channel(guild_id)
        entry = await self.services.settings.set_log_channel(
            guild_id, channel.id if channel else None, by=interaction.user.id
        )
        text = f"Settings changes will be posted in {channel.mention}." if channel else "Changes are no longer posted."
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
    embed = discord.Embed(title="Image settings", description=CONTENT_FILTER_NOTE, colour=EMBED_COLOUR)
    channels = ", ".join(f"<#{c}>" for c in current.channels) or "every channel"
    embed.add_field(name="Channels", value=_bounded(channels, 1024), inline=False)
    embed.add_field(name="Blocked words", value=f"{len(current.words)} of {MAX_WORDS} (see /settings words list)")
    embed.add_field(name="Log channel", value=f"<#{current.log_channel}>" if current.log_channel else "none")
    embed.set_footer(text="Limits apply to everyone, moderators included, unless a role's value lifts them.")
    return embed


async def setup(bot: QwenImagineBot) -> None:
    """Load the cog with the bot's services."""
    await bot.add_cog(SettingsCog(bot, bot.services))
