"""The image API as a package: the client, its responses, edit requests and the model catalogue."""

from __future__ import annotations

from bot.qwen.client import (
    ASYNC_PATH,
    MAX_SEED,
    NEGATIVE_PROMPT_LIMIT,
    PROMPT_LIMIT,
    SYNC_PATH,
    GeneratedImage,
    GenerationParams,
    Pacer,
    QwenImageClient,
    RetryPolicy,
    Unpaced,
    build_async_body,
    build_sync_body,
)

__all__ = [
    "ASYNC_PATH",
    "MAX_SEED",
    "NEGATIVE_PROMPT_LIMIT",
    "PROMPT_LIMIT",
    "SYNC_PATH",
    "GeneratedImage",
    "GenerationParams",
    "Pacer",
    "QwenImageClient",
    "RetryPolicy",
    "Unpaced",
    "build_async_body",
    "build_sync_body",
]
