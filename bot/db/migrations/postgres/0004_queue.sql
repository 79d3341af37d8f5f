-- Queue caps count a member's and a guild's unfinished jobs.
CREATE INDEX generations_unfinished
    ON generations (guild_id, member_id)
    WHERE status IN ('queued', 'running');
-- The async API's task id, so that a restart polls a submitted task instead of paying for it twice.
ALTER TABLE generations ADD COLUMN task_id text;
