"""Users, roles and members, with Discord's permission arithmetic."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord

from .ids import iso, utcnow

if TYPE_CHECKING:
    from .world import FakeChannel, FakeGuild

ADMINISTRATOR = discord.Permissions(administrator=True).value
ALL_PERMISSIONS = discord.Permissions.all().value

DEFAULT_MEMBER_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_application_commands=True,
    use_external_emojis=True,
    create_public_threads=True,
    send_messages_in_threads=True,
    connect=True,
    speak=True,
    change_nickname=True,
).value
DEFAULT_BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    read_message_history=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    use_external_emojis=True,
    send_messages_in_threads=True,
).value


@dataclass(eq=False)
class FakeUser:
    """A Discord user (the bot or a human)."""

    id: int
    username: str
    bot: bool = False
    global_name: str | None = None

    @property
    def name(self) -> str:
        """The username."""
        return self.username

    @property
    def mention(self) -> str:
        """`<@id>`."""
        return f"<@{self.id}>"

    def to_payload(self) -> dict[str, Any]:
        """User object JSON."""
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
        }


@dataclass(eq=False)
class FakeRole:
    """A guild role; the @everyone role has the guild's id."""

    id: int
    name: str
    permissions: int = 0
    position: int = 0
    mentionable: bool = False
    managed: bool = False

    @property
    def mention(self) -> str:
        """`<@&id>`."""
        return f"<@&{self.id}>"

    def to_payload(self) -> dict[str, Any]:
        """Role object JSON."""
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": self.managed,
            "mentionable": self.mentionable,
            "flags": 0,
            "icon": None,
            "unicode_emoji": None,
        }


@dataclass(eq=False)
class FakeMember:
    """A user's membership in a guild."""

    user: FakeUser
    guild: FakeGuild = field(repr=False)
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: datetime.datetime = field(default_factory=utcnow)

    @property
    def id(self) -> int:
        """The user id."""
        return self.user.id

    @property
    def name(self) -> str:
        """The username."""
        return self.user.username

    @property
    def mention(self) -> str:
        """`<@id>`."""
        return self.user.mention

    @property
    def roles(self) -> list[FakeRole]:
        """Roles other than @everyone."""
        return [self.guild.roles[r] for r in self.role_ids if r in self.guild.roles]

    @property
    def permissions(self) -> int:
        """Guild-level permission bits (roles, owner, administrator)."""
        if self.id == self.guild.owner_id:
            return ALL_PERMISSIONS
        bits = self.guild.everyone.permissions
        for role in self.roles:
            bits |= role.permissions
        return ALL_PERMISSIONS if bits & ADMINISTRATOR else bits

    def permissions_in(self, channel: FakeChannel) -> int:
        """Channel permission bits with overwrites applied, as Discord computes them."""
        bits = self.permissions
        if bits & ADMINISTRATOR:
            return ALL_PERMISSIONS
        overwrites = {int(o["id"]): o for o in channel.overwrites}
        everyone = overwrites.get(self.guild.id)
        if everyone is not None:
            bits = (bits & ~int(everyone["deny"])) | int(everyone["allow"])
        allow = deny = 0
        for role_id in self.role_ids:
            ow = overwrites.get(role_id)
            if ow is not None and ow["type"] == 0:
                allow |= int(ow["allow"])
                deny |= int(ow["deny"])
        bits = (bits & ~deny) | allow
        own = overwrites.get(self.id)
        if own is not None and own["type"] == 1:
            bits = (bits & ~int(own["deny"])) | int(own["allow"])
        return bits

    def to_payload(self, *, with_user: bool = True, channel: FakeChannel | None = None) -> dict[str, Any]:
        """Guild member JSON; `permissions` is included when a channel is given (interaction shape)."""
        data: dict[str, Any] = {
            "nick": self.nick,
            "roles": [str(r) for r in self.role_ids],
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
            "avatar": None,
            "banner": None,
        }
        if with_user:
            data["user"] = self.user.to_payload()
        if channel is not None:
            data["permissions"] = str(self.permissions_in(channel))
        return data
