"""How results and failures look in Discord, kept inside every message limit."""

from __future__ import annotations

import io

import discord

from bot.db import GenerationRecord
from bot.i18n import t, tn
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
    return t("result.on") if flag else t("result.off")


def dimensions(size: str) -> str:
    """`1328×1328` from the API's `1328*1328`: the same in every language."""
    return size.replace("*", "×")


def result_embed(result: GenerationResult, requester: discord.abc.User | None) -> discord.Embed:
    """The embed shown with a generated image: everything needed to reproduce it."""
    params = result.request.params
    embed = discord.Embed(
        description=user_text(params.prompt, DESCRIPTION_LIMIT),
        colour=EMBED_COLOUR,
    )
    if requester is not None:
        name = requester.display_name
        author = t("result.author_edited", name=name) if result.request.sources else t("result.author", name=name)
        embed.set_author(name=clip(author, 256), icon_url=requester.display_avatar.url)
    if params.negative_prompt:
        embed.add_field(
            name=t("result.negative_prompt"), value=user_text(params.negative_prompt, FIELD_LIMIT), inline=False
        )
    embed.add_field(name=t("result.size"), value=dimensions(result.request.size.value))
    seed = result.image_seed
    shown_seed = t("result.seed_random", seed=seed) if result.request.seed_was_random else f"`{seed}`"
    embed.add_field(name=t("result.seed"), value=shown_seed)
    embed.add_field(name=t("result.model"), value=params.model)
    embed.add_field(name=t("result.prompt_extend"), value=on_off(params.prompt_extend))
    embed.set_image(url=f"attachment://{result.filename}")
    if result.request.sources:
        embed.add_field(name=t("result.edited_from"), value=tn("result.inputs", len(result.request.sources)))
    footer = t("result.footer", name=requester.name, seed=seed) if requester else t("result.footer_seed", seed=seed)
    embed.set_footer(text=footer)
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
        description = t("details.prompt_deleted")
    else:
        command = clip(imagine_command_line(record), 1900)
        description = t("details.description", prompt=user_text(record.prompt, 1800), command=command)
        if record.inputs:
            description += "\n" + tn("details.inputs", record.inputs)
    embed = discord.Embed(title=t("details.title", id=record.id), description=description, colour=EMBED_COLOUR)
    if record.negative_prompt:
        embed.add_field(
            name=t("result.negative_prompt"), value=user_text(record.negative_prompt, FIELD_LIMIT), inline=False
        )
    embed.add_field(name=t("result.size"), value=dimensions(record.size) or t("details.size_of_input"))
    embed.add_field(name=t("result.seed"), value=f"`{record.seed}`")
    embed.add_field(name=t("result.model"), value=record.model)
    embed.add_field(name=t("result.prompt_extend"), value=on_off(record.prompt_extend))
    at, member = f"<t:{int(record.requested_at)}:f>", f"<@{record.member_id}>"
    embed.add_field(name=t("details.requested"), value=t("details.requested_by", at=at, member=member))
    if lineage:
        steps = [
            t("details.step", id=parent.id, member=mention(parent.member_id))
            + (f" ({link})" if (link := jump_url(parent.guild_id, parent.channel_id, parent.message_id)) else "")
            for parent in lineage
        ]
        label = t("result.edited_from") if record.inputs else t("details.remixed_from")
        embed.add_field(name=label, value=clip(" ← ".join(steps), FIELD_LIMIT), inline=False)
    embed.set_footer(text=t("details.note_prompt_extend") if record.prompt_extend else t("details.note"))
    return embed


def mention(member_id: int) -> str:
    """`<@id>`: a member as Discord shows them."""
    return f"<@{member_id}>"


def jump_url(guild_id: int | None, channel_id: int | None, message_id: int | None) -> str | None:
    """A link to a message, when all its ids are known."""
    if guild_id is None or channel_id is None or message_id is None:
        return None
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"
