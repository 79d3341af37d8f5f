"""The settings audit: every change a moderator makes, with who, when, and the value before and after."""

from __future__ import annotations

from bot.db.records import AuditEntry, ModerationRepository


class AuditTrail:
    """Records changes and reads them back; the UI posts each recorded change to the log channel."""

    def __init__(self, repository: ModerationRepository) -> None:
        self._repo = repository

    async def record(
        self, guild_id: int, actor_id: int, setting: str, old: str | None, new: str | None
    ) -> AuditEntry | None:
        """Store a change (None, and nothing stored, when the value did not change)."""
        if old == new:
            return None
        return await self._repo.record_change(guild_id, actor_id, setting, old, new)

    async def recent(self, guild_id: int, latest: int = 15) -> tuple[AuditEntry, ...]:
        """The guild's latest changes, newest first."""
        return await self._repo.audit(guild_id, latest=latest)

    async def log_channel(self, guild_id: int) -> int | None:
        """Where the guild's changes are posted, if anywhere."""
        return await self._repo.log_channel(guild_id)
