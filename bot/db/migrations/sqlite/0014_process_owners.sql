-- Every running bot process (one per SQLite file): a random token, a heartbeat (unix seconds) and
-- whether it is shutting down. The table exists on both backends so their schemas stay alike.
CREATE TABLE processes (
    id        TEXT    PRIMARY KEY,
    heartbeat REAL    NOT NULL,
    draining  INTEGER NOT NULL DEFAULT 0
);

-- The process that runs each queued or running generation (NULL: handed over). One process owns a
-- SQLite file: what another token owns was left by an earlier run.
ALTER TABLE generations ADD COLUMN owner TEXT;
