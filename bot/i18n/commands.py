"""Command, option and choice descriptions in every catalogue locale, through discord.py's translator.

Names stay English so a command typed from a guide works for everyone; descriptions and choice
labels are written as `described("cmd.imagine")`, which carries the English text Discord shows by
default and the key the translator looks up for each locale.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.i18n.catalogues import ENGLISH, LOCALES, catalogue_for


def described(key: str) -> app_commands.locale_str:
    """The English text of `key`, carrying the key so each locale's translation can be found."""
    return app_commands.locale_str(catalogue_for(ENGLISH).gettext(key), key=key)


class CatalogueTranslator(app_commands.Translator):
    """Gives Discord each locale's description of commands, options and choices from the catalogues."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        key = string.extras.get("key")
        if key is None or locale.value not in LOCALES:
            return None
        text = catalogue_for(locale.value).gettext(key)
        return None if text == string.message else text
