"""The scheduler: the one owner of calls to the image API.

It keeps the account's slots busy and no busier: at most `limit` generations in flight (lowered
when the API still answers 429, then raised again: additive increase, multiplicative decrease)
and at most `submits_per_second` submissions in any second. Waiting jobs take turns across guilds,
then across members inside a guild (see `FairQueue`), so one busy server cannot starve the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

from bot.errors import Interrupted, Restarting
from bot.services.jobs import FairQueue, Job, QueuePosition

log = logging.getLogger(__name__)

R = TypeVar("R")
#: A model's limits: (submissions per window, window seconds, calls in flight; 0 = the account's limit).
ModelPace = tuple[int, float, int]

#: After the grace period, how long interrupted requests get to tell their members.
FAREWELL_SECONDS = 2.0


class GraceOver(Exception):
    """Shutdown's grace period ended before the body of `Scheduler.within_grace` finished."""


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
        pace: Callable[[str | None], ModelPace] | None = None,
    ) -> None:
        self.max_concurrency = max_concurrency
        self._pace = pace or (lambda model: (max(1, int(submits_per_second)), 1.0, 0))
        self._model_submissions: dict[str, deque[float]] = {}
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
        self._delivery_tasks: dict[asyncio.Task[object], int] = {}
        #: When shutdown's grace period ends (event loop time); None until shutdown begins.
        self._grace_ends: float | None = None
        self._grace_timeouts: set[asyncio.Timeout] = set()
        #: How often the API answered 429 (for logs and tests).
        self.throttle_count = 0

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
        """Wrap a request's whole life, delivery included, so that shutdown waits for its last message
        (and, once even the time to say goodbye is over, cancels it)."""
        task = asyncio.current_task()
        self._deliveries += 1
        self._no_deliveries.clear()
        if task is not None:
            self._delivery_tasks[task] = self._delivery_tasks.get(task, 0) + 1
        try:
            yield
        finally:
            self._deliveries -= 1
            if not self._deliveries:
                self._no_deliveries.set()
            if task is not None:
                self._delivery_tasks[task] -= 1
                if not self._delivery_tasks[task]:
                    del self._delivery_tasks[task]

    @contextlib.asynccontextmanager
    async def within_grace(self) -> AsyncIterator[None]:
        """Run the body (fetching and posting an image) until shutdown's grace period ends; past it the
        body is cancelled and GraceOver raised, so the caller can settle the request and say so."""
        timeout = asyncio.timeout(self._grace_ends)
        try:
            async with timeout:
                self._grace_timeouts.add(timeout)
                try:
                    yield
                finally:
                    self._grace_timeouts.discard(timeout)
        except TimeoutError:
            if timeout.expired():
                raise GraceOver() from None
            raise

    def ensure_accepting(self) -> None:
        """Raise Restarting once shutdown has begun."""
        if not self.accepting:
            raise Restarting()

    async def stop(self, grace: float, *, farewell: float = FAREWELL_SECONDS) -> list[Job[R]]:
        """Shut down against one deadline. Waiting jobs are interrupted at once (they keep their place
        for the next start). Running jobs and every delivery (API call, download, upload) share
        `grace` seconds; then API calls are cancelled and deliveries cut short (`within_grace`). The
        requests so interrupted get `farewell` seconds more to tell their members; whatever is still
        going after that is cancelled.

        Returns the interrupted jobs; their waiters get Interrupted, so they can say so."""
        loop = asyncio.get_running_loop()
        self._grace_ends = loop.time() + grace
        self.accepting = False
        for timeout in list(self._grace_timeouts):
            timeout.reschedule(self._grace_ends)
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
            self._dispatcher = None
        if self._reporter is not None:
            self._reporter.cancel()
        waiting = list(self._queue.in_order())
        while len(self._queue):
            self._queue.pop()
        _interrupt(waiting)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained(), timeout=max(0.0, self._grace_ends - loop.time()))
        running = list(self._running)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        _interrupt(running)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._no_deliveries.wait(), timeout=self._grace_ends + farewell - loop.time())
        if self._delivery_tasks:
            log.warning("cancelling %d requests that could not finish in time", len(self._delivery_tasks))
            stragglers = list(self._delivery_tasks)
            for straggler in stragglers:
                straggler.cancel()
            await asyncio.wait(stragglers, timeout=0.5)
        return running + waiting

    async def _drained(self) -> None:
        """Every running job and every delivery has finished."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        await self._no_deliveries.wait()

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
            job = None
            if len(self._queue) and len(self._running) < self.limit:
                job = self._queue.pop_ready(self._model_ready)
            if job is None:
                self._wake.clear()
                # A job whose model has no submission turn yet waits without holding a slot.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._next_turn_in())
                continue
            self._running.add(job)
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

    # ---------------------------------------------------------------- per-model pacing
    def _model_window(self, model: str | None) -> tuple[deque[float], float, int]:
        submissions, window, concurrency = self._pace(model)
        key = model or ""
        turns = self._model_submissions.get(key)
        if turns is None or turns.maxlen != submissions:
            turns = self._model_submissions[key] = deque(turns or (), maxlen=max(1, submissions))
        return turns, window, concurrency

    def _model_ready(self, job: Job[R]) -> bool:
        """Whether `job`'s model has a submission turn now and a free call of its own."""
        turns, window, concurrency = self._model_window(job.model)
        if concurrency and sum(1 for running in self._running if running.model == job.model) >= concurrency:
            return False
        return len(turns) < (turns.maxlen or 1) or turns[0] + window <= self._clock()

    def _next_turn_in(self) -> float | None:
        """Seconds until a waiting job's model next has a turn (None: wait for a change)."""
        if not len(self._queue) or len(self._running) >= self.limit:
            return None
        now, soonest = self._clock(), None
        for job in self._queue.in_order():
            turns, window, _ = self._model_window(job.model)
            if len(turns) == turns.maxlen:
                at = turns[0] + window - now
                soonest = at if soonest is None else min(soonest, at)
        return None if soonest is None else max(0.01, soonest)

    # ---------------------------------------------------------------- pacing (the API client's Pacer)
    async def before_submit(self, model: str | None = None) -> None:
        """Wait for this submission's turn: at most `submits_per_second` in any one-second window for
        the account, and at most the model's own submissions in its window."""
        now = self._clock()
        turn = now
        if len(self._submissions) == self._submissions.maxlen:
            turn = max(now, self._submissions[0] + 1.0)
        turns, window, _ = self._model_window(model)
        if len(turns) == turns.maxlen:
            turn = max(turn, turns[0] + window)
        self._submissions.append(turn)  # reserved now, so concurrent callers queue behind it
        turns.append(turn)
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


def _interrupt(jobs: list[Job[R]]) -> None:
    """Tell the waiters of `jobs` that shutdown stopped them."""
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(Interrupted())


def _quietly(report: Callable[[], None]) -> None:
    """Progress reports are best effort: a broken observer must not fail the job or the queue."""
    try:
        report()
    except Exception:
        log.warning("could not report job progress", exc_info=True)
