-- Result messages are found by id (the "Remix image" context menu, deletes).
CREATE INDEX generations_message ON generations (message_id) WHERE message_id IS NOT NULL;
-- Lineage: the remixes of an image.
CREATE INDEX generations_parent ON generations (parent_id) WHERE parent_id IS NOT NULL;
