"""Limits: admission of each request against its guild's limits, and the moderators' controls."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.db.records import Denial, DenialKind, LimitsRepository, QueueCaps, Status, WindowUse
from bot.errors import LimitDenied
from bot.limits import Limit, Scope, Window, effective_limits
from bot.services.generation import GenerationRequest


def discord_time(unix: float) -> str:
    """A Discord relative timestamp (`in 5 minutes`) every client shows in its own time zone."""
    return f"<t:{int(unix + 0.999)}:R>"


def denial_message(denial: Denial) -> str:
    """What a member reads when a request is refused."""
    if denial.kind is DenialKind.BLOCKED:
        return "A moderator has paused image generation for you in this server."
    if denial.kind is DenialKind.MEMBER_QUEUE:
        return (
            f"You already have {denial.cap} images waiting or in progress. "
            "Please wait for one to finish before asking for another."
        )
    if denial.kind is DenialKind.SERVER_QUEUE:
        return f"This server already has {denial.cap} images waiting. Please try again in a few minutes."
    limit = denial.limit
    assert limit is not None
    if limit.max_count == 0:
        who = "for members" if limit.scope is Scope.MEMBER else "in this server"
        return f"Image generation is turned off {who} here (limit: 0 per {limit.window.value})."
    when = f" The next image is allowed {discord_time(denial.retry_at)}." if denial.retry_at else ""
    if limit.scope is Scope.MEMBER:
        return f"You've reached this server's limit of {limit.describe()}.{when}"
    return f"This server has reached its limit of {limit.describe()}.{when}"


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
        caps: QueueCaps | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repo = repository
        self.defaults = defaults
        self._caps = caps
        self._clock = clock

    async def effective(self, guild_id: int) -> tuple[Limit, ...]:
        """The limits that apply in a guild: defaults, each pair overridden by the guild's own value."""
        return effective_limits(self.defaults, await self._repo.own_limits(guild_id))

    async def admit(self, request: GenerationRequest) -> int:
        """Record the request as queued and return its generation id, or raise LimitDenied (the denial
        is logged too). Blocks, queue caps and limits are checked in one transaction."""
        return (await self.admit_images(request))[0]

    async def admit_images(self, request: GenerationRequest) -> tuple[int, ...]:
        """Admit a request for `request.count` images: one queued row per image (seeds seed, seed+1, ...),
        only if every window and cap has room for all of them; else LimitDenied."""
        assert request.guild_id is not None
        limits = await self.effective(request.guild_id)
        too_small = next((limit for limit in limits if 0 < limit.max_count < request.count), None)
        if too_small is not None:
            raise LimitDenied(
                f"You asked for {request.count} images, more than this server's limit of {too_small.describe()}."
            )
        admission = await self._repo.admit(
            request.to_new_generation(),
            limits,
            at=self._clock(),
            caps=self._caps,
            status=Status.QUEUED,
            count=request.count,
        )
        if admission.denial is not None:
            raise LimitDenied(denial_message(admission.denial))
        return admission.generation_ids or (admission.generation_id,)

    async def set_limit(self, guild_id: int, scope: Scope, window: Window, max_count: int | None, *, by: int) -> None:
        """Set the guild's own value for a pair, or (max_count None) return the pair to its default."""
        if max_count is None:
            await self._repo.clear_limit(guild_id, scope, window)
        else:
            await self._repo.set_limit(guild_id, Limit(scope, window, max_count), by=by, at=self._clock())

    async def reset(self, guild_id: int) -> int:
        """Return every pair to its default."""
        return await self._repo.reset_limits(guild_id)

    async def block(self, guild_id: int, member_id: int, *, by: int) -> bool:
        """Stop a member from generating in this guild."""
        return await self._repo.block(guild_id, member_id, by=by, at=self._clock())

    async def unblock(self, guild_id: int, member_id: int) -> bool:
        """Allow a blocked member again."""
        return await self._repo.unblock(guild_id, member_id)

    async def blocked(self, guild_id: int) -> tuple[int, ...]:
        """The guild's blocked members."""
        return await self._repo.blocked_members(guild_id)

    async def is_blocked(self, guild_id: int, member_id: int) -> bool:
        """Whether a moderator has blocked this member."""
        return member_id in await self._repo.blocked_members(guild_id)

    async def quota(self, guild_id: int, member_id: int) -> tuple[WindowUse, ...]:
        """Each limit that applies to the member, with what is used and when room returns."""
        now = self._clock()
        limits = await self.effective(guild_id)
        return tuple([await self._repo.window_use(guild_id, member_id, limit, at=now) for limit in limits])

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
