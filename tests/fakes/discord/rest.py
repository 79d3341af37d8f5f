"""Bot-token REST routes: login, gateway info, command sync, channels, messages, guilds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord
from aiohttp import web

from . import rules
from .commands import check_commands
from .messages import FakeMessage, plan_message
from .multipart import json_response, read_body
from .rules import DiscordError, FormErrors
from .world import FakeChannel, FakeGuild

if TYPE_CHECKING:
    from .fake import FakeDiscord

_VIEW = discord.Permissions(view_channel=True).value
_SEND = discord.Permissions(send_messages=True).value
_ATTACH = discord.Permissions(attach_files=True).value
_MANAGE = discord.Permissions(manage_messages=True).value
_HISTORY = discord.Permissions(read_message_history=True).value


class RestRoutes:
    """Handlers for routes authorized with `Authorization: Bot <token>`."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.world = fake.world

    def register(self, router: web.UrlDispatcher, prefix: str) -> None:
        """Add every bot route under prefix (/api/v10)."""
        app = prefix + "/applications/{app_id}"
        channel = prefix + "/channels/{channel_id}"
        for method, path, handler in [
            ("GET", "/users/@me", self.me),
            ("GET", "/users/{user_id}", self.get_user),
            ("GET", "/oauth2/applications/@me", self.application),
            ("GET", "/applications/@me", self.application),
            ("GET", "/gateway", self.gateway),
            ("GET", "/gateway/bot", self.gateway_bot),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/channels", self.guild_channels),
            ("GET", "/guilds/{guild_id}/roles", self.guild_roles),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
        ]:
            router.add_route(method, prefix + path, handler)
        router.add_get(app + "/commands", self.get_commands)
        router.add_put(app + "/commands", self.put_commands)
        router.add_get(app + "/guilds/{guild_id}/commands", self.get_commands)
        router.add_put(app + "/guilds/{guild_id}/commands", self.put_commands)
        router.add_get(channel, self.get_channel)
        router.add_post(channel + "/typing", self.typing)
        router.add_get(channel + "/messages", self.list_messages)
        router.add_post(channel + "/messages", self.create_message)
        router.add_get(channel + "/messages/{message_id}", self.get_message)
        router.add_patch(channel + "/messages/{message_id}", self.edit_message)
        router.add_delete(channel + "/messages/{message_id}", self.delete_message)

    async def me(self, request: web.Request) -> web.Response:
        """GET /users/@me: the bot user (discord.py's login check)."""
        return json_response(
            {
                **self.fake.bot_user.to_payload(),
                "verified": True,
                "mfa_enabled": False,
                "locale": "en-US",
                "email": None,
            }
        )

    async def get_user(self, request: web.Request) -> web.Response:
        """GET /users/{id}."""
        user = self.world.users.get(_int(request, "user_id"))
        if user is None:
            raise rules.unknown_user()
        return json_response(user.to_payload())

    async def application(self, request: web.Request) -> web.Response:
        """GET /oauth2/applications/@me: the AppInfo fields discord.py reads unconditionally."""
        fake = self.fake
        return json_response(
            {
                "id": str(fake.application_id),
                "name": fake.bot_user.username,
                "icon": None,
                "description": "",
                "summary": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.world.owner_user.to_payload(),
                "team": None,
                "verify_key": "0" * 64,
                "flags": fake.application_flags,
                "bot": fake.bot_user.to_payload(),
                "tags": [],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": len(self.world.guilds),
                "integration_types_config": {"0": {}},
            }
        )

    async def gateway(self, request: web.Request) -> web.Response:
        """GET /gateway."""
        return json_response({"url": self.fake.gateway_url})

    async def gateway_bot(self, request: web.Request) -> web.Response:
        """GET /gateway/bot (used by AutoShardedClient)."""
        return json_response(
            {
                "url": self.fake.gateway_url,
                "shards": self.fake.recommended_shards,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
            }
        )

    def _guild(self, request: web.Request) -> FakeGuild:
        guild = self.world.guilds.get(_int(request, "guild_id"))
        if guild is None:
            raise rules.unknown_guild()
        return guild

    async def get_guild(self, request: web.Request) -> web.Response:
        """GET /guilds/{id}."""
        guild = self._guild(request)
        return json_response({**guild.to_payload(full=False), "approximate_member_count": len(guild.members)})

    async def guild_channels(self, request: web.Request) -> web.Response:
        """GET /guilds/{id}/channels."""
        return json_response([c.to_payload() for c in self._guild(request).channels.values()])

    async def guild_roles(self, request: web.Request) -> web.Response:
        """GET /guilds/{id}/roles."""
        return json_response([r.to_payload() for r in self._guild(request).roles.values()])

    async def get_member(self, request: web.Request) -> web.Response:
        """GET /guilds/{id}/members/{user_id}."""
        member = self._guild(request).get_member(_int(request, "user_id"))
        if member is None:
            raise rules.unknown_member()
        return json_response(member.to_payload())

    def _scope(self, request: web.Request) -> int | None:
        if request.match_info["app_id"] != str(self.fake.application_id):
            raise rules.missing_access()
        if "guild_id" not in request.match_info:
            return None
        guild = self._guild(request)
        return guild.id

    async def get_commands(self, request: web.Request) -> web.Response:
        """GET global or guild commands."""
        return json_response(self.fake.commands.returned.get(self._scope(request), []))

    async def put_commands(self, request: web.Request) -> web.Response:
        """PUT (bulk overwrite) global or guild commands; payload stored exactly as sent."""
        scope = self._scope(request)
        body, _ = await read_body(request)
        payload: Any = body.get("__list__", body)
        errs = FormErrors()
        check_commands(payload, errs)
        errs.raise_if_any()
        await self.fake.pass_sync_gate()
        return json_response(self.fake.commands.put(scope, payload))

    def _channel(self, request: web.Request) -> FakeChannel:
        channel = self.world.channels.get(_int(request, "channel_id"))
        if channel is None:
            raise rules.unknown_channel()
        if not channel.guild.me.permissions_in(channel) & _VIEW:
            raise rules.missing_access()
        return channel

    def _message(self, request: web.Request, channel: FakeChannel) -> FakeMessage:
        message = channel.get_message(_int(request, "message_id"))
        if message is None or message.deleted or message.ephemeral:
            raise rules.unknown_message()
        return message

    async def get_channel(self, request: web.Request) -> web.Response:
        """GET /channels/{id}."""
        return json_response(self._channel(request).to_payload())

    async def typing(self, request: web.Request) -> web.Response:
        """POST /channels/{id}/typing."""
        self._channel(request)
        return web.Response(status=204)

    async def list_messages(self, request: web.Request) -> web.Response:
        """GET /channels/{id}/messages: newest first, honouring limit/before/after."""
        channel = self._channel(request)
        if not channel.guild.me.permissions_in(channel) & _HISTORY:
            return json_response([])
        messages = channel.visible_messages()
        if "before" in request.query:
            messages = [m for m in messages if m.id < int(request.query["before"])]
        if "after" in request.query:
            messages = [m for m in messages if m.id > int(request.query["after"])]
        limit = min(int(request.query.get("limit", 50)), 100)
        newest = sorted(messages, key=lambda m: m.id, reverse=True)
        if "after" in request.query:
            newest = newest[-limit:]
        return json_response([m.to_payload() for m in newest[:limit]])

    async def create_message(self, request: web.Request) -> web.Response:
        """POST /channels/{id}/messages (JSON or multipart)."""
        channel = self._channel(request)
        perms = channel.guild.me.permissions_in(channel)
        payload, uploads = await read_body(request)
        if not perms & _SEND or (uploads and not perms & _ATTACH):
            raise rules.missing_permissions()
        changes = plan_message(
            payload,
            uploads,
            world=self.world,
            channel=channel,
            existing=None,
            size_limit=self.fake.channel_upload_limit,
        )
        message = FakeMessage(self.world.snowflakes.next(), channel, self.fake.bot_user)
        changes.apply(message, editing=False)
        if message.message_reference:
            message.type = 19
        channel.messages.append(message)
        self.fake.message_event("MESSAGE_CREATE", message)
        return json_response(message.to_payload())

    async def get_message(self, request: web.Request) -> web.Response:
        """GET /channels/{id}/messages/{message_id}."""
        channel = self._channel(request)
        return json_response(self._message(request, channel).to_payload())

    async def edit_message(self, request: web.Request) -> web.Response:
        """PATCH a message; only the bot's own messages may change content."""
        channel = self._channel(request)
        message = self._message(request, channel)
        payload, uploads = await read_body(request)
        if message.author_id != self.fake.bot_user.id and set(payload) - {"flags"}:
            raise rules.cannot_edit_others()
        changes = plan_message(
            payload,
            uploads,
            world=self.world,
            channel=channel,
            existing=message,
            size_limit=self.fake.channel_upload_limit,
        )
        changes.apply(message, editing=True)
        self.fake.message_event("MESSAGE_UPDATE", message)
        return json_response(message.to_payload())

    async def delete_message(self, request: web.Request) -> web.Response:
        """DELETE a message: 10008 unless it exists; others' messages need Manage Messages."""
        channel = self._channel(request)
        message = self._message(request, channel)
        if message.author_id != self.fake.bot_user.id and not channel.guild.me.permissions_in(channel) & _MANAGE:
            raise rules.missing_permissions()
        message.deleted = True
        self.fake.message_event("MESSAGE_DELETE", message)
        return web.Response(status=204)


def _int(request: web.Request, key: str) -> int:
    try:
        return int(request.match_info[key])
    except ValueError:
        # Discord answers a malformed snowflake with a form error.
        raise DiscordError(
            400,
            50035,
            "Invalid Form Body",
            {
                key: {
                    "_errors": [
                        {
                            "code": "NUMBER_TYPE_COERCE",
                            "message": f'Value "{request.match_info[key]}" is not snowflake.',
                        }
                    ]
                }
            },
        ) from None
