"""FakeDiscord: the test-facing object that owns the world, the server and the interactions."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from .commands import CommandRegistry
from .gateway import INTENT_MESSAGE_CONTENT, Gateway
from .interactions import (
    FakeInteraction,
)
from .invoke import Invocations
from .messages import FakeAttachment, FakeMessage
from .people import FakeMember, FakeUser
from .ratelimits import RateLimiter, RateLimitHit, RateLimits
from .rules import DEFAULT_UPLOAD_LIMIT, DiscordError
from .server import API_PREFIX, RuleViolation, build_app
from .world import FakeChannel, FakeGuild, World


class FakeDiscord(Invocations):
    """An in-process Discord (REST v10 + gateway) on 127.0.0.1 for the real discord.py client."""

    def __init__(
        self,
        token: str = "test-token",
        *,
        ack_deadline: float = 3.0,
        token_lifetime: float = 15 * 60,
        clock: Callable[[], float] = time.monotonic,
        bot_name: str = "FakeBot",
        attachment_size_limit: int = DEFAULT_UPLOAD_LIMIT,
        channel_upload_limit: int = DEFAULT_UPLOAD_LIMIT,
        application_flags: int = 0,
        rate_limits: RateLimits | None = None,
        check_spec: bool = True,
    ) -> None:
        self.token = token
        self.ack_deadline = ack_deadline
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.attachment_size_limit = attachment_size_limit
        self.channel_upload_limit = channel_upload_limit
        self.application_flags = application_flags
        self.world = World(bot_name)
        self.world.emit = self._world_event
        self.commands = CommandRegistry(self.world)
        self.gateway = Gateway(self)
        self.interactions: dict[int, FakeInteraction] = {}
        self.requests: list[tuple[str, str, int]] = []
        #: Which gateway sessions receive an interaction: "active" (the one connected last),
        #: "everywhere" (every session: processes holding one shard) or "spread" (each in turn).
        self.interaction_routing = "active"
        self.unhandled_routes: list[tuple[str, str]] = []
        self.errors: list[RuleViolation] = []
        #: Requests Discord's OpenAPI description rejects (also in `errors`); the harness fails a test that has any.
        self.spec_violations: list[RuleViolation] = []
        #: Check every REST request against Discord's OpenAPI description.
        self.check_spec = check_spec
        #: Discord's rate limits, when given; `rate_limited` lists the 429s sent.
        self.rate_limiter = RateLimiter(rate_limits) if rate_limits is not None else None
        #: Which response messages are interim progress notes rather than answers (see wait_answer).
        self.is_progress: Callable[[FakeMessage], bool] = lambda message: False
        self.internal_errors: list[Exception] = []
        self.port = 0
        self._by_token: dict[str, FakeInteraction] = {}
        self._callbacks_open = asyncio.Event()
        self._callbacks_open.set()
        #: Interaction callbacks waiting for release_callbacks().
        self.held_callbacks = 0
        self._callback_drops = 0
        self._uploads_open = asyncio.Event()
        self._uploads_open.set()
        #: Uploads (multipart requests) being held by `hold_uploads()`.
        self.uploads_held = 0
        #: Command syncs (bulk overwrites) kept waiting by `hold_command_syncs()`.
        self._syncs_open = asyncio.Event()
        self._syncs_open.set()
        self.syncs_held = 0
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._runner = web.AppRunner(build_app(self), handle_signals=False, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.world.base_url = f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        """Close gateway sockets and stop the server."""
        self.release_uploads()
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- addresses and identity ------------------------------------------------------------------

    @property
    def api_base_url(self) -> str:
        """Value for discord.http.Route.BASE."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """Value for DiscordWebSocket.DEFAULT_GATEWAY (also READY's resume_gateway_url)."""
        return f"ws://127.0.0.1:{self.port}/gateway/"

    @property
    def application_id(self) -> int:
        """The application's id (also the bot user's id, as on Discord)."""
        return self.world.application_id

    def assert_no_spec_violations(self) -> None:
        """Fail (AssertionError) if the bot sent a request Discord's OpenAPI description rejects."""
        lines = [f"  {v.method} {v.path}: {v.status} {v.code} {v.message} {v.errors}" for v in self.spec_violations]
        assert not lines, "requests that Discord's OpenAPI description rejects:\n" + "\n".join(lines)

    def set_rate_limits(self, limits: RateLimits | None) -> None:
        """Enforce Discord's rate limits from now on (None: no limits)."""
        self.rate_limiter = RateLimiter(limits) if limits is not None else None

    @property
    def rate_limited(self) -> list[RateLimitHit]:
        """The 429s sent, oldest first."""
        return self.rate_limiter.hits if self.rate_limiter is not None else []

    @property
    def recommended_shards(self) -> int:
        """GET /gateway/bot's `shards`: about one per 1,000 guilds, and enough that no session is refused."""
        per_shard = min(1000, self.gateway.max_guilds_per_session)
        return max(1, -(-len(self.world.guilds) // per_shard))

    @property
    def bot_user(self) -> FakeUser:
        """The bot's user."""
        return self.world.bot_user

    @property
    def synced_commands(self) -> dict[int | None, list[dict[str, Any]]]:
        """Command payloads exactly as the bot PUT them, per scope (None = global)."""
        return self.commands.synced

    @property
    def sync_calls(self) -> dict[int | None, int]:
        """Bulk-overwrite calls per scope."""
        return self.commands.calls

    @property
    def gateway_connected(self) -> bool:
        """A client is connected to the live session."""
        return self.gateway.connected

    # -- world -----------------------------------------------------------------------------------

    def add_guild(
        self,
        name: str = "Guild",
        owner_id: int | None = None,
        *,
        bot_permissions: int | None = None,
        everyone_permissions: int = 0,
        shard: tuple[int, int] | None = None,
    ) -> FakeGuild:
        """Create a guild the bot is in (a connected client of its shard gets GUILD_CREATE); `shard`
        (id, count): with an id on that shard."""
        guild = self.world.add_guild(
            name, owner_id, bot_permissions=bot_permissions, everyone_permissions=everyone_permissions, shard=shard
        )
        self.gateway.dispatch("GUILD_CREATE", guild.to_payload(), guild.id)
        return guild

    def add_user(self, name: str) -> FakeUser:
        """A user in no guild (e.g. for a USER option naming a non-member)."""
        return self.world.add_user(name)

    def _world_event(self, event: str, data: dict[str, Any]) -> None:
        guild_id = data.get("guild_id")
        self.gateway.dispatch(event, data, int(guild_id) if guild_id else None)

    def message_event(self, event: str, message: FakeMessage) -> None:
        """MESSAGE_CREATE/UPDATE/DELETE for non-ephemeral messages, honouring the message-content intent."""
        if message.ephemeral:
            return
        data: dict[str, Any]
        if event == "MESSAGE_DELETE":
            data = {"id": str(message.id), "channel_id": str(message.channel_id), "guild_id": str(message.guild_id)}
        else:
            data = message.to_payload()
            session = self.gateway.active
            private = message.author_id != self.bot_user.id and self.bot_user.mention not in message.content
            if session is not None and private and not session.intents & INTENT_MESSAGE_CONTENT:
                data.update(content="", embeds=[], attachments=[], components=[])
        self.gateway.dispatch(event, data, message.guild_id)

    async def post_message(
        self,
        author: FakeMember,
        channel: FakeChannel,
        content: str = "",
        *,
        attachments: list[FakeAttachment] | None = None,
    ) -> FakeMessage:
        """A user posts a message (MESSAGE_CREATE is dispatched when the bot's intents allow)."""
        message = channel.add_message(author, content, attachments=attachments)
        self.message_event("MESSAGE_CREATE", message)
        await self.changed()
        return message

    # -- failures --------------------------------------------------------------------------------

    def fail_uploads(self, status: int, code: int, message: str, *, times: int = 1) -> None:
        """Answer the next `times` message creates or edits that carry files (a channel post, an
        interaction response, its edits or followups) with this error instead."""
        for _ in range(times):
            self.world.upload_failures.append(DiscordError(status, code, message))

    def hold_callbacks(self) -> None:
        """Keep interaction callbacks (acknowledgements) waiting until release_callbacks()."""
        self._callbacks_open.clear()

    def release_callbacks(self) -> None:
        """Let held interaction callbacks through."""
        self._callbacks_open.set()

    def drop_next_callback(self, times: int = 1) -> None:
        """Hang up on the next `times` interaction callbacks without acknowledging them."""
        self._callback_drops += times

    async def callback_gate(self, request: web.Request) -> bool:
        """Hold a callback while held; True if its connection was closed instead of answered."""
        if not self._callbacks_open.is_set():
            self.held_callbacks += 1
            await self.changed()
            try:
                await self._callbacks_open.wait()
            finally:
                self.held_callbacks -= 1
        if not self._callback_drops:
            return False
        self._callback_drops -= 1
        if request.transport is not None:
            request.transport.close()
        return True

    # -- waiting ---------------------------------------------------------------------------------

    def hold_uploads(self) -> None:
        """Keep every request that uploads files waiting, unanswered, until `release_uploads()`."""
        self._uploads_open.clear()

    def release_uploads(self) -> None:
        """Answer held uploads, and stop holding them."""
        self._uploads_open.set()

    async def pass_upload_gate(self) -> None:
        """Wait here while uploads are held (called for each multipart request)."""
        if not self._uploads_open.is_set():
            self.uploads_held += 1
            await self.changed()
            await self._uploads_open.wait()

    def hold_command_syncs(self) -> None:
        """Keep command bulk overwrites waiting, unanswered, until `release_command_syncs()`."""
        self._syncs_open.clear()

    def release_command_syncs(self) -> None:
        """Answer held command syncs, and stop holding them."""
        self._syncs_open.set()

    async def pass_sync_gate(self) -> None:
        """Wait here while command syncs are held (called for each bulk overwrite)."""
        if not self._syncs_open.is_set():
            self.syncs_held += 1
            await self.changed()
            await self._syncs_open.wait()

    async def changed(self) -> None:
        """Wake every wait_for (called after each request and gateway frame)."""
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[], object], timeout: float = 10, *, what: str | None = None, poll: float = 0.02
    ) -> None:
        """Wait until predicate() is truthy, re-checked on every state change (and every `poll` seconds).

        The poll covers predicates over the bot's own state, which changes after the fake's last request.
        """
        try:
            async with asyncio.timeout(timeout), self._changed:
                while not predicate():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), poll)
        except TimeoutError:
            recent = "\n  ".join(f"{m} {p} -> {s}" for m, p, s in self.requests[-15:]) or "(none)"
            errors = "\n  ".join(f"{e.method} {e.path}: {e.status} {e.code} {e.message}" for e in self.errors[-5:])
            raise TimeoutError(
                f"timed out after {timeout}s waiting for {what or getattr(predicate, '__name__', 'predicate')}\n"
                f"recent requests:\n  {recent}\nrecent errors:\n  {errors or '(none)'}\n"
                f"unhandled routes: {self.unhandled_routes[-5:]}\ninternal errors of the fake: {self.internal_errors}"
            ) from None

    async def wait_ready(self, timeout: float = 10) -> None:
        """Wait until a client identified and READY plus every GUILD_CREATE were written to it."""
        await self.wait_for(
            lambda: self.gateway.ready.is_set() and self.gateway.connected, timeout, what="READY + GUILD_CREATE"
        )

    # -- interactions ----------------------------------------------------------------------------

    def interaction_by_token(self, token: str) -> FakeInteraction | None:
        """The interaction a webhook token belongs to."""
        return self._by_token.get(token)

    def expire_token(self, ix: FakeInteraction) -> None:
        """Make the interaction's token expired now (webhook routes answer 401 50027)."""
        ix.expired = True

    async def drop_gateway(self, resumable: bool = True, *, hold: bool = False) -> None:
        """Close the client's socket; it reconnects and RESUMEs (re-IDENTIFYs if not resumable).

        With hold=True reconnects wait until restore_gateway(), so dispatches in between are buffered.
        """
        await self.gateway.drop(resumable=resumable, hold=hold)

    def restore_gateway(self) -> None:
        """Accept the reconnect held by drop_gateway(hold=True)."""
        self.gateway.release()

    async def wait_resumed(self, count: int = 1, timeout: float = 10) -> None:
        """Wait until `count` RESUMEs have been accepted and the client is connected again."""
        await self.wait_for(
            lambda: self.gateway.resume_count >= count and self.gateway.connected,
            timeout,
            what=f"{count} gateway RESUME(s)",
        )

    async def _dispatch(self, ix: FakeInteraction) -> FakeInteraction:
        self.interactions[ix.id] = ix
        self._by_token[ix.token] = ix

        def sent() -> None:
            if ix.dispatched_at is None:
                ix.dispatched_at = self.clock()

        guild_id = None if ix.channel.is_dm else ix.channel.guild.id
        routing = self.interaction_routing
        if not self.gateway.dispatch("INTERACTION_CREATE", ix.payload(), guild_id, on_sent=sent, routing=routing):
            raise RuntimeError("no gateway session: start the client and await fake.wait_ready() first")
        await self.changed()
        return ix
