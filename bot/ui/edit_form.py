"""The edit form: what to change in the images an Edit button or the "Edit image" menu picked."""

from __future__ import annotations

import discord

from bot.i18n import t
from bot.qwen import NEGATIVE_PROMPT_LIMIT, PROMPT_LIMIT


def edit_form(token: str, max_count: int) -> discord.ui.Modal:
    """What to change; the images it applies to are remembered under `token` (see `EditCog._forms`)."""
    form = discord.ui.Modal(title=t("editui.form_title"), timeout=60, custom_id=f"qi:editform:{token}")
    fields: list[discord.ui.TextInput[discord.ui.Modal]] = [
        discord.ui.TextInput(
            label=t("editui.form_prompt"),
            custom_id="prompt",
            style=discord.TextStyle.paragraph,
            max_length=PROMPT_LIMIT,
        ),
        discord.ui.TextInput(
            label=t("remix.form_negative_prompt"),
            custom_id="negative_prompt",
            style=discord.TextStyle.paragraph,
            max_length=NEGATIVE_PROMPT_LIMIT,
            required=False,
        ),
        discord.ui.TextInput(
            label=t("editui.form_count", max=max_count) if max_count > 1 else t("editui.form_count_one"),
            custom_id="count",
            default="1",
            max_length=1,
        ),
        discord.ui.TextInput(label=t("remix.form_seed"), custom_id="seed", max_length=10, required=False),
    ]
    for field in fields:
        form.add_item(field)
    return form
