"""The image sizes the API accepts, in one table the operator can replace by a setting."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageSize:
    """One output size: the API's `W*H` string and the name members pick it by."""

    width: int
    height: int
    label: str

    @property
    def value(self) -> str:
        """The size as the API spells it, e.g. `1328*1328`."""
        return f"{self.width}*{self.height}"

    @property
    def choice_name(self) -> str:
        """What the slash command shows, e.g. `Square 1:1 (1328×1328)`."""
        return f"{self.label} ({self.width}×{self.height})"


DEFAULT_SIZES: tuple[ImageSize, ...] = (
    ImageSize(1664, 928, "Wide 16:9"),
    ImageSize(1472, 1140, "Landscape 4:3"),
    ImageSize(1328, 1328, "Square 1:1"),
    ImageSize(1140, 1472, "Portrait 3:4"),
    ImageSize(928, 1664, "Tall 9:16"),
)

_NAMED_RATIOS = {(16, 9): "Wide", (4, 3): "Landscape", (1, 1): "Square", (3, 4): "Portrait", (9, 16): "Tall"}


def parse_size_table(raw: str) -> tuple[ImageSize, ...]:
    """Parse `[Label=]W*H` items separated by commas; unlabelled sizes get a ratio label."""
    sizes: list[ImageSize] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        label, _, spec = item.rpartition("=")
        width, height = _parse_dimensions(spec.strip())
        sizes.append(ImageSize(width, height, label.strip() or _ratio_label(width, height)))
    if not sizes:
        raise ValueError("no sizes given")
    if len(sizes) > 25:
        raise ValueError("Discord allows at most 25 choices")
    if len({s.value for s in sizes}) != len(sizes):
        raise ValueError("a size is listed twice")
    return tuple(sizes)


def _parse_dimensions(spec: str) -> tuple[int, int]:
    width, sep, height = spec.partition("*")
    if not sep or not width.isdigit() or not height.isdigit():
        raise ValueError(f"{spec!r} is not W*H")
    w, h = int(width), int(height)
    if not (64 <= w <= 4096 and 64 <= h <= 4096):
        raise ValueError(f"{spec!r} is out of range")
    return w, h


def _ratio_label(width: int, height: int) -> str:
    """Name a size by its aspect ratio, rounding near-misses like 1472*1140 to 4:3."""
    ratio = width / height
    for (a, b), name in _NAMED_RATIOS.items():
        if abs(ratio - a / b) < 0.05 * (a / b):
            return f"{name} {a}:{b}"
    divisor = math.gcd(width, height)
    return f"{width // divisor}:{height // divisor}"


def find_size(sizes: tuple[ImageSize, ...], value: str) -> ImageSize | None:
    """The size whose API string is `value`, if configured."""
    return next((s for s in sizes if s.value == value), None)
