"""Input images of an edit: checked against the edit models' rules before anything is sent or charged.

The rules: a format the service reads (JPEG, PNG, BMP, TIFF, WEBP, GIF), 384 to 3072 pixels per side,
at most 10 MB. An image that meets them is sent byte for byte; a larger one is scaled down to fit
(its short side must stay at 384 or more); an animated one is sent as its first frame."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from bot.errors import InvalidRequest, Localized
from bot.i18n import N_, t

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
        """`Image 2 (cat.png)`, as the member reads it in the locale in force."""
        return t("refuse.image_name", position=str(self.position), filename=self.filename)

    @property
    def named(self) -> Localized:
        """The name as a message parameter, written when the message is read."""
        return Localized(lambda: self.name)


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
        raise InvalidRequest(N_("refuse.input_not_image"), name=source.named)
    if source.size > MAX_BYTES:
        raise InvalidRequest(N_("refuse.input_too_big"), name=source.named, mb=f"{source.size / 1024 / 1024:.1f}")


def prepare(source: SourceImage, data: bytes) -> PreparedImage:
    """Check `data` against the rules; return it as a data URI (the same bytes when they comply)."""
    if len(data) > MAX_BYTES:
        raise InvalidRequest(N_("refuse.input_too_big"), name=source.named, mb=f"{len(data) / 1024 / 1024:.1f}")
    try:
        image = Image.open(io.BytesIO(data))
        kind = image.format or ""
        width, height = image.size
        frames = int(getattr(image, "n_frames", 1))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise InvalidRequest(N_("refuse.input_unreadable_image"), name=source.named) from None
    if kind not in ACCEPTED:
        if kind:
            raise InvalidRequest(N_("refuse.input_format"), name=source.named, format=kind)
        raise InvalidRequest(N_("refuse.input_format_unknown"), name=source.named)
    if min(width, height) < MIN_SIDE:
        raise InvalidRequest(
            N_("refuse.input_too_small"), name=source.named, size=f"{width}×{height}", min=str(MIN_SIDE)
        )
    scale = min(1.0, MAX_SIDE / max(width, height))
    if scale == 1.0 and frames == 1:
        return PreparedImage(_data_uri(ACCEPTED[kind], data), width, height, original=True)
    if round(min(width, height) * scale) < MIN_SIDE:
        raise InvalidRequest(
            N_("refuse.input_too_thin"),
            name=source.named,
            size=f"{width}×{height}",
            max=str(MAX_SIDE),
            min=str(MIN_SIDE),
        )
    return _converted(source, image, scale, animated=frames > 1)


def _converted(source: SourceImage, image: Image.Image, scale: float, *, animated: bool) -> PreparedImage:
    """The first frame, scaled by `scale`, as a PNG (a JPEG when a PNG would be too large)."""
    image.seek(0)
    frame = image.convert("RGBA" if _has_alpha(image) else "RGB")
    notes = []
    if animated:
        notes.append(t("service.input_animated", name=source.name))
    if scale < 1.0:
        size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
        frame = frame.resize(size, Image.Resampling.LANCZOS)
        notes.append(t("service.input_scaled", name=source.name, size=f"{size[0]}×{size[1]}", max=str(MAX_SIDE)))
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
