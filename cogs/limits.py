"""/limits (moderators), /usage (moderators) and /quota (members)."""

from __future__ import annotations

import contextlib
import io
import logging
from datetime import UTC, datetime
from typing import cast

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.client import QwenImagineBot
from bot.db.records import WindowUse
from bot.i18n import N_, money, number, t, tn
from bot.i18n.commands import described
from bot.limits import MAX_LIMIT, Limit, RoleLimit, Scope, SourcedLimit, Window
from bot.services.limits import LimitRow, LimitsService, discord_time
from bot.services.usage import Period, UsageReport, UsageService
from bot.ui.audit_log import announce
from bot.ui.presentation import EMBED_COLOUR
from bot.ui.replies import NO_MENTIONS

log = logging.getLogger(__name__)

MANAGE_GUILD = discord.Permissions(manage_guild=True)
#: How each window is named after "per" / "this" in every language.
WINDOW_NAMES = {
    Window.HOUR: N_("limits.window.hour"),
    Window.DAY: N_("limits.window.day"),
    Window.WEEK: N_("limits.window.week"),
    Window.MONTH: N_("limits.window.month"),
}
USAGE_TITLES = {
    Period.DAY: N_("usage.title.day"),
    Period.WEEK: N_("usage.title.week"),
    Period.MONTH: N_("usage.title.month"),
}
SCOPE_CHOICES = [
    app_commands.Choice(name=described("cmd.choice.member"), value="member"),
    app_commands.Choice(name=described("cmd.choice.server"), value="server"),
]
WINDOW_CHOICES = [
    app_commands.Choice(name=described("cmd.choice.hour"), value="hour"),
    app_commands.Choice(name=described("cmd.choice.day"), value="day"),
    app_commands.Choice(name=described("cmd.choice.week"), value="week"),
    app_commands.Choice(name=described("cmd.choice.month"), value="month"),
]
PERIOD_CHOICES = [
    app_commands.Choice(name=described("cmd.choice.day"), value="day"),
    app_commands.Choice(name=described("cmd.choice.week"), value="week"),
    app_commands.Choice(name=described("cmd.choice.month"), value="month"),
]
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
        description=described("cmd.limits"),
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

    @limits.command(name="show", description=described("cmd.limits.show"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def show(self, interaction: discord.Interaction) -> None:
        guild_id = guild_id_of(interaction)
        rows = await self.limit_service.overview(guild_id)
        blocked = await self.limit_service.blocked(guild_id)
        roles = await self.limit_service.role_limits(guild_id)
        await interaction.response.send_message(
            embed=limits_embed(rows, blocked, roles), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    @limits.command(name="set", description=described("cmd.limits.set"))
    @app_commands.describe(
        scope=described("cmd.limits.set.scope"),
        window=described("cmd.limits.set.window"),
        max_count=described("cmd.limits.set.max", max=MAX_LIMIT),
        role=described("cmd.limits.set.role"),
    )
    @app_commands.rename(max_count="max")
    @app_commands.choices(scope=SCOPE_CHOICES, window=WINDOW_CHOICES)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def set_limit(
        self,
        interaction: discord.Interaction,
        scope: str,
        window: str,
        max_count: app_commands.Range[int, 0, MAX_LIMIT] | None = None,
        role: discord.Role | None = None,
    ) -> None:
        guild_id = guild_id_of(interaction)
        if role is not None:
            entry = await self.limit_service.set_role_limit(
                guild_id, role.id, Scope(scope), Window(window), max_count, by=interaction.user.id
            )
            per = window_name(Window(window))
            text = (
                tn("limits.role_set", max_count, role=role.mention, window=per)
                if max_count is not None
                else t("limits.role_cleared", role=role.mention, window=per)
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
            text = t("limits.set.none", scope=scope, window=window)
        elif current.is_default:
            text = t("limits.set.default", scope=scope, window=window, rule=describe_limit(current.limit))
        else:
            text = t("limits.set.done", rule=describe_limit(current.limit))
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        await announce(interaction, self.bot.services, entry)

    @limits.command(name="budget", description=described("cmd.limits.budget"))
    @app_commands.describe(usd=described("cmd.limits.budget.usd"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def budget(
        self, interaction: discord.Interaction, usd: app_commands.Range[float, 0, 1_000_000] | None = None
    ) -> None:
        guild_id = guild_id_of(interaction)
        budget = self.bot.services.budget
        assert budget is not None
        entry = await budget.set_budget(guild_id, usd, actor_id=interaction.user.id)
        status = await budget.status(guild_id)
        spent = t("limits.budget.spent", amount=money(status.guild_spent))
        if usd is None:
            text = t("limits.budget.removed", spent=spent)
        else:
            text = t("limits.budget.set", cap=money(usd), spent=spent, when=f"<t:{int(status.resets_at)}:R>")
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        await announce(interaction, self.bot.services, entry)

    @limits.command(name="reset", description=described("cmd.limits.reset"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def reset(self, interaction: discord.Interaction) -> None:
        guild_id = guild_id_of(interaction)
        entry = await self.limit_service.reset(guild_id, by=interaction.user.id)
        rows = await self.limit_service.overview(guild_id)
        blocked = await self.limit_service.blocked(guild_id)
        roles = await self.limit_service.role_limits(guild_id)
        await interaction.response.send_message(
            t("limits.reset.done"),
            embed=limits_embed(rows, blocked, roles),
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )
        await announce(interaction, self.bot.services, entry)

    @limits.command(name="block", description=described("cmd.limits.block"))
    @app_commands.describe(member=described("cmd.limits.block.member"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def block(self, interaction: discord.Interaction, member: discord.Member) -> None:
        entry = await self.limit_service.block(guild_id_of(interaction), member.id, by=interaction.user.id)
        text = (
            t("limits.block.done", member=member.mention) if entry else t("limits.block.already", member=member.mention)
        )
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        await announce(interaction, self.bot.services, entry)

    @limits.command(name="unblock", description=described("cmd.limits.unblock"))
    @app_commands.describe(member=described("cmd.limits.unblock.member"))
    @app_commands.checks.has_permissions(manage_guild=True)
    async def unblock(self, interaction: discord.Interaction, member: discord.Member) -> None:
        entry = await self.limit_service.unblock(guild_id_of(interaction), member.id, by=interaction.user.id)
        text = (
            t("limits.unblock.done", member=member.mention) if entry else t("limits.unblock.not", member=member.mention)
        )
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
        await announce(interaction, self.bot.services, entry)

    @app_commands.command(name="usage", description=described("cmd.usage"))
    @app_commands.describe(period=described("cmd.usage.period"), export=described("cmd.usage.export"))
    @app_commands.choices(period=PERIOD_CHOICES)
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def usage(self, interaction: discord.Interaction, period: str = "day", export: bool = False) -> None:
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
                rows = csv_export.rows
                embed.set_footer(text=tn("usage.csv", rows) if csv_export.complete else tn("usage.csv_cut", rows))
            await interaction.followup.send(embed=embed, files=files, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="quota", description=described("cmd.quota"))
    @app_commands.guild_only()
    async def quota(self, interaction: discord.Interaction) -> None:
        guild_id = guild_id_of(interaction)
        if await self.limit_service.is_blocked(guild_id, interaction.user.id):
            await interaction.response.send_message(t("quota.blocked"), ephemeral=True)
            return
        user = interaction.user
        role_ids = tuple(role.id for role in user.roles) if isinstance(user, discord.Member) else ()
        uses = await self.limit_service.quota(guild_id, user.id, role_ids)
        await interaction.response.send_message(embed=quota_embed(uses), ephemeral=True)


def window_name(window: Window) -> str:
    """The window as it is named after "per" or "this" (`hour`)."""
    return t(WINDOW_NAMES[window])


def describe_limit(limit: Limit) -> str:
    """E.g. `5 images per member per hour`, in the language in force."""
    per = window_name(limit.window)
    if limit.scope is Scope.MEMBER:
        return tn("limits.rule.member", limit.max_count, window=per)
    return tn("limits.rule.server", limit.max_count, window=per)


def role_line(role: RoleLimit) -> str:
    """`• @role: 9 per member per hour`."""
    return t(
        "limits.role_line", role=f"<@&{role.role_id}>", count=number(role.max_count), window=window_name(role.window)
    )


def limits_embed(
    rows: tuple[LimitRow, ...], blocked: tuple[int, ...], roles: tuple[RoleLimit, ...] = ()
) -> discord.Embed:
    """/limits show: each effective limit, its origin and current use, and the roles' own values."""
    lines = [_limit_line(row) for row in rows] or [t("limits.none")]
    embed = discord.Embed(title=t("limits.title"), description="\n".join(lines), colour=EMBED_COLOUR)
    if roles:
        shown = "\n".join(role_line(r) for r in roles[:25])
        embed.add_field(name=t("limits.roles"), value=shown, inline=False)
    if blocked:
        shown = ", ".join(f"<@{member_id}>" for member_id in blocked[:40])
        more = t("limits.blocked_more", count=number(len(blocked) - 40)) if len(blocked) > 40 else ""
        embed.add_field(name=t("limits.blocked"), value=shown + more, inline=False)
    embed.set_footer(text=t("limits.footer"))
    return embed


def _limit_line(row: LimitRow) -> str:
    if row.is_default:
        origin = t("limits.origin.default")
    elif row.default:
        origin = t("limits.origin.own_default", default=number(row.default.max_count))
    else:
        origin = t("limits.origin.own")
    if row.server_use is not None:
        use = t("limits.use.server", count=number(row.server_use))
    elif row.busiest_member is not None:
        member_id, count = row.busiest_member
        use = t("limits.use.busiest", member=f"<@{member_id}>", count=number(count))
    else:
        use = t("limits.use.none")
    return t("limits.line", rule=describe_limit(row.limit), origin=origin, use=use)


def usage_embed(report: UsageReport) -> discord.Embed:
    """/usage: the period's outcomes, top members and estimated cost."""
    summary = report.summary
    embed = discord.Embed(title=t(USAGE_TITLES[report.period]), colour=EMBED_COLOUR)
    embed.add_field(name=t("usage.images"), value=number(report.images_made))
    if summary.undelivered:
        embed.add_field(
            name=t("usage.undelivered"), value=t("usage.undelivered.value", count=number(summary.undelivered))
        )
    embed.add_field(name=t("usage.failures"), value=number(summary.failed))
    embed.add_field(name=t("usage.denied"), value=number(summary.denied))
    if summary.in_progress:
        embed.add_field(name=t("usage.in_progress"), value=number(summary.in_progress))
    embed.add_field(name=t("usage.cost"), value=t("usage.cost.value", cost=money(report.cost_usd)))
    if report.per_model:
        lines = [
            tn("usage.model_line", images, model=model, cost=money(cost)) for model, images, cost in report.per_model
        ]
        embed.add_field(name=t("usage.by_model"), value="\n".join(lines)[:1024], inline=False)
    top = "\n".join(
        f"{number(i)}. <@{member}>: {number(count)}" for i, (member, count) in enumerate(summary.top_members, 1)
    )
    embed.add_field(name=t("usage.top"), value=top or t("usage.top.none"), inline=False)
    return embed


def quota_embed(uses: tuple[tuple[WindowUse, SourcedLimit], ...]) -> discord.Embed:
    """/quota: what the member may still create in each window, and where each number comes from."""
    lines = [t("quota.line", line=_quota_line(use), source=_source(source)) for use, source in uses]
    return discord.Embed(title=t("quota.title"), description="\n".join(lines or [t("quota.none")]), colour=EMBED_COLOUR)


def _source(source: SourcedLimit) -> str:
    if source.source == "role":
        return t("quota.source.role", role=f"<@&{source.role_id}>")
    return t("quota.source.server") if source.source == "server" else t("quota.source.default")


def _quota_line(use: WindowUse) -> str:
    limit = use.limit
    numbers = {"remaining": number(use.remaining), "max": number(limit.max_count), "window": window_name(limit.window)}
    head = t("quota.left.member", **numbers) if limit.scope is Scope.MEMBER else t("quota.left.server", **numbers)
    if limit.max_count == 0:
        return t("quota.off", head=head)
    if use.allowed_again_at is not None:
        return t("quota.next_allowed", head=head, when=discord_time(use.allowed_again_at))
    if use.next_frees_at is not None and use.used:
        return t("quota.frees_up", head=head, when=discord_time(use.next_frees_at))
    return t("quota.plain", head=head)


async def setup(bot: QwenImagineBot) -> None:
    """Load the cog with the bot's limits and usage services."""
    await bot.add_cog(LimitsCog(bot, bot.services.limits, bot.services.usage))
