"""What SQLite and PostgreSQL spell differently in the repositories' SQL, side by side."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """The pieces of SQL text that differ between the backends."""

    name: str
    #: Follows a table name in FROM: SQLite is told which (partial) index to read, so a plan never
    #: depends on statistics; PostgreSQL's planner picks the same indexes by itself.
    index_hint: str
    #: The largest of several values: SQLite's multi-argument MAX, PostgreSQL's GREATEST.
    greatest: str
    #: Follows `WITH name AS` when a CTE must be computed once: PostgreSQL would otherwise inline it
    #: and run its subqueries once per reference; SQLite computes it once by itself (a co-routine).
    computed_once: str

    def indexed_by(self, index: str) -> str:
        """The hint that reads `index` (empty where the planner needs none)."""
        return self.index_hint.format(index=index)


SQLITE = Dialect(name="sqlite", index_hint="INDEXED BY {index}", greatest="MAX", computed_once="")
POSTGRES = Dialect(name="postgres", index_hint="", greatest="GREATEST", computed_once="MATERIALIZED")
