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


#: Bodies of the requests being handled, by id(request): read once, by the checks or the handler.
_BODIES: dict[int, tuple[web.BaseRequest, Any, list[Upload]]] = {}


def guess_content_type(filename: str, declared: str | None) -> str:
    """Discord sniffs the type; the filename is a good enough stand-in for octet-stream uploads."""
    if declared and declared != "application/octet-stream":
        return declared
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _loads(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        raise invalid_json() from None


async def _read(request: web.Request) -> tuple[Any, list[Upload]]:
    if not request.content_type.startswith("multipart/"):
        return _loads(await request.text()), []
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
            document = _loads((await part.read(decode=True)).decode("utf-8"))
            payload = document if isinstance(document, dict) else {"payload_json": document}
        elif part.filename is not None:
            data = bytes(await part.read(decode=True))
            declared = part.headers.get("Content-Type")
            uploads.append(Upload(name, part.filename, data, guess_content_type(part.filename, declared)))
        else:
            # Discord also accepts plain form fields; fold them into the payload.
            payload[name] = (await part.read(decode=True)).decode("utf-8")
    return payload, uploads


async def read_document(request: web.Request) -> tuple[Any, list[Upload]]:
    """The JSON document as sent (multipart: payload_json; None without a body) and the uploads.

    The body is read once; later calls for the same request get the same result.
    """
    cached = _BODIES.get(id(request))
    if cached is None or cached[0] is not request:
        document, uploads = await _read(request) if request.body_exists else (None, [])
        cached = _BODIES[id(request)] = (request, document, uploads)
    return cached[1], cached[2]


def forget_body(request: web.BaseRequest) -> None:
    """Drop a handled request's cached body."""
    _BODIES.pop(id(request), None)


async def read_body(request: web.Request) -> tuple[dict[str, Any], list[Upload]]:
    """Return (payload, uploads); a top-level JSON list comes back under the "__list__" key."""
    document, uploads = await read_document(request)
    if document is None:
        return {}, uploads
    if isinstance(document, list):
        return {"__list__": document}, uploads
    if not isinstance(document, dict):
        raise DiscordError(400, 50109, "The request body contains invalid JSON.")
    return document, uploads


def json_response(data: object, status: int = 200) -> web.Response:
    """A JSON response whose Content-Type is exactly `application/json` (discord.py compares it verbatim)."""
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})
