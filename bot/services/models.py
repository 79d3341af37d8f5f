"""Which model a request uses: the operator enables models, moderators choose their server's."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Protocol

from bot.db.records import AuditEntry
from bot.errors import InvalidRequest, Localized, NotAllowed
from bot.i18n import N_, t
from bot.i18n.formatting import joined
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

    def _options(self, kind: str) -> Localized:
        """The enabled models of a kind, listed in the locale in force when the message is read."""
        return Localized(partial(joined, self.enabled(kind), and_last=False))

    def spec(self, name: str) -> ModelSpec:
        """The catalogue entry of an enabled (or once enabled) model."""
        spec = self.catalogue.get(name)
        if spec is None:
            raise InvalidRequest(N_("refuse.unknown_model"), model=name)
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
            raise InvalidRequest(N_("refuse.model_not_enabled"), model=requested, options=self._options(kind))
        return requested

    async def reuse(self, guild_id: int, kind: str, model: str) -> tuple[str, str | None]:
        """The model a reroll or remix uses: the image's own while enabled, else the server's, and a note
        saying so."""
        if model in self.enabled(kind):
            return model, None
        current = await self.current(guild_id, kind)
        return current, t("service.model_replaced", old=model, new=current)

    async def choose(
        self, guild_id: int, kind: str, model: str, *, actor_id: int
    ) -> tuple[str, str, AuditEntry | None]:
        """Set the server's model of a kind; return (old, new, the audit entry, None if nothing changed)."""
        if kind not in KINDS:
            raise InvalidRequest(N_("refuse.model_kind"))
        if model not in self.enabled(kind):
            key = N_("refuse.model_not_enabled.text") if kind == "text" else N_("refuse.model_not_enabled.edit")
            raise NotAllowed(key, model=model, options=self._options(kind))
        old = await self.current(guild_id, kind)
        await self._repo.choose_model(guild_id, kind, model)
        entry = await self._audit.record(guild_id, actor_id, f"model.{kind}", old, model)
        return old, model, entry
