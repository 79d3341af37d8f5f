"""Interaction callbacks and the interaction-token webhook routes (followups, @original)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import rules
from .interactions import APPLICATION_COMMAND, MESSAGE_COMPONENT, MODAL_SUBMIT, AckRecord, FakeInteraction
from .messages import FakeMessage, plan_message
from .multipart import Upload, json_response, read_body
from .rules import FLAG_EPHEMERAL, FLAG_LOADING, DiscordError, FormErrors

if TYPE_CHECKING:
    from .fake import FakeDiscord

_ALLOWED_CALLBACKS = {APPLICATION_COMMAND: {4, 5, 9}, MESSAGE_COMPONENT: {4, 5, 6, 7, 9}, MODAL_SUBMIT: {4, 5, 6, 7}}


class WebhookRoutes:
    """Routes authorized by the interaction id/token in the URL instead of a bot token."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.world = fake.world

    def register(self, router: web.UrlDispatcher, prefix: str) -> None:
        """Add the callback and webhook routes under prefix (/api/v10)."""
        hook = prefix + "/webhooks/{app_id}/{token}"
        router.add_post(prefix + "/interactions/{interaction_id}/{token}/callback", self.callback)
        router.add_post(hook, self.execute)
        router.add_get(hook + "/messages/@original", self.get_message)
        router.add_patch(hook + "/messages/@original", self.edit_message)
        router.add_delete(hook + "/messages/@original", self.delete_message)
        router.add_get(hook + "/messages/{message_id}", self.get_message)
        router.add_patch(hook + "/messages/{message_id}", self.edit_message)
        router.add_delete(hook + "/messages/{message_id}", self.delete_message)

    async def callback(self, request: web.Request) -> web.Response:
        """POST /interactions/{id}/{token}/callback."""
        ix = self.fake.interactions.get(int(request.match_info["interaction_id"]))
        if ix is None or ix.token != request.match_info["token"]:
            raise rules.unknown_interaction()
        try:
            if ix.ack is not None or ix.acking:
                raise rules.already_acknowledged()
            # Claimed before the body is read, so a concurrent second callback is refused too.
            ix.acking = True
            try:
                if await self.fake.callback_gate(request):
                    return web.Response(status=500)  # never sent: the connection is closed
                return await self._callback(ix, request)
            finally:
                ix.acking = False
        except DiscordError as err:
            ix.errors.append((err.status, err.code, err.message))
            err.interaction_id = ix.id
            raise

    async def _callback(self, ix: FakeInteraction, request: web.Request) -> web.Response:
        now = self.fake.clock()
        if ix.dispatched_at is None or now - ix.dispatched_at > self.fake.ack_deadline:
            raise rules.unknown_interaction()
        body, uploads = await read_body(request)
        kind = body.get("type")
        data: dict[str, Any] = body.get("data") or {}
        if not isinstance(kind, int):
            kind = -1
        allowed = _ALLOWED_CALLBACKS.get(ix.type, set())
        if ix.message is None:
            # Without a message there is nothing to update; a bare deferred update (6) still just acks.
            allowed = allowed - {7}
        if kind not in allowed:
            errs = FormErrors()
            errs.add(("type",), "BASE_TYPE_CHOICES", f"Value must be one of {sorted(allowed)}.")
            errs.raise_if_any()
        ephemeral = False
        if kind == 4:
            message = self._new_message(ix, data, uploads, nest_under="data")
            ix.original = ix.response_message = message
            ephemeral = message.ephemeral
        elif kind == 5:
            ephemeral = bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            message = self._message_for(ix, FLAG_LOADING | (FLAG_EPHEMERAL if ephemeral else 0))
            ix.original = message
            ix.channel.messages.append(message)
            self.fake.message_event("MESSAGE_CREATE", message)
        elif kind in (6, 7):
            ix.original = ix.message
            ephemeral = ix.message is not None and ix.message.ephemeral
            if kind == 7 and ix.message is not None:
                self._edit(ix, ix.message, data, uploads, nest_under="data")
                ix.response_message = ix.message
        else:
            errs = FormErrors()
            rules.check_modal(data, errs)
            errs.raise_if_any("data")
            ix.modal = copy.deepcopy(data)
        ix.ack = AckRecord(kind, ephemeral, now - ix.dispatched_at, copy.deepcopy(data))
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        result: dict[str, Any] = {
            "interaction": {
                "id": str(ix.id),
                "type": ix.type,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": ephemeral,
            }
        }
        resource: dict[str, Any] = {"type": kind}
        if kind in (4, 5, 7) and ix.original is not None:
            result["interaction"]["response_message_id"] = str(ix.original.id)
            resource["message"] = ix.original.to_payload()
        result["resource"] = resource
        return json_response(result)

    def _message_for(self, ix: FakeInteraction, flags: int) -> FakeMessage:
        kind = 0
        if ix.type == APPLICATION_COMMAND:
            kind = 20 if ix.data.get("type", 1) == 1 else 23
        return FakeMessage(
            self.world.snowflakes.next(),
            ix.channel,
            self.fake.bot_user,
            flags=flags,
            interaction_id=ix.id,
            type=kind,
            webhook_id=self.fake.application_id,
            interaction_metadata=ix.metadata(),
        )

    def _new_message(
        self, ix: FakeInteraction, data: dict[str, Any], uploads: list[Upload], nest_under: str | None = None
    ) -> FakeMessage:
        changes = plan_message(
            data,
            uploads,
            world=self.world,
            channel=ix.channel,
            existing=None,
            size_limit=ix.attachment_size_limit,
            nest_under=nest_under,
            allow_ephemeral=True,
        )
        message = self._message_for(ix, 0)
        changes.apply(message, editing=False)
        ix.channel.messages.append(message)
        self.fake.message_event("MESSAGE_CREATE", message)
        return message

    def _edit(
        self,
        ix: FakeInteraction,
        message: FakeMessage,
        data: dict[str, Any],
        uploads: list[Upload],
        nest_under: str | None = None,
    ) -> None:
        changes = plan_message(
            data,
            uploads,
            world=self.world,
            channel=ix.channel,
            existing=message,
            size_limit=ix.attachment_size_limit,
            nest_under=nest_under,
        )
        was_loading = message.loading
        changes.apply(message, editing=not was_loading)
        message.flags &= ~FLAG_LOADING
        self.fake.message_event("MESSAGE_UPDATE", message)

    def _interaction(self, request: web.Request) -> FakeInteraction:
        ix = self.fake.interaction_by_token(request.match_info["token"])
        if ix is None:
            raise rules.invalid_webhook_token()
        if request.match_info["app_id"] != str(self.fake.application_id):
            raise rules.unknown_webhook()
        expired = ix.dispatched_at is not None and self.fake.clock() - ix.dispatched_at > self.fake.token_lifetime
        if ix.expired or expired:
            raise rules.invalid_webhook_token()
        if ix.ack is None:
            raise rules.unknown_webhook()
        return ix

    def _target(self, ix: FakeInteraction, request: web.Request) -> FakeMessage:
        raw = request.match_info.get("message_id")
        target = ix.original if raw is None else next((m for m in ix.owned_messages() if str(m.id) == raw), None)
        if target is None or target.deleted:
            raise rules.unknown_message()
        return target

    async def _guarded(self, request: web.Request, action: str) -> web.Response:
        ix = self.fake.interaction_by_token(request.match_info["token"])
        try:
            ix = self._interaction(request)
            if action == "execute":
                return await self._execute(ix, request)
            target = self._target(ix, request)
            if action == "get":
                return json_response(target.to_payload())
            if action == "delete":
                target.deleted = True
                self.fake.message_event("MESSAGE_DELETE", target)
                return web.Response(status=204)
            payload, uploads = await read_body(request)
            self._edit(ix, target, payload, uploads)
            if ix.response_message is None:
                ix.response_message = target
            return json_response(target.to_payload())
        except DiscordError as err:
            if ix is not None:
                ix.errors.append((err.status, err.code, err.message))
                err.interaction_id = ix.id
            raise

    async def _execute(self, ix: FakeInteraction, request: web.Request) -> web.Response:
        payload, uploads = await read_body(request)
        original = ix.original
        if original is not None and original.loading and not original.deleted:
            # The first followup after a deferral replaces the "thinking" message and keeps its ephemerality.
            changes = plan_message(
                payload,
                uploads,
                world=self.world,
                channel=ix.channel,
                existing=None,
                size_limit=ix.attachment_size_limit,
                allow_ephemeral=True,
            )
            sent_flags = int(changes.fields.get("flags", 0))
            changes.fields["flags"] = (original.flags & FLAG_EPHEMERAL) | (sent_flags & ~FLAG_EPHEMERAL)
            if changes.attachments is None:
                changes.attachments = []
            changes.apply(original, editing=False)
            self.fake.message_event("MESSAGE_UPDATE", original)
            message = original
        else:
            message = self._new_message(ix, payload, uploads)
        ix.followups.append(message)
        if ix.response_message is None:
            ix.response_message = message
        if request.query.get("wait", "").lower() in ("1", "true"):
            return json_response(message.to_payload())
        return web.Response(status=204)

    async def execute(self, request: web.Request) -> web.Response:
        """POST /webhooks/{app}/{token}: a followup message."""
        return await self._guarded(request, "execute")

    async def get_message(self, request: web.Request) -> web.Response:
        """GET @original or a followup."""
        return await self._guarded(request, "get")

    async def edit_message(self, request: web.Request) -> web.Response:
        """PATCH @original or a followup (fills in a deferred response)."""
        return await self._guarded(request, "edit")

    async def delete_message(self, request: web.Request) -> web.Response:
        """DELETE @original or a followup."""
        return await self._guarded(request, "delete")
