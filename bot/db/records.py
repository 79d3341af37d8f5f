"""Backend-neutral records and repository interfaces; services depend on these, not on SQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from bot.limits import Limit, RoleLimit, Scope, Window


class Status(StrEnum):
    """Where a generation attempt stands."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DENIED = "denied"
    #: Made (and billed) but Discord would not take the upload: reported, never counted against limits.
    UNDELIVERED = "undelivered"


@dataclass(frozen=True)
class NewGeneration:
    """What a member asked for, as the usage log records it."""

    guild_id: int | None
    channel_id: int | None
    member_id: int
    model: str
    size: str
    seed: int
    prompt_extend: bool
    prompt: str
    negative_prompt: str = ""
    parent_id: int | None = None
    #: Input images of an edit (0: text to image).
    inputs: int = 0
    #: The member's and the server's Discord locale (`ja`, `zh-CN`, ...), when known.
    locale: str | None = None
    guild_locale: str | None = None


@dataclass(frozen=True)
class GenerationRecord:
    """One row of the usage log."""

    id: int
    guild_id: int | None
    channel_id: int | None
    member_id: int
    requested_at: float
    started_at: float | None
    finished_at: float | None
    status: Status
    error_code: str | None
    model: str
    size: str
    seed: int
    prompt_extend: bool
    prompt: str | None
    negative_prompt: str | None
    request_id: str | None
    image_bytes: int | None
    parent_id: int | None
    message_id: int | None
    task_id: str | None = None
    inputs: int = 0
    #: The lane (API key fingerprint) the task was created in.
    task_lane: str | None = None
    #: The token of the interaction it answers, while it is unfinished (read only when it is taken
    #: over by another process); secret-like, so never shown.
    reply_token: str | None = field(default=None, repr=False, compare=False)
    #: The member's and the server's Discord locale when it was asked for.
    locale: str | None = None
    guild_locale: str | None = None


class GenerationRepository(Protocol):
    """The usage log: one row per generation attempt."""

    async def create(self, new: NewGeneration, *, status: Status, at: float) -> int:
        """Insert a row and return its id."""

    async def mark_running(self, generation_id: int, *, at: float) -> None:
        """The API call is starting."""

    async def mark_succeeded(self, generation_id: int, *, at: float, request_id: str | None, image_bytes: int) -> None:
        """The image was generated and fetched."""

    async def mark_failed(
        self, generation_id: int, *, at: float, error_code: str, request_id: str | None = None
    ) -> None:
        """The attempt failed; it is not counted against any limit."""

    async def mark_undelivered(self, generation_id: int, *, error_code: str) -> None:
        """The image was made but could not be posted; it is not counted against any limit."""

    async def refuse(self, new: NewGeneration, *, at: float, error_code: str) -> int:
        """Record a request refused before admission (it is not counted); return its id."""

    async def set_message(self, generation_id: int, *, channel_id: int, message_id: int) -> None:
        """Remember where the result was posted."""

    async def get(self, generation_id: int) -> GenerationRecord | None:
        """One row, or None if it does not exist."""

    async def find_by_message(self, message_id: int) -> GenerationRecord | None:
        """The generation whose result is message `message_id`."""

    async def ancestors(self, generation_id: int, *, limit: int = 10) -> list[GenerationRecord]:
        """The parent, grandparent, ... of a generation, nearest first."""

    async def clear_message(self, generation_id: int) -> None:
        """Forget the result message (it was deleted)."""

    async def set_task_id(self, generation_id: int, task_id: str, *, lane: str | None = None) -> None:
        """Remember the async API task that is making this image, and the lane that created it."""

    async def unfinished(self) -> list[GenerationRecord]:
        """Rows still queued or running, oldest first."""

    async def mark_queued(self, generation_ids: list[int]) -> None:
        """Return unfinished rows to the queued state."""

    async def remember_interaction(self, generation_id: int, token: str) -> None:
        """Keep the token of the interaction an unfinished generation answers (cleared when it ends)."""


class MetaRepository(Protocol):
    """Small key/value facts about this installation."""

    async def get(self, key: str) -> str | None:
        """The value stored under `key`, if any."""

    async def set(self, key: str, value: str) -> None:
        """Store `value` under `key`."""

    def exclusive(self) -> AbstractAsyncContextManager[None]:
        """Held by one process at a time, across every process on the database (a start-up step
        such as the command sync runs inside it)."""

    async def claim_interaction(self, interaction_id: int) -> bool:
        """True for the first process to claim this interaction; False for any other."""


class DenialKind(StrEnum):
    """Why a request was refused."""

    BLOCKED = "blocked"
    LIMIT = "limit"
    MEMBER_QUEUE = "member_queue"
    SERVER_QUEUE = "server_queue"


@dataclass(frozen=True)
class Denial:
    """A refused request: blocked, over a limit (room again at `retry_at`), or over a queue cap."""

    kind: DenialKind
    limit: Limit | None = None
    retry_at: float | None = None
    cap: int | None = None

    @property
    def code(self) -> str:
        """The usage log's error code for the denied row."""
        if self.limit is not None:
            return f"limit:{self.limit.scope.value}/{self.limit.window.value}"
        return self.kind.value


@dataclass(frozen=True)
class QueueCaps:
    """At most this many unfinished (queued or running) jobs per member and per guild."""

    per_member: int
    per_guild: int


@dataclass(frozen=True)
class Admission:
    """The usage-log row written for a request, and the denial if it was refused."""

    generation_id: int
    denial: Denial | None
    #: Every row admitted, one per image asked for (the first is `generation_id`).
    generation_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class WindowUse:
    """How much of one limit is used right now."""

    limit: Limit
    used: int
    #: When the oldest counted image leaves the window (None when nothing is counted).
    next_frees_at: float | None
    #: When a request would be admitted again by this limit (None: it has room now).
    allowed_again_at: float | None

    @property
    def remaining(self) -> int:
        """Images still allowed in the window."""
        return max(0, self.limit.max_count - self.used)


class LimitsRepository(Protocol):
    """Guild limits, blocked members, and admission over the usage log."""

    async def own_limits(self, guild_id: int) -> tuple[Limit, ...]:
        """The guild's own values (pairs without one use the defaults)."""

    async def set_limit(self, guild_id: int, limit: Limit, *, by: int, at: float) -> None:
        """Set the guild's own value for the limit's (scope, window) pair."""

    async def clear_limit(self, guild_id: int, scope: Scope, window: Window) -> bool:
        """Return the pair to its default; False if it had no own value."""

    async def reset_limits(self, guild_id: int) -> int:
        """Remove every own value; return how many there were."""

    async def block(self, guild_id: int, member_id: int, *, by: int, at: float) -> bool:
        """Stop a member from generating; False if already blocked."""

    async def unblock(self, guild_id: int, member_id: int) -> bool:
        """Allow a member again; False if they were not blocked."""

    async def blocked_members(self, guild_id: int) -> tuple[int, ...]:
        """The guild's blocked members."""

    async def role_limits(self, guild_id: int) -> tuple[RoleLimit, ...]:
        """Every role's own value for a member window."""

    async def set_role_limit(self, guild_id: int, role: RoleLimit, *, by: int, at: float) -> None:
        """Set a role's value for one member window."""

    async def clear_role_limit(self, guild_id: int, role_id: int, window: Window) -> bool:
        """Remove a role's value for one window; False if it had none."""

    async def admit(
        self,
        new: NewGeneration,
        limits: tuple[Limit, ...],
        *,
        at: float,
        caps: QueueCaps | None = None,
        status: Status = Status.QUEUED,
        count: int = 1,
    ) -> Admission:
        """Atomically check the block list, `caps` and `limits`, and write the request's row (denied too)."""

    async def window_use(self, guild_id: int, member_id: int, limit: Limit, *, at: float) -> WindowUse:
        """Current use of one limit for a member (or their whole server)."""

    async def busiest_member(self, guild_id: int, *, since: float) -> tuple[int, int] | None:
        """The member with most counted requests since `since`, and how many."""


@dataclass(frozen=True)
class UsageSummary:
    """A guild's generations over a period."""

    succeeded: int
    failed: int
    denied: int
    in_progress: int
    #: Images made (and billed), delivered or not, by model.
    succeeded_by_model: dict[str, int]
    top_members: tuple[tuple[int, int], ...]
    #: Images made (and billed) that Discord would not take.
    undelivered: int = 0


class UsageRepository(Protocol):
    """Reports over the usage log, and retention."""

    async def summary(self, guild_id: int, *, since: float, top: int = 5) -> UsageSummary:
        """Counts by outcome, images by model, and the members with most images."""

    def rows(self, guild_id: int, *, since: float) -> AsyncIterator[GenerationRecord]:
        """Every row of the guild since `since`, oldest first."""

    async def scrub_prompts(self, *, before: float) -> int:
        """Clear the prompt text of rows requested before `before`; return how many."""


@dataclass(frozen=True)
class AuditEntry:
    """One change a moderator made: who, when, which setting, and its value before and after."""

    id: int
    guild_id: int
    actor_id: int
    at: float
    setting: str
    old_value: str | None
    new_value: str | None


class ModerationRepository(Protocol):
    """Where members may generate, which words they may not use, where changes are posted, and
    the record of every change."""

    async def allowed_channels(self, guild_id: int) -> tuple[int, ...]:
        """The channels the guild allows (none: every channel)."""

    async def allow_channel(self, guild_id: int, channel_id: int, *, by: int, at: float) -> bool:
        """Add a channel; False if it was listed already."""

    async def disallow_channel(self, guild_id: int, channel_id: int) -> bool:
        """Remove a channel; False if it was not listed."""

    async def blocked_words(self, guild_id: int) -> tuple[str, ...]:
        """The guild's blocked entries, normalised, oldest first."""

    async def add_word(self, guild_id: int, word: str, *, by: int, at: float, max_words: int) -> bool:
        """Add an entry if the guild has fewer than `max_words`; False if it was not added."""

    async def remove_word(self, guild_id: int, word: str) -> bool:
        """Remove an entry; False if it was not listed."""

    async def log_channel(self, guild_id: int) -> int | None:
        """Where the guild's changes are posted, if anywhere."""

    async def set_log_channel(self, guild_id: int, channel_id: int | None, *, by: int, at: float) -> None:
        """Post changes in `channel_id` from now on (None: nowhere)."""

    async def record_change(
        self, guild_id: int, actor_id: int, setting: str, old: str | None, new: str | None
    ) -> AuditEntry:
        """Store one change, stamped with the time now."""

    async def audit(self, guild_id: int, *, latest: int) -> tuple[AuditEntry, ...]:
        """The guild's `latest` changes, newest first."""
