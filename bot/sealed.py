"""Interaction tokens kept in the database sealed with a key derived from the bot's token: every
process of the bot can open them, while the database, its dumps and any logged SQL parameters show
only noise."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

_NONCE = 16
_TAG = 16


class TokenSeal:
    """Seals and opens short secrets (an interaction token) with one key."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"qwen-imagine interaction tokens\0" + secret.encode()).digest()

    def _stream(self, nonce: bytes, size: int) -> bytes:
        blocks = (
            hashlib.blake2b(nonce + counter.to_bytes(4, "big"), key=self._key).digest()
            for counter in range(size // 64 + 1)
        )
        return b"".join(blocks)[:size]

    def seal(self, text: str) -> str:
        """`text` encrypted and authenticated, as ASCII."""
        nonce = os.urandom(_NONCE)
        data = text.encode()
        body = bytes(a ^ b for a, b in zip(data, self._stream(nonce, len(data)), strict=True))
        tag = hmac.digest(self._key, nonce + body, "sha256")[:_TAG]
        return base64.urlsafe_b64encode(nonce + tag + body).decode()

    def open(self, sealed: str) -> str | None:
        """The text `seal` sealed; None if it was sealed with another key or altered."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
        except ValueError:
            return None
        nonce, tag, body = raw[:_NONCE], raw[_NONCE : _NONCE + _TAG], raw[_NONCE + _TAG :]
        if len(nonce) < _NONCE or not hmac.compare_digest(tag, hmac.digest(self._key, nonce + body, "sha256")[:_TAG]):
            return None
        data = bytes(a ^ b for a, b in zip(body, self._stream(nonce, len(body)), strict=True))
        try:
            return data.decode()
        except UnicodeDecodeError:
            return None
