"""Domain errors. Each carries the key of the message a member reads (and its parameters); the
message is written in the locale in force when it is read. Details go to the log only, in English."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.i18n import ENGLISH, N_, number, speaking, t, tn
from bot.i18n.formatting import joined


@dataclass(frozen=True)
class Localized:
    """A message parameter written in the locale in force when the message is read (money, a list)."""

    render: Callable[[], str]

    def __str__(self) -> str:
        return self.render()


def _shown(value: object) -> object:
    """A parameter as the message shows it: numbers with the locale's grouping, the rest as they are."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return number(value)
    return value


class QwenImagineError(Exception):
    """Base of every failure a member should hear about."""

    message_key = N_("error.generic")
    #: What the usage log stores as the error code.
    code = "Error"
    #: The count a plural message is chosen for (None: the message has no plural forms).
    count: int | None = None

    def __init__(
        self,
        detail: str = "",
        *,
        message_key: str | None = None,
        count: int | None = None,
        params: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self._detail = detail
        if message_key is not None:
            self.message_key = message_key
        if count is not None:
            self.count = count
        self.params: dict[str, object] = dict(params or {})

    @property
    def user_message(self) -> str:
        """What the member reads, in the locale in force."""
        params = {name: _shown(value) for name, value in self.params.items()}
        if self.count is not None:
            return tn(self.message_key, self.count, **params)
        return t(self.message_key, **params)

    def __str__(self) -> str:
        if self._detail:
            return self._detail
        with speaking(ENGLISH):
            return self.user_message


class InvalidRequest(QwenImagineError):
    """The member's input cannot be sent as it is."""

    code = "InvalidRequest"

    def __init__(self, message_key: str, /, *, count: int | None = None, **params: object) -> None:
        super().__init__(message_key=message_key, count=count, params=params)


class ApiError(QwenImagineError):
    """The image API answered with an error (or not at all)."""

    def __init__(self, code: str, message: str, *, request_id: str | None = None, status: int | None = None) -> None:
        super().__init__(f"{code}: {message} (HTTP {status}, request {request_id})")
        self.code = code
        self.api_message = message
        self.request_id = request_id
        self.status = status


class ContentRejected(ApiError):
    """The service's content moderation refused the prompt or its image."""

    message_key = N_("error.content_rejected")


class IpInfringementSuspected(ApiError):
    """The service suspects the prompt asks for someone's intellectual property."""

    message_key = N_("error.ip_infringement")


class ServiceBusy(ApiError):
    """The account's rate or concurrency limit held after every retry."""

    message_key = N_("service.busy")


class ServiceFailed(ApiError):
    """A server-side failure, a timeout or a network error that retries did not cure."""

    message_key = N_("service.failed")


class ServiceMisconfigured(ApiError):
    """A key, billing, entitlement, model or parameter problem only the operator can fix."""

    message_key = N_("service.misconfigured")


class ImageFetchFailed(QwenImagineError):
    """The image was generated but could not be downloaded as a valid PNG."""

    code = "ImageFetchFailed"
    message_key = N_("error.image_fetch_failed")


class ImageTooLarge(ImageFetchFailed):
    """The generated image is larger than Discord lets the bot upload here."""

    code = "ImageTooLarge"

    def __init__(self, size_limit: int) -> None:
        mib = round(size_limit / (1024 * 1024))
        super().__init__(
            f"image larger than {size_limit} bytes", message_key=N_("error.image_too_large"), params={"mib": mib}
        )
        self.size_limit = size_limit


class LimitDenied(QwenImagineError):
    """A limit (or a moderator's block) refuses this request for now."""

    code = "LimitDenied"

    def __init__(self, message_key: str, /, *, count: int | None = None, **params: object) -> None:
        super().__init__(message_key=message_key, count=count, params=params)


class NotAllowed(QwenImagineError):
    """The member lacks the permission an action needs."""

    code = "NotAllowed"

    def __init__(self, message_key: str, /, *, count: int | None = None, **params: object) -> None:
        super().__init__(message_key=message_key, count=count, params=params)


class GenerationUnavailable(QwenImagineError):
    """A result's stored parameters are gone (retention) or were never recorded."""

    code = "GenerationUnavailable"

    def __init__(self, message_key: str, /, **params: object) -> None:
        super().__init__(message_key=message_key, params=params)


class Restarting(QwenImagineError):
    """The bot is shutting down and takes no new work."""

    code = "Restarting"
    message_key = N_("service.restarting")


class DatabaseUnavailable(QwenImagineError):
    """The database could not be reached; nothing this request needed was recorded."""

    code = "DatabaseUnavailable"
    message_key = N_("service.database_unavailable")


class Interrupted(QwenImagineError):
    """A job could not finish before the bot shut down; it is saved and resumes at the next start."""

    code = "Interrupted"
    message_key = N_("service.interrupted")


class HandedOver(Interrupted):
    """Shutdown handed a waiting job to another live process, which runs and delivers it: the process
    that received it says nothing more about it."""

    code = "HandedOver"


class ForeignGeneration(QwenImagineError):
    """An action names an image that is not this server's (or a message other than the image's own).
    A missing image reads the same, so a member learns nothing about images elsewhere."""

    code = "ForeignGeneration"
    message_key = N_("error.foreign_generation")


#: The permissions a result needs, by their flag in discord.py, and the key of their name as Discord
#: shows it in each locale.
PERMISSION_NAMES = {
    "send_messages": N_("perm.send_messages"),
    "send_messages_in_threads": N_("perm.send_messages_in_threads"),
    "attach_files": N_("perm.attach_files"),
    "embed_links": N_("perm.embed_links"),
}


def _permission_names(missing: tuple[str, ...]) -> str:
    return joined([t(PERMISSION_NAMES[name]) if name in PERMISSION_NAMES else name for name in missing])


class CannotPostHere(QwenImagineError):
    """The bot lacks a permission it needs to post a result in this channel (`missing`: flags such as
    `attach_files`)."""

    code = "MissingPermissions"

    def __init__(self, missing: tuple[str, ...]) -> None:
        super().__init__(
            f"missing {', '.join(missing)}",
            message_key=N_("refuse.cannot_post_here"),
            count=len(missing),
            params={"names": Localized(lambda: _permission_names(missing))},
        )
        self.missing = missing


class UploadFailed(QwenImagineError):
    """The image was made (and billed) but Discord did not take the upload; it does not count against limits.
    `message_key` names the whole sentence the member reads: why it was not posted, and that it is not counted."""

    code = "UploadFailed"

    def __init__(self, code: str, message_key: str) -> None:
        super().__init__(code, message_key=message_key)
        self.code = code


class OutcomeUnknown(ApiError):
    """The connection broke after the request was sent: the image may have been made and billed unseen."""

    message_key = N_("service.outcome_unknown")

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__("OutcomeUnknown", message, status=status)


#: How many allowed channels a refusal names before it says how many more there are.
SHOWN_CHANNELS = 10


def _channel_list(allowed: tuple[int, ...]) -> str:
    shown = joined([f"<#{channel_id}>" for channel_id in allowed[:SHOWN_CHANNELS]])
    if len(allowed) <= SHOWN_CHANNELS:
        return shown
    return tn("refuse.wrong_channel.more", len(allowed) - SHOWN_CHANNELS, channels=shown)


class WrongChannel(QwenImagineError):
    """The server lets members generate only in some channels, and this is not one of them."""

    code = "wrong_channel"

    def __init__(self, allowed: tuple[int, ...]) -> None:
        super().__init__(
            "channel not allowed",
            message_key=N_("refuse.wrong_channel"),
            params={"channels": Localized(lambda: _channel_list(allowed))},
        )
        self.allowed = allowed


#: The message naming each field of a request a blocked word is looked for in.
BLOCKED_IN = {"prompt": N_("refuse.blocked_word.prompt"), "negative prompt": N_("refuse.blocked_word.negative_prompt")}


class BlockedWordUsed(QwenImagineError):
    """A prompt contains a word or phrase the server's moderators have blocked."""

    code = "blocked_word"

    def __init__(self, entry: str, field: str) -> None:
        key = BLOCKED_IN.get(field, BLOCKED_IN["prompt"])
        super().__init__("blocked word", message_key=key, params={"entry": entry})
        self.entry = entry
        self.field = field


class BudgetExceeded(QwenImagineError):
    """A spending cap would be passed by this request."""

    code = "budget"

    def __init__(self, message_key: str, /, **params: object) -> None:
        super().__init__(message_key=message_key, params=params)
