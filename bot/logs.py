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


class DiscordNoiseFilter(logging.Filter):
    """Drops discord.py's voice warnings; turns its gateway reconnect traceback into one line
    (the traceback stays at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "discord.client":
            return True
        if record.msg in _VOICE_WARNINGS:
            return False
        error = record.exc_info[1] if record.exc_info else None
        if record.msg == _RECONNECT and error is not None and not logging.getLogger().isEnabledFor(logging.DEBUG):
            delay = record.args if isinstance(record.args, tuple) else ()
            record.msg = "cannot reach Discord's gateway (%s); reconnecting in %.0f s"
            record.args = (describe(error), *delay)
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
