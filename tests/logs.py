"""Waiting for the bot to log something, instead of waiting for time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator


class LogWatch(logging.Handler):
    """The records one logger (and its children) emits while watched."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self._loop.call_soon_threadsafe(self._changed.set)

    def messages(self, text: str) -> list[str]:
        """The messages so far that contain `text`."""
        return [m for m in (r.getMessage() for r in self.records) if text in m]

    async def wait_for(self, text: str, count: int = 1, timeout: float = 15) -> list[str]:
        """Wait until `count` messages containing `text` were logged; return them."""
        async with asyncio.timeout(timeout):
            while len(found := self.messages(text)) < count:
                self._changed.clear()
                await self._changed.wait()
        return found


@contextlib.contextmanager
def watch_log(name: str) -> Iterator[LogWatch]:
    """Watch logger `name` for the duration of the block (call inside the test's event loop)."""
    logger = logging.getLogger(name)
    watch = LogWatch()
    previous = logger.level
    logger.addHandler(watch)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield watch
    finally:
        logger.removeHandler(watch)
        logger.setLevel(previous)
