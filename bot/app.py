"""Builds the bot and everything it depends on, and tears it all down again."""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
import discord
import yarl

from bot.client import QwenImagineBot, build_bot
from bot.db import (
    SqlGenerationRepository,
    SqlLimitsRepository,
    SqlMetaRepository,
    SqlModerationRepository,
    SqlUsageRepository,
    open_database,
)
from bot.db.models import SqlModelSettingsRepository
from bot.db.postgres.notify import slot_notices
from bot.db.processes import SqlProcessRegistry
from bot.db.queue import SqlSlotLeases, SqlSubmissionPacing
from bot.db.records import QueueCaps
from bot.db.turns import SqlQueueTurns
from bot.download import HostPolicy, ImageDownloader
from bot.lanes import Lane
from bot.qwen import QwenImageClient, RetryPolicy
from bot.sealed import TokenSeal
from bot.services import Services
from bot.services.audit import AuditTrail
from bot.services.budget import BudgetService
from bot.services.editing import EditService
from bot.services.generation import GenerationService
from bot.services.limits import LimitsService
from bot.services.models import ModelService
from bot.services.processes import ProcessLife
from bot.services.scheduler import Scheduler
from bot.services.settings import SettingsService
from bot.services.usage import UsageService
from bot.settings import Settings

log = logging.getLogger(__name__)


def point_discord_at(api_base_url: str | None, gateway_url: str | None) -> None:
    """Use a REST proxy or gateway other than Discord's (discord.py keeps both as class attributes)."""
    if api_base_url:
        discord.http.Route.BASE = api_base_url
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


@asynccontextmanager
async def create_bot(settings: Settings) -> AsyncIterator[QwenImagineBot]:
    """The bot exactly as `python -m bot` runs it, with its HTTP session and database open."""
    point_discord_at(settings.discord_api_base_url, settings.discord_gateway_url)
    database_url = settings.database_url.reveal() if settings.database_url else None
    database = await open_database(url=database_url, path=settings.database_path)
    try:
        async with aiohttp.ClientSession() as session, AsyncExitStack() as stack:
            # One SQLite file has one process, whose slots and pacing are in memory; PostgreSQL's are shared.
            shared = database.dialect.name == "postgres"
            # This process's token: it owns the generations it admits and the API slots it holds.
            token = uuid.uuid4().hex
            leases = SqlSlotLeases(database, holder=token) if shared else None
            pacing = SqlSubmissionPacing(database) if shared else None
            lanes = [
                Lane(
                    key,
                    max_concurrency=settings.max_concurrency,
                    submits_per_second=settings.max_submits_per_second,
                    pacing=pacing,
                )
                for key in settings.api_keys
            ]
            stale = settings.process_stale_seconds
            turns = SqlQueueTurns(database, token=token, stale_seconds=stale) if shared else None
            scheduler: Scheduler[Any] = Scheduler(lanes=lanes, leases=leases, pace=settings.catalogue.pace, turns=turns)
            # Other processes say when they free a slot: this one's scheduler looks at once.
            notices = slot_notices(database, me=token, on_notice=scheduler.nudge) if shared else None
            if notices is not None:
                notices.start()
                stack.push_async_callback(notices.close)
            api = QwenImageClient(
                session,
                base_url=settings.dashscope_base_url,
                api_key=settings.dashscope_api_key,
                timeout=settings.request_timeout,
                pacer=scheduler,
                retry=RetryPolicy(max_retries=settings.max_retries),
                poll_interval=settings.poll_seconds,
            )
            results = ImageDownloader(session, HostPolicy(settings.result_hosts))
            generation = GenerationService(
                api,
                results,
                SqlGenerationRepository(database, owner=token),
                model=settings.model,
                sizes=settings.sizes,
                default_size=settings.default_size,
                use_async_tasks=settings.use_async_tasks,
                seal=TokenSeal(settings.discord_token.reveal()),
            )
            moderation = SqlModerationRepository(database)
            audit = AuditTrail(moderation)
            model_settings = SqlModelSettingsRepository(database)
            services = Services(
                generation=generation,
                limits=LimitsService(
                    SqlLimitsRepository(database, owner=token),
                    settings.default_limits,
                    caps=QueueCaps(settings.max_jobs_per_member, settings.max_jobs_per_guild),
                    audit=audit,
                ),
                usage=UsageService(
                    SqlUsageRepository(database),
                    region=settings.dashscope_region,
                    retention_days=settings.usage_retention_days,
                    catalogue=settings.catalogue,
                ),
                scheduler=scheduler,
                meta=SqlMetaRepository(database),
                settings=SettingsService(moderation, audit),
                editing=EditService(
                    api,
                    ImageDownloader(session, HostPolicy(settings.attachment_hosts)),
                    results,
                    SqlGenerationRepository(database, owner=token),
                    catalogue=settings.catalogue,
                ),
                models=ModelService(
                    settings.catalogue,
                    settings.enabled_models,
                    {"text": settings.model, "edit": settings.edit_model},
                    model_settings,
                    audit=audit,
                ),
                budget=BudgetService(
                    model_settings,
                    settings.catalogue,
                    region=settings.dashscope_region,
                    global_budget=settings.monthly_budget_usd,
                    audit=audit,
                ),
                processes=ProcessLife(
                    SqlProcessRegistry(database, token=token, stale_seconds=settings.process_stale_seconds),
                    heartbeat_seconds=settings.process_heartbeat_seconds,
                    poll_seconds=settings.process_poll_seconds,
                ),
            )
            async with build_bot(settings, services) as bot:
                yield bot
    finally:
        await database.close()


async def run(settings: Settings) -> None:
    """Run the bot until it is closed; SIGTERM and SIGINT close it cleanly."""
    async with create_bot(settings) as bot:
        handle_stop_signals(bot)
        await bot.start(settings.discord_token.reveal())


def handle_stop_signals(bot: QwenImagineBot) -> None:
    """SIGTERM and SIGINT (Ctrl-C) begin the shutdown; repeating them changes nothing (said once)."""
    loop = asyncio.get_running_loop()
    repeated = False

    def stop(signum: signal.Signals) -> None:
        nonlocal repeated
        if not bot.shutting_down:
            log.info("%s received", signum.name)
            bot.begin_shutdown()
        elif not repeated:
            repeated = True
            log.warning("%s received: already shutting down, within SHUTDOWN_GRACE_SECONDS", signum.name)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
