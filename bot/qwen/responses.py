"""Reading the image API's answers: success bodies, error codes and what they mean, Retry-After."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from bot.errors import (
    ApiError,
    ContentRejected,
    IpInfringementSuspected,
    OutcomeUnknown,
    ServiceBusy,
    ServiceFailed,
    ServiceMisconfigured,
)

_CONTENT_CODES = {"DataInspectionFailed", "InternalError.Algo.DataInspectionFailed"}
_THROTTLING_CODES = {"Throttling", "Throttling.RateQuota", "Throttling.BurstRate"}
_OPERATOR_CODES = {
    "Arrearage",
    "InvalidApiKey",
    "AccessDenied",
    "AccessDenied.Unpurchased",
    "Model.AccessDenied",
    "AllocationQuota.FreeTierOnly",
    "ModelNotFound",
    "CommodityNotPurchased",
    "PrepaidBillOverdue",
    "PostpaidBillOverdue",
    "InvalidParameter",
}
_SERVER_CODES = {
    "InternalError",
    "InternalError.Algo",
    "SystemError",
    "ModelServiceFailed",
    "RequestTimeOut",
    "ModelServingError",
    "ModelUnavailable",
}


def classify(status: int, code: str, message: str, request_id: str | None) -> tuple[ApiError, bool]:
    """Map an API failure to a domain error, and say whether it is worth retrying."""
    args = (code, message)
    kwargs: dict[str, Any] = {"request_id": request_id, "status": status}
    if code in _CONTENT_CODES or code.endswith("DataInspectionFailed"):
        return ContentRejected(*args, **kwargs), False
    if code == "IPInfringementSuspect":
        return IpInfringementSuspected(*args, **kwargs), False
    if code == "Throttling.AllocationQuota":
        # "Free allocated quota exceeded" is the free tier running out, which waiting won't fix.
        if "free" in message.lower():
            return ServiceMisconfigured(*args, **kwargs), False
        return ServiceBusy(*args, **kwargs), True
    if code in _THROTTLING_CODES:
        return ServiceBusy(*args, **kwargs), True
    if code in _OPERATOR_CODES or code.startswith(("BadRequest", "AccessDenied")):
        return ServiceMisconfigured(*args, **kwargs), False
    if code in _SERVER_CODES:
        return ServiceFailed(*args, **kwargs), True
    if status == 429:
        return ServiceBusy(*args, **kwargs), True
    if status >= 500:
        return ServiceFailed(*args, **kwargs), True
    if status in (401, 403, 404):
        return ServiceMisconfigured(*args, **kwargs), False
    return ServiceFailed(*args, **kwargs), False


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


class Retryable(Exception):
    """An attempt failed in a way worth another try (after `retry_after`, if the server said)."""

    def __init__(self, error: ApiError, retry_after: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


@dataclass(frozen=True)
class Reply:
    """A successful (HTTP 200, no error code) JSON answer."""

    body: dict[str, Any]
    request_id: str | None


def parse_reply(
    status: int, text: str, header_request_id: str | None, retry_after: float | None, *, submission: bool = False
) -> Reply:
    """The answer as a Reply, or its failure raised (Retryable if worth another try)."""
    try:
        body: object = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # A proxy's HTML page, or garbage: the raw text is the message. A proxy's 5xx page doesn't say
        # whether the service got the request, so a submission is not sent again.
        if submission and status >= 500:
            raise OutcomeUnknown(f"HTTP {status} without the service's answer: {text.strip()[:300]}", status=status)
        raise_api_error(status, f"HTTP{status}", text.strip()[:300], header_request_id, retry_after)
    request_id = body.get("request_id") or header_request_id
    code = body.get("code")
    if status != 200 or code:
        raise_api_error(status, str(code or f"HTTP{status}"), str(body.get("message") or ""), request_id, retry_after)
    return Reply(body, request_id)


def extract_image(body: dict[str, Any]) -> str | None:
    output = body.get("output")
    if not isinstance(output, dict):
        return None
    metric = output.get("task_metric")
    if isinstance(metric, dict) and int_or_none(metric.get("FAILED")):
        return None
    try:
        for item in output["choices"][0]["message"]["content"]:
            if isinstance(item, dict) and isinstance(item.get("image"), str) and item["image"]:
                return str(item["image"])
    except (KeyError, IndexError, TypeError):
        return None
    return None


def task_image(output: dict[str, Any]) -> str | None:
    results = output.get("results")
    if isinstance(results, list):
        for result in results:
            if isinstance(result, dict) and isinstance(result.get("url"), str) and result["url"]:
                return str(result["url"])
    return None


def raise_api_error(
    status: int, code: str, message: str, request_id: str | None, retry_after: float | None
) -> NoReturn:
    error, retryable = classify(status, code, message, request_id)
    if retryable:
        raise Retryable(error, retry_after)
    raise error


def int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
