"""Application command storage (bulk overwrite) and building invocations from the synced schema."""

from __future__ import annotations

import copy
import re
from typing import Any

from .messages import FakeAttachment
from .people import FakeMember, FakeRole, FakeUser
from .rules import FormErrors
from .world import FakeChannel, World

Scope = int | None
_COMMAND_NAME = re.compile(r"^[-_'\w]{1,32}$")


class InvalidInvocation(ValueError):
    """A test tried to invoke something Discord's client would never let a user send."""


class CommandRegistry:
    """Commands per scope (None = global), as PUT by the bot and as returned with ids."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.synced: dict[Scope, list[dict[str, Any]]] = {}
        self.calls: dict[Scope, int] = {}
        self.returned: dict[Scope, list[dict[str, Any]]] = {}
        self._ids: dict[tuple[Scope, int, str], int] = {}

    def put(self, scope: Scope, payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Bulk overwrite: store exactly what was sent, return Discord's view of it."""
        self.synced[scope] = copy.deepcopy(payload)
        self.calls[scope] = self.calls.get(scope, 0) + 1
        previous = {(c["type"], c["name"]): c for c in self.returned.get(scope, [])}
        result = []
        for command in payload:
            kind = int(command.get("type", 1))
            key = (scope, kind, command["name"])
            # Discord keeps a command's id while its name and type stay the same.
            command_id = self._ids.setdefault(key, self.world.snowflakes.next())
            full = self._full(scope, command_id, kind, command)
            old = previous.get((kind, command["name"]))
            if old is not None and _same(old, full):
                full["version"] = old["version"]
            result.append(full)
        self.returned[scope] = result
        return result

    def _full(self, scope: Scope, command_id: int, kind: int, command: dict[str, Any]) -> dict[str, Any]:
        perms = command.get("default_member_permissions")
        full: dict[str, Any] = {
            "id": str(command_id),
            "application_id": str(self.world.application_id),
            "version": str(self.world.snowflakes.next()),
            "type": kind,
            "name": command["name"],
            "name_localizations": command.get("name_localizations"),
            "description": command.get("description", ""),
            "description_localizations": command.get("description_localizations"),
            # Discord answers with the permission bits as a string, whatever was sent.
            "default_member_permissions": None if perms is None else str(perms),
            "dm_permission": command.get("dm_permission", True),
            "nsfw": command.get("nsfw", False),
            "contexts": command.get("contexts"),
            "integration_types": command.get("integration_types", [0]),
        }
        if command.get("options"):
            full["options"] = copy.deepcopy(command["options"])
        if scope is not None:
            full["guild_id"] = str(scope)
        return full

    def find(self, guild_id: int, name: str, kind: int) -> tuple[Scope, dict[str, Any]]:
        """The command a user in guild_id would see (guild scope wins over global, as in Discord's picker)."""
        for scope in (guild_id, None):
            for command in self.returned.get(scope, []):
                if command["name"] == name and command["type"] == kind:
                    return scope, command
        known = sorted({c["name"] for s in (guild_id, None) for c in self.returned.get(s, [])})
        raise InvalidInvocation(f"no synced command {name!r} of type {kind} for guild {guild_id}; synced: {known}")


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    ignore = {"id", "version"}
    return {k: v for k, v in old.items() if k not in ignore} == {k: v for k, v in new.items() if k not in ignore}


class OptionBuilder:
    """Turns Python values into interaction options + resolved data, checked against the schema."""

    def __init__(self, world: World, member: FakeMember, channel: FakeChannel) -> None:
        self.world = world
        self.member = member
        self.channel = channel
        self.resolved: dict[str, dict[str, Any]] = {}

    def command_options(self, command: dict[str, Any], values: dict[str, Any], subcommand: str | None) -> list[Any]:
        """Options for the top-level command, descending into `subcommand` ("sub" or "group sub")."""
        schema: list[dict[str, Any]] = command.get("options") or []
        path = subcommand.split() if subcommand else []
        has_subs = any(o.get("type") in (1, 2) for o in schema)
        if has_subs and not path:
            names = [o["name"] for o in schema]
            raise InvalidInvocation(f"/{command['name']} needs a subcommand; choose from {names}")
        if path and not has_subs:
            raise InvalidInvocation(f"/{command['name']} has no subcommands")
        return self._descend(command["name"], schema, path, values)

    def _descend(self, where: str, schema: list[dict[str, Any]], path: list[str], values: dict[str, Any]) -> list[Any]:
        if not path:
            return self._leaf(where, schema, values)
        head, rest = path[0], path[1:]
        node = next((o for o in schema if o["name"] == head and o.get("type") in (1, 2)), None)
        if node is None:
            names = [o["name"] for o in schema if o.get("type") in (1, 2)]
            raise InvalidInvocation(f"{where} has no subcommand {head!r}; choose from {names}")
        if node["type"] == 2 and not rest:
            raise InvalidInvocation(f"{where} {head} is a group; name one of its subcommands")
        inner = self._descend(f"{where} {head}", node.get("options") or [], rest, values)
        return [{"type": node["type"], "name": head, "options": inner}]

    def _leaf(self, where: str, schema: list[dict[str, Any]], values: dict[str, Any]) -> list[Any]:
        by_name = {o["name"]: o for o in schema}
        for name in values:
            if name not in by_name:
                raise InvalidInvocation(f"/{where} has no option {name!r}; options: {sorted(by_name)}")
        for option in schema:
            if option.get("required") and option["name"] not in values:
                raise InvalidInvocation(f"/{where} requires option {option['name']!r}")
        return [self._option(where, by_name[name], value) for name, value in values.items()]

    def _option(self, where: str, option: dict[str, Any], value: Any) -> dict[str, Any]:
        kind = option["type"]
        label = f"/{where} {option['name']}"
        if kind in (3, 4, 5, 10):
            self._check_scalar(label, option, value)
            return {"type": kind, "name": option["name"], "value": value}
        if kind in (6, 9) and isinstance(value, FakeMember | FakeUser):
            return {"type": kind, "name": option["name"], "value": str(self._resolve_user(value))}
        if kind in (8, 9) and isinstance(value, FakeRole):
            self.resolved.setdefault("roles", {})[str(value.id)] = value.to_payload()
            return {"type": kind, "name": option["name"], "value": str(value.id)}
        if kind == 7 and isinstance(value, FakeChannel):
            types = option.get("channel_types")
            if types and value.type not in types:
                raise InvalidInvocation(f"{label}: channel type {value.type} not in {types}")
            data = {**value.to_payload(), "permissions": str(self.member.permissions_in(value))}
            self.resolved.setdefault("channels", {})[str(value.id)] = data
            return {"type": kind, "name": option["name"], "value": str(value.id)}
        if kind == 11 and isinstance(value, FakeAttachment):
            stored = self.world.store_attachment(self.channel.id, value)
            self.resolved.setdefault("attachments", {})[str(stored.id)] = {**stored.to_payload(), "ephemeral": True}
            return {"type": kind, "name": option["name"], "value": str(stored.id)}
        raise InvalidInvocation(f"{label}: option type {kind} cannot take {type(value).__name__} {value!r}")

    def _resolve_user(self, value: FakeMember | FakeUser) -> int:
        user = value.user if isinstance(value, FakeMember) else value
        self.resolved.setdefault("users", {})[str(user.id)] = user.to_payload()
        member = value if isinstance(value, FakeMember) else self.channel.guild.get_member(user.id)
        if member is not None:
            data = member.to_payload(with_user=False, channel=self.channel)
            self.resolved.setdefault("members", {})[str(user.id)] = data
        return user.id

    @staticmethod
    def _check_scalar(label: str, option: dict[str, Any], value: Any) -> None:
        kind = option["type"]
        ok = {
            3: isinstance(value, str),
            4: isinstance(value, int) and not isinstance(value, bool),
            5: isinstance(value, bool),
            10: isinstance(value, int | float) and not isinstance(value, bool),
        }[kind]
        if not ok:
            raise InvalidInvocation(f"{label}: {value!r} does not fit option type {kind}")
        choices = option.get("choices")
        if choices and value not in [c["value"] for c in choices]:
            raise InvalidInvocation(f"{label}: {value!r} is not one of the choices {[c['value'] for c in choices]}")
        if kind == 3:
            if "min_length" in option and len(value) < option["min_length"]:
                raise InvalidInvocation(f"{label}: shorter than min_length {option['min_length']}")
            if "max_length" in option and len(value) > option["max_length"]:
                raise InvalidInvocation(f"{label}: longer than max_length {option['max_length']}")
        if kind in (4, 10):
            if "min_value" in option and value < option["min_value"]:
                raise InvalidInvocation(f"{label}: {value} is below min_value {option['min_value']}")
            if "max_value" in option and value > option["max_value"]:
                raise InvalidInvocation(f"{label}: {value} is above max_value {option['max_value']}")


def check_commands(payload: object, errs: FormErrors) -> None:
    """Bulk overwrite payload: names, descriptions, option shapes and counts."""
    if not isinstance(payload, list):
        errs.add((), "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        return
    if len([c for c in payload if c.get("type", 1) == 1]) > 100:
        errs.add((), "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
    names: set[tuple[int, str]] = set()
    for i, command in enumerate(payload):
        kind = int(command.get("type", 1))
        name = command.get("name") or ""
        if (kind, name) in names:
            errs.add(
                (i, "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME", f"Application command names must be unique: {name}"
            )
        names.add((kind, name))
        if kind == 1:
            _check_command_node(command, (i,), errs, depth=0)
        else:
            errs.max_length((i, "name"), name, 32)
            if command.get("description"):
                errs.add((i, "description"), "APPLICATION_COMMAND_INVALID_DESCRIPTION", "Description must be empty")


def _check_command_node(node: dict[str, Any], path: tuple[str | int, ...], errs: FormErrors, depth: int) -> None:
    name = node.get("name") or ""
    if not _COMMAND_NAME.match(name) or name != name.lower():
        errs.add((*path, "name"), "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}")
    description = node.get("description") or ""
    if not 1 <= len(description) <= 100:
        errs.add((*path, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    options = node.get("options") or []
    errs.max_length((*path, "options"), options, 25)
    seen_optional = False
    for j, option in enumerate(options):
        opath = (*path, "options", j)
        otype = option.get("type")
        if otype in (1, 2):
            if (otype == 2 and depth > 0) or (otype == 1 and depth > 1):
                errs.add(opath, "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID", "Sub-command groups nest too deep")
            _check_command_node(option, opath, errs, depth + 1)
            continue
        if not _COMMAND_NAME.match(option.get("name") or ""):
            errs.add((*opath, "name"), "APPLICATION_COMMAND_INVALID_NAME", "Option name is invalid")
        if not 1 <= len(option.get("description") or "") <= 100:
            errs.add((*opath, "description"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
        if option.get("required"):
            if seen_optional:
                errs.add(
                    opath,
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
        errs.max_length((*opath, "choices"), option.get("choices"), 25)
