"""Queue progress shown in a deferred response, edited at a pace Discord tolerates."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import discord

from bot.i18n import current_locale, number, speaking, t, tn
from bot.services.jobs import QueuePosition

log = logging.getLogger(__name__)


def describe_wait(seconds: float) -> str:
    """`in about 40 s`, `in about 3 min`."""
    if seconds < 90:
        return t("progress.wait_seconds", seconds=number(max(5, round(seconds / 5) * 5)))
    return t("progress.wait_minutes", minutes=number(round(seconds / 60)))


def queue_text(position: QueuePosition) -> str:
    """What a waiting member reads."""
    wait = describe_wait(position.eta_seconds)
    if position.ahead == 0:
        return t("progress.next", wait=wait)
    return tn("progress.queued", position.ahead, wait=wait)


def generating_text() -> str:
    """What a member reads once their image is being made."""
    return t("progress.generating")


class InteractionProgress:
    """A JobObserver that edits the interaction's "thinking" message with the queue position.

    Nothing is shown for a job that starts within `settle` seconds (the thinking indicator says
    enough); after that, one edit at most every `interval` seconds, always the latest state.
    """

    def __init__(
        self,
        interaction: discord.Interaction[Any],
        *,
        settle: float = 1.0,
        interval: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interaction = interaction
        # Reports come from the scheduler's tasks: they are written in the member's locale, in force here.
        self._locale = current_locale()
        self._interval = interval
        self._clock = clock
        self._pending: str | None = None
        self._shown = False
        self._closed = False
        self._next_edit = clock() + settle
        self._task: asyncio.Task[None] | None = None
        self._sending = False

    def queued(self, position: QueuePosition) -> None:
        with speaking(self._locale):
            self._show(queue_text(position))

    def started(self) -> None:
        if self._shown:
            with speaking(self._locale):
                self._show(generating_text())
        else:
            self._pending = None  # never shown a wait: the thinking indicator is enough

    def _show(self, text: str) -> None:
        if self._closed:
            return
        self._pending = text
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending is not None and not self._closed:
            wait = self._next_edit - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            text, self._pending = self._pending, None
            self._next_edit = self._clock() + self._interval
            self._sending = True
            try:
                await self._interaction.edit_original_response(content=text)
                self._shown = True
            except discord.HTTPException as error:
                log.debug("progress edit for interaction %s failed: %s", self._interaction.id, error)
                self._closed = True
            finally:
                self._sending = False

    async def close(self) -> None:
        """No more edits; an edit already on its way finishes first, so it can't land after the answer."""
        self._closed = True
        task = self._task
        if task is None or task.done():
            return
        if not self._sending:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
