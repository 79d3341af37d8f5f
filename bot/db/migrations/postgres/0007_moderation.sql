-- Channels a guild lets members generate in; a guild without rows allows every channel.
CREATE TABLE allowed_channels (
    guild_id   bigint           NOT NULL,
    channel_id bigint           NOT NULL,
    added_by   bigint           NOT NULL,
    added_at   double precision NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);

-- Words and phrases a guild keeps out of prompts, stored normalised (NFKC, case-folded).
CREATE TABLE blocked_words (
    guild_id bigint           NOT NULL,
    word     text             NOT NULL CHECK (length(word) BETWEEN 1 AND 100),
    added_by bigint           NOT NULL,
    added_at double precision NOT NULL,
    PRIMARY KEY (guild_id, word)
);

-- A role's value for one member window; a member gets the most generous value among their roles.
CREATE TABLE role_limits (
    guild_id   bigint           NOT NULL,
    role_id    bigint           NOT NULL,
    "window"   text             NOT NULL CHECK ("window" IN ('hour', 'day', 'week', 'month')),
    max_count  integer          NOT NULL CHECK (max_count BETWEEN 0 AND 100000),
    updated_by bigint           NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (guild_id, role_id, "window")
);

-- Where a guild's settings changes are also posted.
CREATE TABLE guild_log_channels (
    guild_id   bigint           PRIMARY KEY,
    channel_id bigint           NOT NULL,
    updated_by bigint           NOT NULL,
    updated_at double precision NOT NULL
);

-- Every change a moderator makes: who, when, which setting, and its value before and after.
CREATE TABLE IF NOT EXISTS settings_audit (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id  bigint           NOT NULL,
    actor_id  bigint           NOT NULL,
    at        double precision NOT NULL,
    setting   text             NOT NULL,
    old_value text,
    new_value text
);
CREATE INDEX IF NOT EXISTS settings_audit_guild_time ON settings_audit (guild_id, at);
