"""Messages and attachments: storage, Discord JSON, create/edit semantics and who gets pinged."""

from __future__ import annotations

import datetime
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import rules
from .ids import iso, utcnow
from .multipart import Upload
from .rules import FormErrors

if TYPE_CHECKING:
    from .people import FakeUser
    from .world import FakeChannel, World

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
# Flags a bot may set on create; the rest are Discord's to set.
_SETTABLE_FLAGS = (1 << 2) | rules.FLAG_EPHEMERAL | (1 << 12) | rules.FLAG_COMPONENTS_V2
_EDITABLE_FLAGS = (1 << 2) | rules.FLAG_COMPONENTS_V2


@dataclass(eq=False)
class FakeAttachment:
    """A file on a message; build one yourself to seed user messages or attachment options."""

    filename: str
    data: bytes = field(repr=False)
    content_type: str | None = None
    size: int = -1
    id: int = 0
    url: str = ""
    proxy_url: str = ""
    description: str | None = None

    def __post_init__(self) -> None:
        if self.size < 0:
            self.size = len(self.data)
        if self.content_type is None:
            self.content_type = mimetypes.guess_type(self.filename)[0] or "application/octet-stream"

    def to_payload(self) -> dict[str, Any]:
        """Attachment object JSON."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.proxy_url,
            "content_type": self.content_type,
        }
        if self.description is not None:
            data["description"] = self.description
        return data


@dataclass(eq=False)
class FakeMessage:
    """A message as Discord stores it; `embeds`/`components`/`allowed_mentions` are kept as the bot sent them."""

    id: int
    channel: FakeChannel = field(repr=False)
    author: FakeUser = field(repr=False)
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    allowed_mentions: dict[str, Any] | None = None
    interaction_id: int | None = None
    deleted: bool = False
    edits: int = 0
    type: int = 0
    webhook_id: int | None = None
    tts: bool = False
    message_reference: dict[str, Any] | None = None
    interaction_metadata: dict[str, Any] | None = field(default=None, repr=False)
    created_at: datetime.datetime = field(default_factory=utcnow, repr=False)
    edited_at: datetime.datetime | None = field(default=None, repr=False)

    @property
    def channel_id(self) -> int:
        """The channel's id."""
        return self.channel.id

    @property
    def guild_id(self) -> int:
        """The guild's id."""
        return self.channel.guild.id

    @property
    def author_id(self) -> int:
        """The author's user id."""
        return self.author.id

    @property
    def ephemeral(self) -> bool:
        """Only the invoking user sees it (flag 64)."""
        return bool(self.flags & rules.FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        """A deferred "thinking..." placeholder (flag 128)."""
        return bool(self.flags & rules.FLAG_LOADING)

    def pings_everyone(self) -> bool:
        """Whether @everyone/@here in the content would notify (allowed_mentions permitting)."""
        if self.ephemeral or self.deleted:
            return False
        if "@everyone" not in self.content and "@here" not in self.content:
            return False
        return self.allowed_mentions is None or "everyone" in (self.allowed_mentions.get("parse") or [])

    def _allowed(self, kind: str, mentioned: set[int]) -> set[int]:
        am = self.allowed_mentions
        if am is None or kind in (am.get("parse") or []):
            return mentioned
        return mentioned & {int(x) for x in am.get(kind) or []}

    def pinged_role_ids(self) -> set[int]:
        """Role mentions that would notify."""
        if self.ephemeral or self.deleted:
            return set()
        return self._allowed("roles", {int(x) for x in _ROLE_MENTION.findall(self.content)})

    def pinged_user_ids(self) -> set[int]:
        """Users Discord would notify: allowed user mentions, members of allowed roles, everyone, replied user."""
        if self.ephemeral or self.deleted:
            return set()
        guild = self.channel.guild
        users = self._allowed("users", {int(x) for x in _USER_MENTION.findall(self.content)})
        roles = self.pinged_role_ids()
        users |= {m.id for m in guild.members.values() if roles & set(m.role_ids)}
        if self.pings_everyone():
            users |= set(guild.members)
        ref = self.message_reference
        if ref and (self.allowed_mentions is None or self.allowed_mentions.get("replied_user")):
            replied = self.channel.get_message(int(ref.get("message_id") or 0))
            if replied is not None:
                users.add(replied.author_id)
        users.discard(self.author_id)
        return users

    def to_payload(self) -> dict[str, Any]:
        """Message object JSON as Discord returns it."""
        guild = self.channel.guild
        direct = self._allowed("users", {int(x) for x in _USER_MENTION.findall(self.content)})
        mentioned = [guild.members[u] for u in direct if u in guild.members]
        data: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "guild_id": str(self.guild_id),
            "author": self.author.to_payload(),
            "content": self.content,
            "timestamp": iso(self.created_at),
            "edited_timestamp": iso(self.edited_at) if self.edited_at else None,
            "tts": self.tts,
            "mention_everyone": self.pings_everyone(),
            "mentions": [{**m.user.to_payload(), "member": m.to_payload(with_user=False)} for m in mentioned],
            "mention_roles": [str(r) for r in self.pinged_role_ids()],
            "mention_channels": [],
            "attachments": [a.to_payload() for a in self.attachments],
            "embeds": list(self.embeds),
            "components": list(self.components),
            "flags": self.flags,
            "pinned": False,
            "type": self.type,
            "reactions": [],
        }
        if self.channel.is_dm:
            del data["guild_id"]
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
            data["application_id"] = str(self.webhook_id)
        if self.interaction_metadata is not None:
            data["interaction_metadata"] = self.interaction_metadata
        if self.message_reference is not None:
            data["message_reference"] = self.message_reference
        return data


@dataclass
class MessageChanges:
    """A validated create/edit, applied only once every rule passed."""

    fields: dict[str, Any]
    attachments: list[FakeAttachment] | None

    def apply(self, message: FakeMessage, *, editing: bool) -> None:
        """Write the changes into the message."""
        for key, value in self.fields.items():
            setattr(message, key, value)
        if self.attachments is not None:
            message.attachments = self.attachments
        if editing:
            message.edits += 1
            message.edited_at = utcnow()


def plan_message(
    payload: dict[str, Any],
    uploads: Sequence[Upload],
    *,
    world: World,
    channel: FakeChannel,
    existing: FakeMessage | None,
    size_limit: int,
    nest_under: str | None = None,
    allow_ephemeral: bool = False,
) -> MessageChanges:
    """Validate a message payload (create when existing is None, else edit) and compute the result."""
    if uploads and world.upload_failures:
        raise world.upload_failures.popleft()
    # Discord rejects oversized bodies before it looks at the fields.
    if any(len(u.data) > size_limit for u in uploads):
        raise rules.too_large()
    errs = FormErrors()
    rules.check_message(payload, errs)
    errs.raise_if_any(nest_under)
    fields: dict[str, Any] = {}
    if "content" in payload:
        fields["content"] = payload["content"] or ""
    for key in ("embeds", "components"):
        if key in payload:
            fields[key] = list(payload[key] or [])
    if "allowed_mentions" in payload:
        fields["allowed_mentions"] = payload["allowed_mentions"]
    if existing is None:
        fields["tts"] = bool(payload.get("tts"))
        if payload.get("message_reference"):
            fields["message_reference"] = payload["message_reference"]
        settable = _SETTABLE_FLAGS if allow_ephemeral else _SETTABLE_FLAGS & ~rules.FLAG_EPHEMERAL
        fields["flags"] = int(payload.get("flags") or 0) & settable
    elif payload.get("flags") is not None:
        keep = existing.flags & ~_EDITABLE_FLAGS
        fields["flags"] = keep | (int(payload["flags"]) & _EDITABLE_FLAGS)
    attachments = _plan_attachments(payload, uploads, world, channel, existing, nest_under)

    def current(key: str, default: Any) -> Any:
        if key in fields:
            return fields[key]
        return getattr(existing, key) if existing is not None else default

    count = len(attachments) if attachments is not None else len(existing.attachments if existing else [])
    if rules.is_empty(
        current("content", ""),
        current("embeds", []),
        count,
        current("components", []),
        bool(payload.get("sticker_ids") or payload.get("poll")),
    ):
        raise rules.empty_message()
    return MessageChanges(fields, attachments)


def _plan_attachments(
    payload: dict[str, Any],
    uploads: Sequence[Upload],
    world: World,
    channel: FakeChannel,
    existing: FakeMessage | None,
    nest_under: str | None,
) -> list[FakeAttachment] | None:
    by_index = {u.index: u for u in uploads if u.index is not None}
    old = {a.id: a for a in (existing.attachments if existing else [])}
    if "attachments" not in payload or payload["attachments"] is None:
        if not uploads:
            return None
        kept = list(existing.attachments) if existing else []
        return kept + [_store(world, channel, u, None) for u in uploads]
    result: list[FakeAttachment] = []
    used: set[int] = set()
    errs = FormErrors()
    for i, entry in enumerate(payload["attachments"] or []):
        try:
            ident = int(entry.get("id"))
        except (TypeError, ValueError):
            errs.add(("attachments", i, "id"), "BASE_TYPE_REQUIRED", "This field is required")
            continue
        if ident in by_index and ident not in old:
            used.add(ident)
            result.append(_store(world, channel, by_index[ident], entry))
        elif ident in old:
            result.append(old[ident])
        else:
            errs.add(("attachments", i), "ATTACHMENT_NOT_FOUND", f"Unknown attachment {ident}")
    errs.raise_if_any(nest_under)
    result += [_store(world, channel, u, None) for u in uploads if u.index not in used]
    return result


def _store(world: World, channel: FakeChannel, upload: Upload, entry: dict[str, Any] | None) -> FakeAttachment:
    filename = (entry or {}).get("filename") or upload.filename
    attachment = FakeAttachment(
        filename, upload.data, upload.content_type, description=(entry or {}).get("description")
    )
    return world.store_attachment(channel.id, attachment)
