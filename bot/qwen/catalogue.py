"""The model catalogue: what each model does, its sizes, images per request, limits and prices.

The built-in entries (`models.json` beside this file) follow the vendor's pages; an operator adds or
corrects entries with a JSON file named by MODEL_CATALOGUE_FILE (same shape: {"models": [...]}, an
entry with a known name replaces that entry whole). Every field is checked; a malformed entry raises
CatalogueError with one line naming the entry and the field."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUILT_IN = Path(__file__).with_name("models.json")
REGIONS = ("intl", "cn")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_SIZE = re.compile(r"([1-9][0-9]{1,4})\*([1-9][0-9]{1,4})")
_FIELDS = {"name", "does", "sizes", "max_images", "async", "submissions", "window_seconds", "concurrency", "price_usd"}


class CatalogueError(ValueError):
    """A malformed catalogue: the message names the entry and the field."""


@dataclass(frozen=True)
class ModelSpec:
    """One model as the bot uses it."""

    name: str
    #: "text" (text to image) or "edit" (1 to 3 images and an instruction).
    does: str
    #: A fixed list of W*H sizes, or None when the size is free (see `size_range`) or not settable.
    fixed_sizes: tuple[str, ...] | None
    #: The free range of each side, or None.
    size_range: tuple[int, int] | None
    max_images: int
    has_async: bool
    #: At most `submissions` submissions in any `window_seconds`.
    submissions: int
    window_seconds: float
    #: Calls in flight at once for this model (0: only the account's limit).
    concurrency: int
    price_usd: dict[str, float]

    @property
    def size_settable(self) -> bool:
        """Whether a request may choose the size."""
        return self.fixed_sizes is not None or self.size_range is not None

    def price(self, region: str) -> float:
        """List price per image in `region`."""
        return self.price_usd.get(region, 0.0)


@dataclass(frozen=True)
class Catalogue:
    """Every known model, by name."""

    models: dict[str, ModelSpec]

    def get(self, name: str) -> ModelSpec | None:
        """The model called `name`, if known."""
        return self.models.get(name)

    def price(self, name: str, region: str) -> float:
        """The list price of one image of `name` (0 for a model the catalogue doesn't know)."""
        spec = self.models.get(name)
        return spec.price(region) if spec else 0.0

    def pace(self, name: str | None) -> tuple[int, float, int]:
        """(submissions per window, window seconds, concurrency) of a model; the defaults for unknown ones."""
        spec = self.models.get(name or "")
        if spec is None:
            return (2, 1.0, 0)
        return (spec.submissions, spec.window_seconds, spec.concurrency)


def load_catalogue(override: Path | None = None) -> Catalogue:
    """The built-in catalogue, with the entries of `override` added or replacing theirs."""
    models = {spec.name: spec for spec in _read(BUILT_IN, "built-in catalogue")}
    if override is not None:
        for spec in _read(override, str(override)):
            models[spec.name] = spec
    return Catalogue(models)


def _read(path: Path, where: str) -> list[ModelSpec]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CatalogueError(f"{where}: cannot be read ({error.strerror or error})") from None
    except ValueError as error:
        raise CatalogueError(f"{where}: not valid JSON ({error})") from None
    entries = document.get("models") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise CatalogueError(f'{where}: expected an object with a "models" list')
    specs = [parse_entry(entry, f"{where}, entry {n}") for n, entry in enumerate(entries, start=1)]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise CatalogueError(f"{where}: a model is listed twice")
    return specs


def parse_entry(entry: Any, where: str) -> ModelSpec:
    """One catalogue entry, every field checked."""
    if not isinstance(entry, dict):
        raise CatalogueError(f"{where}: an entry must be an object")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise CatalogueError(f"{where}: name must be a model id such as qwen-image-plus")
    where = f"{where} ({name})"
    unknown = set(entry) - _FIELDS
    if unknown:
        raise CatalogueError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    does = entry.get("does")
    if does not in ("text", "edit"):
        raise CatalogueError(f'{where}: does must be "text" or "edit"')
    fixed, free = _sizes(entry.get("sizes"), where)
    if does == "text" and fixed is None:
        raise CatalogueError(f"{where}: sizes of a text-to-image model must be a list of W*H")
    max_images = _integer(entry, "max_images", 1, 6, where)
    has_async = entry.get("async")
    if not isinstance(has_async, bool):
        raise CatalogueError(f"{where}: async must be true or false")
    submissions = _integer(entry, "submissions", 1, 1000, where)
    window = entry.get("window_seconds")
    if isinstance(window, bool) or not isinstance(window, int | float) or not 0 < window <= 86400:
        raise CatalogueError(f"{where}: window_seconds must be a number of seconds from 0 to 86400")
    concurrency = _integer(entry, "concurrency", 0, 64, where)
    prices = entry.get("price_usd")
    if not isinstance(prices, dict) or not prices or set(prices) - set(REGIONS):
        raise CatalogueError(f'{where}: price_usd must map regions ("intl", "cn") to a price per image')
    for region, price in prices.items():
        if isinstance(price, bool) or not isinstance(price, int | float) or not 0 <= price <= 100:
            raise CatalogueError(f"{where}: price_usd.{region} must be a number of dollars from 0 to 100")
    return ModelSpec(
        name,
        does,
        fixed,
        free,
        max_images,
        has_async,
        submissions,
        float(window),
        concurrency,
        {region: float(price) for region, price in prices.items()},
    )


def _sizes(raw: Any, where: str) -> tuple[tuple[str, ...] | None, tuple[int, int] | None]:
    if raw is None:
        return None, None
    if isinstance(raw, list) and raw and all(isinstance(s, str) and _SIZE.fullmatch(s) for s in raw):
        return tuple(raw), None
    if isinstance(raw, dict) and set(raw) == {"min", "max"}:
        low, high = raw["min"], raw["max"]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) and 64 <= low <= high <= 8192:
            return None, (low, high)
    raise CatalogueError(f'{where}: sizes must be a list of "W*H", {{"min": ..., "max": ...}} per side, or null')


def _integer(entry: dict[str, Any], field: str, low: int, high: int, where: str) -> int:
    value = entry.get(field)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise CatalogueError(f"{where}: {field} must be a whole number from {low} to {high}")
    return value
