"""Every message the bot can say exists in every language, with the same placeholders as English."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir

from bot.i18n import LOCALES
from bot.i18n.catalogues import ENGLISH, read_catalogue

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"t": None, "tn": None, "N_": None, "described": None}


def _entries(catalog: Catalog) -> dict[str, Message]:
    return {str(m.id[0] if isinstance(m.id, tuple) else m.id): m for m in catalog if m.id}


def _forms(message: Message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple) else [str(message.string)]


def _placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def _used_keys() -> dict[str, str]:
    used: dict[str, str] = {}
    for folder in ("bot", "cogs"):
        for filename, lineno, key, *_ in extract_from_dir(
            ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            if isinstance(key, str):
                used.setdefault(key, f"{folder}/{filename}:{lineno}")
    return used


ENGLISH_ENTRIES = _entries(read_catalogue(ENGLISH))


def test_every_key_used_in_code_is_in_the_english_catalogue() -> None:
    missing = {key: where for key, where in _used_keys().items() if key not in ENGLISH_ENTRIES}
    assert not missing, f"message keys used in code but absent from en.po: {missing}"


def test_the_english_catalogue_has_no_unused_keys() -> None:
    used = _used_keys()
    unused = sorted(key for key in ENGLISH_ENTRIES if key not in used and key != "locale.name")
    assert not unused, f"keys in en.po that no code uses: {unused}"


def test_english_messages_are_written() -> None:
    empty = [key for key, message in ENGLISH_ENTRIES.items() if not all(_forms(message))]
    assert not empty, f"en.po keys without text: {empty}"


@pytest.mark.parametrize("locale", LOCALES)
def test_each_locale_has_every_message(locale: str) -> None:
    entries = _entries(read_catalogue(locale))
    missing = sorted(key for key in ENGLISH_ENTRIES if key not in entries)
    untranslated = sorted(key for key, m in entries.items() if not all(_forms(m)) or m.fuzzy)
    extra = sorted(key for key in entries if key not in ENGLISH_ENTRIES)
    assert not missing, f"{locale}.po lacks {missing}"
    assert not untranslated, f"{locale}.po has empty or fuzzy {untranslated}"
    assert not extra, f"{locale}.po has keys English does not: {extra}"


@pytest.mark.parametrize("locale", LOCALES)
def test_each_translation_has_the_placeholders_of_the_english(locale: str) -> None:
    entries = _entries(read_catalogue(locale))
    wrong = {}
    for key, english in ENGLISH_ENTRIES.items():
        expected = set().union(*(_placeholders(form) for form in _forms(english)))
        if key in entries:
            for form in _forms(entries[key]):
                if _placeholders(form) != expected:
                    wrong[key] = (sorted(expected), form)
    assert not wrong, f"{locale}.po placeholders differ from English: {wrong}"


@pytest.mark.parametrize("locale", LOCALES)
def test_plural_messages_stay_plural(locale: str) -> None:
    entries = _entries(read_catalogue(locale))
    mismatched = sorted(
        key
        for key, english in ENGLISH_ENTRIES.items()
        if key in entries and english.pluralizable != entries[key].pluralizable
    )
    assert not mismatched, f"{locale}.po plural entries differ from English: {mismatched}"
