"""/limits (moderators), /usage (moderators) and /quota (members)."""

from __future__ import annotations

import contextlib
import io
import logging
from datetime import UTC, datetime
from typing import Literal, cast

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.client import QwenImagineBot
from bot.db.records import WindowUse
from bot.limits import MAX_LIMIT, RoleLimit, Scope, SourcedLimit, Window
from bot.services.budget import dollars
from bot.services.limits import LimitRow, LimitsService, discord_time
from bot.services.usage import Period, UsageReport, UsageService
from bot.ui.audit_log import announce
from bot.ui.presentation import EMBED_COLOUR
from bot.ui.replies import NO_MENTIONS

log = logging.getLogger(__name__)

MANAGE_GUILD = discord.Permissions(manage_guild=True)
ScopeName = Literal["member", "server"]
WindowName = Literal["hour", "day", "week", "month"]
PeriodName = Literal["day", "week", "month"]
#: Dispatched (with how many prompts were cleared) after each retention pass, the one at start-up included.
RETENTION_EVENT = "retention_applied"


def guild_id_of(interaction: discord.Interaction) -> int:
    """The guild of a guild-only command."""
    assert interaction.guild_id is not None
    return interaction.guild_id


class LimitsCog(commands.Cog):
    """Moderators set limits and read usage; members check their quota."""

    limits = app_commands.Group(
        name="limits",
        description="See and change this server's image limits",
        guild_only=True,
        allowed_contexts=app_commands.AppCommandContext(guild=True),
        default_permissions=MANAGE_GUILD,
    )

    def __init__(self, bot: QwenImagineBot, limits: LimitsService, usage: UsageService) -> None:
        self.bot = bot
        self.limit_service = limits
        self.usage_service = usage

    async def cog_load(self) -> None:
        self.retention.start()

    async def cog_unload(self) -> None:
        self.retention.cancel()

    @tasks.loop(hours=6)
    async def retention(self) -> None:
        """Clear old prompts now and every six hours (a failure is logged and tried again next time)."""
        try:
            scrubbed = await self.usage_service.apply_retention()
        except Exception:
            log.exception("could not apply the prompt retention period")
            return
        self.bot.dispatch(RETENTION_EVENT, scrubbed)

    @limits.command(name="show", description="This server's limits, the defaults it inherits, and current use")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def show(self, interaction: discord.Interaction) -> None:
        guild_id = guild_id_of(interaction)
        rows = await self.limit_service.overview(guild_id)
        blocked = await self.limit_service.blocked(guild_id)
        roles = await self.limit_service.role_limits(guild_id)
        await interaction.response.send_message(
            embed=limits_embed(rows, blocked, roles), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @limits.command(name="set", description="Set this server's own value for one limit")
    @app_commands.describe(
        scope="member: each member separately; server: everyone together",
        window="The sliding window the limit counts over (a month is 30 days)",
        max_count=f"Images allowed in the window (0 blocks, {MAX_LIMIT} lifts); leave out to use the default",
        role="Set this role's value instead (member windows only); members get their most generous role's value",
    )
    @app_commands.rename(max_count="max")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def set_limit(
        self,
        interaction: discord.Interaction,
        scope: ScopeName,
        window: WindowName,
        max_count: app_commands.Range[int, 0, MAX_LIMIT] | None = None,
        role: discord.Role | None = None,
    ) -> None:
        guild_id = guild_id_of(interaction)
        if role is not None:
            entry = await self.limit_service.set_role_limit(
                guild_id, role.id, Scope(scope), Window(window), max_count, by=interaction.user.id
            )
            text = (
                f"{role.mention} members: {max_count} images per member per {window}."
                if max_count is not None
                else f"{role.mention} no longer has its own {window} value."
            )
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
            await announce(interaction, self.bot.services, entry)
            return
        entry = await self.limit_service.set_limit(
            guild_id, Scope(scope), Window(window), max_count, by=interaction.user.id
        )
        rows = await self.limit_service.overview(guild_id)
        current = next((r for r in rows if r.limit.key == (Scope(scope), Window(window))), None)
        if current is None:
            text = f"There is no {scope}/{window} limit now (no default for it)."
        elif current.is_default:
            text = f"{scope}/{window} is back to its default: {current.limit.describe()}."
        else:
            text = f"Limit set: {current.limit.describe()}."
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        await announce(interaction, self.bot.services, entry)

    @limits.command(name="budget", description="This server's monthly spending cap in US dollars")
    @app_commands.describe(usd="The cap for this calendar month and every next one (UTC); leave out to remove it")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def budget(
        self, interaction: discord.Interaction, usd: app_commands.Range[float, 0, 1_000_000] | None = None
    ) -> None:
        guild_id = guild_id_of(interaction)
        budget = self.bot.services.budget
        assert budget is not None
        entry = await budget.set_budget(guild_id, usd, actor_id=interaction.user.id)
        status = await budget.status(guild_id)
        spent = f"{dollars(status.guild_spent)} spent this month (list prices)"
        if usd is None:
            text = f"This server has no monthly budget of its own now; {spent}."
        else:
            text = f"Monthly budget set: {dollars(usd)}; {spent}. It resets <t:{int(status.resets_at)}:R>."
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        await announce(interaction, self.bot.services, entry)

    @limits.command(name="reset", description="Return every limit to the defaults")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def reset(self, interaction: discord.Interaction) -> None:
        guild_id = guild_id_of(interaction)
        entry = await self.limit_service.reset(guild_id, by=interaction.user.id)
        rows = await self.limit_service.overview(guild_id)
        blocked = await self.limit_service.blocked(guild_id)
        roles = await self.limit_service.role_limits(guild_id)
        await interaction.response.send_message(
            "All limits are back to the defaults.",
            embed=limits_embed(rows, blocked, roles),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )
        await announce(interaction, self.bot.services, entry)

    @limits.command(name="block", description="Stop a member from generating images here")
    @app_commands.describe(member="The member to stop")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def block(self, interaction: discord.Interaction, member: discord.Member) -> None:
        entry = await self.limit_service.block(guild_id_of(interaction), member.id, by=interaction.user.id)
        text = "can no longer generate images here." if entry else "was already blocked."
        await interaction.response.send_message(
            f"{member.mention} {text}", ephemeral=True, allowed_mentions=NO_MENTIONS
        )
        await announce(interaction, self.bot.services, entry)

    @limits.command(name="unblock", description="Allow a blocked member to generate images again")
    @app_commands.describe(member="The member to allow again")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def unblock(self, interaction: discord.Interaction, member: discord.Member) -> None:
        entry = await self.limit_service.unblock(guild_id_of(interaction), member.id, by=interaction.user.id)
        text = "can generate images again." if entry else "was not blocked."
        await interaction.response.send_message(
            f"{member.mention} {text}", ephemeral=True, allowed_mentions=NO_MENTIONS
        )
        await announce(interaction, self.bot.services, entry)

    @app_commands.command(name="usage", description="Images, failures, denials and estimated cost in this server")
    @app_commands.describe(period="How far back to look", export="Attach every request of the period as a CSV file")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def usage(self, interaction: discord.Interaction, period: PeriodName = "day", export: bool = False) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = guild_id_of(interaction)
        report = await self.usage_service.report(guild_id, Period(period))
        embed = usage_embed(report)
        files: list[discord.File] = []
        with contextlib.ExitStack() as cleanup:
            if export:
                csv_export = cleanup.enter_context(
                    await self.usage_service.export_csv(guild_id, Period(period), max_bytes=interaction.filesize_limit)
                )
                stamp = datetime.now(UTC).strftime("%Y%m%d")
                # discord.py reads any seekable binary file; its annotation names only BufferedIOBase.
                upload = cast(io.BufferedIOBase, csv_export.file)
                files.append(discord.File(upload, filename=f"usage-{guild_id}-{period}-{stamp}.csv"))
                note = "" if csv_export.complete else " (cut short at the upload limit: pick a shorter period)"
                embed.set_footer(text=f"CSV: {csv_export.rows} rows{note}")
            await interaction.followup.send(embed=embed, files=files, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="quota", description="How many images you may still create, and when more free up")
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction) -> None:
        guild_id = guild_id_of(interaction)
        if await self.limit_service.is_blocked(guild_id, interaction.user.id):
            text = "A moderator has paused image generation for you in this server."
            await interaction.response.send_message(text, ephemeral=True)
            return
        user = interaction.user
        role_ids = tuple(role.id for role in user.roles) if isinstance(user, discord.Member) else ()
        uses = await self.limit_service.quota(guild_id, user.id, role_ids)
        await interaction.response.send_message(embed=quota_embed(uses), ephemeral=True)


def limits_embed(
    rows: tuple[LimitRow, ...], blocked: tuple[int, ...], roles: tuple[RoleLimit, ...] = ()
) -> discord.Embed:
    """/limits show: each effective limit, its origin and current use, and the roles' own values."""
    lines = [_limit_line(row) for row in rows] or ["No limits: members may generate without limit."]
    embed = discord.Embed(title="Image limits", description="\n".join(lines), colour=EMBED_COLOUR)
    if roles:
        shown = "\n".join(f"• <@&{r.role_id}>: {r.max_count} per member per {r.window.value}" for r in roles[:25])
        embed.add_field(name="Role values (a member gets their most generous role's)", value=shown, inline=False)
    if blocked:
        shown = ", ".join(f"<@{member_id}>" for member_id in blocked[:40])
        more = f" and {len(blocked) - 40} more" if len(blocked) > 40 else ""
        embed.add_field(name="Blocked members", value=shown + more, inline=False)
    embed.set_footer(
        text="Windows slide: 'hour' is the last 60 minutes. Failed images don't count. "
        "Limits apply to everyone, moderators included, unless a role's value lifts them."
    )
    return embed


def _limit_line(row: LimitRow) -> str:
    origin = (
        "default"
        if row.is_default
        else (f"this server's own; default {row.default.max_count}" if row.default else "this server's own; no default")
    )
    if row.server_use is not None:
        use = f"{row.server_use} used"
    elif row.busiest_member is not None:
        member_id, count = row.busiest_member
        use = f"busiest member <@{member_id}>: {count}"
    else:
        use = "nobody has used any"
    return f"• **{row.limit.describe()}** ({origin}): {use}"


def usage_embed(report: UsageReport) -> discord.Embed:
    """/usage: the period's outcomes, top members and estimated cost."""
    summary = report.summary
    embed = discord.Embed(title=f"Usage in the last {report.period.value}", colour=EMBED_COLOUR)
    embed.add_field(name="Images", value=str(report.images_made))
    if summary.undelivered:
        embed.add_field(name="Undelivered", value=f"{summary.undelivered} (made and billed; Discord refused them)")
    embed.add_field(name="Failures", value=str(summary.failed))
    embed.add_field(name="Denied", value=str(summary.denied))
    if summary.in_progress:
        embed.add_field(name="In progress", value=str(summary.in_progress))
    embed.add_field(name="Estimated cost", value=f"${report.cost_usd:,.2f} (list price)")
    if report.per_model:
        lines = [f"{model}: {images} images, ${cost:,.2f}" for model, images, cost in report.per_model]
        embed.add_field(name="By model", value="\n".join(lines)[:1024], inline=False)
    top = "\n".join(f"{i}. <@{member}>: {count}" for i, (member, count) in enumerate(summary.top_members, 1))
    embed.add_field(name="Top members", value=top or "nobody yet", inline=False)
    return embed


def quota_embed(uses: tuple[tuple[WindowUse, SourcedLimit], ...]) -> discord.Embed:
    """/quota: what the member may still create in each window, and where each number comes from."""
    lines = [f"{_quota_line(use)} ({source.describe_source()})" for use, source in uses] or ["No limits apply here."]
    return discord.Embed(title="Your image quota", description="\n".join(lines), colour=EMBED_COLOUR)


def _quota_line(use: WindowUse) -> str:
    limit = use.limit
    who = "you" if limit.scope is Scope.MEMBER else "the whole server"
    head = f"**{use.remaining} of {limit.max_count}** left this {limit.window.value} ({who})"
    if limit.max_count == 0:
        return f"• {head}: generation is turned off"
    if use.allowed_again_at is not None:
        return f"• {head}: next image allowed {discord_time(use.allowed_again_at)}"
    if use.next_frees_at is not None and use.used:
        return f"• {head}: one more frees up {discord_time(use.next_frees_at)}"
    return f"• {head}"


async def setup(bot: QwenImagineBot) -> None:
    """Load the cog with the bot's limits and usage services."""
    await bot.add_cog(LimitsCog(bot, bot.services.limits, bot.services.usage))
