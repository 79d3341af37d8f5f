"""Interactions the fake dispatches, what happened to them, and their INTERACTION_CREATE payloads."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .commands import InvalidInvocation
from .messages import FakeMessage
from .people import FakeMember
from .world import FakeChannel

if TYPE_CHECKING:
    from .fake import FakeDiscord

APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
MODAL_SUBMIT = 5


@dataclass
class AckRecord:
    """The interaction callback that acknowledged an interaction."""

    type: int
    ephemeral: bool
    elapsed: float
    data: dict[str, Any]


@dataclass(eq=False)
class FakeInteraction:
    """One interaction: its payload and everything the bot did with its id and token."""

    fake: FakeDiscord = field(repr=False)
    id: int
    type: int
    member: FakeMember = field(repr=False)
    channel: FakeChannel = field(repr=False)
    data: dict[str, Any] = field(repr=False)
    attachment_size_limit: int
    message: FakeMessage | None = field(default=None, repr=False)
    locale: str = "en-US"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(48).replace("-", "x").replace("_", "y"))
    dispatched_at: float | None = None
    ack: AckRecord | None = None
    original: FakeMessage | None = field(default=None, repr=False)
    response_message: FakeMessage | None = field(default=None, repr=False)
    followups: list[FakeMessage] = field(default_factory=list, repr=False)
    modal: dict[str, Any] | None = field(default=None, repr=False)
    errors: list[tuple[int, int, str]] = field(default_factory=list)
    expired: bool = False
    acking: bool = field(default=False, repr=False)

    def owned_messages(self) -> Iterator[FakeMessage]:
        """Messages this token may fetch/edit/delete: the original response and followups."""
        if self.original is not None:
            yield self.original
        yield from self.followups

    def payload(self) -> dict[str, Any]:
        """The INTERACTION_CREATE `d` with every key discord.py's Interaction._from_data reads."""
        guild = self.channel.guild
        data: dict[str, Any] = {
            "id": str(self.id),
            "application_id": str(self.fake.application_id),
            "type": self.type,
            "data": self.data,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": guild.locale, "features": []},
            "channel_id": str(self.channel.id),
            "channel": self.channel.to_payload(),
            "member": self.member.to_payload(channel=self.channel),
            "token": self.token,
            "version": 1,
            "app_permissions": str(guild.me.permissions_in(self.channel)),
            "locale": self.locale,
            "guild_locale": guild.locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": self.attachment_size_limit,
        }
        if self.channel.is_dm:
            # A direct message (e.g. with a user-installed app): the user, and nothing of a guild.
            for key in ("guild_id", "guild", "member", "guild_locale"):
                del data[key]
            data.update(
                user=self.member.user.to_payload(),
                context=1,
                authorizing_integration_owners={"1": str(self.member.id)},
            )
        if self.message is not None:
            data["message"] = self.message.to_payload()
        return data

    def metadata(self) -> dict[str, Any]:
        """`interaction_metadata` put on response messages."""
        meta: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "user": self.member.user.to_payload(),
            "authorizing_integration_owners": {"0": str(self.channel.guild.id)},
        }
        if self.type == APPLICATION_COMMAND:
            meta["name"] = self.data.get("name")
            meta["command_type"] = self.data.get("type", 1)
        if self.message is not None:
            meta["interacted_message_id"] = str(self.message.id)
        return meta

    async def wait_ack(self, timeout: float = 5) -> AckRecord:
        """Wait until the bot's callback was accepted."""
        await self.fake.wait_for(lambda: self.ack is not None, timeout, what=f"ack of {self.describe()}")
        assert self.ack is not None
        return self.ack

    async def wait_response_message(self, timeout: float = 30) -> FakeMessage:
        """Wait for the visible response (type 4/7 message, or the deferred message once filled in)."""
        await self.fake.wait_for(
            lambda: self.response_message is not None, timeout, what=f"response message of {self.describe()}"
        )
        assert self.response_message is not None
        return self.response_message

    async def wait_answer(self, timeout: float = 30) -> FakeMessage:
        """Wait for the response message to hold the bot's answer, not a progress note
        (`fake.is_progress` tells which messages are progress notes)."""

        def answered() -> bool:
            message = self.response_message
            return message is not None and not self.fake.is_progress(message)

        await self.fake.wait_for(answered, timeout, what=f"answer of {self.describe()}")
        assert self.response_message is not None
        return self.response_message

    def describe(self) -> str:
        """Short label used in timeout errors."""
        name = self.data.get("name") or self.data.get("custom_id")
        ack = None if self.ack is None else self.ack.type
        return f"interaction {self.id} (type {self.type}, {name!r}, ack={ack}, errors={self.errors})"


def find_component(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    """Depth-first search through rows, sections, containers and labels."""
    for item in components:
        if item.get("custom_id") == custom_id:
            return item
        children: list[dict[str, Any]] = list(item.get("components") or [])
        for key in ("accessory", "component"):
            if isinstance(item.get(key), dict):
                children.append(item[key])
        found = find_component(children, custom_id)
        if found is not None:
            return found
    return None


def component_data(message: FakeMessage, custom_id: str, values: list[str] | None) -> dict[str, Any]:
    """MESSAGE_COMPONENT data for a button click (values None) or a string-select choice."""
    if message.deleted:
        raise InvalidInvocation(f"message {message.id} was deleted")
    item = find_component(message.components, custom_id)
    if item is None:
        raise InvalidInvocation(f"message {message.id} has no component with custom_id {custom_id!r}")
    if item.get("disabled"):
        raise InvalidInvocation(f"component {custom_id!r} is disabled")
    kind = item.get("type")
    if values is None:
        if kind != 2:
            raise InvalidInvocation(f"component {custom_id!r} is type {kind}, not a button")
        return {"custom_id": custom_id, "component_type": 2}
    if kind not in (3, 5, 6, 7, 8):
        raise InvalidInvocation(f"component {custom_id!r} is type {kind}, not a select")
    low, high = item.get("min_values", 1), item.get("max_values", 1)
    if not low <= len(values) <= high:
        raise InvalidInvocation(f"select {custom_id!r} takes {low}..{high} values, got {len(values)}")
    if kind == 3:
        allowed = [o["value"] for o in item.get("options") or []]
        bad = [v for v in values if v not in allowed]
        if bad:
            raise InvalidInvocation(f"select {custom_id!r} has no options {bad}; options: {allowed}")
    return {"custom_id": custom_id, "component_type": kind, "values": list(values)}


def modal_submission(modal: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    """MODAL_SUBMIT `components`, shaped like the modal (action rows or type-18 labels)."""
    unknown = set(values)
    out: list[dict[str, Any]] = []
    for top in modal.get("components") or []:
        if top.get("type") == 1:
            row = [_submitted(c, values, unknown) for c in top.get("components") or []]
            out.append({"type": 1, "components": [c for c in row if c is not None]})
        elif top.get("type") == 18 and isinstance(top.get("component"), dict):
            inner = _submitted(top["component"], values, unknown)
            if inner is not None:
                label: dict[str, Any] = {"type": 18, "component": inner}
                if "id" in top:
                    label["id"] = top["id"]
                out.append(label)
    if unknown:
        raise InvalidInvocation(f"modal {modal.get('custom_id')!r} has no inputs {sorted(unknown)}")
    return out


def _submitted(item: dict[str, Any], values: dict[str, Any], unknown: set[str]) -> dict[str, Any] | None:
    custom_id = item.get("custom_id")
    if custom_id is None:
        return None
    unknown.discard(custom_id)
    base: dict[str, Any] = {"type": item["type"], "custom_id": custom_id}
    if "id" in item:
        base["id"] = item["id"]
    if item["type"] == 4:
        value = values.get(custom_id, item.get("value") or "")
        if not isinstance(value, str):
            raise InvalidInvocation(f"text input {custom_id!r} takes a str, got {value!r}")
        required = item.get("required", True)
        if required and not value:
            raise InvalidInvocation(f"text input {custom_id!r} is required")
        if value and len(value) < (item.get("min_length") or 0):
            raise InvalidInvocation(f"text input {custom_id!r} is shorter than min_length {item['min_length']}")
        if len(value) > (item.get("max_length") or 4000):
            raise InvalidInvocation(f"text input {custom_id!r} is longer than max_length {item.get('max_length')}")
        return {**base, "value": value}
    chosen = values.get(custom_id, [])
    return {**base, "values": list(chosen)}
