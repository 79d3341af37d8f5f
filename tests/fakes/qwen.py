"""A fake Qwen-Image (DashScope) server on 127.0.0.1 speaking the documented HTTP JSON API.

It serves the sync endpoint, the async create/poll pair, and result PNGs from an "OSS" path; it
enforces the account's concurrency limit (HTTP 429 Throttling.RateQuota above it) and can be told to
answer with any documented failure, to hold requests, to hand out odd result URLs, to hang up after
reading a request, or to refuse connections altogether.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import itertools
import json
import struct
import time
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

SYNC_PATH = "/api/v1/services/aigc/multimodal-generation/generation"
ASYNC_PATH = "/api/v1/services/aigc/text2image/image-synthesis"
MODELS = ("qwen-image-plus", "qwen-image", "qwen-image-max")
#: Edit models and the most images one request may ask for.
EDIT_MODELS = {"qwen-image-edit-plus": 6, "qwen-image-edit-max": 6, "qwen-image-edit": 1}
SIZES = ("1664*928", "1472*1140", "1328*1328", "1140*1472", "928*1664", "1472*1104", "1104*1472")


@functools.lru_cache(maxsize=64)
def make_png(width: int, height: int, seed: int = 0) -> bytes:
    """A valid RGB PNG of the given size, one colour derived from `seed`."""
    colour = bytes(((seed * 97) % 256, (seed * 57 + 80) % 256, (seed * 31 + 160) % 256))
    row = b"\x00" + colour * width
    raw = zlib.compress(row * height, 1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@dataclass
class Injected:
    """A canned answer for the next matching request."""

    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordedRequest:
    """A request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    answered: int = 0
    at: float = field(default_factory=time.monotonic)
    finished: float | None = None


class FakeQwen:
    """The fake API. Inspect `requests`, steer with `fail_next`, `hold`, `next_image_url`."""

    def __init__(self, *, api_key: str = "test-dashscope-key", latency: float = 0.0, max_concurrency: int = 2) -> None:
        self.api_key = api_key
        #: Every key it serves, each an account of its own (its own limits); the first is `api_key`.
        self.api_keys = [api_key]
        #: Keys it refuses from now on, with the error code it answers.
        self.rejected_keys: dict[str, str] = {}
        #: Per key: generations in flight, the most ever in flight, and 429s answered.
        self.in_flight_by_key: Counter[str] = Counter()
        self.max_in_flight_by_key: Counter[str] = Counter()
        self.throttled_by_key: Counter[str] = Counter()
        self.latency = latency
        self.max_concurrency = max_concurrency
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.throttled = 0
        self.served_images = 0
        #: Submissions each model allows in a window of seconds (as the tests' catalogue paces them).
        self.model_limits: dict[str, tuple[int, float]] = {"qwen-image-max": (2, 1.5), "qwen-image-edit-max": (2, 1.5)}
        self._model_submissions: dict[str, deque[float]] = {}
        #: 429s answered because a model's own submission limit was passed.
        self.model_throttled = 0
        #: Edit request bodies the fake accepted, in order.
        self.edits: list[dict[str, Any]] = []
        self._injected: deque[Injected] = deque()
        self._url_overrides: deque[Callable[[str], str]] = deque()
        self._images: dict[str, bytes] = {}
        self._files: dict[str, tuple[bytes, str]] = {}
        self._tasks: dict[str, dict[str, Any]] = {}
        self._task_failures: tuple[str, str] | None = None
        self._open = asyncio.Event()
        self._open.set()
        self._downloads_open = asyncio.Event()
        self._downloads_open.set()
        #: Result downloads being held by `hold_downloads()`.
        self.downloads_held = 0
        self._permits = asyncio.Semaphore(0)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._drops = 0
        self.port = 0
        self.changed = asyncio.Condition()

    # lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(SYNC_PATH, self._sync)
        app.router.add_post(ASYNC_PATH, self._async_create)
        app.router.add_get("/api/v1/tasks/{task_id}", self._task)
        app.router.add_get("/oss/{name}", self._oss)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()
        self.port = self._site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        """Stop serving; release held requests first."""
        self.release()
        self.release_downloads()
        if self._runner:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeQwen:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """The API root to configure as DASHSCOPE_BASE_URL."""
        return f"http://127.0.0.1:{self.port}/api/v1"

    def oss_url(self, name: str, host: str = "127.0.0.1") -> str:
        """A URL of the fake's result store."""
        return f"http://{host}:{self.port}/oss/{name}?Expires={int(time.time()) + 86400}&Signature=x"

    # steering ------------------------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        code: str = "",
        message: str = "",
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        raw: str | None = None,
    ) -> None:
        """Answer the next `times` generation requests with an error body (or `raw` text)."""
        body: dict[str, Any] | str = (
            raw
            if raw is not None
            else {
                "request_id": f"req-injected-{next(self._ids)}",
                "code": code,
                "message": message,
            }
        )
        for _ in range(times):
            self._injected.append(Injected(status, body, dict(headers or {})))

    def answer_next(self, status: int, body: dict[str, Any]) -> None:
        """Answer the next generation request with exactly this JSON body."""
        self._injected.append(Injected(status, body))

    def next_image_url(self, rewrite: Callable[[str], str]) -> None:
        """Rewrite the result URL of the next successful generation (`rewrite(real_url)`)."""
        self._url_overrides.append(rewrite)

    def add_file(self, name: str, data: bytes, content_type: str) -> None:
        """Serve arbitrary bytes at /oss/<name>."""
        self._files[name] = (data, content_type)

    def hold(self) -> None:
        """Keep generation requests waiting until `release()`."""
        self._open.clear()

    def release(self, count: int | None = None) -> None:
        """Let `count` held generation requests finish (all of them, and stop holding, if None)."""
        if count is None:
            self._open.set()
        else:
            for _ in range(count):
                self._permits.release()

    def drop_next(self, times: int = 1) -> None:
        """Hang up on the next `times` generation requests (sync, or task creation) once their body is
        read, without answering: the client cannot know whether the image was made."""
        self._drops += times

    async def refuse_connections(self) -> None:
        """Stop listening: connections to the port are refused until `accept_connections()`."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def accept_connections(self) -> None:
        """Listen on the same port again."""
        assert self._runner is not None
        if self._site is None:
            self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            await self._site.start()

    def _hang_up(self, request: web.Request, recorded: RecordedRequest) -> bool:
        """Close the connection instead of answering, if a drop was asked for."""
        if not self._drops:
            return False
        self._drops -= 1
        if request.transport is not None:
            request.transport.close()
        recorded.finished = time.monotonic()
        return True

    def hold_downloads(self) -> None:
        """Keep result downloads (GET /oss/...) waiting, unanswered, until `release_downloads()`."""
        self._downloads_open.clear()

    def release_downloads(self) -> None:
        """Answer held result downloads, and stop holding them."""
        self._downloads_open.set()

    async def _pass_gate(self) -> None:
        if self._open.is_set():
            return
        permit = asyncio.ensure_future(self._permits.acquire())
        opened = asyncio.ensure_future(self._open.wait())
        await asyncio.wait({permit, opened}, return_when=asyncio.FIRST_COMPLETED)
        opened.cancel()
        if not permit.done():
            permit.cancel()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        """Wait until `predicate()` holds, re-checked whenever the fake's state changes."""
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(predicate)

    @property
    def generation_requests(self) -> list[RecordedRequest]:
        """Requests to the sync endpoint, in order."""
        return [r for r in self.requests if r.path == SYNC_PATH]

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # handlers ------------------------------------------------------------------------------------
    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        recorded = RecordedRequest(request.method, request.path, dict(request.headers), body)
        self.requests.append(recorded)
        await self._notify()
        return recorded

    def _error(self, status: int, code: str, message: str) -> web.Response:
        request_id = f"req-{next(self._ids)}"
        return _json(status, {"request_id": request_id, "code": code, "message": message}, request_id)

    def add_key(self, key: str) -> str:
        """Serve another key (another account, with limits of its own)."""
        self.api_keys.append(key)
        return key

    def reject_key(self, key: str, code: str = "InvalidApiKey") -> None:
        """Refuse `key` from now on: InvalidApiKey (401), Arrearage (400) or AccessDenied (403)."""
        self.rejected_keys[key] = code

    @staticmethod
    def key_of(request: web.Request | RecordedRequest) -> str:
        """The API key a request was made with."""
        return str(request.headers.get("Authorization", "")).removeprefix("Bearer ")

    def _auth_error(self, request: web.Request) -> web.Response | None:
        key = self.key_of(request)
        if key not in self.api_keys:
            return self._error(401, "InvalidApiKey", "Invalid API-key provided.")
        code = self.rejected_keys.get(key)
        if code == "Arrearage":
            return self._error(400, code, "Access denied, please make sure your account is in good standing.")
        if code is not None:
            return self._error(401 if code == "InvalidApiKey" else 403, code, "Access denied.")
        return None

    def _throttle(self, key: str) -> web.Response:
        self.throttled += 1
        self.throttled_by_key[key] += 1
        return self._error(429, "Throttling.RateQuota", "Requests rate limit exceeded, please try again later.")

    async def _sync(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        if self._hang_up(request, recorded):
            await self._notify()
            return web.Response(status=500)  # never sent: the connection is closed
        response = await self._answer_sync(request, recorded)
        recorded.answered = response.status
        recorded.finished = time.monotonic()
        await self._notify()
        return response

    async def _answer_sync(self, request: web.Request, recorded: RecordedRequest) -> web.StreamResponse:
        if (auth := self._auth_error(request)) is not None:
            return auth
        key = self.key_of(request)
        if self._model_over_limit(recorded.body):
            self.model_throttled += 1
            return self._throttle(key)
        if self.in_flight_by_key[key] >= self.max_concurrency:
            return self._throttle(key)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.in_flight_by_key[key] += 1
        self.max_in_flight_by_key[key] = max(self.max_in_flight_by_key[key], self.in_flight_by_key[key])
        try:
            await self._pass_gate()
            if self.latency:
                await asyncio.sleep(self.latency)
            if self._injected:
                injected = self._injected.popleft()
                if isinstance(injected.body, str):
                    return web.Response(
                        status=injected.status, text=injected.body, headers=injected.headers, content_type="text/html"
                    )
                return _json(injected.status, injected.body, str(injected.body.get("request_id", "")), injected.headers)
            return self._generate(recorded.body)
        finally:
            self.in_flight -= 1
            self.in_flight_by_key[key] -= 1

    def _model_over_limit(self, body: Any) -> bool:
        """Whether this submission passes its model's own limit (it counts as one either way)."""
        model = body.get("model") if isinstance(body, dict) else None
        if model not in self.model_limits:
            return False
        count, window = self.model_limits[model]
        now = time.monotonic()
        recent = self._model_submissions.setdefault(model, deque())
        while recent and recent[0] <= now - window:
            recent.popleft()
        recent.append(now)
        return len(recent) > count

    def _generate(self, body: Any) -> web.Response:
        if isinstance(body, dict) and body.get("model") in EDIT_MODELS:
            return self._edit(body)
        problem = validate_sync_body(body)
        if problem:
            return self._error(400, "InvalidParameter", problem)
        parameters = body.get("parameters", {})
        size = parameters.get("size", "1328*1328")
        width, height = (int(v) for v in size.split("*"))
        return self._answer_images(width, height, parameters.get("seed", 0), 1)

    def _edit(self, body: dict[str, Any]) -> web.Response:
        problem, status, code = check_edit_body(body)
        if problem:
            return self._error(status, code, problem)
        parameters = body.get("parameters", {})
        size = parameters.get("size")
        if size:
            width, height = (int(v) for v in size.split("*"))
        else:
            width, height = 1024, 1024
        self.edits.append(body)
        return self._answer_images(width, height, parameters.get("seed", 0), int(parameters.get("n", 1)))

    def _answer_images(self, width: int, height: int, seed: int, count: int) -> web.Response:
        urls = []
        for index in range(count):
            name = f"{uuid.uuid4().hex}.png"
            # Eight colours are plenty, and cached images keep the fake's CPU out of the bot's measurements.
            self._images[name] = make_png(width, height, (seed + index) % 8)
            url = self.oss_url(name)
            if self._url_overrides:
                url = self._url_overrides.popleft()(url)
            urls.append(url)
        request_id = f"req-{next(self._ids)}"
        return _json(
            200,
            {
                "output": {
                    "choices": [
                        {
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": [{"image": url} for url in urls]},
                        }
                    ],
                    "task_metric": {"TOTAL": count, "FAILED": 0, "SUCCEEDED": count},
                },
                "usage": {"width": width, "image_count": count, "height": height},
                "request_id": request_id,
            },
            request_id,
        )

    async def _async_create(self, request: web.Request) -> web.Response:
        recorded = await self._record(request)
        if self._hang_up(request, recorded):
            await self._notify()
            return web.Response(status=500)  # never sent: the connection is closed
        response = self._create_task(request, recorded)
        recorded.answered = response.status
        await self._notify()
        return response

    def _create_task(self, request: web.Request, recorded: RecordedRequest) -> web.Response:
        if (auth := self._auth_error(request)) is not None:
            return auth
        if request.headers.get("X-DashScope-Async") != "enable":
            return self._error(403, "AccessDenied", "current user api does not support synchronous calls")
        key = self.key_of(request)
        mine = [task for task in self._tasks.values() if task["key"] == key]
        if sum(not self._task_done(task) for task in mine) >= self.max_concurrency:
            return self._throttle(key)
        if self._injected:
            injected = self._injected.popleft()
            assert isinstance(injected.body, dict)
            return _json(injected.status, injected.body, str(injected.body.get("request_id", "")), injected.headers)
        problem = validate_async_body(recorded.body)
        if problem:
            return self._error(400, "InvalidParameter", problem)
        task_id = str(uuid.uuid4())
        self._tasks[task_id] = {
            "body": recorded.body,
            "submitted": time.monotonic(),
            "fail": self._task_failures,
            "key": key,
        }
        self._task_failures = None
        request_id = f"req-{next(self._ids)}"
        return _json(
            200, {"output": {"task_status": "PENDING", "task_id": task_id}, "request_id": request_id}, request_id
        )

    def _task_done(self, task: dict[str, Any]) -> bool:
        return bool(self._open.is_set() and time.monotonic() - task["submitted"] >= self.latency)

    def fail_next_task(self, code: str, message: str) -> None:
        """The next task created ends FAILED with this code."""
        self._task_failures = (code, message)

    @property
    def task_creations(self) -> list[RecordedRequest]:
        """Requests to the async create endpoint, in order."""
        return [r for r in self.requests if r.path == ASYNC_PATH]

    async def _task(self, request: web.Request) -> web.Response:
        await self._record(request)
        if (auth := self._auth_error(request)) is not None:
            return auth
        task_id = request.match_info["task_id"]
        task = self._tasks.get(task_id)
        if task is not None and task["key"] != self.key_of(request):
            task = None  # a task belongs to the account that created it
        request_id = f"req-{next(self._ids)}"
        if task is None:
            # An id it never issued (or expired): how `python -m bot check` tests a key without paying.
            output: dict[str, Any] = {"task_id": task_id, "task_status": "UNKNOWN"}
        elif not self._task_done(task):
            output = {"task_id": task_id, "task_status": "RUNNING"}
        elif task["fail"]:
            code, message = task["fail"]
            output = {"task_id": task_id, "task_status": "FAILED", "code": code, "message": message}
        else:
            parameters = task["body"].get("parameters", {})
            width, height = (int(v) for v in parameters.get("size", "1328*1328").split("*"))
            name = task.setdefault("image", f"{uuid.uuid4().hex}.png")
            self._images.setdefault(name, make_png(width, height, parameters.get("seed", 0) % 8))
            prompt = task["body"].get("input", {}).get("prompt", "")
            output = {
                "task_id": task_id,
                "task_status": "SUCCEEDED",
                "results": [{"orig_prompt": prompt, "url": self.oss_url(name)}],
            }
        return _json(200, {"request_id": request_id, "output": output, "usage": {"image_count": 1}}, request_id)

    async def _oss(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if not self._downloads_open.is_set():
            self.downloads_held += 1
            await self._notify()
            await self._downloads_open.wait()
        if name in self._files:
            data, content_type = self._files[name]
            return web.Response(body=data, content_type=content_type)
        image = self._images.get(name)
        if image is None:
            return web.Response(
                status=404, text="<Error><Code>NoSuchKey</Code></Error>", content_type="application/xml"
            )
        self.served_images += 1
        return web.Response(body=image, content_type="image/png")


def validate_sync_body(body: Any) -> str | None:
    """What the real API would reject in a sync request body, or None if it is acceptable."""
    if not isinstance(body, dict):
        return "request body must be JSON"
    if body.get("model") not in MODELS:
        return f"Model not exist: {body.get('model')}"
    messages = body.get("input", {}).get("messages")
    if not isinstance(messages, list) or len(messages) != 1 or messages[0].get("role") != "user":
        return "messages must contain exactly one user message"
    content = messages[0].get("content")
    if not isinstance(content, list) or len(content) != 1 or not isinstance(content[0].get("text"), str):
        return "content must contain exactly one text element"
    parameters = body.get("parameters", {})
    if parameters.get("n", 1) != 1:
        return "num_images_per_prompt must be 1"
    if parameters.get("size", "1328*1328") not in SIZES:
        return f"size {parameters.get('size')} is not supported"
    seed = parameters.get("seed", 0)
    if not isinstance(seed, int) or not 0 <= seed <= 2_147_483_647:
        return "seed must be in [0, 2147483647]"
    return None


def check_edit_body(body: dict[str, Any]) -> tuple[str | None, int, str]:
    """What the service would refuse in an edit body: (problem, status, code), problem None if acceptable."""
    messages = body.get("input", {}).get("messages")
    if not isinstance(messages, list) or len(messages) != 1 or messages[0].get("role") != "user":
        return "messages must contain exactly one user message", 400, "InvalidParameter"
    content = messages[0].get("content")
    if not isinstance(content, list) or not content or not isinstance(content[-1].get("text"), str):
        return "content must end with one text element", 400, "InvalidParameter"
    images = content[:-1]
    if not 1 <= len(images) <= 3 or not all(isinstance(item.get("image"), str) for item in images):
        return "content must hold 1 to 3 images before the text", 400, "InvalidParameter"
    for item in images:
        problem = check_input_image(item["image"])
        if problem:
            return problem, 400, "InvalidParameter"
    parameters = body.get("parameters", {})
    n = parameters.get("n", 1)
    if not isinstance(n, int) or not 1 <= n <= EDIT_MODELS[body["model"]]:
        return f"n must be 1 to {EDIT_MODELS[body['model']]}", 400, "InvalidParameter"
    size = parameters.get("size")
    if size is not None:
        width, _, height = str(size).partition("*")
        if not (width.isdigit() and height.isdigit() and 512 <= int(width) <= 2048 and 512 <= int(height) <= 2048):
            return f"size {size} is not supported", 400, "InvalidParameter"
    return None, 200, ""


def check_input_image(uri: str) -> str | None:
    """The service's input rules: a data URI (in these tests) of JPEG/PNG/BMP/TIFF/WEBP/GIF, 384 to 3072
    pixels per side, at most 10 MB."""
    header, _, payload = uri.partition(",")
    if not header.startswith("data:image/") or not header.endswith(";base64"):
        return "image must be a data URI"
    data = base64.b64decode(payload)
    if len(data) > 10 * 1024 * 1024:
        return "image exceeds 10MB"
    try:
        image = Image.open(io.BytesIO(data))
    except Exception:
        return "image cannot be decoded"
    if image.format not in ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF", "MPO"):
        return f"image format {image.format} is not supported"
    if not all(384 <= side <= 3072 for side in image.size):
        return f"image size {image.size} out of range"
    return None


def validate_async_body(body: Any) -> str | None:
    """What the real API would reject in an async task body, or None if it is acceptable."""
    if not isinstance(body, dict):
        return "request body must be JSON"
    if body.get("model") not in MODELS:
        return f"Model not exist: {body.get('model')}"
    if not isinstance(body.get("input", {}).get("prompt"), str):
        return "input.prompt is required"
    parameters = body.get("parameters", {})
    if parameters.get("n", 1) != 1:
        return "num_images_per_prompt must be 1"
    if parameters.get("size", "1328*1328") not in SIZES:
        return f"size {parameters.get('size')} is not supported"
    return None


def _json(status: int, body: dict[str, Any], request_id: str, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = {"x-request-id": request_id, **(headers or {})}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json", headers=all_headers)
