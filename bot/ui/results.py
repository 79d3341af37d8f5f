"""Result messages: generate for an interaction and post the image with its persistent buttons."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

import discord

from bot.errors import (
    BlockedWordUsed,
    BudgetExceeded,
    CannotPostHere,
    HandedOver,
    OutcomeUnknown,
    QwenImagineError,
    Restarting,
    WrongChannel,
)
from bot.i18n import N_, t
from bot.services import Services
from bot.services.generation import GenerationRequest, parse_generation_id
from bot.services.jobs import Job
from bot.services.scheduler import GraceOver
from bot.services.settings import Origin
from bot.ui.delivery import deliver_result
from bot.ui.failures import report_error
from bot.ui.permissions import missing_result_permissions, refusal_code
from bot.ui.presentation import failure_text, result_embed, result_file
from bot.ui.progress import InteractionProgress
from bot.ui.replies import Draft, server_locale, tell
from bot.ui.retry import retry_view

log = logging.getLogger(__name__)

#: What each result button does: label (a message key), style, emoji.
RESULT_ACTIONS: dict[str, tuple[str, discord.ButtonStyle, str]] = {
    "reroll": (N_("button.reroll"), discord.ButtonStyle.primary, "🎲"),
    "remix": (N_("button.remix"), discord.ButtonStyle.secondary, "✏️"),
    "edit": (N_("button.edit"), discord.ButtonStyle.secondary, "🖌️"),
    "details": (N_("button.details"), discord.ButtonStyle.secondary, "ℹ️"),
    "delete": (N_("button.delete"), discord.ButtonStyle.danger, "🗑️"),
}
#: Dispatched (with action, generation id and interaction) when a result button is clicked.
RESULT_ACTION_EVENT = "result_action"


class ResultButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    # Any id after the action matches, so a malformed one is answered (as naming no image) rather
    # than ignored; `parse_generation_id` decides what is an id.
    template=re.compile(r"qi:(?P<action>reroll|remix|edit|details|delete):(?P<id>.*)", re.DOTALL),
):
    """A result's button. Its custom_id carries only the generation id, so it works after restarts;
    a click becomes a `result_action` event (with the id, or None if the custom_id's id is not one)
    that the remix cog handles."""

    def __init__(self, action: str, generation_id: int | None, *, custom_id: str | None = None) -> None:
        label, style, emoji = RESULT_ACTIONS[action]
        super().__init__(
            discord.ui.Button(
                label=t(label), style=style, emoji=emoji, custom_id=custom_id or f"qi:{action}:{generation_id}"
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
    verb: str = "Remixed"

    def line(self) -> str:
        """`Remixed from @creator's image: <link>` (sent with mentions disabled)."""
        creator = f"<@{self.creator_id}>"
        if self.verb == "Edited":
            said = t("remix.credit_edited", creator=creator)
        else:
            said = t("remix.credit", creator=creator)
        return f"{said}: {self.jump_url}" if self.jump_url else said


async def generate_and_deliver(
    interaction: discord.Interaction[Any],
    services: Services,
    request: GenerationRequest,
    *,
    credit: Credit | None = None,
    note: str | None = None,
) -> None:
    """Refuse what can't be done here (privately, before anything is sent or charged), admit the
    request, acknowledge publicly, wait in the queue showing progress, generate, and post the image
    with its buttons.

    An admitted request is released (failed, not counted) the moment it can't go on: a member told
    to try again never gets the image later. Only a job interrupted by shutdown stays queued, and
    its member is told it will be posted after the restart."""
    scheduler = services.scheduler
    request = request.with_locales(interaction.locale.value, server_locale(interaction))
    async with scheduler.delivering():  # from the first write on: a shutdown waits for this request's last message
        origin = await refuse_what_cannot_be_done_here(interaction, services, request)
        generation_id = await services.limits.admit(request, origin.role_ids)
        await acknowledge(interaction, services, generation_id)
        progress = InteractionProgress(interaction)
        try:
            try:
                # Whichever process ends up running it (after a hand-over) answers here.
                await services.generation.remember_interaction(generation_id, interaction.token)
                generated = await scheduler.run(
                    Job(
                        generation_id=generation_id,
                        guild_id=interaction.guild_id or 0,
                        member_id=interaction.user.id,
                        work=lambda: services.generation.call_api(generation_id, request),
                        observer=progress,
                        model=request.params.model,
                    )
                )
                async with scheduler.within_grace():
                    result = await services.generation.fetch(
                        generation_id, request, generated, max_bytes=interaction.filesize_limit
                    )
            finally:
                # Before any answer: a progress edit still on its way must not land after it.
                await progress.close()
        except GraceOver:
            await report_error(interaction, await services.generation.cut_short(generation_id))
            return
        except HandedOver:
            return  # another process runs it now, and answers the member
        except QwenImagineError as error:
            await report_failure(interaction, services, generation_id, error)
            return
        except Exception as error:
            await _release(services, generation_id, type(error).__name__)
            raise
        try:
            async with scheduler.within_grace():
                await deliver_result(
                    interaction,
                    services,
                    generation_id,
                    compose=lambda: Draft(
                        content="\n".join(line for line in (credit.line() if credit else None, note) if line) or None,
                        embed=result_embed(result, interaction.user),
                        view=result_view(generation_id),
                    ),
                    file=lambda: result_file(result),
                )
        except GraceOver:
            await report_error(interaction, await services.generation.cut_short(generation_id))


def origin_of(interaction: discord.Interaction[Any]) -> Origin:
    """The interaction's channel, its parent if it is a thread, and the member's roles (from the
    interaction itself: no members intent needed)."""
    channel = interaction.channel
    parent_id = channel.parent_id if isinstance(channel, discord.Thread) else None
    user = interaction.user
    role_ids = tuple(role.id for role in user.roles) if isinstance(user, discord.Member) else ()
    return Origin(interaction.channel_id, parent_id, role_ids)


async def refuse_what_cannot_be_done_here(
    interaction: discord.Interaction[Any], services: Services, request: GenerationRequest
) -> Origin:
    """Every way of generating passes here before admission: the server's allowed channels and
    blocked words, the bot's own permissions in the channel, shutdown, and the spending caps. A
    refusal is recorded (denied, never counted) and raised, before anything is sent or charged.
    Returns where the request comes from, for the member's role limits."""
    origin = origin_of(interaction)
    try:
        await services.settings.check(interaction.guild_id or 0, origin, request)
    except (WrongChannel, BlockedWordUsed) as refused:
        await services.generation.refuse(request, refused.code)
        raise
    missing = missing_result_permissions(interaction)
    if missing:
        refusal = CannotPostHere(missing)
        await services.generation.refuse(request, refusal_code(missing))
        raise refusal
    services.scheduler.ensure_accepting()
    await check_budget(services, request)
    return origin


async def check_budget(services: Services, request: GenerationRequest) -> None:
    """Refuse (privately, recorded as denied) a request that could pass a spending cap."""
    if services.budget is None or request.guild_id is None:
        return
    try:
        await services.budget.check(request.guild_id, request.params.model, request.count)
    except BudgetExceeded as refusal:
        await services.generation.refuse(request, refusal.code)
        raise


async def acknowledge(interaction: discord.Interaction[Any], services: Services, generation_id: int) -> None:
    """Defer publicly; if shutdown began meanwhile or the acknowledgement fails in any way (too late,
    a broken connection, cancelled), release the request at once, uncharged, and re-raise."""
    try:
        services.scheduler.ensure_accepting()
        await interaction.response.defer(thinking=True)
    except BaseException as error:
        await _release(services, generation_id, error.code if isinstance(error, Restarting) else "NotAcknowledged")
        raise


async def report_failure(
    interaction: discord.Interaction[Any], services: Services, generation_id: int, error: QwenImagineError
) -> None:
    """Tell the member why there is no image; a request turned away at the queue's door is released
    (a job interrupted by shutdown is not: it is kept, and posted after the restart)."""
    if isinstance(error, Restarting):
        await _release(services, generation_id, error.code)
    if isinstance(error, OutcomeUnknown):
        await tell(interaction, lambda: failure_text(error.user_message), view=lambda: retry_view(generation_id))
        return
    await report_error(interaction, error)


async def _release(services: Services, generation_id: int, code: str) -> None:
    # Shielded: the row must leave "queued" even while the caller is being cancelled.
    await asyncio.shield(services.generation.abandon(generation_id, code))
