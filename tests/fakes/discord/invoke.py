"""The test-facing ways a user interacts: slash/context commands, components and modal submits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .commands import CommandRegistry, InvalidInvocation, OptionBuilder
from .interactions import (
    APPLICATION_COMMAND,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    FakeInteraction,
    component_data,
    modal_submission,
)
from .messages import FakeMessage
from .people import FakeMember
from .world import FakeChannel, World

if TYPE_CHECKING:
    from .fake import FakeDiscord


class Invocations:
    """Mixin of FakeDiscord: builds INTERACTION_CREATE payloads the way Discord's client would allow them."""

    world: World
    commands: CommandRegistry
    attachment_size_limit: int
    interactions: dict[int, FakeInteraction]

    async def _dispatch(self, ix: FakeInteraction) -> FakeInteraction:
        raise NotImplementedError

    def _new(
        self,
        member: FakeMember,
        channel: FakeChannel,
        kind: int,
        data: dict[str, Any],
        message: FakeMessage | None,
        size_limit: int | None,
        locale: str,
    ) -> FakeInteraction:
        if member.guild is not channel.guild:
            raise InvalidInvocation(f"{member.name} is not a member of the guild of #{channel.name}")
        limit = self.attachment_size_limit if size_limit is None else size_limit
        return FakeInteraction(
            cast("FakeDiscord", self), self.world.snowflakes.next(), kind, member, channel, data, limit, message, locale
        )

    async def invoke_command(
        self,
        member: FakeMember,
        channel: FakeChannel,
        name: str,
        options: dict[str, Any] | None = None,
        subcommand: str | None = None,
        *,
        attachment_size_limit: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A slash command, built from (and checked against) the synced schema."""
        scope, command = self.commands.find(channel.guild.id, name, 1)
        builder = OptionBuilder(self.world, member, channel)
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": builder.command_options(command, options or {}, subcommand),
        }
        if builder.resolved:
            data["resolved"] = builder.resolved
        if scope is not None:
            data["guild_id"] = str(scope)
        ix = self._new(member, channel, APPLICATION_COMMAND, data, None, attachment_size_limit, locale)
        return await self._dispatch(ix)

    async def invoke_message_command(
        self,
        member: FakeMember,
        message: FakeMessage,
        name: str,
        *,
        attachment_size_limit: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A MESSAGE context-menu command on message."""
        if message.deleted or (message.ephemeral and not _sees(member, message)):
            raise InvalidInvocation(f"{member.name} cannot see message {message.id}")
        scope, command = self.commands.find(message.channel.guild.id, name, 3)
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": 3,
            "target_id": str(message.id),
            "resolved": {"messages": {str(message.id): message.to_payload()}},
        }
        if scope is not None:
            data["guild_id"] = str(scope)
        ix = self._new(member, message.channel, APPLICATION_COMMAND, data, None, attachment_size_limit, locale)
        return await self._dispatch(ix)

    async def invoke_user_command(
        self,
        member: FakeMember,
        channel: FakeChannel,
        target: FakeMember,
        name: str,
        *,
        attachment_size_limit: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """A USER context-menu command on target."""
        scope, command = self.commands.find(channel.guild.id, name, 2)
        resolved = {
            "users": {str(target.id): target.user.to_payload()},
            "members": {str(target.id): target.to_payload(with_user=False, channel=channel)},
        }
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": 2,
            "target_id": str(target.id),
            "resolved": resolved,
        }
        if scope is not None:
            data["guild_id"] = str(scope)
        ix = self._new(member, channel, APPLICATION_COMMAND, data, None, attachment_size_limit, locale)
        return await self._dispatch(ix)

    async def click_button(
        self,
        member: FakeMember,
        message: FakeMessage,
        custom_id: str,
        *,
        attachment_size_limit: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """MESSAGE_COMPONENT: member clicks a button on message."""
        return await self._component(member, message, custom_id, None, attachment_size_limit, locale)

    async def choose(
        self,
        member: FakeMember,
        message: FakeMessage,
        custom_id: str,
        values: list[str],
        *,
        attachment_size_limit: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """MESSAGE_COMPONENT: member picks values in a select menu on message."""
        return await self._component(member, message, custom_id, values, attachment_size_limit, locale)

    async def _component(
        self,
        member: FakeMember,
        message: FakeMessage,
        custom_id: str,
        values: list[str] | None,
        size_limit: int | None,
        locale: str,
    ) -> FakeInteraction:
        if message.ephemeral and not _sees(member, message):
            raise InvalidInvocation(f"{member.name} cannot see ephemeral message {message.id}")
        data = component_data(message, custom_id, values)
        ix = self._new(member, message.channel, MESSAGE_COMPONENT, data, message, size_limit, locale)
        return await self._dispatch(ix)

    async def submit_modal(
        self,
        member: FakeMember,
        modal_record: FakeInteraction | dict[str, Any],
        values: dict[str, Any] | None = None,
        *,
        attachment_size_limit: int | None = None,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """MODAL_SUBMIT for a modal the bot opened; pass the interaction or its `.modal` dict."""
        if isinstance(modal_record, FakeInteraction):
            source: FakeInteraction | None = modal_record
        else:
            source = next((i for i in self.interactions.values() if i.modal is modal_record), None)
        if source is None or source.modal is None:
            raise InvalidInvocation("that is not a modal the bot opened (pass the interaction or its .modal)")
        if source.member.id != member.id:
            raise InvalidInvocation(f"the modal was shown to {source.member.name}, not {member.name}")
        data = {"custom_id": source.modal["custom_id"], "components": modal_submission(source.modal, values or {})}
        ix = self._new(member, source.channel, MODAL_SUBMIT, data, source.message, attachment_size_limit, locale)
        return await self._dispatch(ix)

    async def submit_forged_modal(
        self,
        member: FakeMember,
        channel: FakeChannel,
        custom_id: str,
        values: dict[str, str],
        *,
        locale: str = "en-US",
    ) -> FakeInteraction:
        """MODAL_SUBMIT from a modified client for a modal the bot never showed it: any custom_id,
        one text input per action row (Discord delivers whatever the client sends)."""
        rows = [{"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]} for k, v in values.items()]
        data = {"custom_id": custom_id, "components": rows}
        return await self._dispatch(self._new(member, channel, MODAL_SUBMIT, data, None, None, locale))


def _sees(member: FakeMember, message: FakeMessage) -> bool:
    meta = message.interaction_metadata or {}
    return str((meta.get("user") or {}).get("id")) == str(member.id)
