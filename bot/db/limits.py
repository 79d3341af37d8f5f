"""SQLite implementation of limits: guild values, blocked members, and atomic admission."""

from __future__ import annotations

import aiosqlite

from bot.db.connection import Database
from bot.db.generations import INSERT_GENERATION, insert_parameters
from bot.db.records import Admission, Denial, DenialKind, NewGeneration, QueueCaps, Status, WindowUse
from bot.limits import MAX_LIMIT, Limit, Scope, Window

COUNTED = "status IN ('queued', 'running', 'succeeded')"
UNFINISHED = "status IN ('queued', 'running')"


def _counted_index(scope: Scope) -> tuple[str, str]:
    """The partial index a scope's counts read (named, so the plan never depends on statistics),
    and the filter that selects the scope in it."""
    if scope is Scope.MEMBER:
        return "generations_member_counted", "guild_id = :guild AND member_id = :member"
    return "generations_guild_counted", "guild_id = :guild"


class SqliteLimitsRepository:
    """Limits and admission over the usage log."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def own_limits(self, guild_id: int) -> tuple[Limit, ...]:
        async with self._db.connection.execute(
            "SELECT scope, window, max_count FROM guild_limits WHERE guild_id = ?", (guild_id,)
        ) as cursor:
            rows = await cursor.fetchall()
        return tuple(Limit(Scope(r[0]), Window(r[1]), r[2]) for r in rows)

    async def set_limit(self, guild_id: int, limit: Limit, *, by: int, at: float) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO guild_limits (guild_id, scope, window, max_count, updated_by, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, scope, window) DO UPDATE SET "
                "max_count = excluded.max_count, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                (guild_id, limit.scope.value, limit.window.value, limit.max_count, by, at),
            )

    async def clear_limit(self, guild_id: int, scope: Scope, window: Window) -> bool:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM guild_limits WHERE guild_id = ? AND scope = ? AND window = ?",
                (guild_id, scope.value, window.value),
            )
            return cursor.rowcount > 0

    async def reset_limits(self, guild_id: int) -> int:
        async with self._db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM guild_limits WHERE guild_id = ?", (guild_id,))
            return cursor.rowcount

    async def block(self, guild_id: int, member_id: int, *, by: int, at: float) -> bool:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO blocked_members (guild_id, member_id, blocked_by, blocked_at) "
                "VALUES (?, ?, ?, ?)",
                (guild_id, member_id, by, at),
            )
            return cursor.rowcount > 0

    async def unblock(self, guild_id: int, member_id: int) -> bool:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM blocked_members WHERE guild_id = ? AND member_id = ?", (guild_id, member_id)
            )
            return cursor.rowcount > 0

    async def blocked_members(self, guild_id: int) -> tuple[int, ...]:
        async with self._db.connection.execute(
            "SELECT member_id FROM blocked_members WHERE guild_id = ? ORDER BY blocked_at", (guild_id,)
        ) as cursor:
            return tuple(row[0] for row in await cursor.fetchall())

    async def admit(
        self,
        new: NewGeneration,
        limits: tuple[Limit, ...],
        *,
        at: float,
        caps: QueueCaps | None = None,
        status: Status = Status.QUEUED,
    ) -> Admission:
        """Check every limit and record the request, in one write transaction so that
        simultaneous requests cannot all see the same free slot."""
        assert new.guild_id is not None
        async with self._db.transaction() as conn:
            denial = await _first_denial(conn, new.guild_id, new.member_id, limits, caps, at)
            row_status = Status.DENIED if denial else status
            cursor = await conn.execute(INSERT_GENERATION, insert_parameters(new, row_status, at))
            generation_id = cursor.lastrowid
            assert generation_id is not None
            if denial:
                await conn.execute(
                    "UPDATE generations SET error_code = ?, finished_at = ? WHERE id = ?",
                    (denial.code, at, generation_id),
                )
        return Admission(generation_id=generation_id, denial=denial)

    async def busiest_member(self, guild_id: int, *, since: float) -> tuple[int, int] | None:
        async with self._db.connection.execute(
            f"SELECT member_id, COUNT(*) AS n FROM generations WHERE guild_id = ? AND {COUNTED} "
            f"AND requested_at > ? GROUP BY member_id ORDER BY n DESC, member_id LIMIT 1",
            (guild_id, since),
        ) as cursor:
            row = await cursor.fetchone()
        return (row[0], row[1]) if row else None

    async def window_use(self, guild_id: int, member_id: int, limit: Limit, *, at: float) -> WindowUse:
        """How much of `limit` is used now, and when its oldest counted image leaves the window."""
        index, who = _counted_index(limit.scope)
        async with self._db.connection.execute(
            f"SELECT COUNT(*), MIN(requested_at) FROM generations INDEXED BY {index} "
            f"WHERE {who} AND {COUNTED} AND requested_at > :since",
            {"guild": guild_id, "member": member_id, "since": at - limit.window.seconds},
        ) as cursor:
            row = await cursor.fetchone()
        used, oldest = (row[0], row[1]) if row else (0, None)
        frees_at = oldest + limit.window.seconds if oldest is not None else None
        retry_at = await _slot_frees_at(self._db.connection, guild_id, member_id, limit, at)
        return WindowUse(limit=limit, used=used, next_frees_at=frees_at, allowed_again_at=retry_at)


async def _first_denial(
    conn: aiosqlite.Connection,
    guild_id: int,
    member_id: int,
    limits: tuple[Limit, ...],
    caps: QueueCaps | None,
    at: float,
) -> Denial | None:
    """Every check in one statement: one round trip to the database thread, not one per check."""
    closed = next((limit for limit in limits if limit.max_count == 0), None)
    # A closed limit needs no counting; MAX_LIMIT lifts a limit.
    checked = [] if closed else [limit for limit in limits if limit.max_count < MAX_LIMIT]
    columns = [
        "EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = :guild AND member_id = :member)",
        f"(SELECT COUNT(*) FROM generations INDEXED BY generations_unfinished "
        f"WHERE guild_id = :guild AND member_id = :member AND {UNFINISHED})",
        f"(SELECT COUNT(*) FROM generations INDEXED BY generations_unfinished "
        f"WHERE guild_id = :guild AND {UNFINISHED})",
    ]
    parameters: dict[str, object] = {"guild": guild_id, "member": member_id}
    for n, limit in enumerate(checked):
        columns.append(f"({_nth_newest_sql(limit.scope, f':since{n}', f':skip{n}')})")
        parameters[f"since{n}"] = at - limit.window.seconds
        parameters[f"skip{n}"] = limit.max_count - 1
    async with conn.execute(f"SELECT {', '.join(columns)}", parameters) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    blocked, member_jobs, guild_jobs, *nth_newest = row
    if blocked:
        return Denial(DenialKind.BLOCKED)
    if caps is not None and member_jobs >= caps.per_member:
        return Denial(DenialKind.MEMBER_QUEUE, cap=caps.per_member)
    if caps is not None and guild_jobs >= caps.per_guild:
        return Denial(DenialKind.SERVER_QUEUE, cap=caps.per_guild)
    if closed is not None:
        return Denial(DenialKind.LIMIT, limit=closed)
    denial = None
    for limit, requested_at in zip(checked, nth_newest, strict=True):
        if requested_at is None:
            continue
        retry_at = float(requested_at) + limit.window.seconds
        # Report the limit that holds longest: that is when the next image is really allowed.
        if denial is None or retry_at > (denial.retry_at or 0):
            denial = Denial(DenialKind.LIMIT, limit=limit, retry_at=retry_at)
    return denial


def _nth_newest_sql(scope: Scope, since: str, skip: str) -> str:
    """The request time of the max-th newest counted request in a window: if there is one, the limit
    is full until it leaves the window. Reads at most max index entries, whatever the table size."""
    index, who = _counted_index(scope)
    return (
        f"SELECT requested_at FROM generations INDEXED BY {index} WHERE {who} AND {COUNTED} "
        f"AND requested_at > {since} ORDER BY requested_at DESC LIMIT 1 OFFSET {skip}"
    )


async def _slot_frees_at(
    conn: aiosqlite.Connection, guild_id: int, member_id: int, limit: Limit, at: float
) -> float | None:
    """None if `limit` has room now, else when it will."""
    if limit.max_count == 0:
        return float("inf")
    parameters = {"guild": guild_id, "member": member_id, "since": at - limit.window.seconds}
    async with conn.execute(
        _nth_newest_sql(limit.scope, ":since", ":skip"), {**parameters, "skip": limit.max_count - 1}
    ) as cursor:
        row = await cursor.fetchone()
    return float(row[0]) + limit.window.seconds if row else None
