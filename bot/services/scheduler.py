"""The scheduler: the one owner of calls to the image API.

It keeps each account's slots busy and no busier. Every API key is a lane (`bot.lanes.Lane`) with
its own slots, pacing and 429 backoff; a job starts in the first lane with a free slot. Each model is
also paced by its own limits within a lane (`pace`: `qwen-image-max` allows 2 submissions a minute),
and a job whose model has no turn yet waits without holding a slot, so other models go ahead. Waiting jobs
take turns across guilds, then across members inside a guild (see `FairQueue`), so one busy server
cannot starve the others. A key the service rejects leaves the rotation and the job that met it is
tried again in another lane; with none left, the job fails as misconfigured.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

from bot.errors import HandedOver, Interrupted, Restarting, ServiceMisconfigured
from bot.lanes import CURRENT_LANE, Lane
from bot.services.jobs import FairQueue, Job, QueuePosition, Served, Waiting, fairest
from bot.services.model_pacing import ModelPace, ModelPacer

log = logging.getLogger(__name__)

R = TypeVar("R")

#: After the grace period, how long interrupted requests get to tell their members.
FAREWELL_SECONDS = 2.0
#: What the service answers for a key it will not serve (the account, not the request, is at fault).
KEY_REJECTED = frozenset(
    {
        "InvalidApiKey",
        "Arrearage",
        "AccessDenied",
        "AccessDenied.Unpurchased",
        "PrepaidBillOverdue",
        "PostpaidBillOverdue",
    }
)


#: While every shared slot is held by other processes, how often to look again.
SLOT_POLL_SECONDS = 0.05
#: How long a free slot is left to another process's waiting job before this process stops waiting
#: for it (that process may be slow to start it, e.g. still acknowledging its interaction).
DEFER_SECONDS = 1.0


class SlotLeases(Protocol):
    """An account's slots shared with other processes (see `bot.db.queue.SqlSlotLeases`)."""

    lease_seconds: float

    async def acquire(self, lane: str, limit: int) -> int | None:
        """Take one of the lane's first `limit` slots; None while all are held."""

    async def release(self, lane: str, slot: int) -> None:
        """Give a slot back."""

    async def renew(self) -> None:
        """Extend the leases of every slot this process holds."""


class QueueTurns(Protocol):
    """The one fair queue over every process (see `bot.db.turns.SqlQueueTurns`)."""

    async def snapshot(self) -> tuple[Served, list[Waiting]]:
        """When each guild and member was last served, and other processes' first waiting jobs."""

    async def served(self, guild_id: int, member_id: int) -> None:
        """Record that a job of this member of this guild starts now."""


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
        lanes: Sequence[Lane] = (),
        leases: SlotLeases | None = None,
        pace: Callable[[str | None], ModelPace] | None = None,
        turns: QueueTurns | None = None,
    ) -> None:
        """One lane per API key (`lanes`); without any, one keyless lane with these limits (the API
        client then uses its own key). With `leases`, a job also needs one of its lane's slots shared
        by every process on the database, so an account's limit holds summed over them all. With
        `turns`, waiting jobs take turns with every other process's (one fair queue over them all)."""
        self._leases = leases
        self._turns = turns
        #: Other processes' jobs this one has left a free slot to, and since when (clock time).
        self._deferred_to: dict[int, float] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._models = ModelPacer(pace or (lambda model: (max(1, int(submits_per_second)), 1.0, 0)), clock=clock)
        self.lanes = list(lanes) or [
            Lane(
                None,
                max_concurrency=max_concurrency,
                submits_per_second=submits_per_second,
                hold_seconds=hold_seconds,
                clock=clock,
            )
        ]
        for lane in self.lanes:
            lane.on_change = self._lanes_changed
        self._clock = clock
        self._queue: FairQueue[R] = FairQueue()
        self._running: set[Job[R]] = set()
        #: The lane each running job holds a slot in.
        self._lane_of: dict[Job[R], Lane] = {}
        self._wake = asyncio.Event()
        #: Whether a slot freed by another process is worth a look now (see `nudge`).
        self._wants_slot = False
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

    # ---------------------------------------------------------------- state
    @property
    def limit(self) -> int:
        """How many jobs may be in flight right now, over every lane in the rotation."""
        return max(1, sum(lane.limit for lane in self.lanes if not lane.retired))

    @property
    def throttle_count(self) -> int:
        """How often the API answered 429 (for logs and tests)."""
        return sum(lane.throttle_count for lane in self.lanes)

    def _free_lane(self) -> Lane | None:
        """The first lane with a free slot."""
        return next((lane for lane in self.lanes if lane.free), None)

    def _lane_for(self, job: Job[R], free: Lane) -> Lane:
        """The lane a job runs in: the one its async task was created in, if it is still in the
        rotation (polling that task takes a slot there, even above the lane's limit), else `free`."""
        pinned = next((lane for lane in self.lanes if lane.name == job.lane and not lane.retired), None)
        return pinned or free

    def _lanes_changed(self) -> None:
        self._wake.set()

    def nudge(self) -> None:
        """Another process gave a slot back: if this one waits for a slot, it looks now, not at its next poll."""
        if self._wants_slot:
            self._wake.set()

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
        if self._leases is not None and self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_forever(self._leases), name="slot-leases")

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

    async def stop(
        self,
        grace: float,
        *,
        farewell: float = FAREWELL_SECONDS,
        hand_over: Callable[[list[int]], Awaitable[tuple[list[int], bool]]] | None = None,
    ) -> list[Job[R]]:
        """Shut down against one deadline. Waiting jobs are interrupted at once (they keep their place
        for the next start); with `hand_over`, they are first given up for another process to run, and
        those a live process takes now get HandedOver (their waiters leave the member to it). Running
        jobs and every delivery (API call, download, upload) share `grace` seconds; then API calls are
        cancelled and deliveries cut short (`within_grace`). The requests so interrupted get `farewell`
        seconds more to tell their members; whatever is still going after that is cancelled.

        Returns the interrupted jobs (not those handed over); their waiters get Interrupted, so they
        can say so."""
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
        if hand_over is not None:
            handed, taken = await hand_over([job.generation_id for job in waiting])
            if taken:
                for job in waiting:
                    if job.generation_id in handed and not job.future.done():
                        job.future.set_exception(HandedOver())
                waiting = [job for job in waiting if job.generation_id not in handed]
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
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
            self._renewer = None
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
            while not (len(self._queue) and self._free_lane() is not None):
                self._wake.clear()
                await self._wake.wait()
            self._wake.clear()
            self._wants_slot = True  # from here a nudge is kept, even while the database answers
            lane, slot = await self._take_slot()
            if lane is None:
                # Every shared slot is held by another process: look again when one frees (or soon).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), SLOT_POLL_SECONDS)
                continue
            self._wants_slot = False  # deferring below: slots other processes leave do not end the wait
            job, deferred = await self._pop_ready(lane)
            if deferred:
                # Another process's waiting job goes first: leave it the slot, look again soon.
                await self._release(lane, slot)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), SLOT_POLL_SECONDS)
                continue
            if job is None:
                # No waiting job's model has a turn in this lane yet: wait for one, holding no slot.
                await self._release(lane, slot)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._next_turn_in(lane))
                continue
            if self._lane_for(job, lane) is not lane:
                await self._release(lane, slot)
                lane, slot = self._lane_for(job, lane), None
            self._running.add(job)
            self._lane_of[job] = lane
            lane.running += 1
            task = asyncio.create_task(self._execute(job, lane, slot), name=f"generation-{job.generation_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self._positions_changed()

    async def _pop_ready(self, lane: Lane) -> tuple[Job[R] | None, bool]:
        """The next job in turn whose model is ready in `lane`; or (None, True) when, over every
        process, another process's job goes first."""
        ready = functools.partial(self._model_ready, lane)
        if self._turns is None:
            return self._queue.pop_ready(ready), False
        heads = self._queue.ready_heads(ready)
        if not heads:
            return None, False
        try:
            served, others = await self._turns.snapshot()
        except Exception as error:  # the database is out of reach: this process's own order
            log.warning("could not read the shared queue's turns: %s", type(error).__name__)
            return self._queue.pop_ready(ready), False
        now, waiting_elsewhere = self._clock(), {w.generation_id for w in others}
        self._deferred_to = {gid: since for gid, since in self._deferred_to.items() if gid in waiting_elsewhere}
        slow = {gid for gid, since in self._deferred_to.items() if now - since >= DEFER_SECONDS}
        job = fairest(heads, [w for w in others if w.generation_id not in slow], served)
        if isinstance(job, Waiting):  # another process's turn: it gets DEFER_SECONDS to take it
            self._deferred_to.setdefault(job.generation_id, now)
            return None, True
        if job is None or not self._queue.take_head(job):  # it left the queue meanwhile
            return None, True
        try:
            await self._turns.served(job.guild_id, job.member_id)
        except Exception as error:
            log.warning("could not record a turn of the shared queue: %s", type(error).__name__)
        return job, False

    async def _take_slot(self) -> tuple[Lane | None, int | None]:
        """The first lane with a free slot here and (with shared leases) on the database."""
        for lane in self.lanes:
            if not lane.free:
                continue
            if self._leases is None:
                return lane, None
            try:
                slot = await self._leases.acquire(lane.name, lane.limit)
            except Exception as error:
                log.warning("could not take an API slot from the database: %s", type(error).__name__)
                return None, None
            if slot is not None:
                return lane, slot
        return None, None

    async def _release(self, lane: Lane, slot: int | None) -> None:
        if self._leases is None or slot is None:
            return
        try:
            # Shielded: a job cancelled at shutdown still gives its slot back.
            await asyncio.shield(self._leases.release(lane.name, slot))
        except Exception as error:  # the lease runs out by itself
            log.warning("could not release an API slot: %s", type(error).__name__)

    async def _renew_forever(self, leases: SlotLeases) -> None:
        while True:
            await asyncio.sleep(leases.lease_seconds / 3)
            try:
                await leases.renew()
            except Exception as error:
                log.warning("could not renew API slot leases: %s", type(error).__name__)

    async def _execute(self, job: Job[R], lane: Lane, slot: int | None = None) -> None:
        started = self._clock()
        CURRENT_LANE.set(lane)  # this task's own context: the API client calls with this lane's key
        try:
            if job.observer is not None and not job.started:
                job.started = True
                _quietly(job.observer.started)
            result = await job.work()
        except asyncio.CancelledError:
            raise  # only stop() cancels a job, and it settles the job's future itself
        except ServiceMisconfigured as error:
            if error.code in KEY_REJECTED and lane.key is not None:
                lane.retire(error.code)
                if any(not other.retired for other in self.lanes):
                    self._queue.push(job)  # nothing was made with the rejected key: another lane tries
                    return
            if not job.future.done():
                job.future.set_exception(error)
        except BaseException as error:
            if not job.future.done():
                job.future.set_exception(error)
        else:
            self._durations.append(self._clock() - started)
            if not job.future.done():
                job.future.set_result(result)
        finally:
            self._running.discard(job)
            self._lane_of.pop(job, None)
            lane.running -= 1
            await self._release(lane, slot)
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
    def _model_ready(self, lane: Lane, job: Job[R]) -> bool:
        """Whether `job`'s model has a submission turn in `lane` now and a free call of its own there
        (a model's calls in flight are counted per account, that is per lane)."""
        in_flight = sum(1 for running, held in self._lane_of.items() if held is lane and running.model == job.model)
        return self._models.ready(lane.name, job.model, in_flight)

    def _next_turn_in(self, lane: Lane) -> float | None:
        """Seconds until a waiting job's model next has a turn in `lane` (None: wait for a change)."""
        return self._models.next_turn_in(lane.name, (job.model for job in self._queue.in_order()))

    # ---------------------------------------------------------------- pacing (the API client's Pacer)
    def _lane(self) -> Lane:
        """The lane of the job calling (the first lane outside any job)."""
        return CURRENT_LANE.get() or self.lanes[0]

    async def before_submit(self, model: str | None = None) -> None:
        """Wait for this submission's turn: its model's own turn in its lane, then the lane's."""
        lane = self._lane()
        await self._models.take_turn(lane.name, model)
        await lane.before_submit()

    def throttled(self) -> None:
        """The API answered 429: the lane halves its concurrency for a while."""
        self._lane().throttled()

    def succeeded(self) -> None:
        """A call succeeded: the lane wins back slots after its hold."""
        self._lane().succeeded()


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
