"""How results and failures look in Discord, kept inside every message limit."""

from __future__ import annotations

import io

import discord

from bot.db import GenerationRecord
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


def result_embed(result: GenerationResult, requester: discord.abc.User | None) -> discord.Embed:
    """The embed shown with a generated image: everything needed to reproduce it."""
    params = result.request.params
    embed = discord.Embed(
        description=user_text(params.prompt, DESCRIPTION_LIMIT),
        colour=EMBED_COLOUR,
    )
    if requester is not None:
        verb = "edited" if result.request.sources else "imagined"
        embed.set_author(name=clip(f"{requester.display_name} {verb}", 256), icon_url=requester.display_avatar.url)
    if params.negative_prompt:
        embed.add_field(name="Negative prompt", value=user_text(params.negative_prompt, FIELD_LIMIT), inline=False)
    embed.add_field(name="Size", value=result.request.size.choice_name)
    seed_note = " (random)" if result.request.seed_was_random else ""
    seed = result.image_seed
    embed.add_field(name="Seed", value=f"`{seed}`{seed_note}")
    embed.add_field(name="Model", value=params.model)
    embed.add_field(name="Prompt rewriting", value=on_off(params.prompt_extend))
    embed.set_image(url=f"attachment://{result.filename}")
    if result.request.sources:
        embed.add_field(name="Edited from", value=f"{len(result.request.sources)} image(s)")
    embed.set_footer(text=f"Requested by {requester.name} · seed {seed}" if requester else f"Seed {seed}")
    return embed


def result_file(result: GenerationResult) -> discord.File:
    """A fresh attachment for the image (a File can be sent only once)."""
    return discord.File(io.BytesIO(result.image.data), filename=result.filename)


def failure_text(user_message: str) -> str:
    """A failure as the requester reads it."""
    return clip(f"⚠️ {user_message}", CONTENT_LIMIT)


def code_safe(text: str) -> str:
    """Text that cannot end a code block early."""
    return text.replace("`", "ˋ")


def imagine_command_line(record: GenerationRecord) -> str:
    """The /imagine (or, for an edited image, /edit) command that reproduces a generation."""
    parts = [f"/{'edit' if record.inputs else 'imagine'} prompt:{record.prompt or ''}"]
    if record.negative_prompt:
        parts.append(f"negative_prompt:{record.negative_prompt}")
    if record.size:
        parts.append(f"size:{record.size}")
    parts += [f"seed:{record.seed}", f"enhance:{record.prompt_extend}"]
    return code_safe(" ".join(parts))


def details_embed(record: GenerationRecord, lineage: list[GenerationRecord]) -> discord.Embed:
    """Everything needed to reproduce a generation, and where it came from."""
    if record.prompt is None:
        description = "*The prompt was deleted after the server's retention period.*"
    else:
        command = clip(imagine_command_line(record), 1900)
        description = f"**Prompt**\n{user_text(record.prompt, 1800)}\n\n**Reproduce with**\n```\n{command}\n```"
        if record.inputs:
            description += f"\nwith the same {record.inputs} input image(s), which the bot doesn't keep."
    embed = discord.Embed(title=f"Image #{record.id}", description=description, colour=EMBED_COLOUR)
    if record.negative_prompt:
        embed.add_field(name="Negative prompt", value=user_text(record.negative_prompt, FIELD_LIMIT), inline=False)
    embed.add_field(name="Size", value=record.size.replace("*", "×") or "as the input")
    embed.add_field(name="Seed", value=f"`{record.seed}`")
    embed.add_field(name="Model", value=record.model)
    embed.add_field(name="Prompt rewriting", value=on_off(record.prompt_extend))
    embed.add_field(name="Requested", value=f"<t:{int(record.requested_at)}:f> by <@{record.member_id}>")
    if lineage:
        steps = [
            f"#{parent.id} by <@{parent.member_id}>"
            + (f" ({link})" if (link := jump_url(parent.guild_id, parent.channel_id, parent.message_id)) else "")
            for parent in lineage
        ]
        label = "Edited from" if record.inputs else "Remixed from"
        embed.add_field(name=label, value=clip(" ← ".join(steps), FIELD_LIMIT), inline=False)
    note = "The same seed with the same options gives a consistent image, not an identical one."
    if record.prompt_extend:
        note += " Prompt rewriting was on: the service rewrites the prompt on every run, so results vary more."
    embed.set_footer(text=note)
    return embed


def jump_url(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    """A link to a message, when all its ids are known."""
    if guild_id is None or channel_id is None or message_id is None:
        return None
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"
