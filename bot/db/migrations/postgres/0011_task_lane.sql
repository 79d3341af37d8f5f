-- The lane (the fingerprint of the API key, never the key) an async task was created with: a task
-- belongs to its account, so after a restart it is polled with the same key.
ALTER TABLE generations ADD COLUMN task_lane TEXT;
