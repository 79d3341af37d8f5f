"""SQLite implementation of limits: guild values, blocked members, and atomic admission."""

from __future__ import annotations

import functools

import aiosqlite

from bot.db.connection import Database
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
        """Check the block list, `caps` and `limits` and record the request, denied or not, in one
        INSERT ... SELECT: atomic, so simultaneous requests cannot all see the same free slot, and a
        single round trip to the database thread."""
        assert new.guild_id is not None
        sql, limit_parameters = _admission_sql(limits, caps)
        parameters = dict(limit_parameters)
        parameters.update(
            guild=new.guild_id,
            channel=new.channel_id,
            member=new.member_id,
            at=at,
            status=status.value,
            model=new.model,
            size=new.size,
            seed=new.seed,
            prompt_extend=int(new.prompt_extend),
            prompt=new.prompt,
            negative_prompt=new.negative_prompt or None,
            parent=new.parent_id,
        )
        async with self._db.single_statement() as conn:
            # One call into the database thread: execute, fetch and close together.
            [(generation_id, code, denied_until)] = await conn.execute_fetchall(sql, parameters)
        return Admission(generation_id=generation_id, denial=_denial(code, denied_until, limits, caps))

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


@functools.lru_cache(maxsize=256)
def _admission_sql(limits: tuple[Limit, ...], caps: QueueCaps | None) -> tuple[str, dict[str, object]]:
    """The admission statement for these limits and caps, and its limit-specific parameters.

    The checks, in order: blocked; the member's and the guild's unfinished jobs against the caps;
    a closed (0) limit; then each limit's max-th newest counted request in its window: if it
    exists, the limit is full until it leaves the window. The limit that stays full longest is
    the one reported, with the time it frees (`denied_until`)."""
    closed = next((limit for limit in limits if limit.max_count == 0), None)
    # A closed limit needs no counting; MAX_LIMIT lifts a limit.
    checked = [] if closed else [limit for limit in limits if limit.max_count < MAX_LIMIT]
    parameters: dict[str, object] = {
        "member_cap": caps.per_member if caps else None,
        "guild_cap": caps.per_guild if caps else None,
    }
    frees = []
    for n, limit in enumerate(checked):
        seconds = limit.window.seconds
        frees.append(f"({_nth_newest_sql(limit.scope, f'(:at - {seconds})', f':skip{n}')}) + {seconds} AS frees{n}")
        parameters[f"skip{n}"] = limit.max_count - 1
    codes = [
        "WHEN blocked THEN 'blocked'",
        "WHEN member_jobs >= :member_cap THEN 'member_queue'",
        "WHEN guild_jobs >= :guild_cap THEN 'server_queue'",
    ]
    if closed is not None:
        codes.append(f"WHEN 1 THEN '{Denial(DenialKind.LIMIT, limit=closed).code}'")
    codes += [
        f"WHEN frees{n} = frees THEN '{Denial(DenialKind.LIMIT, limit=limit).code}'" for n, limit in enumerate(checked)
    ]
    frees_columns = "".join(f", {column}" for column in frees)
    latest = ", ".join([f"COALESCE(frees{n}, 0)" for n in range(len(checked))] + ["0", "0"])
    sql = f"""
        WITH checks AS (
            SELECT
                EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = :guild AND member_id = :member) AS blocked,
                (SELECT COUNT(*) FROM generations INDEXED BY generations_unfinished
                 WHERE guild_id = :guild AND member_id = :member AND {UNFINISHED}) AS member_jobs,
                (SELECT COUNT(*) FROM generations INDEXED BY generations_unfinished
                 WHERE guild_id = :guild AND {UNFINISHED}) AS guild_jobs
                {frees_columns}
        ),
        decision AS (
            SELECT *, CASE {" ".join(codes)} END AS code
            FROM (SELECT *, NULLIF(MAX({latest}), 0) AS frees FROM checks)
        )
        INSERT INTO generations (guild_id, channel_id, member_id, requested_at, status, error_code, finished_at,
            denied_until, model, size, seed, prompt_extend, prompt, negative_prompt, parent_id)
        SELECT :guild, :channel, :member, :at, IIF(code IS NULL, :status, 'denied'), code,
            IIF(code IS NULL, NULL, :at), IIF(code LIKE 'limit:%', frees, NULL),
            :model, :size, :seed, :prompt_extend, :prompt, :negative_prompt, :parent
        FROM decision
        RETURNING id, error_code, denied_until
    """
    return sql, parameters


def _denial(
    code: str | None, denied_until: float | None, limits: tuple[Limit, ...], caps: QueueCaps | None
) -> Denial | None:
    """The Denial an admission's error code stands for (None: admitted)."""
    if code is None:
        return None
    if code == DenialKind.BLOCKED.value:
        return Denial(DenialKind.BLOCKED)
    if code == DenialKind.MEMBER_QUEUE.value and caps is not None:
        return Denial(DenialKind.MEMBER_QUEUE, cap=caps.per_member)
    if code == DenialKind.SERVER_QUEUE.value and caps is not None:
        return Denial(DenialKind.SERVER_QUEUE, cap=caps.per_guild)
    limit = next(limit for limit in limits if Denial(DenialKind.LIMIT, limit=limit).code == code)
    return Denial(DenialKind.LIMIT, limit=limit, retry_at=denied_until)


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
