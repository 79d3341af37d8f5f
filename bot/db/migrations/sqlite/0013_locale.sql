-- The member's and the server's Discord locale when the request was made: a message with no
-- interaction behind it (a channel fallback, a resume after a restart) speaks the server's language.
ALTER TABLE generations ADD COLUMN locale TEXT;
ALTER TABLE generations ADD COLUMN guild_locale TEXT;
