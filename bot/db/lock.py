"""One bot process per SQLite file: an OS lock on `<database>.lock`, held while the database is open.

Two processes on one file would both resume the same queued rows. The lock is `flock`ed, so the
operating system drops it when the process ends, however it ends (SIGKILL included): a stale lock
file never blocks a start.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DatabaseInUse(Exception):
    """Another process holds the database's lock; the message is the one line an operator reads."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"another bot process is using the database {path}; stop it first "
            "(or use PostgreSQL for several processes)."
        )
        self.path = path


class DatabaseLock:
    """The held lock; `release()` gives it up (closing the process does too)."""

    def __init__(self, descriptor: int) -> None:
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        """Give the lock up (closing the file releases the flock)."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def lock_database(path: Path) -> DatabaseLock:
    """Take the lock of the SQLite database at `path`, or raise DatabaseInUse at once."""
    descriptor = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise DatabaseInUse(path) from None
    except BaseException:
        os.close(descriptor)
        raise
    return DatabaseLock(descriptor)
