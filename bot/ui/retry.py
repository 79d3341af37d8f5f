"""The Retry button under a failure whose outcome is unknown: the same request again, for its requester."""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.i18n import t
from bot.services.generation import parse_generation_id

#: Dispatched (with the generation id and the interaction) when a Retry button is clicked.
RETRY_EVENT = "retry_generation"


class RetryButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    # Any id matches, so a malformed one is answered (as naming no image) rather than ignored.
    template=re.compile(r"qi:retry:(?P<id>.*)", re.DOTALL),
):
    """Retry a generation. Its custom_id carries only the generation id, so it works after restarts;
    a click becomes a `retry_generation` event (with the id, or None if the custom_id's id is not
    one) that the retry cog handles."""

    def __init__(self, generation_id: int | None, *, custom_id: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                label=t("retry.button"),
                style=discord.ButtonStyle.primary,
                emoji="🔁",
                custom_id=custom_id or f"qi:retry:{generation_id}",
            )
        )
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> RetryButton:
        return cls(parse_generation_id(match["id"]), custom_id=match.string)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        interaction.client.dispatch(RETRY_EVENT, self.generation_id, interaction)


def retry_view(generation_id: int) -> discord.ui.View:
    """The Retry button under a failure notice."""
    view = discord.ui.View(timeout=None)
    view.add_item(RetryButton(generation_id))
    return view
