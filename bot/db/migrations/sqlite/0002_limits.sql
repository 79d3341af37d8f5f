-- A guild's own limit for one (scope, window) pair; pairs without a row use the defaults.
CREATE TABLE guild_limits (
    guild_id   INTEGER NOT NULL,
    scope      TEXT    NOT NULL CHECK (scope IN ('member', 'server')),
    window     TEXT    NOT NULL CHECK (window IN ('hour', 'day', 'week', 'month')),
    max_count  INTEGER NOT NULL CHECK (max_count BETWEEN 0 AND 100000),
    updated_by INTEGER NOT NULL,
    updated_at REAL    NOT NULL,
    PRIMARY KEY (guild_id, scope, window)
) WITHOUT ROWID;

-- Members a moderator has stopped from generating in one guild.
CREATE TABLE blocked_members (
    guild_id   INTEGER NOT NULL,
    member_id  INTEGER NOT NULL,
    blocked_by INTEGER NOT NULL,
    blocked_at REAL    NOT NULL,
    PRIMARY KEY (guild_id, member_id)
) WITHOUT ROWID;

-- Retention finds the rows that still carry prompt text without scanning the rest.
CREATE INDEX generations_prompt_age ON generations (requested_at) WHERE prompt IS NOT NULL;
