"""The message catalogues: one gettext `.po` file per locale in `locales/`, read with Babel.

English (`en.po`) is the source: it holds every key, and every other locale falls back to it.
Locale codes are Discord's (`ja`, `zh-CN`, ...), so a `.po` file is named after the locale it serves.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locales"
ENGLISH = "en"
#: The locales with a catalogue besides English, as Discord names them.
LOCALES: tuple[str, ...] = ("ja", "ko", "zh-CN", "zh-TW")


def supported(code: str | None) -> str | None:
    """The catalogue serving a Discord locale code (`en-US` -> `en`), or None when there is none."""
    if not code:
        return None
    if code in LOCALES:
        return code
    if code.split("-")[0] == ENGLISH:
        return ENGLISH
    return None


def read_catalogue(locale: str) -> Catalog:
    """The parsed `.po` file of `locale`."""
    with (LOCALE_DIR / f"{locale}.po").open("rb") as file:
        return read_po(file, locale=locale.replace("-", "_"))


def _compiled(catalog: Catalog) -> gettext.GNUTranslations:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries are left out, so an unchecked translation falls back
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


@cache
def catalogue_for(locale: str) -> gettext.NullTranslations:
    """The translations of `locale`, falling back to English for anything it lacks."""
    english = _compiled(read_catalogue(ENGLISH))
    if locale == ENGLISH:
        return english
    translations = _compiled(read_catalogue(locale))
    translations.add_fallback(english)
    return translations
