"""Usage reports, the CSV export, and the retention of prompt text."""

from __future__ import annotations

import csv
import io
import logging
import tempfile
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO

from bot.db.records import GenerationRecord, Status, UsageRepository, UsageSummary
from bot.i18n import N_, t
from bot.qwen.catalogue import Catalogue

log = logging.getLogger(__name__)

#: List price per image in USD, by region and model.
PRICES_USD = {
    "intl": {"qwen-image-plus": 0.03, "qwen-image": 0.035},
    "cn": {"qwen-image-plus": 0.028671, "qwen-image": 0.035},
}
#: An export stays in memory up to this size and moves to an unlinked temporary file beyond it.
SPOOL_BYTES = 1024 * 1024
#: The header of each column (in the language in force; English names the columns as the code does).
CSV_COLUMNS = (
    N_("csv.id"),
    N_("csv.requested_at"),
    N_("csv.started_at"),
    N_("csv.finished_at"),
    N_("csv.member_id"),
    N_("csv.channel_id"),
    N_("csv.status"),
    N_("csv.error_code"),
    N_("csv.model"),
    N_("csv.size"),
    N_("csv.seed"),
    N_("csv.prompt_extend"),
    N_("csv.prompt"),
    N_("csv.negative_prompt"),
    N_("csv.request_id"),
    N_("csv.image_bytes"),
    N_("csv.parent_id"),
    N_("csv.price_usd"),
)


class Period(StrEnum):
    """The span a usage report covers, ending now."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def seconds(self) -> int:
        """Its length; a month is 30 days."""
        return {"day": 86400, "week": 7 * 86400, "month": 30 * 86400}[self.value]


@dataclass(frozen=True)
class UsageReport:
    """A guild's usage over a period, with its estimated cost."""

    period: Period
    summary: UsageSummary
    cost_usd: float
    #: (model, images made, estimated cost) for each model used.
    per_model: tuple[tuple[str, int, float], ...] = ()

    @property
    def images_made(self) -> int:
        """Images the service made (and billed): delivered, or refused by Discord (`summary.undelivered`)."""
        return self.summary.succeeded + self.summary.undelivered


@dataclass(frozen=True)
class CsvExport:
    """The rows of a period as CSV in a spooled temporary file (in memory while small, an unlinked
    file on disk beyond), positioned at its start; `complete` is False when the size cap cut it short.
    Close it once it has been sent."""

    file: IO[bytes]
    size: int
    rows: int
    complete: bool

    def close(self) -> None:
        """Release the memory or the temporary file."""
        self.file.close()

    def __enter__(self) -> CsvExport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iso(unix: float | None) -> str:
    """A unix time as ISO 8601 UTC, or empty."""
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds") if unix is not None else ""


def spreadsheet_safe(text: str | None) -> str:
    """Member text that a spreadsheet will not run as a formula."""
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text or ""


class UsageService:
    """Reports for moderators and the retention clean-up."""

    def __init__(
        self,
        repository: UsageRepository,
        *,
        region: str,
        retention_days: int,
        clock: Callable[[], float] = time.time,
        catalogue: Catalogue | None = None,
    ) -> None:
        self._repo = repository
        self._prices = PRICES_USD[region]
        if catalogue is not None:
            self._prices = {name: spec.price(region) for name, spec in catalogue.models.items()}
        self._retention_seconds = retention_days * 86400
        self._clock = clock

    async def report(self, guild_id: int, period: Period) -> UsageReport:
        """Images, failures, denials, top members and estimated cost over `period`; images Discord
        refused to take were made and billed all the same, so they are in the images and the cost."""
        summary = await self._repo.summary(guild_id, since=self._clock() - period.seconds)
        per_model = tuple(
            (model, count, self._prices.get(model, 0.0) * count)
            for model, count in sorted(summary.succeeded_by_model.items())
        )
        return UsageReport(period, summary, sum(cost for _, _, cost in per_model), per_model)

    async def export_csv(self, guild_id: int, period: Period, *, max_bytes: int) -> CsvExport:
        """The period's rows as CSV, no larger than `max_bytes`; memory use stays bounded however many."""
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b")  # noqa: SIM115 - CsvExport owns it
        try:
            lines = _CsvLines()
            size, rows, complete = spool.write(lines.encode(t(key) for key in CSV_COLUMNS)), 0, True
            records = self._repo.rows(guild_id, since=self._clock() - period.seconds)
            try:
                async for record in records:
                    line = lines.encode(_csv_row(record, self._price_of(record)))
                    if size + len(line) > max_bytes:
                        complete = False
                        break
                    size += spool.write(line)
                    rows += 1
            finally:
                if isinstance(records, AsyncGenerator):
                    await records.aclose()
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return CsvExport(spool, size, rows, complete)

    def _price_of(self, record: GenerationRecord) -> float:
        """What a row cost at list price: made images only (a failed or refused one is not billed)."""
        made = record.status in (Status.SUCCEEDED, Status.UNDELIVERED)
        return self._prices.get(record.model, 0.0) if made else 0.0

    async def apply_retention(self) -> int:
        """Clear the prompts of rows older than the retention period; counts stay."""
        scrubbed = await self._repo.scrub_prompts(before=self._clock() - self._retention_seconds)
        if scrubbed:
            log.info("cleared the prompts of %d generations past retention", scrubbed)
        return scrubbed


class _CsvLines:
    """Encodes one CSV record at a time (UTF-8, CRLF line ends as the csv module writes them)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def encode(self, fields: Iterable[object]) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(fields)
        return self._buffer.getvalue().encode()


def _csv_row(record: GenerationRecord, price: float) -> list[object]:
    return [
        record.id,
        iso(record.requested_at),
        iso(record.started_at),
        iso(record.finished_at),
        record.member_id,
        record.channel_id,
        record.status.value,
        record.error_code or "",
        record.model,
        record.size,
        record.seed,
        int(record.prompt_extend),
        spreadsheet_safe(record.prompt),
        spreadsheet_safe(record.negative_prompt),
        record.request_id or "",
        record.image_bytes if record.image_bytes is not None else "",
        record.parent_id or "",
        f"{price:.4f}",
    ]
