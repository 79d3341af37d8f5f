"""The shared SQL's placeholders (`?`, or `:name`) in asyncpg's numbered form (`$1`, `$2`, ...)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from bot.db.database import Parameters

# Quoted strings and identifiers, comments and `::` casts are skipped; `?` and `:name` are placeholders.
_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|::|(\?)|:([A-Za-z_][A-Za-z0-9_]*)""")


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> tuple[str, tuple[str, ...] | int]:
    """`sql` with numbered placeholders, and what fills them: the names in order (one number per
    distinct name), or the count of `?`s. Cached: each statement is translated once."""
    names: list[str] = []
    positional = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal positional
        if match.group(1):
            positional += 1
            return f"${positional}"
        name = match.group(2)
        if name is None:
            return match.group(0)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    text = _TOKEN.sub(replace, sql)
    if names and positional:
        raise ValueError("a statement uses either ? or :name placeholders, not both")
    return text, (tuple(names) if names else positional)


def arguments(sql: str, parameters: Parameters) -> tuple[str, tuple[Any, ...]]:
    """The numbered statement and its arguments, in order."""
    text, slots = numbered(sql)
    if isinstance(slots, tuple):
        if not isinstance(parameters, Mapping):
            raise TypeError("a statement with :name placeholders takes a mapping of parameters")
        return text, tuple(parameters[name] for name in slots)
    if isinstance(parameters, Mapping):
        if slots:
            raise TypeError("a statement with ? placeholders takes a sequence of parameters")
        return text, ()
    if len(parameters) != slots:
        raise TypeError(f"the statement has {slots} ? placeholders, got {len(parameters)} parameters")
    return text, tuple(parameters)
