"""Discord's own OpenAPI description (v10) as a referee for every REST request the fake receives.

The description is read once per process and each operation's body validator is built the first
time that operation is used. The real API's known leniency is applied, and nothing more: a snowflake
may be a JSON integer as well as a string, and an integer field accepts an int-parseable string.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import extend
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from . import rules
from .rules import DiscordError, FormErrors

SPEC_FILE = Path(__file__).with_name("spec") / "openapi.json.gz"
_SPEC_URI = "urn:discord-api-spec:openapi.json"
_INT_STRING = re.compile(r"[+-]?[0-9]+")
#: A keyword of our own: the string instance, read as an int, must be valid under the keyword's schema.
_AS_INTEGER = "x-as-integer"
#: An annotation of our own beside anyOf/oneOf: per branch, the values its `type` property allows (None: any).
_BRANCH_TYPES = "x-branch-types"
#: Discord's form-error code for each failed JSON Schema keyword (anything else: BASE_TYPE_INVALID).
_ERROR_CODES = {
    "required": "BASE_TYPE_REQUIRED",
    "maxLength": "BASE_TYPE_MAX_LENGTH",
    "minLength": "BASE_TYPE_MIN_LENGTH",
    "maxItems": "BASE_TYPE_MAX_LENGTH",
    "minItems": "BASE_TYPE_MIN_LENGTH",
    "maximum": "NUMBER_TYPE_MAX",
    "minimum": "NUMBER_TYPE_MIN",
    "enum": "BASE_TYPE_CHOICES",
    "const": "BASE_TYPE_CHOICES",
    "oneOf": "UNION_TYPE_CHOICES",
    "anyOf": "UNION_TYPE_CHOICES",
    "pattern": "STRING_TYPE_REGEX",
    "uniqueItems": "LIST_ITEM_VALUE_DUPLICATE",
    "type": "BASE_TYPE_BAD_TYPE",
}


@dataclass(frozen=True)
class Operation:
    """One method of one path template, e.g. POST /channels/{channel_id}/messages."""

    method: str
    template: str
    body_types: tuple[str, ...]
    body_required: bool


def _lenient(node: Any) -> Any:
    """A copy of a schema in which every integer also accepts its int-parseable string."""
    if isinstance(node, list):
        return [_lenient(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _lenient(value) for key, value in node.items()}
    choices = out.get("oneOf")
    if isinstance(choices, list) and choices and all(_is_named_const(choice) for choice in choices):
        # The description's enums are oneOf lists of titled consts; one `enum` means the same, faster.
        out["enum"] = [choice["const"] for choice in choices]
        del out["oneOf"]
    kind = out.get("type")
    if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
        return {"anyOf": [out, {"type": "string", "pattern": f"^{_INT_STRING.pattern}$", _AS_INTEGER: out}]}
    return out


def _is_named_const(schema: Any) -> bool:
    return isinstance(schema, dict) and "const" in schema and set(schema) <= {"const", "title", "description"}


def _as_integer(validator: Draft202012Validator, schema: Any, instance: Any, _parent: Any) -> Iterator[ValidationError]:
    if isinstance(instance, str) and _INT_STRING.fullmatch(instance):
        yield from validator.descend(int(instance), schema)


def _union(
    validator: Draft202012Validator, branches: Any, instance: Any, parent: Any, keyword: str
) -> Iterator[ValidationError]:
    """anyOf and oneOf; for oneOf, an int-parseable string may match an integer and a string branch at once.

    Branches whose `type` property cannot take the instance's `type` are skipped unevaluated (they
    would fail on it anyway): components, callbacks and other unions are told apart by that field.
    """
    matched: list[int] = []
    errors: list[ValidationError] = []
    kinds = parent.get(_BRANCH_TYPES, {}).get(keyword)
    kind = instance.get("type") if kinds and isinstance(instance, dict) else None
    if isinstance(kind, str) and _INT_STRING.fullmatch(kind):
        kind = int(kind)
    for index, subschema in enumerate(branches):
        if isinstance(kind, int) and kinds[index] is not None and kind not in kinds[index]:
            errors.append(ValidationError(f"type {kind!r} is not one of {kinds[index]}", validator="const"))
            continue
        found = list(validator.descend(instance, subschema, schema_path=index))
        if found:
            errors.extend(found)
        else:
            matched.append(index)
            if keyword == "anyOf":
                return
    if not matched:
        yield ValidationError(f"{instance!r} is not valid under any of the given schemas", context=errors)
    elif len(matched) > 1 and not (isinstance(instance, str) and _INT_STRING.fullmatch(instance)):
        yield ValidationError(f"{instance!r} is valid under each of the schemas {matched}")


def _any_of(validator: Draft202012Validator, branches: Any, instance: Any, parent: Any) -> Iterator[ValidationError]:
    yield from _union(validator, branches, instance, parent, "anyOf")


def _one_of(validator: Draft202012Validator, branches: Any, instance: Any, parent: Any) -> Iterator[ValidationError]:
    yield from _union(validator, branches, instance, parent, "oneOf")


#: Draft 2020-12 with the leniency keyword and the unions above (the stubs leave `extend` untyped).
LenientValidator: type[Draft202012Validator] = extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, validators={_AS_INTEGER: _as_integer, "anyOf": _any_of, "oneOf": _one_of}
)


class OpenApiReferee:
    """Matches requests to the description's operations and validates their JSON bodies."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        spec = _lenient(spec)
        snowflake = spec["components"]["schemas"]["SnowflakeType"]
        spec["components"]["schemas"]["SnowflakeType"] = {
            "anyOf": [snowflake, {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}]
        }
        _annotate_unions(spec, spec)
        self._spec = spec
        self._registry: Registry[Any] = Registry().with_resource(
            _SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012)
        )
        self._templates: dict[int, list[tuple[tuple[str, ...], str]]] = {}
        self._validators: dict[tuple[str, str, str], Validator] = {}
        for template in spec["paths"]:
            segments = tuple(template.strip("/").split("/"))
            self._templates.setdefault(len(segments), []).append((segments, template))

    def match(self, path: str) -> str | None:
        """The path template a request path (without /api/v10) belongs to; literal segments win."""
        parts = path.strip("/").split("/")
        best: tuple[tuple[bool, ...], str] | None = None
        if not all(parts):
            return None
        for segments, template in self._templates.get(len(parts), []):
            literal = tuple(not s.startswith("{") for s in segments)
            fits = all(not lit or s == p for s, p, lit in zip(segments, parts, literal, strict=True))
            if fits and (best is None or literal > best[0]):
                best = (literal, template)
        return best[1] if best else None

    def operation(self, method: str, template: str) -> Operation | None:
        """The operation for a method of a path template, if the description has it."""
        item = self._spec["paths"][template].get(method.lower())
        if not isinstance(item, dict):
            return None
        body = item.get("requestBody") or {}
        return Operation(method.upper(), template, tuple(body.get("content") or {}), bool(body.get("required")))

    def _validator(self, method: str, template: str, content_type: str) -> Validator:
        key = (method, template, content_type)
        if key not in self._validators:
            pointer = "/".join(
                part.replace("~", "~0").replace("/", "~1")
                for part in ("paths", template, method.lower(), "requestBody", "content", content_type, "schema")
            )
            self._validators[key] = LenientValidator({"$ref": f"{_SPEC_URI}#/{pointer}"}, registry=self._registry)
        return self._validators[key]

    def check(self, method: str, path: str, content_type: str, document: Any) -> None:
        """Raise Discord's error for a request the description rejects: 404 unknown route,
        405 method not allowed, 400 50035 for a body its schema rejects."""
        template = self.match(path)
        if template is None:
            raise rules.not_found()
        operation = self.operation(method, template)
        if operation is None:
            raise DiscordError(405, 0, "405: Method Not Allowed")
        errs = FormErrors()
        if document is None:
            if operation.body_required:
                errs.add((), "BASE_TYPE_REQUIRED", "This request needs a body")
            errs.raise_if_any()
            return
        if not operation.body_types:
            return  # Discord ignores a body where it expects none
        if content_type not in operation.body_types:
            errs.add((), "CONTENT_TYPE_INVALID", f"Unsupported content type {content_type!r}")
            errs.raise_if_any()
        for error in self._validator(operation.method, template, content_type).iter_errors(document):
            leaf = best_match([error]) or error
            errs.add(*_form_error(leaf))
        errs.raise_if_any()


def _resolve(spec: Mapping[str, Any], schema: Any) -> Any:
    for _ in range(10):
        if not isinstance(schema, dict) or not str(schema.get("$ref", "")).startswith("#/"):
            break
        node: Any = spec
        for part in schema["$ref"][2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


def _branch_types(spec: Mapping[str, Any], branch: Any) -> list[Any] | None:
    """The values a union branch's `type` property allows, when it is an enum or const."""
    prop = _resolve(spec, (_resolve(spec, branch).get("properties") or {}).get("type"))
    if not isinstance(prop, dict):
        return None
    choices = prop.get("anyOf")
    if isinstance(choices, list) and len(choices) == 2 and _AS_INTEGER in choices[1]:
        prop = _resolve(spec, choices[0])  # the integer itself, not its lenient string form
    if "const" in prop:
        return [prop["const"]]
    return list(prop["enum"]) if isinstance(prop.get("enum"), list) else None


def _annotate_unions(spec: Mapping[str, Any], node: Any) -> None:
    """Put beside every anyOf/oneOf the `type` values of its branches (see `_union`)."""
    if isinstance(node, list):
        for item in node:
            _annotate_unions(spec, item)
    elif isinstance(node, dict):
        for value in list(node.values()):
            _annotate_unions(spec, value)
        for keyword in ("anyOf", "oneOf"):
            if isinstance(node.get(keyword), list):
                kinds = [_branch_types(spec, branch) for branch in node[keyword]]
                if any(k is not None for k in kinds):
                    node.setdefault(_BRANCH_TYPES, {})[keyword] = kinds


def _form_error(error: ValidationError) -> tuple[list[str | int], str, str]:
    """Where, with which code and in which words Discord would report a failed keyword (the value
    itself is left out: it may be a member's text)."""
    path: list[str | int] = list(error.absolute_path)
    keyword, expected = str(error.validator), cast(Any, error.validator_value)
    code = _ERROR_CODES.get(keyword, "BASE_TYPE_INVALID")
    if keyword == "required" and isinstance(error.instance, dict):
        missing = [name for name in expected if name not in error.instance]
        return [*path, *missing[:1]], code, "This field is required"
    if keyword in ("maxLength", "maxItems"):
        return path, code, f"Must be {expected} or fewer in length."
    if keyword in ("minLength", "minItems"):
        return path, code, f"Must be {expected} or more in length."
    if keyword == "pattern" and expected == f"^{_INT_STRING.pattern}$":
        return path, "NUMBER_TYPE_COERCE", "Value is not int."
    if keyword in ("enum", "const"):
        return path, code, f"Value must be one of {expected if keyword == 'enum' else [expected]}."
    if keyword == "type":
        return path, code, f"Value must be of type {expected}."
    if keyword in ("oneOf", "anyOf"):
        return path, code, "Value matches none of the allowed forms."
    return path, code, f"Value fails the description's {keyword!r} rule ({expected!r:.80})."


@functools.cache
def referee() -> OpenApiReferee:
    """The referee for this process, built from the vendored description on first use."""
    return OpenApiReferee(json.loads(gzip.decompress(SPEC_FILE.read_bytes())))
