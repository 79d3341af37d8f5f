"""Discord's documented limits and the exact error bodies it answers with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_CONTENT = 2000
MAX_EMBEDS = 10
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
EMBED_FIELD_NAME = 256
EMBED_FIELD_VALUE = 1024
EMBED_FOOTER = 2048
EMBED_AUTHOR = 256
EMBED_TOTAL = 6000
MAX_ACTION_ROWS = 5
MAX_ROW_ITEMS = 5
MAX_CUSTOM_ID = 100
MAX_BUTTON_LABEL = 80
MAX_SELECT_OPTIONS = 25
MAX_SELECT_PLACEHOLDER = 150
MAX_MODAL_TITLE = 45
MAX_MODAL_LABEL = 45
MAX_TEXT_INPUT_LENGTH = 4000
MAX_PLACEHOLDER = 100
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024

FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_COMPONENTS_V2 = 1 << 15


class DiscordError(Exception):
    """An HTTP error exactly as Discord would answer it."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.interaction_id: int | None = None
        #: Raised because Discord's OpenAPI description rejects the request.
        self.against_spec = False

    def body(self) -> dict[str, Any]:
        """The JSON body Discord sends with this error."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def unauthorized() -> DiscordError:
    """401 for a missing or wrong bot token."""
    return DiscordError(401, 0, "401: Unauthorized")


def not_found() -> DiscordError:
    """404 for a route Discord does not know."""
    return DiscordError(404, 0, "404: Not Found")


def unknown_interaction() -> DiscordError:
    """404 10062: late or unknown interaction callback."""
    return DiscordError(404, 10062, "Unknown interaction")


def already_acknowledged() -> DiscordError:
    """400 40060: a second interaction callback."""
    return DiscordError(400, 40060, "Interaction has already been acknowledged.")


def unknown_webhook() -> DiscordError:
    """404 10015: webhook route used before the interaction was acknowledged."""
    return DiscordError(404, 10015, "Unknown Webhook")


def invalid_webhook_token() -> DiscordError:
    """401 50027: expired or unknown interaction token."""
    return DiscordError(401, 50027, "Invalid Webhook Token")


def too_large() -> DiscordError:
    """413 40005: an upload over the size limit."""
    return DiscordError(413, 40005, "Request entity too large")


def empty_message() -> DiscordError:
    """400 50006: nothing to show in a message."""
    return DiscordError(400, 50006, "Cannot send an empty message")


def unknown_message() -> DiscordError:
    """404 10008."""
    return DiscordError(404, 10008, "Unknown Message")


def unknown_channel() -> DiscordError:
    """404 10003."""
    return DiscordError(404, 10003, "Unknown Channel")


def unknown_guild() -> DiscordError:
    """404 10004."""
    return DiscordError(404, 10004, "Unknown Guild")


def unknown_member() -> DiscordError:
    """404 10007."""
    return DiscordError(404, 10007, "Unknown Member")


def unknown_user() -> DiscordError:
    """404 10013."""
    return DiscordError(404, 10013, "Unknown User")


def unknown_application() -> DiscordError:
    """404 10002."""
    return DiscordError(404, 10002, "Unknown Application")


def missing_access() -> DiscordError:
    """403 50001."""
    return DiscordError(403, 50001, "Missing Access")


def missing_permissions() -> DiscordError:
    """403 50013."""
    return DiscordError(403, 50013, "Missing Permissions")


def cannot_edit_others() -> DiscordError:
    """403 50005."""
    return DiscordError(403, 50005, "Cannot edit a message authored by another user")


def invalid_json() -> DiscordError:
    """400 50109."""
    return DiscordError(400, 50109, "The request body contains invalid JSON.")


class FormErrors:
    """Collects field errors into Discord's nested `errors` shape (50035 Invalid Form Body)."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}

    def add(self, path: Sequence[str | int], code: str, message: str) -> None:
        """Record one error at a field path such as ("embeds", 0, "title")."""
        node = self.tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def max_length(self, path: Sequence[str | int], value: object, limit: int) -> None:
        """Record BASE_TYPE_MAX_LENGTH when a str or list is longer than limit."""
        if isinstance(value, str | list) and len(value) > limit:
            self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def __bool__(self) -> bool:
        return bool(self.tree)

    def raise_if_any(self, nest_under: str | None = None) -> None:
        """Raise 400 50035 if anything was recorded."""
        if self.tree:
            errors = {nest_under: self.tree} if nest_under else self.tree
            raise DiscordError(400, 50035, "Invalid Form Body", errors)


def embed_size(embed: dict[str, Any]) -> int:
    """Characters Discord counts toward the 6000 total for one embed."""
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    for field in embed.get("fields") or []:
        total += len(field.get("name") or "") + len(field.get("value") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    return total


def check_embeds(embeds: object, errs: FormErrors) -> None:
    """Per-embed and combined embed limits."""
    if not isinstance(embeds, list):
        return
    errs.max_length(("embeds",), embeds, MAX_EMBEDS)
    for i, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            errs.add(("embeds", i), "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
            continue
        errs.max_length(("embeds", i, "title"), embed.get("title"), EMBED_TITLE)
        errs.max_length(("embeds", i, "description"), embed.get("description"), EMBED_DESCRIPTION)
        fields = embed.get("fields") or []
        errs.max_length(("embeds", i, "fields"), fields, EMBED_FIELDS)
        for j, field in enumerate(fields):
            errs.max_length(("embeds", i, "fields", j, "name"), field.get("name"), EMBED_FIELD_NAME)
            errs.max_length(("embeds", i, "fields", j, "value"), field.get("value"), EMBED_FIELD_VALUE)
        errs.max_length(("embeds", i, "footer", "text"), (embed.get("footer") or {}).get("text"), EMBED_FOOTER)
        errs.max_length(("embeds", i, "author", "name"), (embed.get("author") or {}).get("name"), EMBED_AUTHOR)
    if sum(embed_size(e) for e in embeds if isinstance(e, dict)) > EMBED_TOTAL:
        errs.add(("embeds",), "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {EMBED_TOTAL}")


def _check_custom_id(item: dict[str, Any], path: tuple[str | int, ...], errs: FormErrors, seen: set[str]) -> None:
    custom_id = item.get("custom_id")
    if custom_id is None:
        return
    errs.max_length((*path, "custom_id"), custom_id, MAX_CUSTOM_ID)
    if custom_id in seen:
        errs.add((*path, "custom_id"), "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
    seen.add(custom_id)


def _check_interactive(item: dict[str, Any], path: tuple[str | int, ...], errs: FormErrors, seen: set[str]) -> None:
    kind = item.get("type")
    _check_custom_id(item, path, errs, seen)
    if kind == 2:
        errs.max_length((*path, "label"), item.get("label"), MAX_BUTTON_LABEL)
        is_link = item.get("style") == 5
        if is_link and not item.get("url"):
            errs.add((*path, "url"), "BASE_TYPE_REQUIRED", "This field is required")
        if not is_link and item.get("style") != 6 and not item.get("custom_id"):
            errs.add((*path, "custom_id"), "BASE_TYPE_REQUIRED", "This field is required")
    elif kind in (3, 5, 6, 7, 8):
        errs.max_length((*path, "placeholder"), item.get("placeholder"), MAX_SELECT_PLACEHOLDER)
        if kind == 3:
            options = item.get("options") or []
            errs.max_length((*path, "options"), options, MAX_SELECT_OPTIONS)
            for k, option in enumerate(options):
                errs.max_length((*path, "options", k, "label"), option.get("label"), 100)
                errs.max_length((*path, "options", k, "value"), option.get("value"), 100)
                errs.max_length((*path, "options", k, "description"), option.get("description"), 100)


def check_components(components: object, flags: int, errs: FormErrors) -> None:
    """Action rows, buttons, selects; components v2 layouts only get custom_id checks."""
    if not isinstance(components, list):
        return
    seen: set[str] = set()
    if flags & FLAG_COMPONENTS_V2:
        stack: list[tuple[tuple[str | int, ...], dict[str, Any]]] = [
            (("components", i), c) for i, c in enumerate(components) if isinstance(c, dict)
        ]
        while stack:
            path, item = stack.pop()
            _check_interactive(item, path, errs, seen)
            for j, child in enumerate(item.get("components") or []):
                stack.append(((*path, "components", j), child))
            if isinstance(item.get("accessory"), dict):
                stack.append(((*path, "accessory"), item["accessory"]))
        return
    if len(components) > MAX_ACTION_ROWS:
        errs.add(("components",), "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {MAX_ACTION_ROWS} in length.")
    for i, row in enumerate(components):
        if not isinstance(row, dict) or row.get("type") != 1:
            errs.add(("components", i), "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1,).')
            continue
        children = row.get("components") or []
        if not 1 <= len(children) <= MAX_ROW_ITEMS:
            errs.add(
                ("components", i, "components"),
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {MAX_ROW_ITEMS} in length.",
            )
        if any(c.get("type") != 2 for c in children) and len(children) > 1:
            errs.add(
                ("components", i, "components"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )
        for j, child in enumerate(children):
            _check_interactive(child, ("components", i, "components", j), errs, seen)


def check_message(payload: dict[str, Any], errs: FormErrors) -> None:
    """Field limits of a message create/edit payload (not emptiness)."""
    errs.max_length(("content",), payload.get("content"), MAX_CONTENT)
    if int(payload.get("flags") or 0) & FLAG_COMPONENTS_V2:
        for key in ("content", "embeds"):
            if payload.get(key):
                errs.add(
                    (key,),
                    "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                    "The 'content' and 'embeds' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2",
                )
    check_embeds(payload.get("embeds"), errs)
    check_components(payload.get("components"), int(payload.get("flags") or 0), errs)


def is_empty(content: str | None, embeds: list[Any], attachments: int, components: list[Any], other: bool) -> bool:
    """Discord's 50006 test on the message as it would be stored."""
    return not (content or embeds or attachments or components or other)


def _check_text_input(item: dict[str, Any], path: tuple[str | int, ...], errs: FormErrors, seen: set[str]) -> None:
    _check_custom_id(item, path, errs, seen)
    if not item.get("custom_id"):
        errs.add((*path, "custom_id"), "BASE_TYPE_REQUIRED", "This field is required")
    errs.max_length((*path, "label"), item.get("label"), MAX_MODAL_LABEL)
    errs.max_length((*path, "placeholder"), item.get("placeholder"), MAX_PLACEHOLDER)
    max_length = item.get("max_length")
    limit = MAX_TEXT_INPUT_LENGTH
    if isinstance(max_length, int):
        if not 1 <= max_length <= MAX_TEXT_INPUT_LENGTH:
            errs.add((*path, "max_length"), "NUMBER_TYPE_MAX", f"Int value should be less than or equal to {limit}.")
        limit = min(limit, max_length)
    min_length = item.get("min_length")
    if isinstance(min_length, int) and not 0 <= min_length <= MAX_TEXT_INPUT_LENGTH:
        errs.add((*path, "min_length"), "NUMBER_TYPE_MAX", "Int value should be less than or equal to 4000.")
    errs.max_length((*path, "value"), item.get("value"), limit)


def check_modal(data: dict[str, Any], errs: FormErrors) -> None:
    """MODAL callback data: title, custom_id, 1..5 rows/labels holding inputs."""
    if not data.get("title"):
        errs.add(("title",), "BASE_TYPE_REQUIRED", "This field is required")
    errs.max_length(("title",), data.get("title"), MAX_MODAL_TITLE)
    if not data.get("custom_id"):
        errs.add(("custom_id",), "BASE_TYPE_REQUIRED", "This field is required")
    errs.max_length(("custom_id",), data.get("custom_id"), MAX_CUSTOM_ID)
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        errs.add(("components",), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 5 in length.")
    seen: set[str] = set()
    for i, top in enumerate(components):
        path: tuple[str | int, ...] = ("components", i)
        kind = top.get("type")
        if kind == 1:
            children = top.get("components") or []
            if len(children) != 1:
                errs.add((*path, "components"), "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 1 in length.")
            for j, child in enumerate(children):
                if child.get("type") == 4 and not child.get("label"):
                    errs.add((*path, "components", j, "label"), "BASE_TYPE_REQUIRED", "This field is required")
                _check_text_input(child, (*path, "components", j), errs, seen)
        elif kind == 18:
            if not top.get("label"):
                errs.add((*path, "label"), "BASE_TYPE_REQUIRED", "This field is required")
            errs.max_length((*path, "label"), top.get("label"), MAX_MODAL_LABEL)
            errs.max_length((*path, "description"), top.get("description"), 100)
            inner = top.get("component") or {}
            if inner.get("type") == 4:
                _check_text_input(inner, (*path, "component"), errs, seen)
            else:
                _check_interactive(inner, (*path, "component"), errs, seen)
        elif kind != 10:
            errs.add((*path, "type"), "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1, 10, 18).')
