"""The bot under Discord's rate limits: 429s on a burst of edits and messages lose nothing and reorder nothing."""

from __future__ import annotations

import asyncio

from tests.conftest import MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.fakes.discord import (
    CHANNEL_MESSAGES,
    FOLLOWUPS,
    WEBHOOK_EDITS,
    FakeDiscord,
    FakeInteraction,
    RateLimits,
    RouteLimit,
)
from tests.fakes.qwen import FakeQwen

#: Far tighter than Discord's own, so that a burst of a dozen requests meets them.
TIGHT = RateLimits(
    routes=(RouteLimit((CHANNEL_MESSAGES, FOLLOWUPS), limit=2, per=0.2), RouteLimit(WEBHOOK_EDITS, limit=2, per=0.2)),
    global_limit=1,
    global_per=0.2,
)


def prompt_of(request: object) -> str:
    return request.body["input"]["messages"][0]["content"][0]["text"]  # type: ignore[attr-defined,no-any-return]


async def test_a_burst_under_rate_limits_delivers_every_image_and_the_result_is_the_last_edit(
    discord_server: FakeDiscord, qwen: FakeQwen, bots: BotRunner, world: World
) -> None:
    qwen.max_concurrency = 8
    await bots.start(DASHSCOPE_MAX_CONCURRENCY="8")
    discord_server.set_rate_limits(TIGHT)
    members = [world.guild.add_member(name=f"otter{i}", permissions=MEMBER_PERMISSIONS) for i in range(12)]
    qwen.hold()
    interactions = await asyncio.gather(
        *(imagine(discord_server, member, world.channel, f"otter {i}") for i, member in enumerate(members))
    )
    await asyncio.gather(*(ix.wait_ack() for ix in interactions))
    await qwen.wait_for(lambda: len(qwen.generation_requests) == 8)
    by_prompt = {f"otter {i}": ix for i, ix in enumerate(interactions)}
    running = [by_prompt[prompt_of(r)] for r in qwen.generation_requests]
    waiting = [ix for ix in interactions if ix not in running]

    def queue_note_shown(ix: FakeInteraction) -> bool:
        note = ix.response_message.content if ix.response_message is not None else ""
        return note.startswith("⏳")

    await discord_server.wait_for(lambda: all(queue_note_shown(ix) for ix in waiting), what="queue notes")
    # Two tokens expire: their images go to the channel with the bot token, under the global limit too.
    expired = running[:4]
    for ix in expired:
        discord_server.expire_token(ix)
    qwen.release()
    await bots.wait_delivered(12)

    for ix in interactions:
        if ix in expired:
            continue
        answer = ix.response_message
        assert answer is not None and answer.attachments, ix.describe()
        assert answer.content == "" and not discord_server.is_progress(answer), answer.content
    posts = [m for m in world.channel.messages if m.interaction_id is None and m.attachments]
    assert sorted(p.pinged_user_ids().pop() for p in posts) == sorted(ix.member.id for ix in expired)
    # The edits of a dozen interactions in one channel share a bucket and met 429s (the channel posts may too).
    assert any(hit.scope == "shared" for hit in discord_server.rate_limited)
