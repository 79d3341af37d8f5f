"""Spending caps: the operator's monthly budget for all servers and each server's own, in catalogue prices."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from bot.db.records import AuditEntry
from bot.errors import BudgetExceeded, Localized
from bot.i18n import N_, money
from bot.qwen.catalogue import Catalogue
from bot.services.audit import AuditTrail

log = logging.getLogger(__name__)
#: The share of the operator's budget at which the log warns (once a month).
WARN_AT = 0.8


class BudgetRepository(Protocol):
    """Caps and spend (see bot.db.models)."""

    async def budget(self, guild_id: int) -> float | None: ...

    async def set_budget(self, guild_id: int, budget_usd: float | None) -> None: ...

    async def images_by_model(self, *, since: float, guild_id: int | None = None) -> dict[str, int]: ...


def month_bounds(now: float) -> tuple[float, float]:
    """The start of this calendar month (UTC) and of the next, as unix times."""
    today = datetime.fromtimestamp(now, UTC)
    start = today.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    )
    return start.timestamp(), following.timestamp()


def dollars(amount: float) -> str:
    """`$12.30`."""
    return f"${amount:,.2f}"


@dataclass(frozen=True)
class BudgetStatus:
    """A server's cap and this month's spend, and the operator's cap."""

    guild_budget: float | None
    guild_spent: float
    global_budget: float | None
    resets_at: float


class BudgetService:
    """Refuses a request whose estimated price would take this month's spend past a cap."""

    def __init__(
        self,
        repository: BudgetRepository,
        catalogue: Catalogue,
        *,
        region: str,
        global_budget: float | None,
        audit: AuditTrail,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repo = repository
        self._audit = audit
        self._catalogue = catalogue
        self._region = region
        self._global = global_budget
        self._clock = clock
        self._warned_month: float | None = None

    def cost(self, images_by_model: dict[str, int]) -> float:
        """The list price of these images."""
        return sum(self._catalogue.price(model, self._region) * n for model, n in images_by_model.items())

    async def check(self, guild_id: int, model: str, count: int) -> None:
        """Raise BudgetExceeded, naming the cap and when it resets, if this request could pass one."""
        start, resets = month_bounds(self._clock())
        price = self._catalogue.price(model, self._region) * count
        reset = f"<t:{int(resets)}:R>"
        guild_budget = await self._repo.budget(guild_id)
        if guild_budget is not None:
            spent = self.cost(await self._repo.images_by_model(since=start, guild_id=guild_id))
            if spent + price > guild_budget + 1e-9:
                raise BudgetExceeded(
                    N_("deny.budget.server"),
                    budget=Localized(partial(money, guild_budget)),
                    spent=Localized(partial(money, spent)),
                    cost=Localized(partial(money, price)),
                    time=reset,
                )
        if self._global is not None:
            spent = self.cost(await self._repo.images_by_model(since=start))
            if spent + price > self._global + 1e-9:
                raise BudgetExceeded(N_("deny.budget.bot"), budget=Localized(partial(money, self._global)), time=reset)
            if spent + price >= WARN_AT * self._global and self._warned_month != start:
                self._warned_month = start
                log.warning(
                    "80%% of the monthly budget of %s is reached: %s spent this month",
                    dollars(self._global),
                    dollars(spent + price),
                )

    async def status(self, guild_id: int) -> BudgetStatus:
        """The server's cap and spend this month, for /limits budget and /usage."""
        start, resets = month_bounds(self._clock())
        spent = self.cost(await self._repo.images_by_model(since=start, guild_id=guild_id))
        return BudgetStatus(await self._repo.budget(guild_id), spent, self._global, resets)

    async def set_budget(self, guild_id: int, budget_usd: float | None, *, actor_id: int) -> AuditEntry | None:
        """Set (or, None, remove) the server's monthly cap; the change is kept in the audit trail."""
        old = await self._repo.budget(guild_id)
        await self._repo.set_budget(guild_id, budget_usd)
        return await self._audit.record(
            guild_id,
            actor_id,
            "budget_usd",
            None if old is None else f"{old:.2f}",
            None if budget_usd is None else f"{budget_usd:.2f}",
        )
