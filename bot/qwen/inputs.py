"""Input images of an edit: checked against the edit models' rules before anything is sent or charged.

The rules: a format the service reads (JPEG, PNG, BMP, TIFF, WEBP, GIF), 384 to 3072 pixels per side,
at most 10 MB. An image that meets them is sent byte for byte; a larger one is scaled down to fit
(its short side must stay at 384 or more); an animated one is sent as its first frame."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from bot.errors import InvalidRequest

MIN_SIDE = 384
MAX_SIDE = 3072
MAX_BYTES = 10 * 1024 * 1024
#: Pillow's format name -> the MIME type of the data URI.
ACCEPTED = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "MPO": "image/jpeg",
}
#: Far above any accepted image, far below what would exhaust memory when decoded.
Image.MAX_IMAGE_PIXELS = 64_000_000


@dataclass(frozen=True)
class SourceImage:
    """An image a member gave (an attachment), by its position in the prompt (Image 1, 2, 3)."""

    position: int
    filename: str
    url: str
    size: int
    content_type: str | None = None

    @property
    def name(self) -> str:
        """`Image 2 (cat.png)`, as the member reads it."""
        return f"Image {self.position} ({self.filename})"


@dataclass(frozen=True)
class PreparedImage:
    """An input ready to send: its data URI, dimensions, and what the member should know about it."""

    data_uri: str
    width: int
    height: int
    original: bool
    note: str | None = None


def check_metadata(source: SourceImage) -> None:
    """What can be refused from the attachment's description alone, before downloading it."""
    if source.content_type is not None and not source.content_type.startswith("image/"):
        raise InvalidRequest(f"{source.name} isn't an image. Attach a JPEG, PNG, WEBP, BMP, TIFF or GIF.")
    if source.size > MAX_BYTES:
        raise InvalidRequest(f"{source.name} is {source.size / 1024 / 1024:.1f} MB; the limit is 10 MB per image.")


def prepare(source: SourceImage, data: bytes) -> PreparedImage:
    """Check `data` against the rules; return it as a data URI (the same bytes when they comply)."""
    if len(data) > MAX_BYTES:
        raise InvalidRequest(f"{source.name} is {len(data) / 1024 / 1024:.1f} MB; the limit is 10 MB per image.")
    try:
        image = Image.open(io.BytesIO(data))
        kind = image.format or ""
        width, height = image.size
        frames = int(getattr(image, "n_frames", 1))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise InvalidRequest(f"{source.name} isn't an image I can read. Attach a JPEG, PNG or WEBP.") from None
    if kind not in ACCEPTED:
        raise InvalidRequest(
            f"{source.name} is in {kind or 'an unknown'} format; edits take JPEG, PNG, WEBP, BMP, TIFF or GIF."
        )
    if min(width, height) < MIN_SIDE:
        raise InvalidRequest(f"{source.name} is {width}×{height}; each side must be at least {MIN_SIDE} pixels.")
    scale = min(1.0, MAX_SIDE / max(width, height))
    if scale == 1.0 and frames == 1:
        return PreparedImage(_data_uri(ACCEPTED[kind], data), width, height, original=True)
    if round(min(width, height) * scale) < MIN_SIDE:
        raise InvalidRequest(
            f"{source.name} is {width}×{height}: too long and thin to fit {MAX_SIDE} pixels per side "
            f"while keeping {MIN_SIDE} on the short side."
        )
    return _converted(source, image, scale, animated=frames > 1)


def _converted(source: SourceImage, image: Image.Image, scale: float, *, animated: bool) -> PreparedImage:
    """The first frame, scaled by `scale`, as a PNG (a JPEG when a PNG would be too large)."""
    image.seek(0)
    frame = image.convert("RGBA" if _has_alpha(image) else "RGB")
    notes = []
    if animated:
        notes.append(f"{source.name} is animated: only its first frame is used.")
    if scale < 1.0:
        size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
        frame = frame.resize(size, Image.Resampling.LANCZOS)
        notes.append(f"{source.name} was scaled down to {size[0]}×{size[1]} (the limit is {MAX_SIDE} per side).")
    buffer = io.BytesIO()
    frame.save(buffer, format="PNG", optimize=False, compress_level=6)
    mime = "image/png"
    if buffer.tell() > MAX_BYTES:
        buffer = io.BytesIO()
        frame.convert("RGB").save(buffer, format="JPEG", quality=92)
        mime = "image/jpeg"
    return PreparedImage(_data_uri(mime, buffer.getvalue()), frame.width, frame.height, False, " ".join(notes))


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
