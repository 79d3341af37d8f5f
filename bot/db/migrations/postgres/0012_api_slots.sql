-- An account's slots, shared by every process: a row per (lane, slot) held by one process until
-- its lease runs out (renewed while the generation runs; a dead process's slot frees by itself).
-- A lane is an API key's fingerprint, never the key.
CREATE TABLE api_slots (
    lane        text             NOT NULL,
    slot        integer          NOT NULL,
    holder      text,
    lease_until double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (lane, slot)
);

-- Each lane's recent submission turns (database clock, unix seconds): "at most N in any second"
-- summed over every process. Rows older than a few seconds are pruned as new ones come.
CREATE TABLE api_submissions (
    lane text             NOT NULL,
    at   double precision NOT NULL
);
CREATE INDEX api_submissions_lane_at ON api_submissions (lane, at);
