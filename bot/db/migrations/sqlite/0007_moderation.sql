-- Channels a guild lets members generate in; a guild without rows allows every channel.
CREATE TABLE allowed_channels (
    guild_id   INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    added_by   INTEGER NOT NULL,
    added_at   REAL    NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
) WITHOUT ROWID;

-- Words and phrases a guild keeps out of prompts, stored normalised (NFKC, case-folded).
CREATE TABLE blocked_words (
    guild_id INTEGER NOT NULL,
    word     TEXT    NOT NULL CHECK (length(word) BETWEEN 1 AND 100),
    added_by INTEGER NOT NULL,
    added_at REAL    NOT NULL,
    PRIMARY KEY (guild_id, word)
) WITHOUT ROWID;

-- A role's value for one member window; a member gets the most generous value among their roles.
CREATE TABLE role_limits (
    guild_id   INTEGER NOT NULL,
    role_id    INTEGER NOT NULL,
    window     TEXT    NOT NULL CHECK (window IN ('hour', 'day', 'week', 'month')),
    max_count  INTEGER NOT NULL CHECK (max_count BETWEEN 0 AND 100000),
    updated_by INTEGER NOT NULL,
    updated_at REAL    NOT NULL,
    PRIMARY KEY (guild_id, role_id, window)
) WITHOUT ROWID;

-- Where a guild's settings changes are also posted.
CREATE TABLE guild_log_channels (
    guild_id   INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    updated_by INTEGER NOT NULL,
    updated_at REAL    NOT NULL
) WITHOUT ROWID;

-- Every change a moderator makes: who, when, which setting, and its value before and after.
CREATE TABLE IF NOT EXISTS settings_audit (
    id        INTEGER PRIMARY KEY,
    guild_id  INTEGER NOT NULL,
    actor_id  INTEGER NOT NULL,
    at        REAL    NOT NULL,
    setting   TEXT    NOT NULL,
    old_value TEXT,
    new_value TEXT
);
CREATE INDEX IF NOT EXISTS settings_audit_guild_time ON settings_audit (guild_id, at);
