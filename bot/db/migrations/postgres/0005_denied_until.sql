-- For a refused request: when the limit that refused it has room again (NULL if never, or not refused).
ALTER TABLE generations ADD COLUMN denied_until double precision;
