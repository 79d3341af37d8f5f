"""Wake-ups between processes on one PostgreSQL database: LISTEN/NOTIFY on a connection of its own.

A process that gives an API slot back (its job ended, or it leaves the slot to another process's
fairer job) says so on `CHANNEL`, in the statement that frees it (the payload is its token). Every
other process waiting for a slot hears it at once and looks again, instead of at its next poll;
the poll stays as the safety net (a notice missed while the connection was down, a lease that ran
out). A lost connection is opened again in the background, with one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from bot.db.database import Database
from bot.db.postgres.connection import CONNECT_TIMEOUT, FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS, PostgresDatabase

log = logging.getLogger(__name__)

#: The channel every process listens on.
CHANNEL = "qwen_imagine_slots"
#: The application name of the listening connection (as `pg_stat_activity` shows it).
APPLICATION_NAME = "qwen-imagine-notices"


def notify_sql(payload: str) -> str:
    """A SELECT expression that sends a notice with the named parameter `payload` (a token)."""
    return f"pg_notify('{CHANNEL}', :{payload})"


class SlotNotices:
    """Listens on `CHANNEL` and calls `on_notice` for every notice another process sends."""

    def __init__(
        self, connect: Callable[[], Awaitable[asyncpg.Connection]], *, me: str, on_notice: Callable[[], None]
    ) -> None:
        self._connect = connect
        self._me = me
        self._on_notice = on_notice
        self._task: asyncio.Task[None] | None = None
        #: The listening connection, while there is one.
        self.connection: asyncpg.Connection | None = None

    @property
    def listening(self) -> bool:
        """Whether notices reach this process right now."""
        return self.connection is not None and not self.connection.is_closed()

    def start(self) -> None:
        """Listen in the background (connecting again whenever the connection is lost)."""
        if self._task is None:
            self._task = asyncio.create_task(self._keep_listening(), name="slot-notices")

    async def close(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _heard(self, connection: object, pid: int, channel: str, payload: object) -> None:
        if payload != self._me:
            self._on_notice()

    async def _keep_listening(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            lost = asyncio.Event()
            try:
                connection = await self._connect()
            except Exception as error:  # unreachable for now: the poll covers it meanwhile
                log.debug("could not open the notice connection: %s", type(error).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            try:
                connection.add_termination_listener(functools.partial(_set, lost))
                await connection.add_listener(CHANNEL, self._heard)
                self.connection, delay = connection, FIRST_RETRY_SECONDS
                log.debug("listening for other processes' notices")
                self._on_notice()  # whatever was missed while not listening: look now
                await lost.wait()
                log.warning("lost the connection that hears other processes' notices; opening it again")
            except Exception as error:
                log.debug("could not listen for notices: %s", type(error).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
            finally:
                self.connection = None
                if not connection.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(connection.close(timeout=1.0))


def _set(event: asyncio.Event, connection: object) -> None:
    event.set()


def slot_notices(database: Database, *, me: str, on_notice: Callable[[], None]) -> SlotNotices | None:
    """Notices between the processes sharing `database` (None on SQLite: one process has it)."""
    if not isinstance(database, PostgresDatabase):
        return None
    url = database.url

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(
            url, timeout=CONNECT_TIMEOUT, server_settings={"application_name": APPLICATION_NAME}
        )

    return SlotNotices(connect, me=me, on_notice=on_notice)
