"""Per-server model choices, spending caps, the settings audit trail and this month's spend, on either backend."""

from __future__ import annotations

from bot.db.database import Database

#: What a month's spend counts: images made or being made (failed and refused ones are not billed).
SPENT = "status IN ('queued', 'running', 'succeeded', 'undelivered')"


class SqlModelSettingsRepository:
    """Server settings of the model catalogue and the spending caps."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def chosen_models(self, guild_id: int) -> dict[str, str]:
        """kind ("text", "edit") -> the model the server chose."""
        rows = await self._db.fetch("SELECT kind, model FROM guild_models WHERE guild_id = ?", (guild_id,))
        return {str(row["kind"]): str(row["model"]) for row in rows}

    async def choose_model(self, guild_id: int, kind: str, model: str) -> None:
        await self._db.execute(
            "INSERT INTO guild_models (guild_id, kind, model) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_id, kind) DO UPDATE SET model = excluded.model",
            (guild_id, kind, model),
        )

    async def budget(self, guild_id: int) -> float | None:
        row = await self._db.fetch_one("SELECT budget_usd FROM guild_budgets WHERE guild_id = ?", (guild_id,))
        return float(row["budget_usd"]) if row else None

    async def set_budget(self, guild_id: int, budget_usd: float | None) -> None:
        if budget_usd is None:
            await self._db.execute("DELETE FROM guild_budgets WHERE guild_id = ?", (guild_id,))
            return
        await self._db.execute(
            "INSERT INTO guild_budgets (guild_id, budget_usd) VALUES (?, ?) "
            "ON CONFLICT (guild_id) DO UPDATE SET budget_usd = excluded.budget_usd",
            (guild_id, budget_usd),
        )

    async def images_by_model(self, *, since: float, guild_id: int | None = None) -> dict[str, int]:
        """Images made (or being made) since `since`, per model: of one server, or of all."""
        where = f"requested_at >= ? AND {SPENT}" + (" AND guild_id = ?" if guild_id is not None else "")
        parameters: tuple[object, ...] = (since,) if guild_id is None else (since, guild_id)
        rows = await self._db.fetch(
            f"SELECT model, COUNT(*) AS n FROM generations WHERE {where} GROUP BY model", parameters
        )
        return {str(row["model"]): int(row["n"]) for row in rows}
