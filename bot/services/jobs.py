"""Jobs waiting for the image API, and the fair order they are served in."""

from __future__ import annotations

import asyncio
import heapq
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

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
    #: The model it calls: the scheduler paces each model by its own limits.
    model: str | None = None
    future: asyncio.Future[R] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    last_position: int | None = None
    #: The lane the job must run in (its async task belongs to that key's account), if any.
    lane: str | None = None
    #: The observer was told the job started (a job retried in another lane is not announced twice).
    started: bool = False


@dataclass(frozen=True)
class Waiting:
    """A member's first waiting job in another process (its generation id gives its arrival)."""

    guild_id: int
    member_id: int
    generation_id: int


#: When each guild, and each (guild, member), was last served, over every process.
Served = Mapping[int | tuple[int, int], float]


def fairest(heads: Sequence[Job[R]], others: Sequence[Waiting], served: Served) -> Job[R] | Waiting | None:
    """The job to start next over every process: the least recently served guild, then its least
    recently served member, ties by arrival; among this process's `heads` (each member's first ready
    job) and the first waiting jobs of other processes (a Waiting when one of those goes first)."""
    candidates: list[tuple[int, int, int, Job[R] | Waiting]] = [
        (job.guild_id, job.member_id, job.generation_id, job) for job in heads
    ] + [(w.guild_id, w.member_id, w.generation_id, w) for w in others]
    if not candidates:
        return None
    arrival: dict[int, int] = {}
    for guild_id, _, generation_id, _ in candidates:
        arrival[guild_id] = min(arrival.get(guild_id, generation_id), generation_id)
    guild = min(arrival, key=lambda g: (served.get(g, -1.0), arrival[g]))
    chosen = min((c for c in candidates if c[0] == guild), key=lambda c: (served.get((c[0], c[1]), -1.0), c[2]))
    return chosen[3]


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

    def pop_ready(self, ready: Callable[[Job[R]], bool]) -> Job[R] | None:
        """The next job in turn among those `ready` accepts (each member's first job only, so a
        member's own jobs keep their order); None if no job is ready."""
        waiting = {
            guild_id: kept
            for guild_id, members in self._waiting.items()
            if (kept := {member_id: jobs for member_id, jobs in members.items() if ready(jobs[0])})
        }
        if not waiting:
            return None
        guild_id, member_id = _least_recently_served(waiting, self._served)
        job = self._take(guild_id, member_id)
        self._served[guild_id] = self._served[(guild_id, member_id)] = self._pops
        self._pops += 1
        return job

    def ready_heads(self, ready: Callable[[Job[R]], bool]) -> list[Job[R]]:
        """Each member's first waiting job, if `ready` accepts it."""
        return [jobs[0] for members in self._waiting.values() for jobs in members.values() if ready(jobs[0])]

    def take_head(self, job: Job[R]) -> bool:
        """Take out `job`, its member's first waiting job, as served now; False if it is not waiting."""
        jobs = self._waiting.get(job.guild_id, {}).get(job.member_id)
        if not jobs or jobs[0] is not job:
            return False
        self._take(job.guild_id, job.member_id)
        self._served[job.guild_id] = self._served[(job.guild_id, job.member_id)] = self._pops
        self._pops += 1
        return True

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
