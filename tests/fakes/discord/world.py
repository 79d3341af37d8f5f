"""The fake's world: guilds and channels, the registry of everything, and their Discord JSON shapes."""

from __future__ import annotations

import datetime
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .ids import Snowflakes, iso, utcnow
from .messages import FakeAttachment, FakeMessage
from .people import DEFAULT_BOT_PERMISSIONS, DEFAULT_MEMBER_PERMISSIONS, FakeMember, FakeRole, FakeUser
from .rules import DiscordError

Emit = Callable[[str, dict[str, Any]], None]
DM_CHANNEL = 1
#: Public and private threads: they live under a parent channel and take its permission overwrites.
THREAD_TYPES = (11, 12)


@dataclass(eq=False)
class FakeChannel:
    """A guild text channel and every message in it (ephemeral ones flagged)."""

    id: int
    guild: FakeGuild = field(repr=False)
    name: str
    position: int = 0
    topic: str | None = None
    type: int = 0
    permission_overwrites: list[dict[str, Any]] = field(default_factory=list)
    messages: list[FakeMessage] = field(default_factory=list, repr=False)
    #: The other user of a direct-message channel (type 1); its `guild` is only where its member lives.
    recipient: FakeUser | None = field(default=None, repr=False)
    #: The channel a thread (type 11 or 12) was started in.
    parent: FakeChannel | None = field(default=None, repr=False)

    @property
    def is_dm(self) -> bool:
        """A direct-message channel: no guild in anything Discord sends about it."""
        return self.type == DM_CHANNEL

    @property
    def is_thread(self) -> bool:
        """A public or private thread."""
        return self.type in THREAD_TYPES

    @property
    def mention(self) -> str:
        """`<#id>`."""
        return f"<#{self.id}>"

    @property
    def overwrites(self) -> list[dict[str, Any]]:
        """The overwrites that apply here: a thread has its parent's."""
        return self.parent.overwrites if self.parent is not None else self.permission_overwrites

    def add_thread(self, name: str, *, private: bool = False) -> FakeChannel:
        """Start a thread in this channel (announced with THREAD_CREATE, kept out of the guild's channels)."""
        thread = FakeChannel(
            self.guild.world.snowflakes.next(), self.guild, name, type=12 if private else 11, parent=self
        )
        self.guild.world.channels[thread.id] = thread
        self.guild.world.emit("THREAD_CREATE", {**thread.to_payload(), "newly_created": True})
        return thread

    def set_permissions(self, target: FakeRole | FakeMember, *, allow: int = 0, deny: int = 0) -> None:
        """Add or replace a permission overwrite for a role or member."""
        kind = 1 if isinstance(target, FakeMember) else 0
        self.permission_overwrites = [o for o in self.permission_overwrites if int(o["id"]) != target.id]
        self.permission_overwrites.append({"id": str(target.id), "type": kind, "allow": str(allow), "deny": str(deny)})
        if self.id in self.guild.channels:  # Discord announces the change to the guild's sessions
            self.guild.world.emit("CHANNEL_UPDATE", self.to_payload())

    def get_message(self, message_id: int) -> FakeMessage | None:
        """A message by id, deleted or not."""
        return next((m for m in self.messages if m.id == message_id), None)

    def visible_messages(self) -> list[FakeMessage]:
        """Messages everyone can see: not deleted, not ephemeral."""
        return [m for m in self.messages if not m.deleted and not m.ephemeral]

    def add_message(
        self,
        author: FakeMember | FakeUser,
        content: str = "",
        *,
        embeds: list[dict[str, Any]] | None = None,
        attachments: list[FakeAttachment] | None = None,
        components: list[dict[str, Any]] | None = None,
    ) -> FakeMessage:
        """Seed a message (e.g. a user's image to run a context-menu command on); no gateway event.

        `components` are stored as given: a message of another app, or buttons a modified client
        claims are on the message (Discord delivers whatever custom_id a client sends)."""
        user = author.user if isinstance(author, FakeMember) else author
        world = self.guild.world
        message = FakeMessage(
            id=world.snowflakes.next(),
            channel=self,
            author=user,
            content=content,
            embeds=list(embeds or []),
            components=list(components or []),
        )
        for attachment in attachments or []:
            message.attachments.append(world.store_attachment(self.id, attachment))
        self.messages.append(message)
        return message

    def to_payload(self) -> dict[str, Any]:
        """Channel object JSON."""
        last = next((m.id for m in reversed(self.messages) if not m.ephemeral and not m.deleted), None)
        if self.is_dm:
            recipients = [self.recipient.to_payload()] if self.recipient is not None else []
            return {
                "id": str(self.id),
                "type": DM_CHANNEL,
                "last_message_id": str(last) if last else None,
                "recipients": recipients,
                "flags": 0,
            }
        if self.is_thread:
            assert self.parent is not None
            return {
                "id": str(self.id),
                "type": self.type,
                "guild_id": str(self.guild.id),
                "parent_id": str(self.parent.id),
                "owner_id": str(self.guild.owner_id),
                "name": self.name,
                "last_message_id": str(last) if last else None,
                "rate_limit_per_user": 0,
                "message_count": len(self.visible_messages()),
                "member_count": 1,
                "flags": 0,
                "thread_metadata": {
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": iso(utcnow()),
                    "locked": False,
                },
            }
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild.id),
            "name": self.name,
            "position": self.position,
            "parent_id": None,
            "topic": self.topic,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "permission_overwrites": list(self.permission_overwrites),
            "last_message_id": str(last) if last else None,
            "flags": 0,
        }


@dataclass(eq=False)
class FakeGuild:
    """A guild: roles, channels, members (the bot is always a member)."""

    id: int
    name: str
    world: World = field(repr=False)
    owner_id: int = 0
    roles: dict[int, FakeRole] = field(default_factory=dict, repr=False)
    channels: dict[int, FakeChannel] = field(default_factory=dict, repr=False)
    members: dict[int, FakeMember] = field(default_factory=dict, repr=False)
    joined_at: datetime.datetime = field(default_factory=utcnow)
    locale: str = "en-US"

    @property
    def everyone(self) -> FakeRole:
        """The @everyone role."""
        return self.roles[self.id]

    @property
    def me(self) -> FakeMember:
        """The bot's member."""
        return self.members[self.world.bot_user.id]

    def add_role(self, name: str, permissions: int = 0, *, mentionable: bool = False) -> FakeRole:
        """Create a role."""
        role = FakeRole(self.world.snowflakes.next(), name, permissions, len(self.roles), mentionable)
        self.roles[role.id] = role
        self.world.emit("GUILD_ROLE_CREATE", {"guild_id": str(self.id), "role": role.to_payload()})
        return role

    def add_channel(self, name: str, *, topic: str | None = None) -> FakeChannel:
        """Create a text channel."""
        channel = FakeChannel(self.world.snowflakes.next(), self, name, len(self.channels), topic)
        self.channels[channel.id] = channel
        self.world.channels[channel.id] = channel
        self.world.emit("CHANNEL_CREATE", channel.to_payload())
        return channel

    def add_member(
        self,
        name: str,
        *,
        permissions: int | None = None,
        roles: list[FakeRole] | None = None,
        nick: str | None = None,
        bot: bool = False,
    ) -> FakeMember:
        """Create a user and their membership; `permissions` becomes a personal role (default: a normal member's)."""
        user = self.world.add_user(name, bot=bot)
        return self.add_existing_user(user, permissions=permissions, roles=roles, nick=nick)

    def add_existing_user(
        self,
        user: FakeUser,
        *,
        permissions: int | None = None,
        roles: list[FakeRole] | None = None,
        nick: str | None = None,
    ) -> FakeMember:
        """Make an existing user (e.g. one already in another guild) a member."""
        bits = DEFAULT_MEMBER_PERMISSIONS if permissions is None else permissions
        own = FakeRole(self.world.snowflakes.next(), f"{user.username}-permissions", bits, len(self.roles))
        self.roles[own.id] = own
        self.world.emit("GUILD_ROLE_CREATE", {"guild_id": str(self.id), "role": own.to_payload()})
        member = FakeMember(user, self, [own.id, *(r.id for r in roles or [])], nick)
        self.members[user.id] = member
        self.world.emit("GUILD_MEMBER_ADD", {**member.to_payload(), "guild_id": str(self.id)})
        return member

    def open_dm(self, member: FakeMember) -> FakeChannel:
        """The direct-message channel between `member` and the bot (kept out of the guild's channels)."""
        channel = FakeChannel(self.world.snowflakes.next(), self, f"dm-{member.name}", type=DM_CHANNEL)
        channel.recipient = member.user
        self.world.channels[channel.id] = channel
        return channel

    def get_member(self, user_id: int) -> FakeMember | None:
        """A member by user id."""
        return self.members.get(user_id)

    def to_payload(self, *, full: bool = True) -> dict[str, Any]:
        """GUILD_CREATE JSON when full, else the REST guild object."""
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "roles": [r.to_payload() for r in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.locale,
            "premium_progress_bar_enabled": False,
        }
        if full:
            data.update(
                {
                    "joined_at": iso(self.joined_at),
                    "large": False,
                    "unavailable": False,
                    "member_count": len(self.members),
                    "voice_states": [],
                    "presences": [],
                    "threads": [],
                    "stage_instances": [],
                    "guild_scheduled_events": [],
                    "soundboard_sounds": [],
                    "channels": [c.to_payload() for c in self.channels.values()],
                    "members": [m.to_payload() for m in self.members.values()],
                }
            )
        return data


class World:
    """Registry of everything the fake knows, plus id and attachment bookkeeping."""

    def __init__(self, bot_name: str = "FakeBot") -> None:
        self.snowflakes = Snowflakes()
        self.application_id = self.snowflakes.next()
        self.bot_user = FakeUser(self.application_id, bot_name, bot=True)
        self.owner_user = FakeUser(self.snowflakes.next(), "app-owner")
        self.users: dict[int, FakeUser] = {u.id: u for u in (self.bot_user, self.owner_user)}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.attachments: dict[int, FakeAttachment] = {}
        self.base_url = "http://127.0.0.1:0"
        self.emit: Emit = lambda event, data: None
        #: Errors the next messages carrying files answer with (see FakeDiscord.fail_uploads).
        self.upload_failures: deque[DiscordError] = deque()

    def add_user(self, name: str, *, bot: bool = False) -> FakeUser:
        """Create a user not (yet) in any guild."""
        user = FakeUser(self.snowflakes.next(), name, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(
        self,
        name: str,
        owner_id: int | None = None,
        *,
        bot_permissions: int | None = None,
        everyone_permissions: int = 0,
        shard: tuple[int, int] | None = None,
    ) -> FakeGuild:
        """Create a guild with @everyone, an owner and the bot as a member; `shard` (id, count): with
        an id that puts it on that shard."""
        guild_id = self.snowflakes.next() if shard is None else self.snowflakes.next_on_shard(*shard)
        guild = FakeGuild(guild_id, name, self)
        guild.roles[guild.id] = FakeRole(guild.id, "@everyone", everyone_permissions)
        if owner_id is None:
            owner = guild.add_member(f"{name.lower().replace(' ', '-')}-owner")
            owner_id = owner.id
        guild.owner_id = owner_id
        bot_bits = DEFAULT_BOT_PERMISSIONS if bot_permissions is None else bot_permissions
        bot_role = FakeRole(self.snowflakes.next(), self.bot_user.username, bot_bits, len(guild.roles), managed=True)
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot_user.id] = FakeMember(self.bot_user, guild, [bot_role.id])
        self.guilds[guild.id] = guild
        return guild

    def store_attachment(self, channel_id: int, attachment: FakeAttachment) -> FakeAttachment:
        """Give an attachment an id and URLs served by the fake; returns a stored copy."""
        stored = FakeAttachment(
            attachment.filename, attachment.data, attachment.content_type, description=attachment.description
        )
        stored.id = self.snowflakes.next()
        stored.url = f"{self.base_url}/attachments/{channel_id}/{stored.id}/{stored.filename}"
        stored.proxy_url = stored.url
        self.attachments[stored.id] = stored
        return stored
