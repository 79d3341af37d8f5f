"""Numbers and money written the way the locale in force writes them."""

from __future__ import annotations

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
