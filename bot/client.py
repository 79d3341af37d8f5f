"""The Discord client: loads the cogs, syncs commands when they change, translates errors."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from types import TracebackType
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.db import GenerationRecord
from bot.i18n import use_locale
from bot.i18n.commands import CatalogueTranslator
from bot.logs import describe
from bot.services import Services
from bot.services.scheduler import FAREWELL_SECONDS
from bot.settings import Settings
from bot.ui.failures import report_error
from bot.ui.recovery import resume_unfinished

log = logging.getLogger(__name__)

EXTENSIONS = (
    "cogs.imagine",
    "cogs.limits",
    "cogs.remix",
    "cogs.retry",
    "cogs.settings",
    "cogs.edit",
    "cogs.models",
)
#: Send Messages, Embed Links, Attach Files.
INVITE_PERMISSIONS = discord.Permissions(send_messages=True, embed_links=True, attach_files=True)
INVITE_SCOPES = ("bot", "applications.commands")
SYNC_HASH_KEY = "command_sync_hash"
#: Failures that mean Discord could not be reached (DNS, refused, TLS, timeout, a 5xx): worth retrying.
UNREACHABLE = (aiohttp.ClientError, OSError, TimeoutError, discord.DiscordServerError)
MAX_RETRY_SECONDS = 60.0
#: How long shutdown may take beyond SHUTDOWN_GRACE_SECONDS: the farewell of interrupted requests,
#: then closing the Discord connection. A host's kill deadline should leave this and a little more.
SHUTDOWN_OVERHEAD_SECONDS = FAREWELL_SECONDS + 1.5


class QwenImagineTree(app_commands.CommandTree["QwenImagineBot"]):
    """The command tree; its errors go to the one translator in `bot.ui.failures`."""

    async def on_error(
        self, interaction: discord.Interaction[QwenImagineBot], error: app_commands.AppCommandError
    ) -> None:
        await report_error(interaction, error)


class QwenImagineBot(commands.Bot):
    """The qwen-imagine bot. Dependencies come in through the constructor."""

    def __init__(self, settings: Settings, services: Services, **sharding: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=QwenImagineTree,
            **sharding,
        )
        self.settings = settings
        self.services = services
        self._background: set[asyncio.Task[None]] = set()
        self._shutdown: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()  # shutdown has begun
        self._closed = asyncio.Event()  # shutdown is over
        self._resumed = False  # what a previous process left unfinished has been taken up
        self._gateway: asyncio.Task[None] | None = None  # discord.py's connection loop
        self._gateway_gave_up = False  # that loop closed the bot: it raises why next
        self._handle_interaction = self._connection.parsers["INTERACTION_CREATE"]
        self._connection.parsers["INTERACTION_CREATE"] = self._claim_then_handle

    async def setup_hook(self) -> None:
        self.services.scheduler.start()
        if self.tree.translator is None:
            await self.tree.set_translator(CatalogueTranslator())
        for extension in EXTENSIONS:
            if extension not in self.extensions:  # a login retried after a network failure runs this again
                await self.load_extension(extension)
        await self.sync_commands_if_changed()
        log.info("invite the bot with %s", self.invite_url())
        if not self._resumed:
            self._resumed = True
            # Read before the gateway connects, so no request this process admits is mistaken for a
            # leftover (and made twice); once per process, however often a failed login runs this.
            processes = self.services.processes
            if processes is None:
                leftovers = await self.services.generation.unfinished()
            else:
                # Only what no live process owns: another process's jobs are its own to finish.
                leftovers = await processes.join()
                processes.watch(self._finish_leftovers)
            # REST is enough to post in a channel, so resuming need not wait for the gateway.
            self._finish_leftovers(leftovers)

    def _finish_leftovers(self, records: list[GenerationRecord]) -> None:
        """Finish, in the background, generations left by an earlier run or taken over from another process."""
        task = asyncio.create_task(resume_unfinished(self, self.services, records), name="resume-unfinished")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---------------------------------------------------------------- interactions
    def _claim_then_handle(self, data: dict[str, Any]) -> None:
        """Handle an interaction only if this process is the first to claim it: during a rolling deploy
        two processes may briefly hold one shard and both receive it; the other one stays silent."""
        task = asyncio.create_task(self._claimed(data), name="interaction")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _claimed(self, data: dict[str, Any]) -> None:
        try:
            claimed = await self.services.meta.claim_interaction(int(data["id"]))
        except Exception as error:  # the database is out of reach: answering beats silence
            log.warning("could not claim interaction %s (%s); handling it here", data.get("id"), describe(error))
            claimed = True
        if claimed:
            # Everything this interaction starts (command, button, form, the job) speaks the member's
            # language, else the server's, else English.
            use_locale(data.get("locale"), data.get("guild_locale"))
            self._handle_interaction(data)
        else:
            log.debug("interaction %s is handled by another process", data.get("id"))

    # ---------------------------------------------------------------- start-up
    async def start(self, token: str, *, reconnect: bool = True) -> None:
        """Log in (retrying while Discord can't be reached), then stay connected until closed."""
        if not await self._log_in(token):
            return
        if self.settings.shard_count is not None:
            held = ", ".join(map(str, self.settings.held_shards))
            log.info("connecting gateway shard(s) %s of %d", held, self.settings.shard_count)
        connection = self._gateway = asyncio.create_task(self.connect(reconnect=reconnect), name="gateway")
        closed = asyncio.create_task(self._closed.wait())
        try:
            # discord.py may be sleeping before a reconnect: once closed, don't wait for it to wake.
            await asyncio.wait({connection, closed}, return_when=asyncio.FIRST_COMPLETED)
            if self._gateway_gave_up:
                # Refused for good (e.g. 4011 Sharding required), discord.py closes the bot, then raises why.
                await asyncio.wait({connection}, timeout=1.0)
        finally:
            closed.cancel()
            if not connection.done():
                connection.cancel()
            await asyncio.gather(connection, closed, return_exceptions=True)
        error = None if connection.cancelled() else connection.exception()
        if error is not None and self.shutting_down and not self._gateway_gave_up:
            # Closed in the middle of a handshake, discord.py may fail on its way out: nothing left to do.
            log.debug("the gateway connection ended during shutdown: %s", describe(error))
        elif error is not None:
            raise error  # why the gateway gave up

    async def _log_in(self, token: str) -> bool:
        """Log in; while Discord is unreachable, say so in one line and retry with backoff (1, 2, 4 … 60 s).
        A rejected token raises LoginFailure at once. False if the bot was closed meanwhile."""
        delay = 1.0
        while not self._stopping.is_set():
            try:
                await self.login(token)
                return True
            except UNREACHABLE as error:
                where = discord.http.Route.BASE
                log.error("cannot reach Discord at %s (%s); retrying in %.0f s", where, describe(error), delay)
            # The failed login's HTTP session is closed, so the next attempt starts a fresh one.
            await self.http.close()
            self.http.connector = discord.utils.MISSING
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
        return False

    # ---------------------------------------------------------------- shutdown
    @property
    def shutting_down(self) -> bool:
        """Whether shutdown has begun."""
        return self._shutdown is not None

    def begin_shutdown(self) -> asyncio.Task[None]:
        """Start the shutdown (once; later calls return the same task)."""
        if self._shutdown is None:
            self._stopping.set()
            self._shutdown = asyncio.create_task(self._shut_down(), name="shutdown")
        return self._shutdown

    async def close(self) -> None:
        """Drain, then disconnect. Every caller waits for the same one shutdown."""
        if self._gateway is not None and asyncio.current_task() is self._gateway:
            self._gateway_gave_up = True
        await asyncio.shield(self.begin_shutdown())

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def _shut_down(self) -> None:
        """One deadline, SHUTDOWN_GRACE_SECONDS + SHUTDOWN_OVERHEAD_SECONDS from now: no new jobs;
        running ones and their deliveries get the grace period, interrupted ones are told and kept
        for the next start (see `Scheduler.stop`); then the Discord connection closes."""
        loop = asyncio.get_running_loop()
        scheduler = self.services.scheduler
        grace = self.settings.shutdown_grace_seconds
        deadline = loop.time() + grace + SHUTDOWN_OVERHEAD_SECONDS
        log.info(
            "shutting down: %d generations running get up to %.0f s, %d waiting are kept for the next start",
            scheduler.in_flight,
            grace,
            scheduler.waiting,
        )
        processes = self.services.processes
        try:
            if processes is not None:
                processes.stop_watching()
            interrupted = await scheduler.stop(grace, hand_over=processes.hand_over if processes else None)
            if interrupted:
                await self.services.generation.requeue([job.generation_id for job in interrupted])
                log.info("kept %d unfinished generations for the next start", len(interrupted))
            if processes is not None:
                await processes.leave()
            for task in self._background:
                task.cancel()
            if self._background:
                await asyncio.wait(set(self._background), timeout=0.5)
        finally:
            await self._disconnect(timeout=max(0.5, deadline - loop.time()))
            self._closed.set()

    async def _disconnect(self, timeout: float) -> None:
        """discord.py's close, bounded: a gateway that never answers the close must not hold up the exit."""
        disconnecting = asyncio.ensure_future(super().close())
        _, pending = await asyncio.wait({disconnecting}, timeout=timeout)
        if pending:
            log.warning("Discord did not confirm the disconnect in time; leaving anyway")
            disconnecting.cancel()
            await asyncio.gather(disconnecting, return_exceptions=True)

    def invite_url(self) -> str:
        """The OAuth2 URL that adds the bot to a server with the permissions it needs."""
        assert self.application_id is not None
        return discord.utils.oauth_url(self.application_id, permissions=INVITE_PERMISSIONS, scopes=INVITE_SCOPES)

    async def command_payload(self) -> dict[str, Any]:
        """What a sync would send, localizations included, and where: the basis of the sync hash."""
        translator = self.tree.translator
        commands_ = [
            await command.get_translated_payload(self.tree, translator) if translator else command.to_dict(self.tree)
            for command in self.tree.get_commands()
        ]
        commands_.sort(key=lambda c: (c.get("type", 1), c["name"]))
        return {
            "application_id": self.application_id,
            "guilds": sorted(self.settings.command_guild_ids),
            "commands": commands_,
        }

    async def sync_commands_if_changed(self) -> bool:
        """Sync the command tree only if it differs from the last sync (Discord rate-limits syncs);
        of several processes starting together, one syncs and the others find it done."""
        async with self.services.meta.exclusive():
            return await self._sync_commands_if_changed()

    async def _sync_commands_if_changed(self) -> bool:
        payload = json.dumps(await self.command_payload(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(payload.encode()).hexdigest()
        if await self.services.meta.get(SYNC_HASH_KEY) == digest:
            log.info("application commands unchanged since the last sync")
            return False
        try:
            if self.settings.command_guild_ids:
                for guild_id in self.settings.command_guild_ids:
                    guild = discord.Object(guild_id)
                    self.tree.copy_global_to(guild=guild)
                    await self.tree.sync(guild=guild)
                    self.tree.clear_commands(guild=guild)
            else:
                await self.tree.sync()
        except discord.HTTPException as exc:
            log.error("could not sync application commands: %s", exc)
            return False
        await self.services.meta.set(SYNC_HASH_KEY, digest)
        log.info("application commands synced (%s)", "guilds" if self.settings.command_guild_ids else "global")
        return True


class ShardedQwenImagineBot(QwenImagineBot, commands.AutoShardedBot):
    """The bot over several gateway shards: SHARD_COUNT in all, of which this process holds SHARD_IDS
    (every one when unset). Discord sends each shard the events of its own servers."""

    def __init__(self, settings: Settings, services: Services) -> None:
        super().__init__(settings, services, shard_count=settings.shard_count, shard_ids=list(settings.held_shards))


def build_bot(settings: Settings, services: Services) -> QwenImagineBot:
    """The bot these settings ask for: sharded when SHARD_COUNT is set, else one gateway connection."""
    if settings.shard_count is None:
        return QwenImagineBot(settings, services)
    return ShardedQwenImagineBot(settings, services)
