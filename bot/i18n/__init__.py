"""The member's language: messages are asked for by key and read from gettext catalogues.

`t("key", name=value)` gives the message in the locale in force (the member's for an interaction,
the server's for a message with no interaction behind it), falling back to English. `tn` picks the
plural form for a count. `N_` marks a key kept for later translation (a class attribute, a table).
"""

from __future__ import annotations

from bot.i18n.catalogues import ENGLISH, LOCALES, catalogue_for, supported
from bot.i18n.context import current_locale, speaking, use_locale
from bot.i18n.formatting import money, number

__all__ = [
    "ENGLISH",
    "LOCALES",
    "N_",
    "current_locale",
    "money",
    "number",
    "speaking",
    "supported",
    "t",
    "tn",
    "use_locale",
]


def N_(key: str) -> str:
    """Mark `key` as a message key without translating it yet."""
    return key


def t(key: str, /, **params: object) -> str:
    """The message `key` in the locale in force, its `{placeholders}` filled from `params`."""
    text = catalogue_for(current_locale()).gettext(key)
    return text.format(**params) if params else text


def tn(key: str, count: int, /, **params: object) -> str:
    """The plural form of `key` for `count` in the locale in force; `{count}` is the count, formatted."""
    text = catalogue_for(current_locale()).ngettext(key, key, count)
    return text.format(count=number(count), **params)
