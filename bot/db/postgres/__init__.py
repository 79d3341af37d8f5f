"""PostgreSQL: a connection pool for one or more bot processes sharing one database."""

from bot.db.postgres.connection import PostgresDatabase

__all__ = ["PostgresDatabase"]
