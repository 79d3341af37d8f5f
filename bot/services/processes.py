"""This process among the others on one database: it joins with a heartbeat, takes over the
generations of processes that are gone (killed, host lost) or that handed theirs over while shutting
down, and hands over its own waiting generations when it shuts down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from bot.db import GenerationRecord

log = logging.getLogger(__name__)


class ProcessRegistry(Protocol):
    """Processes and the generations they own (see `bot.db.processes.SqlProcessRegistry`)."""

    token: str
    #: Whether other processes may share the database (PostgreSQL) or not (a SQLite file).
    shared: bool

    async def register(self) -> None:
        """Join (or beat the heartbeat)."""

    async def heartbeat(self) -> None:
        """Say this process is alive."""

    async def set_draining(self) -> None:
        """This process is shutting down."""

    async def leave(self) -> None:
        """This process is gone."""

    async def claim_orphans(self) -> list[GenerationRecord]:
        """Take every unfinished generation with no live owner."""

    async def hand_over(self, generation_ids: list[int]) -> tuple[list[int], bool]:
        """Give up waiting generations; those handed over, and whether a live process takes them now."""


class ProcessLife:
    """Joins, beats the heartbeat, takes over orphaned generations, hands over at shutdown."""

    def __init__(
        self,
        registry: ProcessRegistry,
        *,
        heartbeat_seconds: float = 5.0,
        poll_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._heartbeat_seconds = heartbeat_seconds
        self._poll_seconds = poll_seconds
        self._clock = clock
        self._watcher: asyncio.Task[None] | None = None

    @property
    def token(self) -> str:
        """This process's token (what its generations' owner column says)."""
        return self._registry.token

    async def join(self) -> list[GenerationRecord]:
        """Register, then claim what earlier or dead processes left unfinished, oldest first."""
        await self._registry.register()
        return await self._registry.claim_orphans()

    def watch(self, take: Callable[[list[GenerationRecord]], None]) -> None:
        """While this process runs, give `take` every generation taken over from a process that died or
        handed it over (only where processes share the database)."""
        if self._registry.shared and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(take), name="process-watch")

    async def _watch(self, take: Callable[[list[GenerationRecord]], None]) -> None:
        beaten = self._clock()
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                if self._clock() - beaten >= self._heartbeat_seconds:
                    await self._registry.heartbeat()
                    beaten = self._clock()
                claimed = await self._registry.claim_orphans()
            except Exception as error:  # the database is out of reach for a moment: next round
                log.warning("could not look for orphaned generations: %s", type(error).__name__)
                continue
            if claimed:
                log.info(
                    "taking over %d generations of stopped processes: %s",
                    len(claimed),
                    ", ".join(str(record.id) for record in claimed),
                )
                take(claimed)

    def stop_watching(self) -> None:
        """Shutdown begins: take over nothing more."""
        if self._watcher is not None:
            self._watcher.cancel()

    async def hand_over(self, generation_ids: list[int]) -> tuple[list[int], bool]:
        """Tell the others this process is draining, and hand its waiting generations over (see
        `ProcessRegistry.hand_over`); nothing is handed over if the database fails."""
        try:
            await self._registry.set_draining()
            return await self._registry.hand_over(generation_ids)
        except Exception as error:
            log.warning("could not hand waiting generations over: %s", type(error).__name__)
            return [], False

    async def leave(self) -> None:
        """This process is done: what it still owns may be taken over at once."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        try:
            await self._registry.leave()
        except Exception as error:
            log.warning("could not sign this process off: %s", type(error).__name__)
