"""Backend-neutral records and repository interfaces; services depend on these, not on SQL."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Status(StrEnum):
    """Where a generation attempt stands."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DENIED = "denied"


@dataclass(frozen=True)
class NewGeneration:
    """What a member asked for, as the usage log records it."""

    guild_id: int | None
    channel_id: int | None
    member_id: int
    model: str
    size: str
    seed: int
    prompt_extend: bool
    prompt: str
    negative_prompt: str = ""
    parent_id: int | None = None


@dataclass(frozen=True)
class GenerationRecord:
    """One row of the usage log."""

    id: int
    guild_id: int | None
    channel_id: int | None
    member_id: int
    requested_at: float
    started_at: float | None
    finished_at: float | None
    status: Status
    error_code: str | None
    model: str
    size: str
    seed: int
    prompt_extend: bool
    prompt: str | None
    negative_prompt: str | None
    request_id: str | None
    image_bytes: int | None
    parent_id: int | None
    message_id: int | None


class GenerationRepository(Protocol):
    """The usage log: one row per generation attempt."""

    async def create(self, new: NewGeneration, *, status: Status, at: float) -> int:
        """Insert a row and return its id."""

    async def mark_running(self, generation_id: int, *, at: float) -> None:
        """The API call is starting."""

    async def mark_succeeded(self, generation_id: int, *, at: float, request_id: str | None, image_bytes: int) -> None:
        """The image was generated and fetched."""

    async def mark_failed(
        self, generation_id: int, *, at: float, error_code: str, request_id: str | None = None
    ) -> None:
        """The attempt failed; it is not counted against any limit."""

    async def set_message(self, generation_id: int, *, channel_id: int, message_id: int) -> None:
        """Remember where the result was posted."""

    async def get(self, generation_id: int) -> GenerationRecord | None:
        """One row, or None if it does not exist."""


class MetaRepository(Protocol):
    """Small key/value facts about this installation."""

    async def get(self, key: str) -> str | None:
        """The value stored under `key`, if any."""

    async def set(self, key: str, value: str) -> None:
        """Store `value` under `key`."""
