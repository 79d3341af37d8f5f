"""Editing: validate an edit request, read and check its input images, call the edit model, fetch the results."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from functools import partial

from bot.db import GenerationRepository
from bot.download import ImageDownloader
from bot.errors import ImageFetchFailed, InvalidRequest, Localized, QwenImagineError, ServiceFailed
from bot.i18n import N_
from bot.i18n.formatting import joined
from bot.qwen import MAX_SEED, NEGATIVE_PROMPT_LIMIT, PROMPT_LIMIT, GeneratedImage, GenerationParams, QwenImageClient
from bot.qwen.catalogue import Catalogue, ModelSpec
from bot.qwen.edit import MAX_INPUTS
from bot.qwen.inputs import MAX_BYTES, PreparedImage, SourceImage, check_metadata, prepare
from bot.services.generation import GenerationRequest, GenerationResult
from bot.sizes import ImageSize

log = logging.getLogger(__name__)

#: The size shown for an edit whose output size the service picks (about 1024×1024, the last input's ratio).
AUTOMATIC_SIZE = ImageSize(1024, 1024, "Automatic")


class EditService:
    """Turns edit requests into images; rows are kept by the generation repository like any other."""

    def __init__(
        self,
        api: QwenImageClient,
        attachments: ImageDownloader,
        results: ImageDownloader,
        generations: GenerationRepository,
        *,
        catalogue: Catalogue,
        clock: Callable[[], float] = time.time,
        seed_source: Callable[[], int] | None = None,
    ) -> None:
        self._api = api
        self._attachments = attachments
        self._results = results
        self._generations = generations
        self._catalogue = catalogue
        self._clock = clock
        self._seed_source = seed_source or (lambda: random.randint(0, MAX_SEED))

    def max_images(self, model: str) -> int:
        """The most results one request to `model` may ask for."""
        spec = self._catalogue.get(model)
        return spec.max_images if spec is not None else 1

    def build_request(
        self,
        *,
        guild_id: int | None,
        channel_id: int | None,
        member_id: int,
        prompt: str,
        sources: tuple[SourceImage, ...],
        negative_prompt: str | None = None,
        seed: int | None = None,
        count: int = 1,
        size: str | None = None,
        prompt_extend: bool = True,
        parent_id: int | None = None,
        model: str = "qwen-image-edit-plus",
    ) -> GenerationRequest:
        """Validate what a member asked for (the inputs by their description only: nothing is downloaded)."""
        spec = self._catalogue.get(model)
        if spec is None or spec.does != "edit":
            raise InvalidRequest(N_("refuse.not_edit_model"), model=model)
        prompt, negative = prompt.strip(), (negative_prompt or "").strip()
        if not prompt:
            raise InvalidRequest(N_("refuse.edit_prompt_empty"))
        if len(prompt) > PROMPT_LIMIT:
            raise InvalidRequest(N_("refuse.prompt_too_long"), length=len(prompt), limit=PROMPT_LIMIT)
        if len(negative) > NEGATIVE_PROMPT_LIMIT:
            raise InvalidRequest(N_("refuse.negative_too_long"), length=len(negative), limit=NEGATIVE_PROMPT_LIMIT)
        if not 1 <= len(sources) <= MAX_INPUTS:
            raise InvalidRequest(N_("refuse.edit_inputs"), count=MAX_INPUTS)
        for source in sources:
            check_metadata(source)
        if not 1 <= count <= spec.max_images:
            if spec.max_images > 1:
                raise InvalidRequest(N_("refuse.edit_count"), count=spec.max_images, model=model)
            raise InvalidRequest(N_("refuse.edit_count_one"), model=model)
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise InvalidRequest(N_("refuse.seed_range"), max=str(MAX_SEED))
        shown = AUTOMATIC_SIZE
        if size:
            shown = _chosen_size(size, spec)
        params = GenerationParams(
            model=model,
            prompt=prompt,
            negative_prompt=negative,
            size=shown.value if size else "",
            seed=self._seed_source() if seed is None else seed,
            prompt_extend=prompt_extend,
        )
        return GenerationRequest(
            guild_id=guild_id,
            channel_id=channel_id,
            member_id=member_id,
            size=shown,
            params=params,
            seed_was_random=seed is None,
            parent_id=parent_id,
            count=count,
            sources=sources,
        )

    async def read_inputs(self, request: GenerationRequest) -> tuple[PreparedImage, ...]:
        """Download and check each input; InvalidRequest names the image at fault and why."""
        prepared = []
        for source in request.sources:
            try:
                data = await self._attachments.fetch_bytes(source.url, MAX_BYTES + 1)
            except ImageFetchFailed as error:
                log.warning("could not read edit input %d: %s", source.position, error)
                raise InvalidRequest(N_("refuse.input_unreadable"), name=source.named) from None
            # Decoding and scaling take CPU time: off the event loop.
            prepared.append(await asyncio.to_thread(prepare, source, data))
        return tuple(prepared)

    async def call_api(
        self, generation_ids: tuple[int, ...], request: GenerationRequest, inputs: tuple[PreparedImage, ...]
    ) -> list[GeneratedImage]:
        """One call to the edit model for all the request's images."""
        now = self._clock()
        for generation_id in generation_ids:
            await self._generations.mark_running(generation_id, at=now)
        try:
            return await self._api.edit(
                request.params, tuple(image.data_uri for image in inputs), count=len(generation_ids)
            )
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            code = error.code if isinstance(error, QwenImagineError) else type(error).__name__
            await self.fail(generation_ids, code, getattr(error, "request_id", None))
            raise

    async def fetch(
        self,
        generation_ids: tuple[int, ...],
        request: GenerationRequest,
        generated: list[GeneratedImage],
        *,
        max_bytes: int,
    ) -> list[GenerationResult]:
        """Download every result; an id the service made no image for is failed (never counted)."""
        results: list[GenerationResult] = []
        for index, generation_id in enumerate(generation_ids):
            if index >= len(generated):
                await self.fail((generation_id,), "NoImage", generated[0].request_id if generated else None)
                continue
            image_made = generated[index]
            try:
                image = await self._results.fetch_png(image_made.url, max_bytes)
            except QwenImagineError as error:
                await self.fail((generation_id,), error.code, image_made.request_id)
                if not results and index == len(generation_ids) - 1:
                    raise
                continue
            await self._generations.mark_succeeded(
                generation_id, at=self._clock(), request_id=image_made.request_id, image_bytes=len(image.data)
            )
            seed = (request.params.seed + index) % (MAX_SEED + 1)
            results.append(GenerationResult(generation_id, request, image, image_made.request_id, seed=seed))
        if not results:
            raise ServiceFailed("NoImage", "the edit made no image")
        log.info("edit %s: %d of %d images", generation_ids[0], len(results), len(generation_ids))
        return results

    async def fail(self, generation_ids: tuple[int, ...], code: str, request_id: str | None = None) -> None:
        """Mark rows failed (not counted), even while the caller is being cancelled."""
        for generation_id in generation_ids:
            await asyncio.shield(
                self._generations.mark_failed(generation_id, at=self._clock(), error_code=code, request_id=request_id)
            )


def _chosen_size(value: str, spec: ModelSpec) -> ImageSize:
    """A `W*H` (or `WxH`) output size the model allows."""
    if not spec.size_settable:
        raise InvalidRequest(N_("refuse.size_automatic"), model=spec.name)
    width, sep, height = value.lower().replace("×", "*").replace("x", "*").partition("*")
    if not sep or not width.strip().isdigit() or not height.strip().isdigit():
        raise InvalidRequest(N_("refuse.size_syntax"), size=value)
    w, h = int(width), int(height)
    if spec.fixed_sizes is not None and f"{w}*{h}" not in spec.fixed_sizes:
        sizes = Localized(partial(joined, spec.fixed_sizes, and_last=False))
        raise InvalidRequest(N_("refuse.size_fixed"), model=spec.name, sizes=sizes)
    if spec.size_range is not None:
        low, high = spec.size_range
        if not (low <= w <= high and low <= h <= high):
            raise InvalidRequest(N_("refuse.size_range"), model=spec.name, low=str(low), high=str(high))
    return ImageSize(w, h, "Custom")
