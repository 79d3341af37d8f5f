"""Client for the Qwen-Image sync endpoint: request, response parsing, retries, errors."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import aiohttp

from bot.api_errors import classify, parse_retry_after
from bot.errors import ApiError, ServiceFailed
from bot.settings import Secret

log = logging.getLogger(__name__)

SYNC_PATH = "/services/aigc/multimodal-generation/generation"
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


class Pacer(Protocol):
    """Paces submissions to the API and hears how they went (the scheduler is one)."""

    async def before_submit(self) -> None:
        """Wait until a submission is allowed."""

    def throttled(self) -> None:
        """The API answered 429."""

    def succeeded(self) -> None:
        """The API answered with an image."""


class Unpaced:
    """No pacing: every submission goes at once."""

    async def before_submit(self) -> None:
        return None

    def throttled(self) -> None:
        return None

    def succeeded(self) -> None:
        return None


class _Retryable(Exception):
    """Internal: an attempt failed in a way worth another try."""

    def __init__(self, error: ApiError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


class QwenImageClient:
    """Calls the sync endpoint through one shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        api_key: Secret,
        timeout: float = 180.0,
        pacer: Pacer | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + SYNC_PATH
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=10, sock_read=timeout)
        self._pacer = pacer or Unpaced()
        self._retry = retry or RetryPolicy()
        self._sleep = sleep

    async def generate(self, params: GenerationParams) -> GeneratedImage:
        """Generate one image, retrying throttling and server errors; raise an ApiError otherwise."""
        attempt = 0
        while True:
            attempt += 1
            await self._pacer.before_submit()
            try:
                image = await self._attempt(params, attempt)
            except _Retryable as failure:
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
                self._pacer.succeeded()
                return image

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # The server's word wins; a little jitter keeps parallel retries apart.
            return min(retry_after, self._retry.max_retry_after) * (1 + random.random() * 0.1)
        ceiling = min(self._retry.max_delay, self._retry.base_delay * 2 ** (attempt - 1))
        return float(ceiling * (0.5 + random.random() / 2))

    async def _attempt(self, params: GenerationParams, attempt: int) -> GeneratedImage:
        headers = {
            "Authorization": f"Bearer {self._api_key.reveal()}",
            "Content-Type": "application/json",
        }
        try:
            async with self._session.post(
                self._url, json=build_sync_body(params), headers=headers, timeout=self._timeout
            ) as response:
                text = await response.text()
                status = response.status
                header_request_id = response.headers.get("x-request-id")
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except aiohttp.ClientConnectionError as exc:
            if isinstance(exc, aiohttp.ServerTimeoutError) and not isinstance(exc, aiohttp.ConnectionTimeoutError):
                # The request may be generating (and billed) upstream: don't pay twice.
                raise ServiceFailed("Timeout", "the image API did not answer in time") from exc
            error = ServiceFailed("NetworkError", f"{type(exc).__name__}: {exc}")
            raise _Retryable(error, None) from exc
        except TimeoutError as exc:
            raise ServiceFailed("Timeout", "the image API did not answer in time") from exc
        return _parse_response(status, text, header_request_id, retry_after, attempt)


def _parse_response(
    status: int, text: str, header_request_id: str | None, retry_after: float | None, attempt: int
) -> GeneratedImage:
    try:
        body: object = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # A proxy's HTML page, or garbage: the raw text is the message.
        _raise_api_error(status, f"HTTP{status}", text.strip()[:300], header_request_id, retry_after)
    return _parse_body(body, status, header_request_id, retry_after, attempt)


def _parse_body(
    body: dict[str, Any], status: int, header_request_id: str | None, retry_after: float | None, attempt: int
) -> GeneratedImage:
    request_id = body.get("request_id") or header_request_id
    code = body.get("code")
    if status != 200 or code:
        _raise_api_error(status, str(code or f"HTTP{status}"), str(body.get("message") or ""), request_id, retry_after)
    image = _extract_image(body)
    if image is None:
        raise ServiceFailed("NoImage", "the API answered 200 without an image", request_id=request_id, status=status)
    usage = body.get("usage")
    if not isinstance(usage, dict):
        usage = {}
    return GeneratedImage(
        url=image,
        request_id=request_id,
        width=_int_or_none(usage.get("width")),
        height=_int_or_none(usage.get("height")),
        attempts=attempt,
    )


def _extract_image(body: dict[str, Any]) -> str | None:
    output = body.get("output")
    if not isinstance(output, dict):
        return None
    metric = output.get("task_metric")
    if isinstance(metric, dict) and _int_or_none(metric.get("FAILED")):
        return None
    try:
        for item in output["choices"][0]["message"]["content"]:
            if isinstance(item, dict) and isinstance(item.get("image"), str) and item["image"]:
                return str(item["image"])
    except (KeyError, IndexError, TypeError):
        return None
    return None


def _raise_api_error(
    status: int, code: str, message: str, request_id: str | None, retry_after: float | None
) -> NoReturn:
    error, retryable = classify(status, code, message, request_id)
    if retryable:
        raise _Retryable(error, retry_after)
    raise error


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
