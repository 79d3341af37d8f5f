-- A guild's own limit for one (scope, window) pair; pairs without a row use the defaults.
-- "window" is a reserved word in PostgreSQL, so it is quoted wherever it is used.
CREATE TABLE guild_limits (
    guild_id   bigint           NOT NULL,
    scope      text             NOT NULL CHECK (scope IN ('member', 'server')),
    "window"   text             NOT NULL CHECK ("window" IN ('hour', 'day', 'week', 'month')),
    max_count  integer          NOT NULL CHECK (max_count BETWEEN 0 AND 100000),
    updated_by bigint           NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (guild_id, scope, "window")
);

-- Members a moderator has stopped from generating in one guild.
CREATE TABLE blocked_members (
    guild_id   bigint           NOT NULL,
    member_id  bigint           NOT NULL,
    blocked_by bigint           NOT NULL,
    blocked_at double precision NOT NULL,
    PRIMARY KEY (guild_id, member_id)
);

-- Retention finds the rows that still carry prompt text without scanning the rest.
CREATE INDEX generations_prompt_age ON generations (requested_at) WHERE prompt IS NOT NULL;
