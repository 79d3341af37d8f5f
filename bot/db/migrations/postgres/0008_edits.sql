-- How many input images an edit was made from (0: made from text alone).
ALTER TABLE generations ADD COLUMN inputs INTEGER NOT NULL DEFAULT 0;

-- Who changed which server setting, when, from what to what (shared with the moderation settings).
CREATE TABLE IF NOT EXISTS settings_audit (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id  BIGINT  NOT NULL,
    actor_id  BIGINT  NOT NULL,
    at        DOUBLE PRECISION NOT NULL,
    setting   TEXT    NOT NULL,
    old_value TEXT,
    new_value TEXT
);
CREATE INDEX IF NOT EXISTS settings_audit_guild ON settings_audit (guild_id, at);
