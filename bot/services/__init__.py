"""Services: plain async classes that decide; cogs call them, they call repositories and the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.db import MetaRepository
from bot.services.budget import BudgetService
from bot.services.editing import EditService
from bot.services.generation import GenerationService
from bot.services.limits import LimitsService
from bot.services.models import ModelService
from bot.services.processes import ProcessLife
from bot.services.scheduler import Scheduler
from bot.services.settings import SettingsService
from bot.services.usage import UsageService


@dataclass(frozen=True)
class Services:
    """What the cogs need, built once in `bot.app` and handed to the client."""

    generation: GenerationService
    limits: LimitsService
    usage: UsageService
    #: Its jobs return a GeneratedImage (text to image) or a list of them (an edit).
    scheduler: Scheduler[Any]
    meta: MetaRepository
    settings: SettingsService
    editing: EditService | None = None
    models: ModelService | None = None
    budget: BudgetService | None = None
    #: This process among the others on the database: owners, heartbeats, takeover, hand-over.
    processes: ProcessLife | None = None
