-- A new outcome, 'undelivered': the image was made (and billed) but Discord would not take the upload.
-- It is reported with the images made, and never counted against a member's limits.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt and its indexes recreated.
-- Foreign keys stay on inside the migration's transaction: the new table references itself under its
-- own name (RENAME TO rewrites that reference), so dropping the old table touches none of its rows,
-- and every check waits for the commit.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE generations_rebuilt (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER,             -- NULL in direct messages
    channel_id      INTEGER,
    member_id       INTEGER NOT NULL,
    requested_at    REAL    NOT NULL,    -- unix seconds
    started_at      REAL,
    finished_at     REAL,
    status          TEXT    NOT NULL
                    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'denied', 'undelivered')),
    error_code      TEXT,
    model           TEXT    NOT NULL,
    size            TEXT    NOT NULL,
    seed            INTEGER NOT NULL,
    prompt_extend   INTEGER NOT NULL,
    prompt          TEXT,                -- cleared after the retention period
    negative_prompt TEXT,
    request_id      TEXT,
    image_bytes     INTEGER,
    parent_id       INTEGER REFERENCES generations_rebuilt (id) ON DELETE SET NULL,
    message_id      INTEGER,             -- the result message, in channel_id
    task_id         TEXT,                -- the async API's task, polled after a restart instead of paid for twice
    denied_until    REAL                 -- for a refused request: when the limit that refused it has room again
);

INSERT INTO generations_rebuilt (
    id, guild_id, channel_id, member_id, requested_at, started_at, finished_at, status, error_code, model, size,
    seed, prompt_extend, prompt, negative_prompt, request_id, image_bytes, parent_id, message_id, task_id, denied_until
)
SELECT
    id, guild_id, channel_id, member_id, requested_at, started_at, finished_at, status, error_code, model, size,
    seed, prompt_extend, prompt, negative_prompt, request_id, image_bytes, parent_id, message_id, task_id, denied_until
FROM generations;

DROP TABLE generations;
ALTER TABLE generations_rebuilt RENAME TO generations;

-- The indexes of migrations 0001 to 0004, unchanged: undelivered images are not counted.
CREATE INDEX generations_member_counted
    ON generations (guild_id, member_id, requested_at)
    WHERE status IN ('queued', 'running', 'succeeded');
CREATE INDEX generations_guild_counted
    ON generations (guild_id, requested_at)
    WHERE status IN ('queued', 'running', 'succeeded');
CREATE INDEX generations_guild_time ON generations (guild_id, requested_at);
CREATE INDEX generations_status ON generations (status) WHERE status IN ('queued', 'running');
CREATE INDEX generations_prompt_age ON generations (requested_at) WHERE prompt IS NOT NULL;
CREATE INDEX generations_message ON generations (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX generations_parent ON generations (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX generations_unfinished
    ON generations (guild_id, member_id)
    WHERE status IN ('queued', 'running');
