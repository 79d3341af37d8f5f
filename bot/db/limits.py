"""Limits, on either backend: guild values, blocked members, and atomic admission."""

from __future__ import annotations

import functools

from bot.db.database import Database
from bot.db.dialect import Dialect
from bot.db.records import Admission, Denial, DenialKind, NewGeneration, QueueCaps, Status, WindowUse
from bot.limits import MAX_LIMIT, Limit, RoleLimit, Scope, Window

COUNTED = "status IN ('queued', 'running', 'succeeded')"
UNFINISHED = "status IN ('queued', 'running')"


def _counted_index(scope: Scope) -> tuple[str, str]:
    """The partial index a scope's counts read (named, so the plan never depends on statistics),
    and the filter that selects the scope in it."""
    if scope is Scope.MEMBER:
        return "generations_member_counted", "guild_id = :guild AND member_id = :member"
    return "generations_guild_counted", "guild_id = :guild"


class SqlLimitsRepository:
    """Limits and admission over the usage log."""

    def __init__(self, database: Database, *, owner: str | None = None) -> None:
        self._db = database
        #: The process admitted requests belong to (see `bot.db.processes`).
        self._owner = owner

    async def own_limits(self, guild_id: int) -> tuple[Limit, ...]:
        rows = await self._db.fetch(
            'SELECT scope, "window", max_count FROM guild_limits WHERE guild_id = ?', (guild_id,)
        )
        return tuple(Limit(Scope(r["scope"]), Window(r["window"]), r["max_count"]) for r in rows)

    async def set_limit(self, guild_id: int, limit: Limit, *, by: int, at: float) -> None:
        await self._db.execute(
            'INSERT INTO guild_limits (guild_id, scope, "window", max_count, updated_by, updated_at) '
            'VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, scope, "window") DO UPDATE SET '
            "max_count = excluded.max_count, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (guild_id, limit.scope.value, limit.window.value, limit.max_count, by, at),
        )

    async def clear_limit(self, guild_id: int, scope: Scope, window: Window) -> bool:
        deleted = await self._db.execute(
            'DELETE FROM guild_limits WHERE guild_id = ? AND scope = ? AND "window" = ?',
            (guild_id, scope.value, window.value),
        )
        return deleted > 0

    async def reset_limits(self, guild_id: int) -> int:
        return await self._db.execute("DELETE FROM guild_limits WHERE guild_id = ?", (guild_id,))

    async def block(self, guild_id: int, member_id: int, *, by: int, at: float) -> bool:
        inserted = await self._db.execute(
            "INSERT INTO blocked_members (guild_id, member_id, blocked_by, blocked_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (guild_id, member_id, by, at),
        )
        return inserted > 0

    async def unblock(self, guild_id: int, member_id: int) -> bool:
        deleted = await self._db.execute(
            "DELETE FROM blocked_members WHERE guild_id = ? AND member_id = ?", (guild_id, member_id)
        )
        return deleted > 0

    async def blocked_members(self, guild_id: int) -> tuple[int, ...]:
        rows = await self._db.fetch(
            "SELECT member_id FROM blocked_members WHERE guild_id = ? ORDER BY blocked_at", (guild_id,)
        )
        return tuple(row["member_id"] for row in rows)

    async def role_limits(self, guild_id: int) -> tuple[RoleLimit, ...]:
        rows = await self._db.fetch(
            'SELECT role_id, "window", max_count FROM role_limits WHERE guild_id = ? ORDER BY role_id, "window"',
            (guild_id,),
        )
        return tuple(RoleLimit(r["role_id"], Window(r["window"]), r["max_count"]) for r in rows)

    async def set_role_limit(self, guild_id: int, role: RoleLimit, *, by: int, at: float) -> None:
        await self._db.execute(
            'INSERT INTO role_limits (guild_id, role_id, "window", max_count, updated_by, updated_at) '
            'VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, role_id, "window") DO UPDATE SET '
            "max_count = excluded.max_count, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            (guild_id, role.role_id, role.window.value, role.max_count, by, at),
        )

    async def clear_role_limit(self, guild_id: int, role_id: int, window: Window) -> bool:
        deleted = await self._db.execute(
            'DELETE FROM role_limits WHERE guild_id = ? AND role_id = ? AND "window" = ?',
            (guild_id, role_id, window.value),
        )
        return deleted > 0

    async def admit(
        self,
        new: NewGeneration,
        limits: tuple[Limit, ...],
        *,
        at: float,
        caps: QueueCaps | None = None,
        status: Status = Status.QUEUED,
        count: int = 1,
    ) -> Admission:
        """Check the block list, `caps` and `limits` and record the request, denied or not, in one
        INSERT ... SELECT, serialised per guild: simultaneous requests cannot all see the same free slot."""
        assert new.guild_id is not None
        sql, limit_parameters, windows = _admission_sql(self._db.dialect, limits, caps)
        parameters = dict(limit_parameters)
        # Room for `count` images: the (max - count + 1)-th newest counted one must be out of the window.
        parameters.update(
            {
                key: max(0, int(value) - (count - 1))
                for key, value in limit_parameters.items()
                if key.startswith("skip") and isinstance(value, int)
            }
        )
        parameters["count"] = count
        parameters.update({f"since{n}": at - seconds for n, seconds in enumerate(windows)})
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
            inputs=new.inputs,
            owner=self._owner,
            locale=new.locale,
            guild_locale=new.guild_locale,
        )
        rows = await self._db.fetch_serialised(sql, parameters, key=new.guild_id)
        ids = tuple(sorted(int(row["id"]) for row in rows))
        denial = _denial(rows[0]["error_code"], rows[0]["denied_until"], limits, caps)
        return Admission(generation_id=ids[0], denial=denial, generation_ids=ids)

    async def busiest_member(self, guild_id: int, *, since: float) -> tuple[int, int] | None:
        row = await self._db.fetch_one(
            f"SELECT member_id, COUNT(*) AS n FROM generations WHERE guild_id = ? AND {COUNTED} "
            f"AND requested_at > ? GROUP BY member_id ORDER BY n DESC, member_id LIMIT 1",
            (guild_id, since),
        )
        return (row["member_id"], row["n"]) if row else None

    async def window_use(self, guild_id: int, member_id: int, limit: Limit, *, at: float) -> WindowUse:
        """How much of `limit` is used now, and when its oldest counted image leaves the window."""
        index, who = _counted_index(limit.scope)
        row = await self._db.fetch_one(
            f"SELECT COUNT(*) AS used, MIN(requested_at) AS oldest FROM generations "
            f"{self._db.dialect.indexed_by(index)} WHERE {who} AND {COUNTED} AND requested_at > :since",
            {"guild": guild_id, "member": member_id, "since": at - limit.window.seconds},
        )
        used, oldest = (row["used"], row["oldest"]) if row else (0, None)
        frees_at = oldest + limit.window.seconds if oldest is not None else None
        retry_at = await _slot_frees_at(self._db, guild_id, member_id, limit, at)
        return WindowUse(limit=limit, used=used, next_frees_at=frees_at, allowed_again_at=retry_at)


@functools.lru_cache(maxsize=256)
def _admission_sql(
    dialect: Dialect, limits: tuple[Limit, ...], caps: QueueCaps | None
) -> tuple[str, dict[str, object], tuple[float, ...]]:
    """The admission statement for these limits and caps, its limit-specific parameters, and the
    window of each limit it checks (`:since{n}` is the request time less the n-th window).

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
        frees.append(f"({_nth_newest_sql(dialect, limit.scope, f':since{n}', f':skip{n}')}) + {seconds} AS frees{n}")
        parameters[f"skip{n}"] = limit.max_count - 1
    codes = [
        "WHEN blocked THEN 'blocked'",
        "WHEN member_jobs + :count > :member_cap THEN 'member_queue'",
        "WHEN guild_jobs + :count > :guild_cap THEN 'server_queue'",
    ]
    if closed is not None:
        codes.append(f"WHEN TRUE THEN '{Denial(DenialKind.LIMIT, limit=closed).code}'")
    codes += [
        f"WHEN frees{n} = frees THEN '{Denial(DenialKind.LIMIT, limit=limit).code}'" for n, limit in enumerate(checked)
    ]
    frees_columns = "".join(f", {column}" for column in frees)
    latest = ", ".join([f"COALESCE(frees{n}, 0)" for n in range(len(checked))] + ["0", "0"])
    unfinished_index = dialect.indexed_by("generations_unfinished")
    sql = f"""
        WITH RECURSIVE copies (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM copies WHERE n < :count),
        checks AS {dialect.computed_once} (
            SELECT
                EXISTS (SELECT 1 FROM blocked_members WHERE guild_id = :guild AND member_id = :member) AS blocked,
                (SELECT COUNT(*) FROM generations {unfinished_index}
                 WHERE guild_id = :guild AND member_id = :member AND {UNFINISHED}) AS member_jobs,
                (SELECT COUNT(*) FROM generations {unfinished_index}
                 WHERE guild_id = :guild AND {UNFINISHED}) AS guild_jobs
                {frees_columns}
        ),
        decision AS (
            SELECT *, CASE {" ".join(codes)} END AS code
            FROM (SELECT *, NULLIF({dialect.greatest}({latest}), 0) AS frees FROM checks) AS checked
        )
        INSERT INTO generations (guild_id, channel_id, member_id, requested_at, status, error_code, finished_at,
            denied_until, model, size, seed, prompt_extend, prompt, negative_prompt, parent_id, inputs, locale,
            guild_locale, owner)
        SELECT :guild, :channel, :member, :at, CASE WHEN code IS NULL THEN :status ELSE 'denied' END, code,
            CASE WHEN code IS NULL THEN NULL ELSE CAST(:at AS DOUBLE PRECISION) END,
            CASE WHEN code LIKE 'limit:%' THEN frees END,
            :model, :size, (CAST(:seed AS BIGINT) + copies.n - 1) % 2147483648, :prompt_extend, :prompt,
            :negative_prompt, :parent, :inputs, :locale, :guild_locale,
            CASE WHEN code IS NULL THEN CAST(:owner AS TEXT) END
        FROM decision CROSS JOIN copies
        WHERE copies.n = 1 OR decision.code IS NULL
        RETURNING id, error_code, denied_until
    """
    return sql, parameters, tuple(float(limit.window.seconds) for limit in checked)


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


def _nth_newest_sql(dialect: Dialect, scope: Scope, since: str, skip: str) -> str:
    """The request time of the max-th newest counted request in a window: if there is one, the limit
    is full until it leaves the window. Reads at most max index entries, whatever the table size."""
    index, who = _counted_index(scope)
    return (
        f"SELECT requested_at FROM generations {dialect.indexed_by(index)} WHERE {who} AND {COUNTED} "
        f"AND requested_at > {since} ORDER BY requested_at DESC LIMIT 1 OFFSET {skip}"
    )


async def _slot_frees_at(database: Database, guild_id: int, member_id: int, limit: Limit, at: float) -> float | None:
    """None if `limit` has room now, else when it will."""
    if limit.max_count == 0:
        return float("inf")
    parameters = {"guild": guild_id, "member": member_id, "since": at - limit.window.seconds}
    row = await database.fetch_one(
        _nth_newest_sql(database.dialect, limit.scope, ":since", ":skip"), {**parameters, "skip": limit.max_count - 1}
    )
    return float(row["requested_at"]) + limit.window.seconds if row else None
