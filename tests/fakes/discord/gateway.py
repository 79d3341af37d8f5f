"""The gateway: HELLO/IDENTIFY/READY/RESUME over plain-text JSON frames, with per-session replay.
A session identified with `shard: [id, count]` gets only the guilds with `(guild_id >> 22) % count == id`
(and, as shard 0, what belongs to no guild); one identified without gets everything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from .fake import FakeDiscord

HEARTBEAT_INTERVAL_MS = 41250
INTENT_GUILDS = 1 << 0
INTENT_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_MESSAGE_CONTENT = 1 << 15
_EVENT_INTENTS = {
    "GUILD_CREATE": INTENT_GUILDS,
    "GUILD_UPDATE": INTENT_GUILDS,
    "GUILD_DELETE": INTENT_GUILDS,
    "CHANNEL_CREATE": INTENT_GUILDS,
    "CHANNEL_UPDATE": INTENT_GUILDS,
    "CHANNEL_DELETE": INTENT_GUILDS,
    "GUILD_ROLE_CREATE": INTENT_GUILDS,
    "GUILD_MEMBER_ADD": INTENT_MEMBERS,
    "GUILD_MEMBER_REMOVE": INTENT_MEMBERS,
    "MESSAGE_CREATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_UPDATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE": INTENT_GUILD_MESSAGES,
}


@dataclass
class Frame:
    """One outgoing frame; dispatches carry a sequence number and may call back once written."""

    seq: int | None
    text: str
    on_sent: Callable[[], None] | None = None


@dataclass(eq=False)
class GatewaySession:
    """An identified session: its sequence counter and every dispatch, kept for RESUME replay."""

    id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    log: list[Frame] = field(default_factory=list)
    queue: asyncio.Queue[Frame] | None = None
    socket: web.WebSocketResponse | None = None
    invalid: bool = False
    guilds: set[int] = field(default_factory=set)
    #: When it was last identified or resumed: of several sessions, the latest is the active one.
    activated: int = 0

    def covers(self, guild_id: int | None) -> bool:
        """Whether this session's shard holds the guild (events of no guild go to shard 0)."""
        if self.shard is None:
            return True
        shard_id, count = self.shard
        return shard_of(guild_id, count) == shard_id if guild_id is not None else shard_id == 0

    def wants(self, event: str, guild_id: int | None) -> bool:
        """Whether Discord would send this event to this session (intents, guild known)."""
        needed = _EVENT_INTENTS.get(event, 0)
        if needed and not self.intents & needed:
            return False
        if not self.covers(guild_id):
            return False
        return event == "GUILD_CREATE" or guild_id is None or guild_id in self.guilds

    def dispatch(self, event: str, data: dict[str, Any], on_sent: Callable[[], None] | None = None) -> int:
        """Sequence, log, and send now if connected (otherwise it waits for RESUME)."""
        self.seq += 1
        frame = Frame(self.seq, json.dumps({"op": 0, "t": event, "s": self.seq, "d": data}), on_sent)
        self.log.append(frame)
        if self.queue is not None:
            self.queue.put_nowait(frame)
        return self.seq


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard that receives a guild's events, as Discord computes it."""
    return (guild_id >> 22) % shard_count


def shard_problem(shard: object) -> tuple[int, bytes] | None:
    """Why Discord would refuse IDENTIFY's `shard` field (close code and reason), or None if it is fine."""
    if shard is None:
        return None
    valid = (
        isinstance(shard, list)
        and len(shard) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in shard)
        and 0 <= shard[0] < shard[1]
    )
    return None if valid else (4010, b"Invalid shard.")


class Gateway:
    """Accepts websocket connections at /gateway/ and routes dispatches to the active session."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: dict[str, GatewaySession] = {}
        self.active: GatewaySession | None = None
        #: The latest session of each shard ([id, count] as a tuple; None: unsharded).
        self._latest: dict[tuple[int, int] | None, GatewaySession] = {}
        self._activations = 0
        #: More guilds than this on one session is refused with 4011 Sharding required, as on Discord.
        self.max_guilds_per_session = 2500
        self.identify_count = 0
        self._turn = -1
        self.resume_count = 0
        self.ready = asyncio.Event()
        self.sockets: set[web.WebSocketResponse] = set()
        self._dropped: set[web.WebSocketResponse] = set()
        self.accepting = asyncio.Event()
        self.accepting.set()
        #: Cleared by a test to keep connected clients waiting for HELLO (mid-handshake).
        self.greeting = asyncio.Event()
        self.greeting.set()

    @property
    def connected(self) -> bool:
        """A client is connected to the active session."""
        return self.active is not None and self.active.socket is not None

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Websocket handler for one connection."""
        # While a test holds the gateway down, reconnecting clients wait here (before HELLO).
        await self.accepting.wait()
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.sockets.add(ws)
        queue: asyncio.Queue[Frame] = asyncio.Queue()
        writer = asyncio.create_task(self._writer(ws, queue))
        session: GatewaySession | None = None
        await self.fake.changed()
        try:
            await self.greeting.wait()
            if request.query.get("v", "10") != "10":
                await ws.close(code=4012, message=b"Invalid API version")
                return ws
            if request.query.get("encoding", "json") != "json":
                await ws.close(code=4002, message=b"Decode error")
                return ws
            queue.put_nowait(
                Frame(
                    None,
                    json.dumps({"op": 10, "s": None, "t": None, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}}),
                )
            )
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    await ws.close(code=4002, message=b"Decode error")
                    break
                session = await self._receive(ws, queue, session, json.loads(msg.data))
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            self.sockets.discard(ws)
            dropped = ws in self._dropped
            self._dropped.discard(ws)
            if session is not None and session.socket is ws:
                session.socket = None
                session.queue = None
                # A client's own 1000/1001 close ends the session for good, as on Discord.
                if ws.close_code in (1000, 1001) and not dropped:
                    session.invalid = True
                    if self.active is session:
                        self.active = None
                    if self._latest.get(_shard_key(session)) is session:
                        del self._latest[_shard_key(session)]
            await self.fake.changed()
        return ws

    async def _writer(self, ws: web.WebSocketResponse, queue: asyncio.Queue[Frame]) -> None:
        # One writer per socket keeps frames strictly in sequence order.
        while True:
            frame = await queue.get()
            if ws.closed:
                return
            try:
                await ws.send_str(frame.text)
            except (ConnectionError, RuntimeError):
                return
            if frame.on_sent is not None:
                frame.on_sent()
            await self.fake.changed()

    async def _receive(
        self,
        ws: web.WebSocketResponse,
        queue: asyncio.Queue[Frame],
        session: GatewaySession | None,
        msg: dict[str, Any],
    ) -> GatewaySession | None:
        op, data = msg.get("op"), msg.get("d")
        if op == 1:
            queue.put_nowait(Frame(None, json.dumps({"op": 11, "s": None, "t": None, "d": None})))
        elif op == 2:
            if session is not None:
                await ws.close(code=4005, message=b"Already authenticated.")
            elif not isinstance(data, dict) or data.get("token") != self.fake.token:
                await ws.close(code=4004, message=b"Authentication failed.")
            elif (refusal := self._refuse_shard(data.get("shard"))) is not None:
                await ws.close(code=refusal[0], message=refusal[1])
            else:
                return self._identify(ws, queue, data)
        elif op == 6:
            return self._resume(ws, queue, data if isinstance(data, dict) else {})
        elif session is None:
            await ws.close(code=4003, message=b"Not authenticated.")
        elif op == 8 and isinstance(data, dict):
            self._chunk(session, data)
        elif op not in (3, 4):
            await ws.close(code=4001, message=b"Unknown opcode.")
        return session

    def _refuse_shard(self, shard: object) -> tuple[int, bytes] | None:
        """4010 for a malformed shard array, 4011 when the session would hold too many guilds."""
        problem = shard_problem(shard)
        if problem is not None:
            return problem
        count, shard_id = (shard[1], shard[0]) if isinstance(shard, list) else (1, 0)
        held = [g for g in self.fake.world.guilds if shard_of(g, count) == shard_id]
        return (4011, b"Sharding required.") if len(held) > self.max_guilds_per_session else None

    def _attach(self, session: GatewaySession, ws: web.WebSocketResponse, queue: asyncio.Queue[Frame]) -> None:
        session.socket = ws
        session.queue = queue
        self.active = session
        self._activations += 1
        session.activated = self._activations
        self._latest[_shard_key(session)] = session

    def active_for(self, guild_id: int | None) -> GatewaySession | None:
        """The session that receives this guild's events: the latest valid one of the shard holding it."""
        holding = [s for s in self._latest.values() if not s.invalid and s.covers(guild_id)]
        return max(holding, key=lambda s: s.activated, default=None)

    def _identify(self, ws: web.WebSocketResponse, queue: asyncio.Queue[Frame], data: dict[str, Any]) -> GatewaySession:
        self.identify_count += 1
        self.ready.clear()
        session = GatewaySession(secrets.token_hex(16), int(data.get("intents", 0)), data.get("shard"))
        self.sessions[session.id] = session
        self._attach(session, ws, queue)
        fake = self.fake
        ready: dict[str, Any] = {
            "v": 10,
            "user": {**fake.bot_user.to_payload(), "verified": True, "mfa_enabled": False, "locale": "en-US"},
            "guilds": [{"id": str(g), "unavailable": True} for g in fake.world.guilds if session.covers(g)],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": fake.gateway_url,
            "application": {"id": str(fake.application_id), "flags": fake.application_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
            "user_settings": {},
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        held = [g for g in fake.world.guilds.values() if session.covers(g.id)]
        guilds = held if session.intents & INTENT_GUILDS else []
        session.dispatch("READY", ready, None if guilds else self.ready.set)
        for i, guild in enumerate(guilds):
            session.guilds.add(guild.id)
            session.dispatch("GUILD_CREATE", guild.to_payload(), self.ready.set if i == len(guilds) - 1 else None)
        return session

    def _resume(
        self, ws: web.WebSocketResponse, queue: asyncio.Queue[Frame], data: dict[str, Any]
    ) -> GatewaySession | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or session.invalid or data.get("token") != self.fake.token:
            queue.put_nowait(Frame(None, json.dumps({"op": 9, "s": None, "t": None, "d": False})))
            return None
        self.resume_count += 1
        self._attach(session, ws, queue)
        seen = data.get("seq") or 0
        for frame in session.log:
            if frame.seq is not None and frame.seq > seen:
                queue.put_nowait(frame)
        session.dispatch("RESUMED", {})
        return session

    def _chunk(self, session: GatewaySession, data: dict[str, Any]) -> None:
        guild = self.fake.world.guilds.get(int(data.get("guild_id") or 0))
        if guild is None:
            return
        members = list(guild.members.values())
        if data.get("user_ids"):
            wanted = {int(u) for u in data["user_ids"]}
            members = [m for m in members if m.id in wanted]
        elif data.get("query"):
            members = [m for m in members if m.name.lower().startswith(str(data["query"]).lower())]
        if data.get("limit"):
            members = members[: int(data["limit"])]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [m.to_payload() for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
            "presences": [],
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    def dispatch(
        self,
        event: str,
        data: dict[str, Any],
        guild_id: int | None = None,
        on_sent: Callable[[], None] | None = None,
        *,
        routing: str = "active",
    ) -> bool:
        """Send an event to the active session of the guild's shard if it would receive it; False when there is none.
        routing "everywhere": to every connected session that would (processes holding one shard);
        "spread": to the connected sessions in turn (processes sharing the load)."""
        if routing != "active":
            live = [s for s in self.sessions.values() if s.socket is not None and not s.invalid]
            live = [s for s in live if s.wants(event, guild_id)]
            if routing == "spread" and live:
                self._turn += 1
                live = [live[self._turn % len(live)]]
            for each in live:
                each.dispatch(event, data, on_sent)
            return bool(live)
        session = self.active_for(guild_id)
        if session is None or session.invalid or not session.wants(event, guild_id):
            return False
        if event == "GUILD_CREATE" and guild_id is not None:
            session.guilds.add(guild_id)
        session.dispatch(event, data, on_sent)
        return True

    async def drop(self, *, resumable: bool = True, hold: bool = False) -> None:
        """Close the active socket and wait until it is detached; hold=True refuses reconnects until release()."""
        session = self.active
        if session is None or session.socket is None:
            raise RuntimeError("no connected gateway session to drop")
        ws = session.socket
        if not resumable:
            session.invalid = True
        if hold:
            self.accepting.clear()
        self._dropped.add(ws)
        # 4000/4009 are codes discord.py treats as "reconnect and try RESUME".
        await ws.close(code=4000 if resumable else 4009, message=b"dropped by test")
        await self.fake.wait_for(lambda: session.socket is not ws, 10, what="dropped socket to detach")

    def release(self) -> None:
        """Let held reconnects through."""
        self.accepting.set()

    async def close(self) -> None:
        """Close every socket (server shutdown)."""
        self.accepting.set()
        self.greeting.set()
        for ws in list(self.sockets):
            self._dropped.add(ws)
            await ws.close(code=1001, message=b"server shutdown")


def _shard_key(session: GatewaySession) -> tuple[int, int] | None:
    return (session.shard[0], session.shard[1]) if session.shard is not None else None
