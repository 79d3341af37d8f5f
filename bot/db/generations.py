"""The generation (usage log) repository, on either backend."""

from __future__ import annotations

from typing import Any

from bot.db.database import Database, Row
from bot.db.records import GenerationRecord, NewGeneration, Status

COLUMNS = (
    "id, guild_id, channel_id, member_id, requested_at, started_at, finished_at, status, error_code, "
    "model, size, seed, prompt_extend, prompt, negative_prompt, request_id, image_bytes, parent_id, message_id, "
    "task_id, inputs, task_lane, locale, guild_locale"
)

INSERT_GENERATION = (
    "INSERT INTO generations (guild_id, channel_id, member_id, requested_at, status, model, size, seed, "
    "prompt_extend, prompt, negative_prompt, parent_id, inputs, locale, guild_locale) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

#: A request refused before admission: denied at once, with the reason as its error code.
INSERT_REFUSAL = (
    "INSERT INTO generations (guild_id, channel_id, member_id, requested_at, status, model, size, seed, "
    "prompt_extend, prompt, negative_prompt, parent_id, inputs, locale, guild_locale, error_code, finished_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def insert_parameters(new: NewGeneration, status: Status, at: float) -> tuple[Any, ...]:
    """The parameters of INSERT_GENERATION for one new row."""
    return (
        new.guild_id,
        new.channel_id,
        new.member_id,
        at,
        status.value,
        new.model,
        new.size,
        new.seed,
        int(new.prompt_extend),
        new.prompt,
        new.negative_prompt or None,
        new.parent_id,
        new.inputs,
        new.locale,
        new.guild_locale,
    )


class SqlGenerationRepository:
    """The usage log."""

    def __init__(self, database: Database, *, owner: str | None = None) -> None:
        self._db = database
        #: The process that runs the generations it creates (see `bot.db.processes`).
        self._owner = owner

    async def create(self, new: NewGeneration, *, status: Status, at: float) -> int:
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(f"{INSERT_GENERATION} RETURNING id", insert_parameters(new, status, at))
            assert row is not None
            if status in (Status.QUEUED, Status.RUNNING):
                await tx.execute("UPDATE generations SET owner = ? WHERE id = ?", (self._owner, row["id"]))
        return int(row["id"])

    async def mark_running(self, generation_id: int, *, at: float) -> None:
        await self._update(generation_id, "status = 'running', started_at = ?", at)

    async def mark_succeeded(self, generation_id: int, *, at: float, request_id: str | None, image_bytes: int) -> None:
        await self._update(
            generation_id,
            "status = 'succeeded', finished_at = ?, request_id = ?, image_bytes = ?, error_code = NULL, "
            "interaction_token = NULL",
            at,
            request_id,
            image_bytes,
        )

    async def mark_failed(
        self, generation_id: int, *, at: float, error_code: str, request_id: str | None = None
    ) -> None:
        await self._update(
            generation_id,
            "status = 'failed', finished_at = ?, error_code = ?, request_id = COALESCE(?, request_id), "
            "interaction_token = NULL",
            at,
            error_code,
            request_id,
        )

    async def mark_undelivered(self, generation_id: int, *, error_code: str) -> None:
        await self._update(
            generation_id, "status = 'undelivered', error_code = ?, interaction_token = NULL", error_code
        )

    async def refuse(self, new: NewGeneration, *, at: float, error_code: str) -> int:
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                f"{INSERT_REFUSAL} RETURNING id", (*insert_parameters(new, Status.DENIED, at), error_code, at)
            )
        assert row is not None
        return int(row["id"])

    async def set_message(self, generation_id: int, *, channel_id: int, message_id: int) -> None:
        await self._update(generation_id, "channel_id = ?, message_id = ?", channel_id, message_id)

    async def get(self, generation_id: int) -> GenerationRecord | None:
        found = await self._select(f"SELECT {COLUMNS} FROM generations WHERE id = ?", (generation_id,))
        return found[0] if found else None

    async def find_by_message(self, message_id: int) -> GenerationRecord | None:
        found = await self._select(f"SELECT {COLUMNS} FROM generations WHERE message_id = ?", (message_id,))
        return found[0] if found else None

    async def ancestors(self, generation_id: int, *, limit: int = 10) -> list[GenerationRecord]:
        return await self._select(
            f"WITH RECURSIVE chain(id, depth) AS ("
            f" SELECT parent_id, 1 FROM generations WHERE id = ? AND parent_id IS NOT NULL"
            f" UNION ALL SELECT g.parent_id, c.depth + 1 FROM generations g JOIN chain c ON g.id = c.id"
            f" WHERE g.parent_id IS NOT NULL AND c.depth < ?)"
            f" SELECT {COLUMNS} FROM generations JOIN chain USING (id) ORDER BY chain.depth",
            (generation_id, limit),
        )

    async def clear_message(self, generation_id: int) -> None:
        await self._update(generation_id, "message_id = NULL")

    async def set_task_id(self, generation_id: int, task_id: str, *, lane: str | None = None) -> None:
        await self._update(generation_id, "task_id = ?, task_lane = ?", task_id, lane)

    async def unfinished(self) -> list[GenerationRecord]:
        return await self._select(
            f"SELECT {COLUMNS} FROM generations WHERE status IN ('queued', 'running') ORDER BY id"
        )

    async def mark_queued(self, generation_ids: list[int]) -> None:
        # Handed over (no owner): a live process takes it at once, else the next one to start.
        await self._db.execute_many(
            "UPDATE generations SET status = 'queued', started_at = NULL, owner = NULL, interaction_token = NULL "
            "WHERE id = ? AND status IN ('queued', 'running') AND (owner IS NULL OR owner = ?)",
            [(generation_id, self._owner) for generation_id in generation_ids],
        )

    async def remember_interaction(self, generation_id: int, token: str) -> None:
        await self._db.execute(
            "UPDATE generations SET interaction_token = ? WHERE id = ? AND status IN ('queued', 'running')",
            (token, generation_id),
        )

    async def _select(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[GenerationRecord]:
        return [record_from_row(row) for row in await self._db.fetch(sql, parameters)]

    async def _update(self, generation_id: int, assignments: str, *values: Any) -> None:
        await self._db.execute(f"UPDATE generations SET {assignments} WHERE id = ?", (*values, generation_id))


def record_from_row(row: Row) -> GenerationRecord:
    """Turn a row selected with every column (COLUMNS) into a GenerationRecord."""
    values = dict(row)
    values["status"] = Status(values["status"])
    values["prompt_extend"] = bool(values["prompt_extend"])
    return GenerationRecord(**values)
