"""The Discord client: loads the cogs, syncs commands when they change, translates errors."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.db import MetaRepository
from bot.errors import QwenImagineError
from bot.presentation import failure_text
from bot.replies import reply
from bot.services.generation import GenerationService
from bot.services.limits import LimitsService
from bot.services.usage import UsageService
from bot.settings import Settings

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.imagine", "cogs.limits")
#: Send Messages, Embed Links, Attach Files.
INVITE_PERMISSIONS = discord.Permissions(send_messages=True, embed_links=True, attach_files=True)
INVITE_SCOPES = ("bot", "applications.commands")
SYNC_HASH_KEY = "command_sync_hash"
GENERIC_FAILURE = "Something went wrong on the bot's side. Please try again; if it keeps happening, tell a moderator."


@dataclass(frozen=True)
class Services:
    """What the cogs need, built once in `bot.app` and handed to the client."""

    generation: GenerationService
    limits: LimitsService
    usage: UsageService
    meta: MetaRepository


class QwenImagineTree(app_commands.CommandTree["QwenImagineBot"]):
    """The command tree: its error handler is the one place errors become messages."""

    async def on_error(
        self, interaction: discord.Interaction[QwenImagineBot], error: app_commands.AppCommandError
    ) -> None:
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(original, QwenImagineError):
            message = original.user_message
        elif isinstance(original, app_commands.NoPrivateMessage):
            message = "This command works in servers only."
        elif isinstance(original, app_commands.MissingPermissions):
            message = "You need the Manage Server permission to do that."
        elif isinstance(original, app_commands.CheckFailure):
            message = "You can't use this command here."
        elif isinstance(original, app_commands.TransformerError):
            message = f"That value isn't valid: {original.value!r}."
        else:
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error("unexpected error in /%s", command, exc_info=original)
            message = GENERIC_FAILURE
        await answer_error(interaction, message)


async def answer_error(interaction: discord.Interaction[Any], message: str) -> None:
    """Tell the member what went wrong: privately if nothing was sent yet, never raising."""
    try:
        await reply(interaction, content=failure_text(message), ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not deliver an error message for interaction %s: %s", interaction.id, exc)


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

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands_if_changed()
        log.info("invite the bot with %s", self.invite_url())

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
