"""Client for the Qwen-Image sync endpoint: request, response parsing, retries, errors."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from bot.errors import OutcomeUnknown, ServiceFailed
from bot.lanes import CURRENT_LANE
from bot.qwen.edit import build_edit_body, extract_images, usage_size
from bot.qwen.responses import (
    Reply,
    Retryable,
    classify,
    extract_image,
    int_or_none,
    parse_reply,
    parse_retry_after,
    task_image,
)

if TYPE_CHECKING:
    from bot.settings import Secret

log = logging.getLogger(__name__)

SYNC_PATH = "/services/aigc/multimodal-generation/generation"
ASYNC_PATH = "/services/aigc/text2image/image-synthesis"
TASK_PATH = "/tasks/{task_id}"
MAX_SEED = 2_147_483_647
PROMPT_LIMIT = 800
NEGATIVE_PROMPT_LIMIT = 500


@dataclass(frozen=True)
class GenerationParams:
    """Exactly what is sent to the API for one image."""

    model: str
    prompt: str
    size: str
    seed: int
    prompt_extend: bool
    negative_prompt: str = ""
    watermark: bool = False


@dataclass(frozen=True)
class GeneratedImage:
    """A successful generation: where to fetch the PNG, and the ids to trace it by."""

    url: str
    request_id: str | None
    width: int | None
    height: int | None
    attempts: int


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently retryable failures are tried again."""

    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0
    #: Never wait longer than this for one Retry-After.
    max_retry_after: float = 60.0


def build_sync_body(params: GenerationParams) -> dict[str, Any]:
    """The JSON body of a sync generation request."""
    parameters: dict[str, Any] = {
        "size": params.size,
        "seed": params.seed,
        "prompt_extend": params.prompt_extend,
        "watermark": params.watermark,
    }
    if params.negative_prompt:
        parameters["negative_prompt"] = params.negative_prompt
    return {
        "model": params.model,
        "input": {"messages": [{"role": "user", "content": [{"text": params.prompt}]}]},
        "parameters": parameters,
    }


def build_async_body(params: GenerationParams) -> dict[str, Any]:
    """The JSON body that creates an async generation task."""
    prompt: dict[str, Any] = {"prompt": params.prompt}
    if params.negative_prompt:
        prompt["negative_prompt"] = params.negative_prompt
    return {
        "model": params.model,
        "input": prompt,
        "parameters": {
            "size": params.size,
            "n": 1,
            "seed": params.seed,
            "prompt_extend": params.prompt_extend,
            "watermark": params.watermark,
        },
    }


class Pacer(Protocol):
    """Paces submissions to the API and hears how they went (the scheduler is one)."""

    async def before_submit(self, model: str | None = None) -> None:
        """Wait until a submission (of `model`) is allowed."""

    def throttled(self) -> None:
        """The API answered 429."""

    def succeeded(self) -> None:
        """The API answered with an image."""


class Unpaced:
    """No pacing: every submission goes at once."""

    async def before_submit(self, model: str | None = None) -> None:
        return None

    def throttled(self) -> None:
        return None

    def succeeded(self) -> None:
        return None


class QwenImageClient:
    """Calls the image API through one shared aiohttp session: the sync endpoint, or the async
    task pair (create, then poll) whose task survives a restart of the bot."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: Secret,
        timeout: float = 180.0,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        poll_interval: float = 3.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._root = base_url.rstrip("/")
        self._api_key = api_key
        self._time_limit = timeout
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=10, sock_read=timeout)
        self._pacer = pacer or Unpaced()
        self._retry = retry or RetryPolicy()
        self._poll_interval = poll_interval
        self._sleep = sleep
        self._clock = clock

    async def generate(self, params: GenerationParams) -> GeneratedImage:
        """Generate one image with the sync endpoint, retrying only failures that provably made no image."""
        reply, attempts = await self._with_retries(
            lambda: self._call("POST", SYNC_PATH, build_sync_body(params), submission=True), model=params.model
        )
        image = extract_image(reply.body)
        if image is None:
            raise ServiceFailed("NoImage", "the API answered 200 without an image", request_id=reply.request_id)
        usage = reply.body.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return GeneratedImage(
            image, reply.request_id, int_or_none(usage.get("width")), int_or_none(usage.get("height")), attempts
        )

    async def edit(self, params: GenerationParams, images: tuple[str, ...], *, count: int = 1) -> list[GeneratedImage]:
        """Edit 1 to 3 images (data URIs) into `count` results with the sync endpoint (one call, one
        submission), retrying only failures that provably made nothing."""
        body = build_edit_body(params, images, count=count)
        reply, attempts = await self._with_retries(
            lambda: self._call("POST", SYNC_PATH, body, submission=True), model=params.model
        )
        urls = extract_images(reply.body)
        if not urls:
            raise ServiceFailed("NoImage", "the API answered 200 without an image", request_id=reply.request_id)
        width, height = usage_size(reply.body)
        return [GeneratedImage(url, reply.request_id, width, height, attempts) for url in urls]

    async def submit_task(self, params: GenerationParams) -> str:
        """Create an async generation task; return its id (valid for 24 hours)."""
        reply, _ = await self._with_retries(
            lambda: self._call(
                "POST", ASYNC_PATH, build_async_body(params), {"X-DashScope-Async": "enable"}, submission=True
            ),
            model=params.model,
        )
        output = reply.body.get("output")
        task_id = output.get("task_id") if isinstance(output, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise ServiceFailed("NoTaskId", "the API created no task", request_id=reply.request_id)
        return task_id

    async def wait_for_task(self, task_id: str) -> GeneratedImage:
        """Poll a task until it has an image; raise its error if it failed."""
        deadline = self._clock() + self._time_limit
        while True:
            reply, _ = await self._with_retries(
                lambda: self._call("GET", TASK_PATH.format(task_id=task_id), None), paced=False
            )
            output = reply.body.get("output")
            output = output if isinstance(output, dict) else {}
            status = output.get("task_status")
            if status == "SUCCEEDED":
                url = task_image(output)
                if url is None:
                    raise ServiceFailed("NoImage", "the task succeeded without an image", request_id=reply.request_id)
                return GeneratedImage(url, reply.request_id, None, None, 1)
            if status == "FAILED":
                error, _ = classify(
                    200, str(output.get("code") or "TaskFailed"), str(output.get("message") or ""), reply.request_id
                )
                raise error
            if status not in ("PENDING", "RUNNING"):
                # CANCELED, or UNKNOWN: the task id has expired (tasks are kept 24 hours).
                raise ServiceFailed(
                    f"Task{str(status).title()}", f"task {task_id} is {status}", request_id=reply.request_id
                )
            if self._clock() >= deadline:
                raise ServiceFailed("Timeout", f"task {task_id} did not finish in time", request_id=reply.request_id)
            await self._sleep(self._poll_interval)

    async def _with_retries(
        self, call: Callable[[], Awaitable[Reply]], *, paced: bool = True, model: str | None = None
    ) -> tuple[Reply, int]:
        attempt = 0
        while True:
            attempt += 1
            if paced:
                await self._pacer.before_submit(model)
            try:
                reply = await call()
            except Retryable as failure:
                if failure.error.status == 429:
                    self._pacer.throttled()
                if attempt > self._retry.max_retries:
                    raise failure.error from None
                delay = self._delay(attempt, failure.retry_after)
                log.warning(
                    "image API attempt %d failed with %s (request %s); retrying in %.2fs",
                    attempt,
                    failure.error.code,
                    failure.error.request_id,
                    delay,
                )
                await self._sleep(delay)
            else:
                if paced:
                    self._pacer.succeeded()
                return reply, attempt

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # The server's word wins; a little jitter keeps parallel retries apart.
            return min(retry_after, self._retry.max_retry_after) * (1 + random.random() * 0.1)
        ceiling = min(self._retry.max_delay, self._retry.base_delay * 2 ** (attempt - 1))
        return float(ceiling * (0.5 + random.random() / 2))

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        extra_headers: dict[str, str] | None = None,
        *,
        submission: bool = False,
    ) -> Reply:
        """One HTTP exchange; any failure is raised as an ApiError (or Retryable).

        A `submission` asks for an image that is billed once made. Once its body may have reached the
        service, a broken exchange (reset, disconnect, read timeout, a proxy's error page) is never
        retried: it raises OutcomeUnknown. Only what provably made nothing is retried: a connection
        that never opened, a 429, or the service's own JSON error."""
        lane = CURRENT_LANE.get()
        key = lane.key if lane is not None and lane.key is not None else self._api_key
        headers = {"Authorization": f"Bearer {key.reveal()}", **(extra_headers or {})}
        try:
            async with self._session.request(
                method, self._root + path, json=body, headers=headers, timeout=self._timeout
            ) as response:
                text = await response.text()
                status = response.status
                header_request_id = response.headers.get("x-request-id")
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # Refused, unresolvable or never connected: nothing was sent.
            raise Retryable(ServiceFailed("NetworkError", f"{type(exc).__name__}: {exc}"), None) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            if submission:
                raise OutcomeUnknown(f"the exchange broke after the request was sent ({detail})") from exc
            raise Retryable(ServiceFailed("NetworkError", detail), None) from exc
        return parse_reply(status, text, header_request_id, retry_after, submission=submission)
