"""Interaction tokens are kept sealed: any process of the bot opens them, nobody else can."""

from __future__ import annotations

from bot.sealed import TokenSeal


def test_a_sealed_token_opens_with_the_same_bot_token_only() -> None:
    token = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXQtdG9rZW4tdGV4dA" * 3
    sealed = TokenSeal("bot-token").seal(token)
    assert token not in sealed and sealed != TokenSeal("bot-token").seal(token)  # a fresh nonce each time
    assert TokenSeal("bot-token").open(sealed) == token
    assert TokenSeal("another-bot-token").open(sealed) is None
    assert TokenSeal("bot-token").open(sealed[:-4] + "AAAA") is None
    assert TokenSeal("bot-token").open("not base64 at all!") is None
