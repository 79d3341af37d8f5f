"""Request bodies (JSON, or multipart payload_json + files[n]) and JSON responses, as Discord speaks them."""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from .rules import DiscordError, invalid_json


@dataclass
class Upload:
    """One uploaded file part, as received."""

    field: str
    filename: str
    data: bytes
    content_type: str

    @property
    def index(self) -> int | None:
        """The n in a `files[n]` field name."""
        if self.field.startswith("files[") and self.field.endswith("]"):
            try:
                return int(self.field[6:-1])
            except ValueError:
                return None
        return None


def guess_content_type(filename: str, declared: str | None) -> str:
    """Discord sniffs the type; the filename is a good enough stand-in for octet-stream uploads."""
    if declared and declared != "application/octet-stream":
        return declared
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _loads(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        raise invalid_json() from None
    if not isinstance(value, dict):
        if isinstance(value, list):
            return {"__list__": value}
        raise DiscordError(400, 50109, "The request body contains invalid JSON.")
    return value


async def read_body(request: web.Request) -> tuple[dict[str, Any], list[Upload]]:
    """Return (payload, uploads); a top-level JSON list comes back under the "__list__" key."""
    if request.content_type.startswith("multipart/"):
        payload: dict[str, Any] = {}
        uploads: list[Upload] = []
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                continue
            name = part.name or ""
            if name == "payload_json":
                payload = _loads((await part.read(decode=True)).decode("utf-8"))
            elif part.filename is not None:
                data = bytes(await part.read(decode=True))
                declared = part.headers.get("Content-Type")
                uploads.append(Upload(name, part.filename, data, guess_content_type(part.filename, declared)))
            else:
                # Discord also accepts plain form fields; fold them into the payload.
                payload[name] = (await part.read(decode=True)).decode("utf-8")
        return payload, uploads
    text = await request.text()
    return _loads(text), []


def json_response(data: object, status: int = 200) -> web.Response:
    """A JSON response whose Content-Type is exactly `application/json` (discord.py compares it verbatim)."""
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})
