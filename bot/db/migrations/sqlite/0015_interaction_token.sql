-- The token of the interaction a queued or running generation answers, so that whichever process
-- runs it (after a hand-over or a takeover) can edit the member's original response while the token
-- lives (15 minutes). Secret-like: never logged, and cleared as soon as the generation ends.
ALTER TABLE generations ADD COLUMN interaction_token TEXT;
