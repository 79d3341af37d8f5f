"""Fetch a result PNG safely: allowed hosts only, streamed under a size cap, checked to be a PNG."""

from __future__ import annotations

import fnmatch
import ipaddress
import logging
import struct
import zlib
from dataclasses import dataclass

import aiohttp
from yarl import URL

from bot.errors import ImageFetchFailed, ImageTooLarge

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class PngImage:
    """A downloaded PNG and the dimensions its IHDR declares."""

    data: bytes
    width: int
    height: int


class HostPolicy:
    """Which hosts result images may come from: https only, plain http for loopback hosts."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self._patterns = tuple(p.lower() for p in patterns)

    def allows(self, url: URL) -> bool:
        """Whether `url` may be downloaded."""
        host = (url.host or "").lower().rstrip(".")
        if not host or url.user or url.password:
            return False
        if url.scheme != "https" and not (url.scheme == "http" and _is_loopback(host)):
            return False
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self._patterns)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ImageDownloader:
    """Downloads result images through the shared session."""

    def __init__(self, session: aiohttp.ClientSession, policy: HostPolicy, *, timeout: float = 60.0) -> None:
        self._session = session
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=10, sock_read=30)

    async def fetch_png(self, url: str, max_bytes: int) -> PngImage:
        """Download the PNG at `url`, at most `max_bytes` long, or raise ImageFetchFailed."""
        data = await self.fetch_bytes(url, max_bytes)
        width, height = read_png_header(data)
        return PngImage(data, width, height)

    async def fetch_bytes(self, url: str, max_bytes: int) -> bytes:
        """Download `url` from an allowed host, at most `max_bytes` long, or raise ImageFetchFailed."""
        target = URL(url)
        if not self._policy.allows(target):
            log.warning("refused to download a result image from %s://%s", target.scheme, target.host)
            raise ImageFetchFailed(f"host not allowed: {target.host}")
        try:
            # Redirects could lead anywhere; result URLs are direct links.
            async with self._session.get(target, timeout=self._timeout, allow_redirects=False) as response:
                if response.status != 200:
                    raise ImageFetchFailed(f"HTTP {response.status} from the result host")
                if response.content_length is not None and response.content_length > max_bytes:
                    raise ImageTooLarge(max_bytes)
                data = await _read_capped(response, max_bytes)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ImageFetchFailed(f"{type(exc).__name__}: {exc}") from exc
        return data


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    buffer = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        buffer += chunk
        if len(buffer) > max_bytes:
            raise ImageTooLarge(max_bytes)
    return bytes(buffer)


def read_png_header(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; raise ImageFetchFailed if it isn't a PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise ImageFetchFailed("not a PNG (bad signature)")
    header = data[8:33]
    if len(header) < 25:
        raise ImageFetchFailed("not a PNG (truncated header)")
    length, kind = struct.unpack(">I4s", header[:8])
    body, crc = header[8:21], struct.unpack(">I", header[21:25])[0]
    if length != 13 or kind != b"IHDR" or zlib.crc32(kind + body) != crc:
        raise ImageFetchFailed("not a PNG (bad IHDR)")
    width, height = struct.unpack(">II", body[:8])
    if width == 0 or height == 0:
        raise ImageFetchFailed("not a PNG (empty image)")
    return width, height
