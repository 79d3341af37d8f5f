-- An account's slots, shared by every process (PostgreSQL: one SQLite file has one process, which
-- keeps its slots in memory). The table exists on both backends so their schemas stay alike.
CREATE TABLE api_slots (
    lane        TEXT    NOT NULL,
    slot        INTEGER NOT NULL,
    holder      TEXT,
    lease_until REAL    NOT NULL DEFAULT 0,
    PRIMARY KEY (lane, slot)
);

-- Each lane's recent submission turns (PostgreSQL only, as above).
CREATE TABLE api_submissions (
    lane TEXT NOT NULL,
    at   REAL NOT NULL
);
CREATE INDEX api_submissions_lane_at ON api_submissions (lane, at);
