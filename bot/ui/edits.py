"""Edit results: read the inputs, generate in the queue, post every image in one message with its actions."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import discord

from bot.errors import OutcomeUnknown, QwenImagineError
from bot.i18n import N_, t
from bot.services import Services
from bot.services.generation import GenerationRequest, GenerationResult, parse_generation_id
from bot.services.jobs import Job
from bot.ui.delivery import deliver_result
from bot.ui.presentation import clip, failure_text, result_embed, result_file
from bot.ui.progress import InteractionProgress
from bot.ui.replies import Draft, server_locale, tell
from bot.ui.results import (
    RESULT_ACTION_EVENT,
    Credit,
    ResultButton,
    acknowledge,
    refuse_what_cannot_be_done_here,
    report_failure,
    result_view,
)

log = logging.getLogger(__name__)

EDIT_OUTCOME_UNKNOWN = N_("editui.outcome_unknown")
#: The actions each image of a several-image result offers in its menu (with their entry's message key).
PICK_ACTIONS = (
    ("edit", N_("editui.pick_edit")),
    ("remix", N_("editui.pick_remix")),
    ("reroll", N_("editui.pick_reroll")),
    ("details", N_("editui.pick_details")),
)


class ImagePicker(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=re.compile(r"qi:pick:(?P<ids>[0-9,]{1,90})"),
):
    """The menu under a several-image result: one entry per image and action. A choice becomes the same
    `result_action` event a single result's button raises."""

    def __init__(self, generation_ids: tuple[int, ...]) -> None:
        options = [
            discord.SelectOption(label=t(label, n=n), value=f"{action}:{generation_id}")
            for n, generation_id in enumerate(generation_ids, start=1)
            for action, label in PICK_ACTIONS
        ]
        super().__init__(
            discord.ui.Select(
                custom_id=f"qi:pick:{','.join(str(i) for i in generation_ids)}",
                placeholder=t("editui.pick_placeholder"),
                options=options[:25],
            )
        )
        self.generation_ids = generation_ids

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ImagePicker:
        ids = tuple(i for i in (parse_generation_id(part) for part in match["ids"].split(",")) if i is not None)
        return cls(ids)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        action, _, chosen = (self.item.values[0] if self.item.values else "").partition(":")
        generation_id = parse_generation_id(chosen)
        if generation_id not in self.generation_ids:
            generation_id = None  # only the images this message shows
        interaction.client.dispatch(RESULT_ACTION_EVENT, action, generation_id, interaction)


def results_view(generation_ids: tuple[int, ...]) -> discord.ui.View:
    """One result: its buttons. Several: the menu, and a Delete for the whole message."""
    if len(generation_ids) == 1:
        return result_view(generation_ids[0])
    view = discord.ui.View(timeout=None)
    view.add_item(ImagePicker(generation_ids))
    view.add_item(ResultButton("delete", generation_ids[0]))
    return view


async def edit_and_deliver(
    interaction: discord.Interaction[Any],
    services: Services,
    request: GenerationRequest,
    *,
    credit: Credit | None = None,
) -> None:
    """As `generate_and_deliver`, for an edit: refuse what can't be done here, admit one row per image
    asked for, acknowledge, read and check the inputs (a bad one releases every row, uncharged), wait in
    the queue, make all the images in one call, and post those made in one message."""
    editing = services.editing
    assert editing is not None
    scheduler = services.scheduler
    request = request.with_locales(interaction.locale.value, server_locale(interaction))
    async with scheduler.delivering():
        origin = await refuse_what_cannot_be_done_here(interaction, services, request)
        ids = await services.limits.admit_images(request, origin.role_ids)
        await acknowledge(interaction, services, ids[0])
        progress = InteractionProgress(interaction)
        try:
            try:
                inputs = await editing.read_inputs(request)
                notes = [image.note for image in inputs if image.note]
                generated = await scheduler.run(
                    Job(
                        generation_id=ids[0],
                        guild_id=interaction.guild_id or 0,
                        member_id=interaction.user.id,
                        work=lambda: editing.call_api(ids, request, inputs),
                        observer=progress,
                        model=request.params.model,
                    )
                )
                results = await editing.fetch(ids, request, generated, max_bytes=interaction.filesize_limit)
            finally:
                await progress.close()
        except OutcomeUnknown as error:
            # No Retry button: the inputs are not kept, so the member asks again with them.
            await asyncio.shield(editing.fail(ids, error.code))
            await tell(interaction, lambda: failure_text(t(EDIT_OUTCOME_UNKNOWN)))
            return
        except QwenImagineError as error:
            await asyncio.shield(editing.fail(ids, error.code))
            await report_failure(interaction, services, ids[0], error)
            return
        except Exception as error:
            await asyncio.shield(editing.fail(ids, type(error).__name__))
            raise
        await _post(interaction, services, results, credit, notes)


async def _post(
    interaction: discord.Interaction[Any],
    services: Services,
    results: list[GenerationResult],
    credit: Credit | None,
    notes: list[str],
) -> None:
    ids = tuple(result.generation_id for result in results)

    def compose() -> Draft:
        lines = ([credit.line()] if credit else []) + notes
        if len(results) > 1:
            seeds = ", ".join(f"{n}: `{r.image_seed}`" for n, r in enumerate(results, start=1))
            lines.append(t("editui.seeds", seeds=seeds))
        return Draft(
            content=clip("\n".join(lines), 2000) if lines else None,
            embed=[result_embed(result, interaction.user) for result in results],
            view=results_view(ids),
        )

    await deliver_result(
        interaction, services, ids[0], compose=compose, file=lambda: [result_file(r) for r in results], also=ids[1:]
    )
