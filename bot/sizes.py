"""The image sizes the API accepts, in one table the operator can replace by a setting."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot.i18n import N_


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

    @property
    def label_key(self) -> str | None:
        """The message key of the label when it is its aspect ratio's own name (`Square 1:1`), so each
        language can name it; None for a label the operator chose."""
        ratio = _named_ratio(self.width, self.height)
        if ratio is None or self.label != _ratio_label(self.width, self.height):
            return None
        return _RATIO_KEYS[ratio]


DEFAULT_SIZES: tuple[ImageSize, ...] = (
    ImageSize(1664, 928, "Wide 16:9"),
    ImageSize(1472, 1140, "Landscape 4:3"),
    ImageSize(1328, 1328, "Square 1:1"),
    ImageSize(1140, 1472, "Portrait 3:4"),
    ImageSize(928, 1664, "Tall 9:16"),
)

_NAMED_RATIOS = {(16, 9): "Wide", (4, 3): "Landscape", (1, 1): "Square", (3, 4): "Portrait", (9, 16): "Tall"}
#: Each named ratio's label with the size, in every language: `Square 1:1 (1328×1328)`.
_RATIO_KEYS = {
    (16, 9): N_("size.wide"),
    (4, 3): N_("size.landscape"),
    (1, 1): N_("size.square"),
    (3, 4): N_("size.portrait"),
    (9, 16): N_("size.tall"),
}


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
    named = _named_ratio(width, height)
    if named is not None:
        a, b = named
        return f"{_NAMED_RATIOS[named]} {a}:{b}"
    divisor = math.gcd(width, height)
    return f"{width // divisor}:{height // divisor}"


def _named_ratio(width: int, height: int) -> tuple[int, int] | None:
    ratio = width / height
    return next(((a, b) for a, b in _NAMED_RATIOS if abs(ratio - a / b) < 0.05 * (a / b)), None)


def find_size(sizes: tuple[ImageSize, ...], value: str) -> ImageSize | None:
    """The size whose API string is `value`, if configured."""
    return next((s for s in sizes if s.value == value), None)
