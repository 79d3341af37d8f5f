"""Generation: validate a request, call the image API, fetch the PNG, keep the usage log."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial

from bot.db import GenerationRecord, GenerationRepository, NewGeneration, Status
from bot.download import ImageDownloader, PngImage
from bot.errors import (
    ForeignGeneration,
    GenerationUnavailable,
    Interrupted,
    InvalidRequest,
    Localized,
    NotAllowed,
    QwenImagineError,
    UploadFailed,
)
from bot.i18n import N_
from bot.i18n.formatting import joined
from bot.lanes import CURRENT_LANE
from bot.qwen import (
    MAX_SEED,
    NEGATIVE_PROMPT_LIMIT,
    PROMPT_LIMIT,
    GeneratedImage,
    GenerationParams,
    QwenImageClient,
)
from bot.qwen.inputs import SourceImage
from bot.sealed import TokenSeal
from bot.sizes import ImageSize, find_size

log = logging.getLogger(__name__)

MISSING_RECORD = N_("error.details_gone")
EDITED_IMAGE = N_("error.edited_image")
#: Row ids are positive signed 64-bit integers (SQLite's rowid, PostgreSQL's bigint).
MAX_ROW_ID = 2**63 - 1
_ROW_ID_TEXT = re.compile(r"[1-9][0-9]{0,18}")


def parse_generation_id(text: str) -> int | None:
    """A generation id as the bot writes it in a custom_id (ASCII digits, no sign, no leading zero,
    no more than a row id can be); None for anything else, which names no image anywhere."""
    if _ROW_ID_TEXT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= MAX_ROW_ID else None


@dataclass(frozen=True)
class UsedMessage:
    """The message a result button or the "Remix image" menu was used on."""

    id: int
    channel_id: int | None
    sent_by_bot: bool


def carries(record: GenerationRecord, message: UsedMessage) -> bool:
    """Whether `message` is the one that shows `record`'s image (see `GenerationService.generation_for`)."""
    if record.message_id is not None:
        return message.id == record.message_id
    return message.sent_by_bot and message.channel_id is not None and message.channel_id == record.channel_id


@dataclass(frozen=True)
class GenerationRequest:
    """A validated request: who asked, where, and exactly what will be sent to the API."""

    guild_id: int | None
    channel_id: int | None
    member_id: int
    size: ImageSize
    params: GenerationParams
    seed_was_random: bool
    parent_id: int | None = None
    #: How many images one call makes (edits: 1 to the model's maximum).
    count: int = 1
    #: The images an edit starts from (Image 1, 2, 3); empty for text to image.
    sources: tuple[SourceImage, ...] = ()
    #: The member's and the server's Discord locale: what a message sent later without the
    #: interaction (a channel fallback, a resume after a restart) is written in.
    locale: str | None = None
    guild_locale: str | None = None

    def with_locales(self, locale: str | None, guild_locale: str | None) -> GenerationRequest:
        """This request, remembering the member's and the server's locale."""
        return dataclasses.replace(self, locale=locale, guild_locale=guild_locale)

    def to_new_generation(self) -> NewGeneration:
        """The usage-log row for this request."""
        return NewGeneration(
            guild_id=self.guild_id,
            channel_id=self.channel_id,
            member_id=self.member_id,
            model=self.params.model,
            size=self.params.size,
            seed=self.params.seed,
            prompt_extend=self.params.prompt_extend,
            prompt=self.params.prompt,
            negative_prompt=self.params.negative_prompt,
            parent_id=self.parent_id,
            inputs=len(self.sources),
            locale=self.locale,
            guild_locale=self.guild_locale,
        )


@dataclass(frozen=True)
class GenerationResult:
    """A generated image, ready to upload."""

    generation_id: int
    request: GenerationRequest
    image: PngImage
    request_id: str | None

    seed: int | None = None

    @property
    def image_seed(self) -> int:
        """This image's seed (an edit's n-th image has seed + n - 1)."""
        return self.request.params.seed if self.seed is None else self.seed

    @property
    def filename(self) -> str:
        """The attachment's name, carrying the seed."""
        return f"qwen-image-{self.image_seed}.png"


class GenerationService:
    """Turns requests into images and records every attempt."""

    def __init__(
        self,
        api: QwenImageClient,
        downloader: ImageDownloader,
        generations: GenerationRepository,
        *,
        model: str,
        sizes: tuple[ImageSize, ...],
        default_size: str,
        use_async_tasks: bool = False,
        clock: Callable[[], float] = time.time,
        seed_source: Callable[[], int] | None = None,
        seal: TokenSeal | None = None,
    ) -> None:
        self._api = api
        self._downloader = downloader
        self._generations = generations
        self._model = model
        self.sizes = sizes
        self._default_size = default_size
        self._use_async_tasks = use_async_tasks
        self._clock = clock
        self._seed_source = seed_source or (lambda: random.randint(0, MAX_SEED))
        #: Seals the interaction tokens kept for delivery from another process; without it none are kept.
        self._seal = seal

    def build_request(
        self,
        *,
        guild_id: int | None,
        channel_id: int | None,
        member_id: int,
        prompt: str,
        size: str | None = None,
        negative_prompt: str | None = None,
        seed: int | None = None,
        prompt_extend: bool = True,
        parent_id: int | None = None,
        model: str | None = None,
    ) -> GenerationRequest:
        """Validate what a member typed; draw a seed when none is given so every image can be reproduced."""
        prompt = prompt.strip()
        negative = (negative_prompt or "").strip()
        if not prompt:
            raise InvalidRequest(N_("refuse.prompt_empty"))
        if len(prompt) > PROMPT_LIMIT:
            raise InvalidRequest(N_("refuse.prompt_too_long"), length=len(prompt), limit=PROMPT_LIMIT)
        if len(negative) > NEGATIVE_PROMPT_LIMIT:
            raise InvalidRequest(N_("refuse.negative_too_long"), length=len(negative), limit=NEGATIVE_PROMPT_LIMIT)
        chosen = find_size(self.sizes, size or self._default_size)
        if chosen is None:
            names = Localized(partial(joined, [s.value for s in self.sizes], and_last=False))
            raise InvalidRequest(N_("refuse.unknown_size"), size=str(size), names=names)
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise InvalidRequest(N_("refuse.seed_range"), max=str(MAX_SEED))
        params = GenerationParams(
            model=model or self._model,
            prompt=prompt,
            negative_prompt=negative,
            size=chosen.value,
            seed=self._seed_source() if seed is None else seed,
            prompt_extend=prompt_extend,
        )
        return GenerationRequest(
            guild_id=guild_id,
            channel_id=channel_id,
            member_id=member_id,
            size=chosen,
            params=params,
            seed_was_random=seed is None,
            parent_id=parent_id,
        )

    async def call_api(
        self, generation_id: int, request: GenerationRequest, *, task_id: str | None = None
    ) -> GeneratedImage:
        """The part that needs one of the account's API slots: ask the API for the image. With async
        tasks the task id is stored as soon as it exists, and a stored `task_id` is polled, not paid
        for again."""
        await self._generations.mark_running(generation_id, at=self._clock())
        async with self.failures_recorded(generation_id, None):
            if task_id is None and not self._use_async_tasks:
                return await self._api.generate(request.params)
            if task_id is None:
                task_id = await self._api.submit_task(request.params)
                lane = CURRENT_LANE.get()
                await self._generations.set_task_id(generation_id, task_id, lane=lane.name if lane else None)
            return await self._api.wait_for_task(task_id)

    async def fetch(
        self, generation_id: int, request: GenerationRequest, generated: GeneratedImage, *, max_bytes: int
    ) -> GenerationResult:
        """Download the generated PNG (no API slot needed) and record the success."""
        async with self.failures_recorded(generation_id, generated.request_id):
            image = await self._downloader.fetch_png(generated.url, max_bytes)
        if not request.sources and (image.width, image.height) != (request.size.width, request.size.height):
            log.warning(
                "generation %d: asked for %s, got %dx%d", generation_id, request.size.value, image.width, image.height
            )
        await self._generations.mark_succeeded(
            generation_id, at=self._clock(), request_id=generated.request_id, image_bytes=len(image.data)
        )
        log.info("generation %d succeeded (request %s, %d bytes)", generation_id, generated.request_id, len(image.data))
        return GenerationResult(generation_id, request, image, generated.request_id)

    @contextlib.asynccontextmanager
    async def failures_recorded(self, generation_id: int, request_id: str | None) -> AsyncIterator[None]:
        """A failure inside marks the row failed (not counted); a shutdown leaves it to be resumed."""
        try:
            yield
        except QwenImagineError as error:
            request_id = getattr(error, "request_id", None) or request_id
            log.warning("generation %d failed: %s (request %s): %s", generation_id, error.code, request_id, error)
            await self._finish_failed(generation_id, error.code, request_id)
            raise
        except asyncio.CancelledError:
            raise  # shutdown: the row stays unfinished and is resumed at the next start
        except BaseException as error:
            log.debug("generation %d interrupted by %r", generation_id, error)
            await self._finish_failed(generation_id, type(error).__name__, request_id)
            raise

    async def _finish_failed(self, generation_id: int, code: str, request_id: str | None) -> None:
        # Shielded: the row must leave "running" even when the caller is being cancelled.
        await asyncio.shield(
            self._generations.mark_failed(generation_id, at=self._clock(), error_code=code, request_id=request_id)
        )

    async def remember_message(self, generation_id: int, *, channel_id: int, message_id: int) -> None:
        """Record where the result was posted (channel and message ids, never attachment URLs)."""
        await self._generations.set_message(generation_id, channel_id=channel_id, message_id=message_id)

    async def generation_for(
        self, guild_id: int | None, generation_id: int | None, *, on: UsedMessage | None = None
    ) -> GenerationRecord:
        """The generation an action in server `guild_id` names, or ForeignGeneration.

        Every action on a result goes through here. The row must be of that server (so nothing
        works outside servers). With `on`, the message a button (or the "Remix image" menu) was
        used on, that message must also be the one showing the image: its stored `message_id`; or,
        while none is stored (between posting a result and remembering it), a message the bot
        posted in the image's channel, since the bot puts a generation's buttons on that
        generation's result only and a click is dispatched only for a button its message carries.
        A missing row reads as a foreign one, except on a message the bot posted (its buttons name
        this server's images only): there the image's details are gone, and the member is told so.
        """
        record = None
        if generation_id is not None and 0 < generation_id <= MAX_ROW_ID:
            record = await self._generations.get(generation_id)
        if record is None:
            if guild_id is not None and generation_id is not None and on is not None and on.sent_by_bot:
                raise GenerationUnavailable(MISSING_RECORD)
            reason = "no such generation"
        elif guild_id is None or record.guild_id != guild_id:
            reason = f"it belongs to guild {record.guild_id}"
        elif on is not None and not carries(record, on):
            reason = f"message {on.id} does not show it"
        else:
            return record
        log.warning("generation %s refused in guild %s: %s", generation_id, guild_id, reason)
        raise ForeignGeneration()

    @staticmethod
    def reusable(record: GenerationRecord) -> GenerationRecord:
        """`record`, if its parameters can still be reused; else GenerationUnavailable."""
        if record.inputs:
            raise GenerationUnavailable(EDITED_IMAGE)
        if record.prompt is None:
            raise GenerationUnavailable(N_("error.prompt_deleted"))
        return record

    async def find_by_message(self, message_id: int) -> GenerationRecord | None:
        """The generation posted as message `message_id`, if any."""
        return await self._generations.find_by_message(message_id)

    async def lineage(self, record: GenerationRecord) -> list[GenerationRecord]:
        """The images of the same server this one was remixed from, nearest first."""
        ancestors = await self._generations.ancestors(record.id)
        return [parent for parent in ancestors if parent.guild_id == record.guild_id]

    async def forget_message(self, generation_id: int) -> None:
        """The result message was deleted."""
        await self._generations.clear_message(generation_id)

    async def unfinished(self) -> list[GenerationRecord]:
        """Generations a previous process left queued or running, oldest first."""
        return await self._generations.unfinished()

    async def remember_interaction(self, generation_id: int, token: str) -> None:
        """Keep the token of the interaction `generation_id` answers, so that another process that
        takes it over can answer there (it is cleared when the generation ends)."""
        if self._seal is not None:
            await self._generations.remember_interaction(generation_id, self._seal.seal(token))

    def reply_token(self, record: GenerationRecord) -> str | None:
        """The interaction token stored with `record` (see `remember_interaction`), if any."""
        if self._seal is None or not record.reply_token:
            return None
        return self._seal.open(record.reply_token)

    async def requeue(self, generation_ids: list[int]) -> None:
        """Put interrupted generations back in the queue for the next start."""
        await self._generations.mark_queued(generation_ids)

    async def cut_short(self, generation_id: int) -> QwenImagineError:
        """Shutdown's grace period ended after the image was generated, before it was posted. A stored
        async task gives the image again for free, so the request resumes at the next start; a sync
        image was paid for but cannot be collected after a restart: undelivered (reported, not counted)."""
        record = await self._generations.get(generation_id)
        if record is not None and record.status is Status.RUNNING and record.task_id:
            await self._generations.mark_queued([generation_id])
            return Interrupted()
        await asyncio.shield(self._generations.mark_undelivered(generation_id, error_code=Interrupted.code))
        return UploadFailed(Interrupted.code, N_("error.upload.restarted"))

    async def abandon(self, generation_id: int, code: str) -> None:
        """Give up on a generation: failed, so it is not counted against any limit."""
        await self._generations.mark_failed(generation_id, at=self._clock(), error_code=code)

    async def refuse(self, request: GenerationRequest, code: str) -> int:
        """Log a request refused before admission (denied, not counted) with the reason as its code."""
        return await self._generations.refuse(request.to_new_generation(), at=self._clock(), error_code=code)

    async def mark_undelivered(self, generation_id: int, code: str) -> None:
        """The image was made (and billed) but could not be posted: reported, not counted against limits."""
        await self._generations.mark_undelivered(generation_id, error_code=code)

    def retry_request(self, record: GenerationRecord, *, member_id: int, channel_id: int | None) -> GenerationRequest:
        """`record`'s request again, same seed and options, as a new generation; only the member who
        asked for it may (`record` comes from `generation_for`, so it is of the interaction's server)."""
        if record.member_id != member_id:
            raise NotAllowed(N_("refuse.retry_not_yours"), member=f"<@{record.member_id}>")
        if record.inputs:
            raise GenerationUnavailable(EDITED_IMAGE)
        if record.prompt is None:
            raise GenerationUnavailable(N_("error.request_prompt_deleted"))
        return self.request_again(record, channel_id=channel_id, member_id=member_id)

    def request_again(self, record: GenerationRecord, *, channel_id: int | None, member_id: int) -> GenerationRequest:
        """`record`'s request as it was sent (same prompt, seed and options), for `member_id` in
        `channel_id`: a retry, or a resume after a restart. The prompt must still be stored."""
        return self.build_request(
            guild_id=record.guild_id,
            channel_id=channel_id,
            member_id=member_id,
            prompt=record.prompt or "",
            size=record.size,
            negative_prompt=record.negative_prompt,
            seed=record.seed,
            prompt_extend=record.prompt_extend,
            parent_id=record.parent_id,
            model=record.model,
        ).with_locales(record.locale, record.guild_locale)
