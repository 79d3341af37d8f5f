"""The Discord-facing layer shared by the cogs: messages, views, replies, error reports."""
