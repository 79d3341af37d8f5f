"""Where members may generate and which words they may not use: the admission checks that come
before limits, and the moderators' controls for them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.db.records import AuditEntry, ModerationRepository
from bot.errors import BlockedWordUsed, InvalidRequest, WrongChannel
from bot.i18n import N_
from bot.services.audit import AuditTrail
from bot.services.generation import GenerationRequest
from bot.services.words import MAX_WORDS, InvalidWord, clean_entry, find_blocked


@dataclass(frozen=True)
class Origin:
    """Where a request comes from: its channel, the thread's parent channel, and the member's roles."""

    channel_id: int | None
    parent_id: int | None = None
    role_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class GuildSettings:
    """What /settings show lists."""

    channels: tuple[int, ...]
    words: tuple[str, ...]
    log_channel: int | None


def _channels_value(channels: tuple[int, ...]) -> str:
    return ", ".join(f"<#{c}>" for c in channels) if channels else "every channel"


class SettingsService:
    """Allowed channels, blocked words and the log channel of each guild; every change is audited."""

    def __init__(
        self, repository: ModerationRepository, audit: AuditTrail, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._repo = repository
        self.audit = audit
        self._clock = clock

    async def check(self, guild_id: int, origin: Origin, request: GenerationRequest | None = None) -> None:
        """Raise WrongChannel outside the guild's allowed channels (a thread counts as its parent), or
        BlockedWordUsed if the request's prompt or negative prompt contains a blocked entry."""
        allowed = await self._repo.allowed_channels(guild_id)
        if allowed and origin.channel_id not in allowed and origin.parent_id not in allowed:
            raise WrongChannel(allowed)
        if request is None:
            return
        fields = {"prompt": request.params.prompt, "negative prompt": request.params.negative_prompt}
        match = find_blocked(await self._repo.blocked_words(guild_id), fields)
        if match is not None:
            raise BlockedWordUsed(match.entry, match.field)

    async def show(self, guild_id: int) -> GuildSettings:
        """The guild's channels, words and log channel."""
        return GuildSettings(
            await self._repo.allowed_channels(guild_id),
            await self._repo.blocked_words(guild_id),
            await self._repo.log_channel(guild_id),
        )

    async def channels(self, guild_id: int) -> tuple[int, ...]:
        """The allowed channels (none: everywhere)."""
        return await self._repo.allowed_channels(guild_id)

    async def allow_channel(self, guild_id: int, channel_id: int, *, by: int) -> AuditEntry | None:
        """Add a channel to the allow-list; None if it was there already."""
        before = await self._repo.allowed_channels(guild_id)
        if not await self._repo.allow_channel(guild_id, channel_id, by=by, at=self._clock()):
            return None
        after = await self._repo.allowed_channels(guild_id)
        return await self.audit.record(guild_id, by, "channels", _channels_value(before), _channels_value(after))

    async def disallow_channel(self, guild_id: int, channel_id: int, *, by: int) -> AuditEntry | None:
        """Remove a channel from the allow-list; None if it was not listed."""
        before = await self._repo.allowed_channels(guild_id)
        if not await self._repo.disallow_channel(guild_id, channel_id):
            return None
        after = await self._repo.allowed_channels(guild_id)
        return await self.audit.record(guild_id, by, "channels", _channels_value(before), _channels_value(after))

    async def words(self, guild_id: int) -> tuple[str, ...]:
        """The blocked entries, normalised."""
        return await self._repo.blocked_words(guild_id)

    async def add_word(self, guild_id: int, raw: str, *, by: int) -> tuple[str, AuditEntry | None]:
        """Block an entry (returned normalised); InvalidRequest says why one can't be added."""
        try:
            entry = clean_entry(raw)
        except InvalidWord as error:
            raise InvalidRequest(error.message_key, **error.params) from None
        if entry in await self._repo.blocked_words(guild_id):
            return entry, None
        if not await self._repo.add_word(guild_id, entry, by=by, at=self._clock(), max_words=MAX_WORDS):
            if entry in await self._repo.blocked_words(guild_id):
                return entry, None
            raise InvalidRequest(N_("refuse.word.list_full"), count=MAX_WORDS)
        return entry, await self.audit.record(guild_id, by, "blocked word", None, entry)

    async def remove_word(self, guild_id: int, raw: str, *, by: int) -> tuple[str, AuditEntry | None]:
        """Unblock an entry (matched in its normalised form); None if it was not blocked."""
        try:
            entry = clean_entry(raw)
        except InvalidWord as error:
            raise InvalidRequest(error.message_key, **error.params) from None
        if not await self._repo.remove_word(guild_id, entry):
            return entry, None
        return entry, await self.audit.record(guild_id, by, "blocked word", entry, None)

    async def set_log_channel(self, guild_id: int, channel_id: int | None, *, by: int) -> AuditEntry | None:
        """Post changes in `channel_id` from now on (None: nowhere)."""
        before = await self._repo.log_channel(guild_id)
        await self._repo.set_log_channel(guild_id, channel_id, by=by, at=self._clock())
        return await self.audit.record(
            guild_id, by, "log channel", f"<#{before}>" if before else None, f"<#{channel_id}>" if channel_id else None
        )
