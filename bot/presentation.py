"""How results and failures look in Discord, kept inside every message limit."""

from __future__ import annotations

import io

import discord

from bot.services.generation import GenerationResult

EMBED_COLOUR = discord.Colour(0x615CED)
DESCRIPTION_LIMIT = 4096
FIELD_LIMIT = 1024
CONTENT_LIMIT = 2000


def clip(text: str, limit: int) -> str:
    """Shorten `text` to `limit` characters, marking the cut, without leaving a dangling escape."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if cut.endswith("\\") and not cut.endswith("\\\\"):
        cut = cut[:-1]
    return cut + "…"


def user_text(text: str, limit: int) -> str:
    """Member-typed text made inert (markdown escaped) and clipped to a Discord limit."""
    return clip(discord.utils.escape_markdown(text), limit)


def on_off(flag: bool) -> str:
    """`On` or `Off`."""
    return "On" if flag else "Off"


def result_embed(result: GenerationResult, requester: discord.abc.User) -> discord.Embed:
    """The embed shown with a generated image: everything needed to reproduce it."""
    params = result.request.params
    embed = discord.Embed(
        description=user_text(params.prompt, DESCRIPTION_LIMIT),
        colour=EMBED_COLOUR,
    )
    embed.set_author(name=clip(f"{requester.display_name} imagined", 256), icon_url=requester.display_avatar.url)
    if params.negative_prompt:
        embed.add_field(name="Negative prompt", value=user_text(params.negative_prompt, FIELD_LIMIT), inline=False)
    embed.add_field(name="Size", value=result.request.size.choice_name)
    seed_note = " (random)" if result.request.seed_was_random else ""
    embed.add_field(name="Seed", value=f"`{params.seed}`{seed_note}")
    embed.add_field(name="Model", value=params.model)
    embed.add_field(name="Prompt rewriting", value=on_off(params.prompt_extend))
    embed.set_image(url=f"attachment://{result.filename}")
    embed.set_footer(text=f"Requested by {requester.name} · seed {params.seed}")
    return embed


def result_file(result: GenerationResult) -> discord.File:
    """A fresh attachment for the image (a File can be sent only once)."""
    return discord.File(io.BytesIO(result.image.data), filename=result.filename)


def failure_text(user_message: str) -> str:
    """A failure as the requester reads it."""
    return clip(f"⚠️ {user_message}", CONTENT_LIMIT)
