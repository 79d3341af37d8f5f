"""Blocked-word matching: normalisation (case, width, NFKC), word boundaries for spaced scripts,
phrases inside longer text for Chinese, Japanese and Korean, and what a moderator may add."""

from __future__ import annotations

import pytest

from bot.services.words import (
    MAX_WORD_LENGTH,
    InvalidWord,
    WordMatch,
    clean_entry,
    contains,
    find_blocked,
    normalise,
)


def blocked(entry: str, text: str) -> bool:
    return contains(normalise(text), clean_entry(entry))


@pytest.mark.parametrize(
    "text",
    [
        "a gore scene",
        "GORE",
        "Gore, everywhere",
        "ｇｏｒｅ",  # full-width Latin
        "ＧＯＲＥ at night",
        "(gore)",
        "gore!",
        "too much\tgore\n",
    ],
)
def test_latin_words_match_whatever_their_case_and_width(text: str) -> None:
    assert blocked("gore", text)


@pytest.mark.parametrize("text", ["gorey details", "a gorgeous gorent", "Algore", "xgorex", "go re"])
def test_latin_words_inside_longer_words_do_not_match(text: str) -> None:
    assert not blocked("gore", text)


def test_a_famous_false_positive_is_avoided() -> None:
    assert not blocked("ass", "a classic brass assembly in class")
    assert blocked("ass", "what an ass.")


def test_phrases_match_with_any_spacing_and_case() -> None:
    assert blocked("Blood Bath", "a   BLOOD\nbath at noon")
    assert not blocked("blood bath", "bloodbath")


def test_entries_are_normalised_too() -> None:
    assert clean_entry("  ＧＯＲＥ  ") == "gore"
    assert clean_entry("ｶﾞｿﾘﾝ") == "ガソリン"  # half-width kana become full-width, voicing mark composed


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ("血", "一片血海"),  # Chinese inside longer text
        ("流血", "画一个流血的场面"),
        ("ガソリン", "ｶﾞｿﾘﾝスタンドの絵"),  # half-width kana in the prompt
        ("ｶﾞｿﾘﾝ", "ガソリンスタンド"),  # half-width kana in the entry
        ("ちまみれ", "ちまみれのへや"),
        ("폭력", "폭력적인 장면"),  # Korean
    ],
)
def test_cjk_phrases_match_inside_longer_text(entry: str, text: str) -> None:
    assert blocked(entry, text)


def test_a_latin_word_next_to_cjk_still_matches() -> None:
    assert blocked("gore", "gore的场面")
    assert blocked("gore", "とてもgoreな絵")


def test_case_folding_covers_more_than_ascii() -> None:
    assert blocked("straße", "STRASSE sign")
    assert blocked("ΣΚΥΛΟΣ", "σκυλος")


def test_find_blocked_names_the_entry_and_the_field() -> None:
    entries = (clean_entry("gore"), clean_entry("血"))
    assert find_blocked(entries, {"prompt": "a calm lake", "negative prompt": "ＧＯＲＥ"}) == WordMatch(
        "gore", "negative prompt"
    )
    assert find_blocked(entries, {"prompt": "血の海", "negative prompt": None}) == WordMatch("血", "prompt")
    assert find_blocked(entries, {"prompt": "a gorgeous lake", "negative prompt": None}) is None
    assert find_blocked((), {"prompt": "anything"}) is None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("   ", "empty"),
        ("!!! ???", "letter or digit"),
        ("x" * (MAX_WORD_LENGTH + 1), f"at most {MAX_WORD_LENGTH}"),
        ("go\u200bre", "invisible"),
    ],
)
def test_bad_entries_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidWord, match=reason):
        clean_entry(raw)


def test_an_entry_of_exactly_the_maximum_length_is_accepted() -> None:
    assert len(clean_entry("x" * MAX_WORD_LENGTH)) == MAX_WORD_LENGTH
