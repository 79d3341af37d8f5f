"""An in-process fake Discord (REST v10 + gateway) that the real discord.py client can talk to."""

from __future__ import annotations

from .commands import InvalidInvocation
from .fake import FakeDiscord
from .interactions import AckRecord, FakeInteraction
from .messages import FakeAttachment, FakeMessage
from .people import DEFAULT_BOT_PERMISSIONS, DEFAULT_MEMBER_PERMISSIONS, FakeMember, FakeRole, FakeUser
from .ratelimits import CHANNEL_MESSAGES, FOLLOWUPS, WEBHOOK_EDITS, RateLimitHit, RateLimits, RouteLimit
from .rules import DiscordError
from .server import RuleViolation
from .world import FakeChannel, FakeGuild

__all__ = [
    "CHANNEL_MESSAGES",
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_MEMBER_PERMISSIONS",
    "FOLLOWUPS",
    "WEBHOOK_EDITS",
    "AckRecord",
    "DiscordError",
    "FakeAttachment",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeInteraction",
    "FakeMember",
    "FakeMessage",
    "FakeRole",
    "FakeUser",
    "InvalidInvocation",
    "RateLimitHit",
    "RateLimits",
    "RouteLimit",
    "RuleViolation",
]
