"""One way to answer an interaction: its response, its deferred message, or the channel once it has expired."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import discord

from bot.i18n import speaking

log = logging.getLogger(__name__)

T = TypeVar("T")

NO_MENTIONS = discord.AllowedMentions.none()
#: Discord's "Invalid Webhook Token": the 15-minute interaction token has expired.
EXPIRED_TOKEN = 50027
#: Discord's "Unknown interaction": it was not acknowledged within 3 seconds.
UNKNOWN_INTERACTION = 10062
#: Statuses discord.py retries itself (five tries, about 25 seconds) on bot-token routes such as a
#: channel post. On interaction webhooks (the response, its edits, followups) it retries every 5xx.
RETRIED_BY_DISCORD_PY = frozenset({500, 502, 504, 524})
#: Pauses before the second and third try of a transient failure (a 503, or a connection that broke).
RETRY_DELAYS = (0.5, 2.0)
#: Discord's "Too Many Requests".
RATE_LIMITED = 429
#: Further rounds of discord.py's five attempts for an answer Discord keeps rate limiting.
RATE_LIMIT_ROUNDS = 5
#: The longest wait taken from a 429's headers.
MAX_RATE_LIMIT_WAIT = 30.0


#: One embed or several (an edit with several results shows one per image).
Embeds = discord.Embed | list[discord.Embed] | None
#: Makes the message's file(s) afresh: a discord.File can be sent only once.
Files = Callable[[], discord.File | list[discord.File]] | None


@dataclass(frozen=True)
class Draft:
    """A message's text, embeds and buttons, as written in the locale in force."""

    content: str | None = None
    embed: Embeds = None
    view: discord.ui.View | None = None


#: Writes a message afresh in the locale in force: a message that falls back to the channel is
#: written again in the server's language (the member's was used for the interaction).
Redraft = Callable[[], Draft]


def server_locale(interaction: discord.Interaction[Any]) -> str | None:
    """The server's Discord locale, for what is posted in its channels without the interaction."""
    return interaction.guild_locale.value if interaction.guild_locale is not None else None


def _embeds(embed: Embeds) -> list[discord.Embed]:
    return [] if embed is None else embed if isinstance(embed, list) else [embed]


def _files(file: Files) -> list[discord.File]:
    if file is None:
        return []
    made = file()
    return made if isinstance(made, list) else [made]


def is_expired(error: discord.HTTPException) -> bool:
    """Whether Discord refused because the interaction or its token is gone."""
    return error.code in (EXPIRED_TOKEN, UNKNOWN_INTERACTION)


def is_deferred_message(interaction: discord.Interaction[Any]) -> bool:
    """Whether the interaction was acknowledged with a "thinking" message that the answer replaces."""
    return interaction.response.type is discord.InteractionResponseType.deferred_channel_message


def is_transient(error: BaseException, *, idempotent: bool, webhook: bool) -> bool:
    """Whether another try may succeed without posting twice, and discord.py has not already tried.

    A 5xx that discord.py does not retry itself (a 503 on a channel post) was not processed. A
    connection that never opened sent nothing. Any other broken connection may have delivered the
    request: only an edit, which lands the same however often it is sent, is tried again."""
    if isinstance(error, discord.HTTPException):
        return not webhook and error.status >= 500 and error.status not in RETRIED_BY_DISCORD_PY
    if isinstance(error, aiohttp.ClientConnectorError):
        return True
    return idempotent and isinstance(error, aiohttp.ClientError | OSError | TimeoutError)


async def with_retries(send: Callable[[], Awaitable[T]], *, idempotent: bool, webhook: bool) -> T:
    """`send()`, tried again after a short pause while its failure is transient, and waited out
    while Discord still rate limits it (see `patiently`)."""
    for delay in RETRY_DELAYS:
        try:
            return await patiently(send)
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as error:
            if not is_transient(error, idempotent=idempotent, webhook=webhook):
                raise
            log.info("Discord request failed (%s); trying again in %.1f s", describe(error), delay)
        await asyncio.sleep(delay)
    return await patiently(send)


def rate_limit_wait(error: discord.HTTPException) -> float:
    """How long Discord asked us to wait in a 429, from its headers (bounded)."""
    headers = getattr(error.response, "headers", None) or {}
    for name in ("X-RateLimit-Reset-After", "Retry-After"):
        try:
            return min(max(float(headers[name]), 0.05), MAX_RATE_LIMIT_WAIT)
        except (KeyError, TypeError, ValueError):
            continue
    return 1.0


async def patiently(send: Callable[[], Awaitable[T]]) -> T:
    """`send()`, tried again while Discord still answers 429 once discord.py's own retries are spent:
    a burst in one channel can keep a shared bucket full for longer than those few attempts."""
    for attempt in itertools.count(1):
        try:
            return await send()
        except discord.HTTPException as error:
            if error.status != RATE_LIMITED or attempt > RATE_LIMIT_ROUNDS:
                raise
            wait = rate_limit_wait(error)
            log.info("still rate limited after discord.py's retries; trying again in %.2f s", wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


def describe(error: BaseException) -> str:
    """A short label for logs: `403/50013 Missing Permissions`, or the exception's type."""
    if isinstance(error, discord.HTTPException):
        return f"{error.status}/{error.code} {error.text}"
    return type(error).__name__


async def reply(
    interaction: discord.Interaction[Any],
    *,
    content: str | None = None,
    embed: Embeds = None,
    file: Files = None,
    view: discord.ui.View | None = None,
    ephemeral: bool = False,
    redraft: Redraft | None = None,
) -> discord.Message | None:
    """Answer `interaction` and return the message (None if there is nowhere left to post it).

    Not yet acknowledged: the response itself (private if `ephemeral`). Deferred with a "thinking"
    message: that message is replaced (its visibility was fixed when it was deferred). Otherwise a
    followup. `file` is a factory because a discord.File can be sent only once and a retry or a
    fallback may need another. Mentions are disabled, except the requester's in a channel fallback.
    `redraft` writes the message again for a channel fallback, in the server's language.
    Transient failures are tried again; whatever still fails is raised.
    """
    try:
        if not interaction.response.is_done():
            callback = await interaction.response.send_message(
                content=content,
                embeds=_embeds(embed) or discord.utils.MISSING,
                files=_files(file) or discord.utils.MISSING,
                view=view or discord.utils.MISSING,
                ephemeral=ephemeral,
                allowed_mentions=NO_MENTIONS,
            )
            resource = callback.resource if callback else None
            return resource if isinstance(resource, discord.Message) else None
        if is_deferred_message(interaction):
            return await with_retries(
                lambda: interaction.edit_original_response(
                    content=content,
                    embeds=_embeds(embed),
                    attachments=_files(file),
                    view=view,
                    allowed_mentions=NO_MENTIONS,
                ),
                idempotent=True,
                webhook=True,
            )
        return await with_retries(
            lambda: interaction.followup.send(
                content=content or discord.utils.MISSING,
                embeds=_embeds(embed) or discord.utils.MISSING,
                files=_files(file) or discord.utils.MISSING,
                view=view or discord.utils.MISSING,
                ephemeral=ephemeral,
                allowed_mentions=NO_MENTIONS,
                wait=True,
            ),
            idempotent=False,
            webhook=True,
        )
    except discord.HTTPException as error:
        if not is_expired(error):
            raise
        log.info("interaction %s expired (code %s); posting to its channel", interaction.id, error.code)
    if ephemeral and not is_deferred_message(interaction):
        return None  # a private answer has nowhere public to go
    channel = interaction.channel
    if not isinstance(channel, discord.abc.Messageable):
        log.warning("interaction %s expired and has no channel to post to", interaction.id)
        return None
    if redraft is not None:
        with speaking(server_locale(interaction)):
            draft = redraft()
        content, embed, view = draft.content, draft.embed, draft.view
    return await send_to_channel(channel, interaction.user.id, content=content, embed=embed, file=file, view=view)


async def send_to_channel(
    channel: discord.abc.Messageable,
    requester_id: int,
    *,
    content: str | None,
    embed: Embeds,
    file: Files,
    view: discord.ui.View | None = None,
) -> discord.Message:
    """Post in a channel, mentioning (and pinging) only the requester; raise if Discord refuses."""
    mention = f"<@{requester_id}>"
    return await with_retries(
        lambda: channel.send(
            content=f"{mention} {content}" if content else mention,
            embeds=_embeds(embed) or discord.utils.MISSING,
            files=_files(file) or discord.utils.MISSING,
            view=view or discord.utils.MISSING,
            allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(requester_id)]),
        ),
        idempotent=False,
        webhook=False,
    )


async def post_to_channel(
    channel: discord.abc.Messageable,
    requester_id: int,
    *,
    content: str | None,
    embed: Embeds,
    file: Files,
    view: discord.ui.View | None = None,
) -> discord.Message | None:
    """`send_to_channel`, best effort: a refusal is logged and None returned."""
    try:
        return await send_to_channel(channel, requester_id, content=content, embed=embed, file=file, view=view)
    except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as error:
        log.warning("could not post to channel %s: %s", getattr(channel, "id", None), describe(error))
        return None


async def tell(
    interaction: discord.Interaction[Any],
    text: str | Callable[[], str],
    *,
    view: discord.ui.View | Callable[[], discord.ui.View] | None = None,
) -> None:
    """Best effort: tell the member through the interaction, else in its channel, else only the log.
    Given as functions, `text` and `view` are written again in the server's language for the channel."""

    def redraft() -> Draft:
        return Draft(content=text() if callable(text) else text, view=view() if callable(view) else view)

    try:
        first = redraft()
        if await reply(interaction, content=first.content, view=first.view, redraft=redraft) is not None:
            return
    except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as error:
        log.info("could not answer interaction %s (%s); trying its channel", interaction.id, describe(error))
        channel = interaction.channel
        if isinstance(channel, discord.abc.Messageable):
            with speaking(server_locale(interaction)):
                notice = redraft()
            if await post_to_channel(
                channel, interaction.user.id, content=notice.content, embed=None, file=None, view=notice.view
            ):
                return
    log.warning("could not tell member %s about interaction %s", interaction.user.id, interaction.id)
