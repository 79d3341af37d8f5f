-- Key/value facts about this installation (e.g. the hash of the last command sync).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per generation attempt: the usage log that limits, reports and remixes read.
CREATE TABLE generations (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER,             -- NULL in direct messages
    channel_id      INTEGER,
    member_id       INTEGER NOT NULL,
    requested_at    REAL    NOT NULL,    -- unix seconds
    started_at      REAL,
    finished_at     REAL,
    status          TEXT    NOT NULL
                    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'denied')),
    error_code      TEXT,
    model           TEXT    NOT NULL,
    size            TEXT    NOT NULL,
    seed            INTEGER NOT NULL,
    prompt_extend   INTEGER NOT NULL,
    prompt          TEXT,                -- cleared after the retention period
    negative_prompt TEXT,
    request_id      TEXT,
    image_bytes     INTEGER,
    parent_id       INTEGER REFERENCES generations (id) ON DELETE SET NULL,
    message_id      INTEGER              -- the result message, in channel_id
);

-- Admission counts what is queued, running or succeeded in a sliding window.
CREATE INDEX generations_member_counted
    ON generations (guild_id, member_id, requested_at)
    WHERE status IN ('queued', 'running', 'succeeded');
CREATE INDEX generations_guild_counted
    ON generations (guild_id, requested_at)
    WHERE status IN ('queued', 'running', 'succeeded');
CREATE INDEX generations_guild_time ON generations (guild_id, requested_at);
CREATE INDEX generations_status ON generations (status) WHERE status IN ('queued', 'running');
