-- The one fair queue over every process: when each guild (member_id 0) and each member of a guild
-- was last served (the database's clock, unix seconds). The least recently served goes first.
CREATE TABLE queue_turns (
    guild_id  bigint           NOT NULL,
    member_id bigint           NOT NULL,
    served_at double precision NOT NULL,
    PRIMARY KEY (guild_id, member_id)
);
