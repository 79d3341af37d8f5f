"""What the image API's failures mean: which domain error each is, and whether to retry it."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

from bot.errors import (
    ApiError,
    ContentRejected,
    IpInfringementSuspected,
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
