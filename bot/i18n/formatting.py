"""Numbers and money written the way the locale in force writes them."""

from __future__ import annotations

from collections.abc import Sequence

from babel.numbers import format_currency, format_decimal

from bot.i18n.context import current_locale


def _babel(locale: str) -> str:
    return locale.replace("-", "_")


def number(value: float) -> str:
    """`value` with the locale's digit grouping (1,234 / 1 234 ...)."""
    return format_decimal(value, locale=_babel(current_locale()))


def money(usd: float, *, digits: int = 2) -> str:
    """An amount in US dollars, as the locale writes it."""
    pattern = "¤#,##0." + "0" * digits if digits else "¤#,##0"
    return format_currency(usd, "USD", format=pattern, locale=_babel(current_locale()), currency_digits=False)


#: How each locale separates the items of a list; English also puts "and" before the last one.
_LIST_SEPARATORS = {"ja": "、", "zh-CN": "、", "zh-TW": "、"}


def joined(items: Sequence[str], *, and_last: bool = True) -> str:
    """`items` listed the way the locale in force lists them: `A、B` (ja, zh), `A, B` (ko), `A and B` (en;
    `A, B` for a list of options, with `and_last` False)."""
    locale = current_locale()
    if locale == "en" and and_last and len(items) > 1:
        return f"{', '.join(items[:-1])} and {items[-1]}"
    return _LIST_SEPARATORS.get(locale, ", ").join(items)
