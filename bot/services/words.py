"""Blocked words: how a server's entries are normalised, checked and matched against prompts.

Text is compared after NFKC (full-width Latin becomes ASCII, half-width kana becomes full-width),
case folding and collapsing whitespace. An entry whose edge is a letter or digit of a spaced script
(Latin, Cyrillic, Greek, ...) matches only at a word boundary there, so `ass` does not match `class`;
Chinese, Japanese and Korean characters have no spaces between words, so such phrases match anywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.i18n import ENGLISH, N_, speaking, t

MAX_WORDS = 500
MAX_WORD_LENGTH = 100

_SPACES = re.compile(r"\s+")
#: Scripts written without spaces between words: Han, kana, Hangul and their marks and symbols.
_UNSPACED = (
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x2E80, 0x2FDF),  # CJK radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3100, 0x31FF),  # Bopomofo, Hangul compatibility Jamo, Katakana extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7FF),  # Hangul syllables and Jamo extended B
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF65, 0xFFDC),  # half-width kana and Hangul (NFKC widens them)
    (0x20000, 0x3FFFF),  # CJK extensions B onwards
)


class InvalidWord(ValueError):
    """An entry that cannot be added; its message (a key and its parameters) says why, for the moderator."""

    def __init__(self, message_key: str, /, **params: object) -> None:
        self.message_key = message_key
        self.params: dict[str, Any] = params
        with speaking(ENGLISH):
            super().__init__(t(message_key, **params))


@dataclass(frozen=True)
class WordMatch:
    """A blocked entry found in a request: which entry, and in which field."""

    entry: str
    field: str


def normalise(text: str) -> str:
    """NFKC, case-folded (NFKC again, as folding can denormalise), whitespace collapsed to one space."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return _SPACES.sub(" ", folded).strip()


def clean_entry(raw: str) -> str:
    """The stored form of a moderator's entry, or InvalidWord saying what is wrong with it."""
    entry = normalise(raw)
    if not entry:
        raise InvalidWord(N_("refuse.word.empty"))
    if len(entry) > MAX_WORD_LENGTH:
        raise InvalidWord(N_("refuse.word.too_long"), length=len(entry), limit=MAX_WORD_LENGTH)
    if not any(ch.isalnum() for ch in entry):
        raise InvalidWord(N_("refuse.word.no_letters"))
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in entry):
        raise InvalidWord(N_("refuse.word.control_characters"))
    return entry


def _spaced_letter(ch: str) -> bool:
    """A letter or digit of a script that separates words with spaces."""
    if not ch.isalnum():
        return False
    code = ord(ch)
    return not any(low <= code <= high for low, high in _UNSPACED)


def contains(text: str, entry: str) -> bool:
    """Whether normalised `text` contains normalised `entry` (at word boundaries for spaced scripts)."""
    needs_start = _spaced_letter(entry[0])
    needs_end = _spaced_letter(entry[-1])
    start = text.find(entry)
    while start != -1:
        end = start + len(entry)
        before_ok = not needs_start or start == 0 or not _spaced_letter(text[start - 1])
        after_ok = not needs_end or end == len(text) or not _spaced_letter(text[end])
        if before_ok and after_ok:
            return True
        start = text.find(entry, start + 1)
    return False


def find_blocked(entries: tuple[str, ...], fields: Mapping[str, str | None]) -> WordMatch | None:
    """The first entry found in any field (`{"prompt": ..., "negative prompt": ...}`), or None."""
    texts = {name: normalise(value) for name, value in fields.items() if value}
    for entry in entries:
        for name, text in texts.items():
            if contains(text, entry):
                return WordMatch(entry, name)
    return None
