"""Logging set-up: secrets and interaction tokens kept out of every record, and discord.py's
warnings that a bot without voice can't act on left out."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

# Interaction and webhook tokens appear in URLs and in gateway payloads logged at DEBUG.
_TOKEN_PATTERNS = (
    (re.compile(r"((?:webhooks|interactions)/\d+/)[^/?\s'\"]+"), r"\1[redacted]"),
    (re.compile(r"""(['"]token['"]\s*:\s*['"])[^'"]+"""), r"\1[redacted]"),
    (re.compile(r"(Bearer |Bot )[A-Za-z0-9._\-]{8,}"), r"\1[redacted]"),
)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with known secrets and token-shaped values masked."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True

    def redact(self, text: str) -> str:
        """`text` with secrets and tokens masked."""
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        for pattern, replacement in _TOKEN_PATTERNS:
            text = pattern.sub(replacement, text)
        return text


#: discord.py's warnings about optional voice libraries (this bot has no voice).
_VOICE_WARNINGS = frozenset(
    {"PyNaCl is not installed, voice will NOT be supported", "davey is not installed, voice will NOT be supported"}
)
#: discord.py logs this, with a traceback, each time it retries a lost gateway connection.
_RECONNECT = "Attempting a reconnect in %.2fs"
#: The same for one shard of a sharded bot: a lost connection, and a shard that could not connect.
_SHARD_RECONNECT = "Attempting a reconnect for shard ID %s in %.2fs"
_SHARD_LAUNCH = "Failed to connect for shard_id: %s. Retrying..."
#: How long discord.py waits before it retries a shard that could not connect.
_SHARD_LAUNCH_RETRY_SECONDS = 5.0


class DiscordNoiseFilter(logging.Filter):
    """Drops discord.py's voice warnings; turns its gateway reconnect traceback into one line
    (the traceback stays at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name not in ("discord.client", "discord.shard"):
            return True
        if record.msg in _VOICE_WARNINGS:
            return False
        error = record.exc_info[1] if record.exc_info else None
        if error is None or logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == _RECONNECT:
            record.msg = "cannot reach Discord's gateway (%s); reconnecting in %.0f s"
            record.args = (describe(error), *args)
        elif record.msg == _SHARD_RECONNECT:
            record.msg = "cannot reach Discord's gateway for shard %s (%s); reconnecting in %.0f s"
            record.args = (args[0], describe(error), *args[1:])
        elif record.msg == _SHARD_LAUNCH:
            record.msg = "cannot reach Discord's gateway for shard %s (%s); retrying in %.0f s"
            record.args = (*args, describe(error), _SHARD_LAUNCH_RETRY_SECONDS)
        else:
            return True
        record.exc_info = None
        record.exc_text = None
        return True


def describe(error: BaseException) -> str:
    """An error in one line: its type and message (never a traceback)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def configure_logging(level: int, secrets: Iterable[str]) -> logging.Handler:
    """Log to stderr at `level` (discord.py's chatter one step quieter), secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(DiscordNoiseFilter())
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return handler
