"""The Discord client: loads the cogs, syncs commands when they change, translates errors."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.services import Services
from bot.settings import Settings
from bot.ui.failures import report_error
from bot.ui.recovery import resume_unfinished

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.imagine", "cogs.limits", "cogs.remix", "cogs.retry", "cogs.edit", "cogs.models")
#: Send Messages, Embed Links, Attach Files.
INVITE_PERMISSIONS = discord.Permissions(send_messages=True, embed_links=True, attach_files=True)
INVITE_SCOPES = ("bot", "applications.commands")
SYNC_HASH_KEY = "command_sync_hash"


class QwenImagineTree(app_commands.CommandTree["QwenImagineBot"]):
    """The command tree; its errors go to the one translator in `bot.ui.failures`."""

    async def on_error(
        self, interaction: discord.Interaction[QwenImagineBot], error: app_commands.AppCommandError
    ) -> None:
        await report_error(interaction, error)


class QwenImagineBot(commands.Bot):
    """The qwen-imagine bot. Dependencies come in through the constructor."""

    def __init__(self, settings: Settings, services: Services) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=QwenImagineTree,
        )
        self.settings = settings
        self.services = services
        self._background: set[asyncio.Task[None]] = set()
        self._draining = False

    async def setup_hook(self) -> None:
        self.services.scheduler.start()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands_if_changed()
        log.info("invite the bot with %s", self.invite_url())
        # REST is enough to post in a channel, so resuming need not wait for the gateway.
        task = asyncio.create_task(resume_unfinished(self, self.services), name="resume-unfinished")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Drain first: no new jobs, running ones get the grace period, the rest are kept for the next start."""
        if not self._draining:
            self._draining = True
            scheduler = self.services.scheduler
            log.info(
                "shutting down: %d generations running get up to %.0f s, %d waiting are kept for the next start",
                scheduler.in_flight,
                self.settings.shutdown_grace_seconds,
                scheduler.waiting,
            )
            interrupted = await self.services.scheduler.stop(self.settings.shutdown_grace_seconds)
            if interrupted:
                await self.services.generation.requeue([job.generation_id for job in interrupted])
                log.info("kept %d unfinished generations for the next start", len(interrupted))
            for task in self._background:
                task.cancel()
        await super().close()

    def invite_url(self) -> str:
        """The OAuth2 URL that adds the bot to a server with the permissions it needs."""
        assert self.application_id is not None
        return discord.utils.oauth_url(self.application_id, permissions=INVITE_PERMISSIONS, scopes=INVITE_SCOPES)

    def command_payload(self) -> dict[str, Any]:
        """What a sync would send, and where: the basis of the sync hash."""
        commands_ = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        commands_.sort(key=lambda c: (c.get("type", 1), c["name"]))
        return {
            "application_id": self.application_id,
            "guilds": sorted(self.settings.command_guild_ids),
            "commands": commands_,
        }

    async def sync_commands_if_changed(self) -> bool:
        """Sync the command tree only if it differs from the last sync (Discord rate-limits syncs)."""
        payload = json.dumps(self.command_payload(), sort_keys=True, separators=(",", ":"))
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
