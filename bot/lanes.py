"""Lanes: one per API key, that is one per account, each with its own slots, pacing and 429 backoff.

An account's limits (generations in flight, submissions a second) are shared by every key and user
of it, so more throughput needs more accounts. The scheduler runs each job in the first lane with a
free slot; the API client reads the lane it runs in from `CURRENT_LANE` (its key, its pacing).
A lane is named by a fingerprint of its key, never by the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Protocol

from bot.settings import Secret

log = logging.getLogger(__name__)

#: The lane the current job runs in (set by the scheduler for the job's task).
CURRENT_LANE: ContextVar[Lane | None] = ContextVar("current_lane", default=None)


def fingerprint(key: str) -> str:
    """A stable, non-secret name for an API key: the first 10 hex digits of its SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()[:10]


class SharedPacing(Protocol):
    """Submission turns shared with other processes (see `bot.db.queue.SqlSubmissionPacing`)."""

    async def reserve(self, lane: str, per_second: int) -> float:
        """Reserve the lane's next turn; seconds until it comes."""


class Lane:
    """One API key's share of the work: at most `limit` generations in flight (lowered when the API
    still answers 429, then raised again: additive increase, multiplicative decrease) and at most
    `submits_per_second` submissions in any second."""

    def __init__(
        self,
        key: Secret | None,
        *,
        max_concurrency: int = 2,
        submits_per_second: float = 2.0,
        hold_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[], None] = lambda: None,
        pacing: SharedPacing | None = None,
    ) -> None:
        """With `pacing`, the submissions a second hold summed over every process sharing it."""
        self._pacing = pacing
        self.key = key
        self.name = fingerprint(key.reveal()) if key is not None else "default"
        self.max_concurrency = max_concurrency
        self._limit = float(max_concurrency)
        self._submissions: deque[float] = deque(maxlen=max(1, int(submits_per_second)))
        self._hold_seconds = hold_seconds
        self._hold_until = 0.0
        self._clock = clock
        self.on_change = on_change
        #: Jobs holding one of this lane's slots.
        self.running = 0
        #: The service rejected the key (InvalidApiKey, Arrearage, AccessDenied): out of the rotation.
        self.retired = False
        #: How often the API answered 429 in this lane.
        self.throttle_count = 0

    def __repr__(self) -> str:
        return f"Lane({self.name})"

    @property
    def limit(self) -> int:
        """How many jobs may be in flight in this lane right now."""
        return max(1, math.floor(self._limit))

    @property
    def free(self) -> bool:
        """Whether a job could start in this lane now."""
        return not self.retired and self.running < self.limit

    def retire(self, code: str) -> None:
        """Take the lane out of the rotation: the service refused its key."""
        if not self.retired:
            self.retired = True
            log.warning("API key %s was rejected by the image service (%s); it leaves the rotation", self.name, code)
            self.on_change()

    async def before_submit(self) -> None:
        """Wait for this submission's turn: at most `submits_per_second` in any one-second window."""
        if self._pacing is not None:
            wait = await self._pacing.reserve(self.name, self._submissions.maxlen or 1)
            if wait > 0:
                await asyncio.sleep(wait)
            return
        now = self._clock()
        turn = now
        if len(self._submissions) == self._submissions.maxlen:
            turn = max(now, self._submissions[0] + 1.0)
        self._submissions.append(turn)  # reserved now, so concurrent callers queue behind it
        if turn > now:
            await asyncio.sleep(turn - now)

    def throttled(self) -> None:
        """The API answered 429: halve the concurrency and hold it down for a while."""
        self.throttle_count += 1
        self._limit = max(1.0, self._limit / 2)
        self._hold_until = self._clock() + self._hold_seconds
        log.warning("image API throttled key %s; its concurrency lowered to %d", self.name, self.limit)

    def succeeded(self) -> None:
        """A call succeeded: after the hold, win back one slot per `limit` successes."""
        if self._limit < self.max_concurrency and self._clock() >= self._hold_until:
            self._limit = min(float(self.max_concurrency), self._limit + 1 / self.limit)
            self.on_change()
