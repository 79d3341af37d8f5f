"""Domain errors. Each carries the sentence a member reads; details go to the log only."""

from __future__ import annotations


class QwenImagineError(Exception):
    """Base of every failure a member should hear about."""

    user_message = "Something went wrong while making your image. Please try again."
    #: What the usage log stores as the error code.
    code = "Error"

    def __init__(self, detail: str = "", *, user_message: str | None = None) -> None:
        super().__init__(detail or self.user_message)
        if user_message is not None:
            self.user_message = user_message


class InvalidRequest(QwenImagineError):
    """The member's input cannot be sent as it is."""

    code = "InvalidRequest"

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message, user_message=user_message)


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

    user_message = (
        "The image service's content filter rejected this request. Please rephrase your prompt and try again."
    )


class IpInfringementSuspected(ApiError):
    """The service suspects the prompt asks for someone's intellectual property."""

    user_message = (
        "The image service thinks this prompt asks for a protected character, brand or artwork. "
        "Please rephrase it and try again."
    )


class ServiceBusy(ApiError):
    """The account's rate or concurrency limit held after every retry."""

    user_message = "The image service is busy right now. Please try again in a minute."


class ServiceFailed(ApiError):
    """A server-side failure, a timeout or a network error that retries did not cure."""

    user_message = "The image service had a problem making your image. Please try again in a minute."


class ServiceMisconfigured(ApiError):
    """A key, billing, entitlement, model or parameter problem only the operator can fix."""

    user_message = "The bot can't use the image service because of a setup problem. Please tell a server moderator."


class ImageFetchFailed(QwenImagineError):
    """The image was generated but could not be downloaded as a valid PNG."""

    code = "ImageFetchFailed"
    user_message = "Your image was made, but the bot couldn't fetch it from the image service. Please try again."


class ImageTooLarge(ImageFetchFailed):
    """The generated image is larger than Discord lets the bot upload here."""

    code = "ImageTooLarge"

    def __init__(self, size_limit: int) -> None:
        mib = size_limit / (1024 * 1024)
        super().__init__(
            f"image larger than {size_limit} bytes",
            user_message=f"Your image was made, but it is larger than this channel's upload limit ({mib:.0f} MiB).",
        )
        self.size_limit = size_limit


class LimitDenied(QwenImagineError):
    """A limit (or a moderator's block) refuses this request for now."""

    code = "LimitDenied"

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message, user_message=user_message)


class NotAllowed(QwenImagineError):
    """The member lacks the permission an action needs."""

    code = "NotAllowed"

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message, user_message=user_message)


class GenerationUnavailable(QwenImagineError):
    """A result's stored parameters are gone (retention) or were never recorded."""

    code = "GenerationUnavailable"

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message, user_message=user_message)


class Restarting(QwenImagineError):
    """The bot is shutting down and takes no new work."""

    code = "Restarting"
    user_message = "The bot is restarting right now. Please try again in a minute."


class DatabaseUnavailable(QwenImagineError):
    """The database could not be reached; nothing this request needed was recorded."""

    code = "DatabaseUnavailable"
    user_message = "The bot's database is unavailable right now, so nothing was done. Please try again in a minute."


class Interrupted(QwenImagineError):
    """A job could not finish before the bot shut down; it is saved and resumes at the next start."""

    code = "Interrupted"
    user_message = (
        "The bot is restarting before your image could be made. It's saved, and will be posted in this "
        "channel when the bot is back."
    )


class HandedOver(Interrupted):
    """Shutdown handed a waiting job to another live process, which runs and delivers it: the process
    that received it says nothing more about it."""

    code = "HandedOver"


class ForeignGeneration(QwenImagineError):
    """An action names an image that is not this server's (or a message other than the image's own).
    A missing image reads the same, so a member learns nothing about images elsewhere."""

    code = "ForeignGeneration"
    user_message = "That image isn't from here."


class CannotPostHere(QwenImagineError):
    """The bot lacks a permission it needs to post a result in this channel."""

    code = "MissingPermissions"

    def __init__(self, missing: tuple[str, ...]) -> None:
        names = missing[0] if len(missing) == 1 else f"{', '.join(missing[:-1])} and {missing[-1]}"
        noun = "permissions" if len(missing) > 1 else "permission"
        super().__init__(
            f"missing {names}",
            user_message=(
                f"I can't post images here: I'm missing the {names} {noun} in this channel. Ask a moderator "
                "to let me Send Messages, Attach Files and Embed Links here, or try another channel."
            ),
        )
        self.missing = missing


class UploadFailed(QwenImagineError):
    """The image was made (and billed) but Discord did not take the upload; it does not count against limits."""

    code = "UploadFailed"

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code, user_message=f"Your image was made, but {reason} It doesn't count against your limits.")
        self.code = code


class OutcomeUnknown(ApiError):
    """The connection broke after the request was sent: the image may have been made and billed unseen."""

    user_message = (
        "The image service stopped answering while making your image; it may have been made and billed, "
        "but I never received it. Press Retry to try again."
    )

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__("OutcomeUnknown", message, status=status)


class WrongChannel(QwenImagineError):
    """The server lets members generate only in some channels, and this is not one of them."""

    code = "wrong_channel"

    def __init__(self, allowed: tuple[int, ...]) -> None:
        shown = ", ".join(f"<#{channel_id}>" for channel_id in allowed[:10])
        more = f" (and {len(allowed) - 10} more)" if len(allowed) > 10 else ""
        super().__init__(
            "channel not allowed",
            user_message=f"Images can't be made in this channel. This server makes them in {shown}{more}.",
        )
        self.allowed = allowed


class BlockedWordUsed(QwenImagineError):
    """A prompt contains a word or phrase the server's moderators have blocked."""

    code = "blocked_word"

    def __init__(self, entry: str, field: str) -> None:
        super().__init__(
            "blocked word",
            user_message=(
                f"Your {field} contains “{entry}”, which this server's moderators have blocked. "
                "Please rephrase it and try again."
            ),
        )
        self.entry = entry
class BudgetExceeded(QwenImagineError):
    """A spending cap would be passed by this request."""

    code = "budget"

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message, user_message=user_message)
