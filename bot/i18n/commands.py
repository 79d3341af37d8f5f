"""Command, option and choice descriptions in every catalogue locale, through discord.py's translator.

Names stay English so a command typed from a guide works for everyone; descriptions and choice
labels are written as `described("cmd.imagine")`, which carries the English text Discord shows by
default and the key the translator looks up for each locale.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.i18n.catalogues import ENGLISH, LOCALES, catalogue_for


def described(key: str, /, **params: object) -> app_commands.locale_str:
    """The English text of `key` (its `{placeholders}` filled from `params`), carrying the key and the
    values so each locale's translation can be found and filled alike."""
    text = catalogue_for(ENGLISH).gettext(key)
    return app_commands.locale_str(text.format(**params) if params else text, key=key, params=params)


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
        params = string.extras.get("params")
        if params:
            text = text.format(**params)
        return None if text == string.message else text
