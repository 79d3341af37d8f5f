"""Edit requests: 1 to 3 input images and an instruction, sent to the sync endpoint; 1 to n results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.qwen.responses import int_or_none

if TYPE_CHECKING:
    from bot.qwen.client import GenerationParams

MAX_INPUTS = 3


def build_edit_body(params: GenerationParams, images: tuple[str, ...], *, count: int = 1) -> dict[str, Any]:
    """The JSON body of an edit: the images in order (Image 1, 2, 3), then the instruction.

    `params.size` is sent only when set: left out, the service follows the last image's aspect ratio."""
    if not 1 <= len(images) <= MAX_INPUTS:
        raise ValueError(f"an edit takes 1 to {MAX_INPUTS} images, not {len(images)}")
    parameters: dict[str, Any] = {
        "n": count,
        "seed": params.seed,
        "prompt_extend": params.prompt_extend,
        "watermark": params.watermark,
    }
    if params.size:
        parameters["size"] = params.size
    if params.negative_prompt:
        parameters["negative_prompt"] = params.negative_prompt
    content: list[dict[str, str]] = [{"image": image} for image in images]
    content.append({"text": params.prompt})
    return {
        "model": params.model,
        "input": {"messages": [{"role": "user", "content": content}]},
        "parameters": parameters,
    }


def extract_images(body: dict[str, Any]) -> list[str]:
    """Every result URL of a sync answer, in order (an edit with n > 1 has several)."""
    output = body.get("output")
    if not isinstance(output, dict):
        return []
    urls: list[str] = []
    try:
        for choice in output["choices"]:
            for item in choice["message"]["content"]:
                if isinstance(item, dict) and isinstance(item.get("image"), str) and item["image"]:
                    urls.append(str(item["image"]))
    except (KeyError, IndexError, TypeError):
        return urls
    return urls


def usage_size(body: dict[str, Any]) -> tuple[int | None, int | None]:
    """The width and height the answer's `usage` reports."""
    usage = body.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return int_or_none(usage.get("width")), int_or_none(usage.get("height"))
