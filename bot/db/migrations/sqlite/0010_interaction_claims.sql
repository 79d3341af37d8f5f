-- Each interaction is handled by one process: the first to insert its id answers it, any other
-- process that received it too (two sessions briefly holding one shard) stays silent.
-- Interaction ids are snowflakes, so they carry their time: old claims are pruned by id.
CREATE TABLE interaction_claims (
    interaction_id INTEGER PRIMARY KEY
);
