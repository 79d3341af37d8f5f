"""At start-up, finish what a previous process left queued or running: run it again and post the
result in its channel, or (too old, or no longer possible) mark it failed and tell the member."""

from __future__ import annotations

import asyncio
import logging
import time

import discord

from bot.db import GenerationRecord, Status
from bot.errors import HandedOver, Interrupted, OutcomeUnknown, QwenImagineError, Restarting
from bot.i18n import speaking, t
from bot.services import Services
from bot.services.jobs import Job
from bot.services.scheduler import GraceOver
from bot.ui.delivery import SEND_ERRORS, record_undelivered
from bot.ui.handoff import edit_original
from bot.ui.presentation import failure_text, result_embed, result_file
from bot.ui.replies import post_to_channel, send_to_channel
from bot.ui.results import result_view
from bot.ui.retry import retry_view

log = logging.getLogger(__name__)

#: Older unfinished requests are given up: the member has long moved on.
RESUME_WITHIN_SECONDS = 6 * 3600
#: Discord's default upload limit, for posts that have no interaction to say its own.
CHANNEL_UPLOAD_LIMIT = 10 * 1024 * 1024


async def resume_unfinished(client: discord.Client, services: Services, records: list[GenerationRecord]) -> None:
    """Resume or fail `records`, the generations a previous process left unfinished."""
    if records:
        log.info("resuming %d generations left unfinished by the previous run", len(records))
        await asyncio.gather(*(_resume(client, services, record) for record in records))


async def _resume(client: discord.Client, services: Services, record: GenerationRecord) -> None:
    # Nobody's interaction is behind these posts: they speak the server's language.
    with speaking(record.guild_locale):
        await _resume_in_channel(client, services, record)


async def _resume_in_channel(client: discord.Client, services: Services, record: GenerationRecord) -> None:
    channel = client.get_partial_messageable(record.channel_id) if record.channel_id else None
    too_old = time.time() - record.requested_at > RESUME_WITHIN_SECONDS
    # An edit's input images are never stored, so an interrupted edit can't be made again.
    if channel is None or record.prompt is None or too_old or record.inputs:
        await services.generation.abandon(record.id, "Interrupted")
        if channel is not None:
            when = f"<t:{int(record.requested_at)}:R>"
            await post_to_channel(
                channel,
                record.member_id,
                content=failure_text(t("recovery.interrupted", when=when)),
                embed=None,
                file=None,
            )
        return
    if record.status is Status.RUNNING and not record.task_id:
        # Its process died after the call may have been sent: the image may exist, billed, but out of
        # reach. Released, uncharged, and the member may retry.
        error = OutcomeUnknown("the process making it stopped")
        await services.generation.abandon(record.id, error.code)
        await _tell(client, services, channel, record, error, retry=True)
        return
    async with services.scheduler.delivering():
        try:
            request = services.generation.request_again(
                record, channel_id=record.channel_id, member_id=record.member_id
            )
            generated = await services.scheduler.run(
                Job(
                    generation_id=record.id,
                    guild_id=record.guild_id or 0,
                    member_id=record.member_id,
                    work=lambda: services.generation.call_api(record.id, request, task_id=record.task_id),
                    model=record.model,
                    lane=record.task_lane,
                )
            )
            async with services.scheduler.within_grace():
                result = await services.generation.fetch(record.id, request, generated, max_bytes=CHANNEL_UPLOAD_LIMIT)
        except GraceOver:
            await _tell(client, services, channel, record, await services.generation.cut_short(record.id))
            return
        except HandedOver:
            return  # another process runs it now
        except QwenImagineError as error:
            if isinstance(error, Restarting):
                error = Interrupted()  # still queued: it is resumed at the next start, as the member is told
            if not isinstance(error, Interrupted):
                await services.generation.abandon(record.id, error.code)
            await _tell(client, services, channel, record, error, retry=isinstance(error, OutcomeUnknown))
            return
        try:
            async with services.scheduler.within_grace():
                # Into the member's own interaction (in the member's language) while its token
                # lives (handed or taken over); else in the channel, in the server's.
                with speaking(record.locale, record.guild_locale):
                    answered = await edit_original(
                        client,
                        record,
                        services.generation.reply_token(record),
                        content=None,
                        embed=result_embed(result, None),
                        file=lambda: result_file(result),
                        view=result_view(record.id),
                    )
                message = answered or await send_to_channel(
                    channel,
                    record.member_id,
                    content=t("recovery.delivered"),
                    embed=result_embed(result, None),
                    file=lambda: result_file(result),
                    view=result_view(record.id),
                )
        except GraceOver:
            await _tell(client, services, channel, record, await services.generation.cut_short(record.id))
            return
        except SEND_ERRORS as send_error:
            failure = await record_undelivered(services, record.id, send_error)
            await post_to_channel(
                channel, record.member_id, content=failure_text(failure.user_message), embed=None, file=None
            )
            return
        await services.generation.remember_message(record.id, channel_id=message.channel.id, message_id=message.id)
        client.dispatch("generation_delivered", record.id)


async def _tell(
    client: discord.Client,
    services: Services,
    channel: discord.abc.Messageable,
    record: GenerationRecord,
    error: QwenImagineError,
    *,
    retry: bool = False,
) -> None:
    """Say why a resumed request has no image (yet): in its interaction while that lives (the member's
    language), else in the channel (the server's)."""
    token = services.generation.reply_token(record)

    def view() -> discord.ui.View | None:  # its labels are written in the language in force
        return retry_view(record.id) if retry else None

    with speaking(record.locale, record.guild_locale):
        text = failure_text(error.user_message)
        answered = await edit_original(client, record, token, content=text, embed=None, file=None, view=view())
    if answered is None:
        text = failure_text(error.user_message)
        await post_to_channel(channel, record.member_id, content=text, embed=None, file=None, view=view())
