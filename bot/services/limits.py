"""Limits: admission of each request against its guild's limits, and the moderators' controls."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from bot.db.records import AuditEntry, Denial, DenialKind, LimitsRepository, QueueCaps, Status, WindowUse
from bot.errors import InvalidRequest, LimitDenied, Localized
from bot.i18n import N_, t
from bot.limits import (
    WINDOW_NAMES,
    Limit,
    RoleLimit,
    Scope,
    SourcedLimit,
    Window,
    effective_limits,
    limits_for_member,
)
from bot.services.audit import AuditTrail
from bot.services.generation import GenerationRequest


def discord_time(unix: float) -> str:
    """A Discord relative timestamp (`in 5 minutes`) every client shows in its own time zone."""
    return f"<t:{int(unix + 0.999)}:R>"


def refusal_for(denial: Denial) -> LimitDenied:
    """The refusal a member reads when a request is refused."""
    if denial.kind is DenialKind.BLOCKED:
        return LimitDenied(N_("deny.blocked"))
    if denial.kind is DenialKind.MEMBER_QUEUE:
        return LimitDenied(N_("deny.member_queue"), count=denial.cap)
    if denial.kind is DenialKind.SERVER_QUEUE:
        return LimitDenied(N_("deny.server_queue"), count=denial.cap)
    limit = denial.limit
    assert limit is not None
    window = Localized(partial(t, WINDOW_NAMES[limit.window]))
    if limit.max_count == 0:
        if limit.scope is Scope.MEMBER:
            return LimitDenied(N_("deny.turned_off.members"), window=window)
        return LimitDenied(N_("deny.turned_off.server"), window=window)
    described = Localized(limit.describe)
    if denial.retry_at:
        when = discord_time(denial.retry_at)
        if limit.scope is Scope.MEMBER:
            return LimitDenied(N_("deny.member_limit_until"), limit=described, time=when)
        return LimitDenied(N_("deny.server_limit_until"), limit=described, time=when)
    if limit.scope is Scope.MEMBER:
        return LimitDenied(N_("deny.member_limit"), limit=described)
    return LimitDenied(N_("deny.server_limit"), limit=described)


@dataclass(frozen=True)
class LimitRow:
    """One effective limit as /limits show lists it."""

    limit: Limit
    is_default: bool
    default: Limit | None
    server_use: int | None
    busiest_member: tuple[int, int] | None


class LimitsService:
    """Decides admission and keeps each guild's limits."""

    def __init__(
        self,
        repository: LimitsRepository,
        defaults: tuple[Limit, ...],
        *,
        audit: AuditTrail,
        caps: QueueCaps | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repo = repository
        self._audit = audit
        self.defaults = defaults
        self._caps = caps
        self._clock = clock

    async def effective(self, guild_id: int) -> tuple[Limit, ...]:
        """The limits that apply in a guild: defaults, each pair overridden by the guild's own value."""
        return effective_limits(self.defaults, await self._repo.own_limits(guild_id))

    async def for_member(self, guild_id: int, role_ids: tuple[int, ...]) -> tuple[SourcedLimit, ...]:
        """The limits that apply to a member with these roles, each with where its number comes from."""
        own = await self._repo.own_limits(guild_id)
        return limits_for_member(self.defaults, own, await self._repo.role_limits(guild_id), role_ids)

    async def admit(self, request: GenerationRequest, role_ids: tuple[int, ...] = ()) -> int:
        """Record the request as queued and return its generation id, or raise LimitDenied (the denial
        is logged too). Each member window takes the most generous value among the member's roles
        (resolved first); blocks, queue caps and limits are then checked in one transaction."""
        return (await self.admit_images(request, role_ids))[0]

    async def admit_images(self, request: GenerationRequest, role_ids: tuple[int, ...] = ()) -> tuple[int, ...]:
        """Admit a request for `request.count` images: one queued row per image (seeds seed, seed+1, ...),
        only if every window and cap has room for all of them; else LimitDenied."""
        assert request.guild_id is not None
        limits = tuple(s.limit for s in await self.for_member(request.guild_id, role_ids))
        too_small = next((limit for limit in limits if 0 < limit.max_count < request.count), None)
        if too_small is not None:
            raise LimitDenied(N_("deny.more_than_limit"), count=request.count, limit=Localized(too_small.describe))
        admission = await self._repo.admit(
            request.to_new_generation(),
            limits,
            at=self._clock(),
            caps=self._caps,
            status=Status.QUEUED,
            count=request.count,
        )
        if admission.denial is not None:
            raise refusal_for(admission.denial)
        return admission.generation_ids or (admission.generation_id,)

    async def set_limit(
        self, guild_id: int, scope: Scope, window: Window, max_count: int | None, *, by: int
    ) -> AuditEntry | None:
        """Set the guild's own value for a pair, or (max_count None) return the pair to its default."""
        before = await self._value(guild_id, scope, window)
        if max_count is None:
            await self._repo.clear_limit(guild_id, scope, window)
        else:
            await self._repo.set_limit(guild_id, Limit(scope, window, max_count), by=by, at=self._clock())
        after = await self._value(guild_id, scope, window)
        return await self._audit.record(guild_id, by, f"limit {scope.value}/{window.value}", before, after)

    async def set_role_limit(
        self, guild_id: int, role_id: int, scope: Scope, window: Window, max_count: int | None, *, by: int
    ) -> AuditEntry | None:
        """Set a role's value for a member window, or (max_count None) remove it."""
        if scope is not Scope.MEMBER:
            raise InvalidRequest(N_("refuse.role_limit_scope"))
        roles = await self._repo.role_limits(guild_id)
        before = next((str(r.max_count) for r in roles if r.role_id == role_id and r.window is window), None)
        if max_count is None:
            await self._repo.clear_role_limit(guild_id, role_id, window)
        else:
            await self._repo.set_role_limit(guild_id, RoleLimit(role_id, window, max_count), by=by, at=self._clock())
        after = None if max_count is None else str(max_count)
        return await self._audit.record(guild_id, by, f"role limit <@&{role_id}> member/{window.value}", before, after)

    async def role_limits(self, guild_id: int) -> tuple[RoleLimit, ...]:
        """Every role value the guild has set."""
        return await self._repo.role_limits(guild_id)

    async def reset(self, guild_id: int, *, by: int) -> AuditEntry | None:
        """Return every pair to its default (role values stay)."""
        before = await self._repo.own_limits(guild_id)
        await self._repo.reset_limits(guild_id)
        described = ", ".join(f"{limit.scope.value}/{limit.window.value}={limit.max_count}" for limit in before)
        return await self._audit.record(guild_id, by, "limits", described or "defaults", "defaults")

    async def block(self, guild_id: int, member_id: int, *, by: int) -> AuditEntry | None:
        """Stop a member from generating in this guild; None if they were blocked already."""
        if not await self._repo.block(guild_id, member_id, by=by, at=self._clock()):
            return None
        return await self._audit.record(guild_id, by, f"block <@{member_id}>", "allowed", "blocked")

    async def unblock(self, guild_id: int, member_id: int, *, by: int) -> AuditEntry | None:
        """Allow a blocked member again; None if they were not blocked."""
        if not await self._repo.unblock(guild_id, member_id):
            return None
        return await self._audit.record(guild_id, by, f"block <@{member_id}>", "blocked", "allowed")

    async def blocked(self, guild_id: int) -> tuple[int, ...]:
        """The guild's blocked members."""
        return await self._repo.blocked_members(guild_id)

    async def is_blocked(self, guild_id: int, member_id: int) -> bool:
        """Whether a moderator has blocked this member."""
        return member_id in await self._repo.blocked_members(guild_id)

    async def quota(
        self, guild_id: int, member_id: int, role_ids: tuple[int, ...] = ()
    ) -> tuple[tuple[WindowUse, SourcedLimit], ...]:
        """Each limit that applies to the member (with where it comes from), what is used and when room returns."""
        now = self._clock()
        sourced = await self.for_member(guild_id, role_ids)
        return tuple([(await self._repo.window_use(guild_id, member_id, s.limit, at=now), s) for s in sourced])

    async def overview(self, guild_id: int) -> tuple[LimitRow, ...]:
        """Every effective limit, where it comes from, and how much of it is in use."""
        now = self._clock()
        own = {limit.key for limit in await self._repo.own_limits(guild_id)}
        defaults = {limit.key: limit for limit in self.defaults}
        rows = []
        for limit in await self.effective(guild_id):
            since = now - limit.window.seconds
            if limit.scope is Scope.SERVER:
                use = await self._repo.window_use(guild_id, 0, limit, at=now)
                server_use, busiest = use.used, None
            else:
                server_use, busiest = None, await self._repo.busiest_member(guild_id, since=since)
            rows.append(LimitRow(limit, limit.key not in own, defaults.get(limit.key), server_use, busiest))
        return tuple(rows)

    async def _value(self, guild_id: int, scope: Scope, window: Window) -> str:
        """A pair's value as the audit records it: `7`, `5 (default)`, or `none` when no limit applies."""
        own = next((limit for limit in await self._repo.own_limits(guild_id) if limit.key == (scope, window)), None)
        if own is not None:
            return str(own.max_count)
        default = next((limit for limit in self.defaults if limit.key == (scope, window)), None)
        return f"{default.max_count} (default)" if default is not None else "none"
