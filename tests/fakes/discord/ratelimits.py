"""Discord's rate limits: per-route buckets and the global limit, answered with 429 as Discord does.

Off unless a FakeDiscord is given `rate_limits`. Windows are fixed: a bucket's first request opens a
window of `per` seconds in which `limit` requests pass; the rest get 429 with the time until it
closes. Every answer on a limited route carries the X-RateLimit-* headers discord.py reads.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from .multipart import json_response

#: discord.py takes a 429 without `Via` for a Cloudflare ban and gives up; Discord's own carry it.
_VIA = "1.1 google"
CHANNEL_MESSAGES = ("POST", "/channels/{channel_id}/messages")
FOLLOWUPS = ("POST", "/webhooks/{app_id}/{token}")
WEBHOOK_EDITS = (
    ("PATCH", "/webhooks/{app_id}/{token}/messages/@original"),
    ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}"),
)


@dataclass(frozen=True)
class RouteLimit:
    """`limit` requests per `per` seconds for the routes given (method, path template under /api/v10).

    Requests are counted per channel: the channel in the path, or the interaction's channel for the
    interaction-token routes, which Discord reports as a `shared` (per-resource) limit.
    """

    routes: tuple[tuple[str, str], ...]
    limit: int
    per: float

    @property
    def bucket(self) -> str:
        """The X-RateLimit-Bucket hash."""
        return hashlib.sha1(repr(sorted(self.routes)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RateLimits:
    """What the fake enforces. The global limit counts bot-token requests only: Discord does not
    count interaction endpoints against it."""

    routes: tuple[RouteLimit, ...] = ()
    global_limit: int | None = None
    global_per: float = 1.0


@dataclass(frozen=True)
class RateLimitHit:
    """A 429 the fake sent."""

    method: str
    path: str
    scope: str  # "user", "shared" or "global"
    retry_after: float


@dataclass
class _Window:
    per: float
    limit: int
    opened: float = -math.inf
    used: int = 0

    def roll(self, now: float) -> None:
        if now >= self.opened + self.per:
            self.opened, self.used = now, 0

    def reset_after(self, now: float) -> float:
        return max(0.0, self.opened + self.per - now)


@dataclass
class RateLimiter:
    """Counts requests in their windows and answers 429 when one is full."""

    config: RateLimits
    clock: Callable[[], float] = time.monotonic
    hits: list[RateLimitHit] = field(default_factory=list)
    _windows: dict[tuple[str, object], _Window] = field(default_factory=dict)

    def _rule(self, method: str, template: str) -> RouteLimit | None:
        return next((r for r in self.config.routes if (method, template) in r.routes), None)

    def admit(
        self, request: web.Request, template: str, channel_id: object, *, bot_token: bool
    ) -> web.Response | dict[str, str]:
        """A 429 to send instead of handling the request, or the headers to add to its answer."""
        now = self.clock()
        rule = self._rule(request.method, template)
        route = self._window(rule.bucket, channel_id, rule.per, rule.limit, now) if rule else None
        limit = self.config.global_limit
        overall = self._window("global", None, self.config.global_per, limit, now) if bot_token and limit else None
        if overall is not None and overall.used >= overall.limit:
            return self._refuse(request, overall.reset_after(now), "global", None)
        if route is not None and rule is not None and route.used >= route.limit:
            scope = "user" if "{channel_id}" in template else "shared"
            return self._refuse(request, route.reset_after(now), scope, (rule, route))
        for window in (route, overall):
            if window is not None:
                window.used += 1
        return _headers(rule, route, now) if rule and route else {}

    def _window(self, bucket: str, key: object, per: float, limit: int, now: float) -> _Window:
        window = self._windows.setdefault((bucket, key), _Window(per, limit))
        window.roll(now)
        return window

    def _refuse(
        self, request: web.Request, retry_after: float, scope: str, route: tuple[RouteLimit, _Window] | None
    ) -> web.Response:
        retry_after = round(max(retry_after, 0.001), 3)
        self.hits.append(RateLimitHit(request.method, request.path, scope, retry_after))
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": scope == "global"}
        headers = {"Retry-After": str(math.ceil(retry_after)), "X-RateLimit-Scope": scope, "Via": _VIA}
        if scope == "global":
            headers["X-RateLimit-Global"] = "true"
        else:
            assert route is not None
            headers.update(_headers(route[0], route[1], self.clock()))
        response = json_response(body, status=429)
        response.headers.update(headers)
        return response


def _headers(rule: RouteLimit, window: _Window, now: float) -> dict[str, str]:
    reset_after = window.reset_after(now)
    return {
        "X-RateLimit-Bucket": rule.bucket,
        "X-RateLimit-Limit": str(rule.limit),
        "X-RateLimit-Remaining": str(max(0, rule.limit - window.used)),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
    }
