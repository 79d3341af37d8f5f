-- The one fair queue over every process (PostgreSQL: one SQLite file has one process, which keeps
-- its turns in memory). The table exists on both backends so their schemas stay alike.
CREATE TABLE queue_turns (
    guild_id  INTEGER NOT NULL,
    member_id INTEGER NOT NULL,
    served_at REAL    NOT NULL,
    PRIMARY KEY (guild_id, member_id)
);
