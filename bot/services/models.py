"""Which model a request uses: the operator enables models, moderators choose their server's."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from bot.db.records import AuditEntry
from bot.errors import InvalidRequest, NotAllowed
from bot.qwen.catalogue import Catalogue, ModelSpec
from bot.services.audit import AuditTrail

KINDS = {"text": "text-to-image", "edit": "edit"}


class ModelSettingsRepository(Protocol):
    """Where each server's choices are kept (see bot.db.models)."""

    async def chosen_models(self, guild_id: int) -> dict[str, str]: ...

    async def choose_model(self, guild_id: int, kind: str, model: str) -> None: ...


class ModelService:
    """The enabled models, each server's choice among them, and which model a request gets."""

    def __init__(
        self,
        catalogue: Catalogue,
        enabled: tuple[str, ...],
        defaults: dict[str, str],
        repository: ModelSettingsRepository,
        *,
        audit: AuditTrail,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.catalogue = catalogue
        self._enabled = enabled
        self._defaults = defaults
        self._repo = repository
        self._audit = audit
        self._clock = clock

    def enabled(self, kind: str) -> tuple[str, ...]:
        """The enabled models of a kind, in the operator's order."""
        return tuple(name for name in self._enabled if self.catalogue.models[name].does == kind)

    def spec(self, name: str) -> ModelSpec:
        """The catalogue entry of an enabled (or once enabled) model."""
        spec = self.catalogue.get(name)
        if spec is None:
            raise InvalidRequest(f"{name} isn't a model this bot knows.")
        return spec

    async def current(self, guild_id: int, kind: str) -> str:
        """The server's model of a kind: its choice while still enabled, else the operator's default."""
        chosen = (await self._repo.chosen_models(guild_id)).get(kind)
        return chosen if chosen in self.enabled(kind) else self._defaults[kind]

    async def pick(self, guild_id: int, kind: str, requested: str | None) -> str:
        """The model a new request uses: the one asked for (if enabled), else the server's."""
        if requested is None:
            return await self.current(guild_id, kind)
        if requested not in self.enabled(kind):
            raise InvalidRequest(f"{requested} isn't enabled here. Pick one of: {', '.join(self.enabled(kind))}.")
        return requested

    async def reuse(self, guild_id: int, kind: str, model: str) -> tuple[str, str | None]:
        """The model a reroll or remix uses: the image's own while enabled, else the server's, and a note
        saying so."""
        if model in self.enabled(kind):
            return model, None
        current = await self.current(guild_id, kind)
        return current, f"{model} is no longer enabled, so this image was made with {current}."

    async def choose(
        self, guild_id: int, kind: str, model: str, *, actor_id: int
    ) -> tuple[str, str, AuditEntry | None]:
        """Set the server's model of a kind; return (old, new, the audit entry, None if nothing changed)."""
        if kind not in KINDS:
            raise InvalidRequest("Choose the text-to-image or the edit model.")
        if model not in self.enabled(kind):
            options = ", ".join(self.enabled(kind))
            raise NotAllowed(f"{model} isn't an enabled {KINDS[kind]} model. The enabled ones: {options}.")
        old = await self.current(guild_id, kind)
        await self._repo.choose_model(guild_id, kind, model)
        entry = await self._audit.record(guild_id, actor_id, f"model.{kind}", old, model)
        return old, model, entry
