-- A new outcome, 'undelivered': the image was made (and billed) but Discord would not take the upload.
-- It is reported with the images made, and never counted against a member's limits, so the partial
-- indexes of migrations 0001 to 0004 (which name the counted statuses) stay as they are.
ALTER TABLE generations
    DROP CONSTRAINT generations_status_check,
    ADD CONSTRAINT generations_status_check
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'denied', 'undelivered'));
