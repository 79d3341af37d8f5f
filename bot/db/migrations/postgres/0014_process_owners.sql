-- Every running bot process: a random token, a heartbeat on the database's clock (unix seconds),
-- and whether it is shutting down. A process whose heartbeat is old is gone (killed, host lost).
CREATE TABLE processes (
    id        text             PRIMARY KEY,
    heartbeat double precision NOT NULL,
    draining  boolean          NOT NULL DEFAULT false
);

-- The process that runs each queued or running generation (NULL: handed over, for any live process
-- to take). A generation whose owner is gone is taken over by a live process.
ALTER TABLE generations ADD COLUMN owner text;
