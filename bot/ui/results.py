"""Result messages: generate for an interaction and post the image with its persistent buttons."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import discord

from bot.errors import QwenImagineError
from bot.services import Services
from bot.services.generation import GenerationRequest, parse_generation_id
from bot.services.jobs import Job
from bot.ui.failures import report_error
from bot.ui.presentation import result_embed, result_file
from bot.ui.progress import InteractionProgress
from bot.ui.replies import reply

log = logging.getLogger(__name__)

#: What each result button does: label, style, emoji.
RESULT_ACTIONS: dict[str, tuple[str, discord.ButtonStyle, str]] = {
    "reroll": ("Reroll", discord.ButtonStyle.primary, "🎲"),
    "remix": ("Remix", discord.ButtonStyle.secondary, "✏️"),
    "details": ("Details", discord.ButtonStyle.secondary, "ℹ️"),
    "delete": ("Delete", discord.ButtonStyle.danger, "🗑️"),
}
#: Dispatched (with action, generation id and interaction) when a result button is clicked.
RESULT_ACTION_EVENT = "result_action"


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    # Any id after the action matches, so a malformed one is answered (as naming no image) rather
    # than ignored; `parse_generation_id` decides what is an id.
    template=re.compile(r"qi:(?P<action>reroll|remix|details|delete):(?P<id>.*)", re.DOTALL),
):
    """A result's button. Its custom_id carries only the generation id, so it works after restarts;
    a click becomes a `result_action` event (with the id, or None if the custom_id's id is not one)
    that the remix cog handles."""

    def __init__(self, action: str, generation_id: int | None, *, custom_id: str | None = None) -> None:
        label, style, emoji = RESULT_ACTIONS[action]
        super().__init__(
            discord.ui.Button(
                label=label, style=style, emoji=emoji, custom_id=custom_id or f"qi:{action}:{generation_id}"
            )
        )
        self.action = action
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ResultButton:
        return cls(match["action"], parse_generation_id(match["id"]), custom_id=match.string)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        interaction.client.dispatch(RESULT_ACTION_EVENT, self.action, self.generation_id, interaction)


def result_view(generation_id: int) -> discord.ui.View:
    """The buttons under a result."""
    view = discord.ui.View(timeout=None)
    for action in RESULT_ACTIONS:
        view.add_item(ResultButton(action, generation_id))
    return view


@dataclass(frozen=True)
class Credit:
    """The image a remix or reroll was made from."""

    creator_id: int
    jump_url: str | None

    def line(self) -> str:
        """`Remixed from @creator's image: <link>` (sent with mentions disabled)."""
        link = f": {self.jump_url}" if self.jump_url else ""
        return f"Remixed from <@{self.creator_id}>'s image{link}"


async def generate_and_deliver(
    interaction: discord.Interaction[Any],
    services: Services,
    request: GenerationRequest,
    *,
    credit: Credit | None = None,
) -> None:
    """Admit the request (a denial raises before anything is sent, so it can be private), acknowledge
    publicly, wait in the queue showing progress, generate, and post the image with its buttons."""
    scheduler = services.scheduler
    scheduler.ensure_accepting()
    generation_id = await services.limits.admit(request)
    async with scheduler.delivering():
        try:
            await interaction.response.defer(thinking=True)
        except discord.HTTPException:
            # Too late to answer (Discord gave up on the interaction): drop the request, charge nothing.
            await services.generation.abandon(generation_id, "NotAcknowledged")
            raise
        progress = InteractionProgress(interaction)
        try:
            generated = await scheduler.run(
                Job(
                    generation_id=generation_id,
                    guild_id=interaction.guild_id or 0,
                    member_id=interaction.user.id,
                    work=lambda: services.generation.call_api(generation_id, request),
                    observer=progress,
                )
            )
            await progress.close()
            result = await services.generation.fetch(
                generation_id, request, generated, max_bytes=interaction.filesize_limit
            )
        except QwenImagineError as error:
            await progress.close()
            await report_error(interaction, error)
            return
        message = await reply(
            interaction,
            content=credit.line() if credit else None,
            embed=result_embed(result, interaction.user),
            file=lambda: result_file(result),
            view=result_view(generation_id),
        )
        if message is not None:
            await services.generation.remember_message(
                generation_id, channel_id=message.channel.id, message_id=message.id
            )
        interaction.client.dispatch("generation_delivered", generation_id)
