"""The scheduler: the one owner of calls to the image API.

It keeps the account's slots busy and no busier: at most `limit` generations in flight (lowered
when the API still answers 429, then raised again: additive increase, multiplicative decrease)
and at most `submits_per_second` submissions. Waiting jobs are served round-robin across guilds,
then across members inside a guild, so one busy server cannot starve the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from bot.errors import Interrupted, Restarting

log = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass(frozen=True)
class QueuePosition:
    """Where a waiting job stands: how many start before it, and roughly when it starts."""

    ahead: int
    eta_seconds: float


class JobObserver(Protocol):
    """Told how a job progresses. Must return at once: slow work (a Discord edit) goes in a task."""

    def queued(self, position: QueuePosition) -> None:
        """The job is waiting at `position` (called when it changes)."""

    def started(self) -> None:
        """The job is being generated."""


@dataclass(eq=False)
class Job(Generic[R]):
    """One generation waiting for, or holding, a slot."""

    generation_id: int
    guild_id: int
    member_id: int
    work: Callable[[], Awaitable[R]]
    observer: JobObserver | None = None
    future: asyncio.Future[R] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    last_position: int | None = None


_HISTORY_LIMIT = 100_000


class FairQueue(Generic[R]):
    """Waiting jobs, served least-recently-served first: across guilds, then across the members of
    the chosen guild. A guild that has not been served for a while (or ever) goes before one that
    just was, even if that one's queue emptied in between; a member's own jobs keep their order."""

    def __init__(self) -> None:
        self._waiting: dict[int, dict[int, deque[Job[R]]]] = {}
        # When each guild and (guild, member) was last served: a count of pops; unseen counts as -1.
        self._served: dict[int | tuple[int, int], int] = {}
        self._pops = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, job: Job[R]) -> None:
        """Add a job behind its member's earlier jobs."""
        self._waiting.setdefault(job.guild_id, {}).setdefault(job.member_id, deque()).append(job)
        self._size += 1

    def pop(self) -> Job[R]:
        """The next job in turn."""
        guild_id, member_id = self._next(self._served)
        job = self._take(guild_id, member_id)
        self._served[guild_id] = self._served[(guild_id, member_id)] = self._pops
        self._pops += 1
        if len(self._served) > _HISTORY_LIMIT:
            self._forget_idle()
        return job

    def remove(self, job: Job[R]) -> bool:
        """Take a waiting job out (its requester went away)."""
        jobs = self._waiting.get(job.guild_id, {}).get(job.member_id)
        if not jobs or job not in jobs:
            return False
        jobs.remove(job)
        self._prune(job.guild_id, job.member_id)
        self._size -= 1
        return True

    def in_order(self) -> Iterator[Job[R]]:
        """The waiting jobs in the order they will start (the pops simulated with heaps: O(n log n))."""
        served, pops = self._served, self._pops
        queues = {g: {m: deque(jobs) for m, jobs in members.items()} for g, members in self._waiting.items()}
        # Ties between never-served keys go to who queued first: their rank in the (ordered) dicts.
        guilds = [(served.get(g, -1), rank, g) for rank, g in enumerate(queues)]
        members = {g: [(served.get((g, m), -1), rank, m) for rank, m in enumerate(queues[g])] for g in queues}
        heapq.heapify(guilds)
        for heap in members.values():
            heapq.heapify(heap)
        while guilds:
            _, guild_rank, guild_id = heapq.heappop(guilds)
            _, member_rank, member_id = heapq.heappop(members[guild_id])
            jobs = queues[guild_id][member_id]
            yield jobs.popleft()
            if jobs:
                heapq.heappush(members[guild_id], (pops, member_rank, member_id))
            if members[guild_id]:
                heapq.heappush(guilds, (pops, guild_rank, guild_id))
            pops += 1

    def _forget_idle(self) -> None:
        """Bound the history: keep only who is waiting (the rest return as newcomers)."""
        self._served = {
            key: pops
            for key, pops in self._served.items()
            if (key[0] if isinstance(key, tuple) else key) in self._waiting
        }

    def _next(self, served: dict[int | tuple[int, int], int]) -> tuple[int, int]:
        return _least_recently_served(self._waiting, served)

    def _take(self, guild_id: int, member_id: int) -> Job[R]:
        job = self._waiting[guild_id][member_id].popleft()
        self._prune(guild_id, member_id)
        self._size -= 1
        return job

    def _prune(self, guild_id: int, member_id: int) -> None:
        members = self._waiting[guild_id]
        if not members[member_id]:
            del members[member_id]
        if not members:
            del self._waiting[guild_id]


def _least_recently_served(
    waiting: dict[int, dict[int, deque[Job[R]]]], served: dict[int | tuple[int, int], int]
) -> tuple[int, int]:
    # min() keeps the first of equals, and dicts keep arrival order: ties go to who queued first.
    guild_id = min(waiting, key=lambda g: served.get(g, -1))
    member_id = min(waiting[guild_id], key=lambda m: served.get((guild_id, m), -1))
    return guild_id, member_id


class Scheduler(Generic[R]):
    """Runs jobs through the API's slots; see the module docstring."""

    def __init__(
        self,
        *,
        max_concurrency: int = 2,
        submits_per_second: float = 2.0,
        hold_seconds: float = 30.0,
        report_interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_concurrency = max_concurrency
        self._limit = float(max_concurrency)
        self._submissions: deque[float] = deque(maxlen=max(1, int(submits_per_second)))
        self._hold_seconds = hold_seconds
        self._clock = clock
        self._queue: FairQueue[R] = FairQueue()
        self._running: set[Job[R]] = set()
        self._wake = asyncio.Event()
        self._hold_until = 0.0
        self._durations: deque[float] = deque(maxlen=20)
        self._dispatcher: asyncio.Task[None] | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._report_interval = report_interval
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepting = True
        self._deliveries = 0
        self._no_deliveries = asyncio.Event()
        self._no_deliveries.set()
        #: Running totals, for logs and benchmarks.
        self.throttle_count = 0
        self.max_in_flight = 0

    # ---------------------------------------------------------------- state
    @property
    def limit(self) -> int:
        """How many jobs may be in flight right now."""
        return max(1, math.floor(self._limit))

    @property
    def waiting(self) -> int:
        """Jobs waiting for a slot."""
        return len(self._queue)

    @property
    def in_flight(self) -> int:
        """Jobs holding a slot."""
        return len(self._running)

    def average_duration(self) -> float:
        """Recent generation time, for estimates (20 s until something has run)."""
        return sum(self._durations) / len(self._durations) if self._durations else 20.0

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start dispatching."""
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch_forever(), name="scheduler")

    @contextlib.asynccontextmanager
    async def delivering(self) -> AsyncIterator[None]:
        """Wrap a request's whole life, delivery included, so that shutdown waits for its last message."""
        self._deliveries += 1
        self._no_deliveries.clear()
        try:
            yield
        finally:
            self._deliveries -= 1
            if not self._deliveries:
                self._no_deliveries.set()

    def ensure_accepting(self) -> None:
        """Raise Restarting once shutdown has begun."""
        if not self.accepting:
            raise Restarting()

    async def stop(self, grace: float) -> list[Job[R]]:
        """Stop taking jobs, give running ones `grace` seconds, then interrupt the rest.

        Returns the interrupted jobs; their waiters get Interrupted, so they can say so."""
        self.accepting = False
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
            self._dispatcher = None
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        if self._reporter is not None:
            self._reporter.cancel()
        unfinished = list(self._running) + list(self._queue.in_order())
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        while len(self._queue):
            self._queue.pop()
        for job in unfinished:
            if not job.future.done():
                job.future.set_exception(Interrupted())
        # Let the interrupted requests tell their members before the connection closes.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._no_deliveries.wait(), timeout=5)
        return unfinished

    # ---------------------------------------------------------------- jobs
    async def run(self, job: Job[R]) -> R:
        """Queue `job` and wait for its result (or its error)."""
        self.ensure_accepting()
        self._queue.push(job)
        self._wake.set()
        self._positions_changed()
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            if self._queue.remove(job):
                self._positions_changed()
            raise

    async def _dispatch_forever(self) -> None:
        while True:
            while not (len(self._queue) and len(self._running) < self.limit):
                self._wake.clear()
                await self._wake.wait()
            job = self._queue.pop()
            self._running.add(job)
            self.max_in_flight = max(self.max_in_flight, len(self._running))
            task = asyncio.create_task(self._execute(job), name=f"generation-{job.generation_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self._positions_changed()

    async def _execute(self, job: Job[R]) -> None:
        started = self._clock()
        try:
            if job.observer is not None:
                _quietly(job.observer.started)
            result = await job.work()
        except asyncio.CancelledError:
            raise  # only stop() cancels a job, and it settles the job's future itself
        except BaseException as error:
            if not job.future.done():
                job.future.set_exception(error)
        else:
            self._durations.append(self._clock() - started)
            if not job.future.done():
                job.future.set_result(result)
        finally:
            self._running.discard(job)
            self._wake.set()

    def _positions_changed(self) -> None:
        """Report positions soon: a burst of queue changes becomes one report."""
        if self._reporter is None or self._reporter.done():
            self._reporter = asyncio.create_task(self._report_soon())

    async def _report_soon(self) -> None:
        await asyncio.sleep(self._report_interval)
        self._report_positions()

    def _report_positions(self) -> None:
        eta_round = self.average_duration()
        for ahead, job in enumerate(self._queue.in_order()):
            if job.observer is None or job.last_position == ahead:
                continue
            job.last_position = ahead
            position = QueuePosition(ahead, (ahead // self.limit + 1) * eta_round)
            _quietly(functools.partial(job.observer.queued, position))

    # ---------------------------------------------------------------- pacing (the API client's Pacer)
    async def before_submit(self) -> None:
        """Wait for this submission's turn: at most `submits_per_second` in any one-second window."""
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
        log.warning("image API throttled us; concurrency lowered to %d", self.limit)

    def succeeded(self) -> None:
        """A call succeeded: after the hold, win back one slot per `limit` successes."""
        if self._limit < self.max_concurrency and self._clock() >= self._hold_until:
            self._limit = min(float(self.max_concurrency), self._limit + 1 / self.limit)
            self._wake.set()


def _quietly(report: Callable[[], None]) -> None:
    """Progress reports are best effort: a broken observer must not fail the job or the queue."""
    try:
        report()
    except Exception:
        log.warning("could not report job progress", exc_info=True)
