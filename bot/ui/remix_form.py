"""The remix form: how it is built and prefilled, and how its submitted text becomes request values."""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.db import GenerationRecord
from bot.errors import InvalidRequest
from bot.i18n import t
from bot.qwen import MAX_SEED, NEGATIVE_PROMPT_LIMIT, PROMPT_LIMIT
from bot.sizes import ImageSize

#: A form's custom_id. Any text after the prefix matches, so a forged or malformed id is answered
#: (as naming no image) rather than ignored; `parse_generation_id` decides what is an id.
REMIX_FORM = re.compile(r"qi:remix-form:(?P<id>.*)", re.DOTALL)
#: Full-width digits (typed with an East Asian input method) read as the digits they are.
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_SEED_TEXT = re.compile(r"[0-9]{1,10}")
_SIZE_TEXT = re.compile(r"\s*([0-9]{1,5})\s*[*x×X]\s*([0-9]{1,5})\s*")
#: How much of a member's unreadable size is quoted back to them.
_QUOTE_LIMIT = 40


def parse_seed(text: str) -> int | None:
    """A seed typed in the form (digits 0-9, full-width digits too); empty means a random one."""
    text = text.strip().translate(_FULL_WIDTH_DIGITS)
    if not text:
        return None
    if _SEED_TEXT.fullmatch(text) is None or int(text) > MAX_SEED:
        raise InvalidRequest(
            f"The seed must be a whole number from 0 to {MAX_SEED}, written with the digits 0-9, "
            "or empty for a random one."
        )
    return int(text)


def parse_size(text: str, sizes: tuple[ImageSize, ...]) -> str:
    """A size typed as `W*H` (or `WxH`, or its name); returns the API string."""
    match = _SIZE_TEXT.fullmatch(text.translate(_FULL_WIDTH_DIGITS))
    if match:
        value = f"{int(match.group(1))}*{int(match.group(2))}"
        if any(s.value == value for s in sizes):
            return value
    for size in sizes:
        if text.strip().lower() in (size.label.lower(), size.choice_name.lower()):
            return size.value
    offered = ", ".join(s.value for s in sizes)
    quoted = text.strip()[:_QUOTE_LIMIT]
    raise InvalidRequest(f"{quoted!r} isn't a size this bot offers. Use one of: {offered}.")


def parse_on_off(text: str) -> bool:
    """`on`/`off` (and yes/no, true/false) from the form."""
    value = text.strip().lower()
    if value in ("on", "yes", "true", "1"):
        return True
    if value in ("off", "no", "false", "0"):
        return False
    raise InvalidRequest("Prompt rewriting must be on or off.")


def remix_form(record: GenerationRecord, sizes: tuple[ImageSize, ...]) -> discord.ui.Modal:
    """The remix form, prefilled from the original (a seed left as it was reproduces the image).

    Its submission is read from the custom_id and the submitted values alone (see
    `RemixCog.on_interaction`), so a form left open for an hour, or across a restart, still works;
    the library's copy of the modal only needs to live long enough to be sent."""
    form = discord.ui.Modal(title=t("remix.form_title"), timeout=60, custom_id=f"qi:remix-form:{record.id}")
    fields: list[discord.ui.TextInput[discord.ui.Modal]] = [
        discord.ui.TextInput(
            label=t("remix.form_prompt"),
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            default=record.prompt,
            max_length=PROMPT_LIMIT,
        ),
        discord.ui.TextInput(
            label=t("remix.form_negative_prompt"),
            custom_id="negative_prompt",
            style=discord.TextStyle.paragraph,
            default=record.negative_prompt or None,
            max_length=NEGATIVE_PROMPT_LIMIT,
            required=False,
        ),
        discord.ui.TextInput(
            label=t("remix.form_seed"),
            custom_id="seed",
            default=str(record.seed),
            max_length=10,
            required=False,
        ),
        discord.ui.TextInput(
            label=t("remix.form_size"),
            custom_id="size",
            default=record.size,
            max_length=40,
            placeholder=", ".join(s.value for s in sizes)[:100],
        ),
        discord.ui.TextInput(
            label=t("remix.form_prompt_extend"),
            custom_id="enhance",
            default="on" if record.prompt_extend else "off",
            max_length=5,
        ),
    ]
    for field in fields:
        form.add_item(field)
    return form


def submitted_values(data: Any) -> dict[str, str]:
    """custom_id -> value of the text inputs in a MODAL_SUBMIT (in action rows or labels); anything
    not shaped like a text input is left out."""
    values: dict[str, str] = {}
    for top in data.get("components") or []:
        if not isinstance(top, dict):
            continue
        for item in top.get("components") or [top.get("component") or {}]:
            if not isinstance(item, dict) or item.get("type") != discord.ComponentType.text_input.value:
                continue
            custom_id, value = item.get("custom_id"), item.get("value") or ""
            if isinstance(custom_id, str) and isinstance(value, str):
                values[custom_id] = value
    return values
