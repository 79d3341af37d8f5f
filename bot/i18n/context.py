"""The locale in force for the code running now: set once where an interaction or a job begins."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from bot.i18n.catalogues import ENGLISH, supported

_locale: ContextVar[str] = ContextVar("locale", default=ENGLISH)


def current_locale() -> str:
    """The catalogue locale messages are given in here (English unless something else was set)."""
    return _locale.get()


def _first_supported(candidates: tuple[str | None, ...]) -> str:
    return next((code for code in map(supported, candidates) if code is not None), ENGLISH)


def use_locale(*candidates: str | None) -> str:
    """Speak the first supported locale of `candidates` (member's, then server's) in the current task
    and the tasks it starts; English when none is supported. Returns the locale chosen."""
    chosen = _first_supported(candidates)
    _locale.set(chosen)
    return chosen


@contextmanager
def speaking(*candidates: str | None) -> Iterator[str]:
    """`use_locale` for the duration of a block."""
    chosen = _first_supported(candidates)
    token = _locale.set(chosen)
    try:
        yield chosen
    finally:
        _locale.reset(token)
