-- Key/value facts about this installation (e.g. the hash of the last command sync).
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- One row per generation attempt: the usage log that limits, reports and remixes read.
-- Discord ids are 64-bit (bigint); times are unix seconds (double precision), as in SQLite.
CREATE TABLE generations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id        bigint,                       -- NULL in direct messages
    channel_id      bigint,
    member_id       bigint           NOT NULL,
    requested_at    double precision NOT NULL,    -- unix seconds
    started_at      double precision,
    finished_at     double precision,
    status          text             NOT NULL
                    CONSTRAINT generations_status_check
                    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'denied')),
    error_code      text,
    model           text             NOT NULL,
    size            text             NOT NULL,
    seed            bigint           NOT NULL,
    prompt_extend   integer          NOT NULL,    -- 0 or 1, as in SQLite
    prompt          text,                         -- cleared after the retention period
    negative_prompt text,
    request_id      text,
    image_bytes     bigint,
    parent_id       bigint REFERENCES generations (id) ON DELETE SET NULL,
    message_id      bigint                        -- the result message, in channel_id
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
