"""How well the queue uses the API account's two slots, and how fairly.

Runs the real bot (in this process, built exactly as `python -m bot` builds it) against the fake
Discord and a fake Qwen-Image API that takes `--latency` seconds per image and allows 2 concurrent
tasks. N requests arrive at once from 4 guilds of very different sizes (the last guild has a single
job). Prints:

- makespan / ideal: the time from the first request to the last delivered image, divided by the
  ideal N x latency / 2 (two slots always busy). Target: at most 1.05.
- slot idle fraction: the share of slot-time (2 x makespan) not spent generating.
- the single-job guild's wait: from its request to the start of its generation, in seconds and in
  slot turns (latency / 2 each: how often a slot frees when both are busy), and the order in which
  the guilds' jobs started.
- 429s the fake API answered (target: 0), and the most generations it saw at once.

With `--keys 2` the bot gets two API keys (two accounts, 2 slots each): the ideal halves, and the
most in flight is printed per key. With `--processes 2` two bots share one PostgreSQL database (the
test suite's server) and the requests are spread over them.

Run: `python -m bench.queue_makespan` (about 25 s with the defaults), `... --keys 2`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import tempfile
import time
from pathlib import Path

import discord

from bot.app import create_bot
from bot.settings import load_settings
from tests.fakes.discord import FakeDiscord, FakeGuild, FakeInteraction
from tests.fakes.qwen import FakeQwen
from tests.postgres import postgres_server

MEMBER_PERMISSIONS = discord.Permissions(send_messages=True, use_application_commands=True).value


def has_guilds(bot: discord.Client, guilds: list[FakeGuild]) -> bool:
    return all(bot.get_guild(g.id) for g in guilds)


def prompt_of(body: object) -> str:
    assert isinstance(body, dict)
    return str(body["input"]["messages"][0]["content"][0]["text"])


async def run(jobs: int, latency: float, keys: int, processes: int) -> None:
    if processes == 1:
        await run_on(jobs, latency, keys, 1, None)
        return
    with postgres_server() as server:
        async with server.fresh_database() as url:
            await run_on(jobs, latency, keys, processes, url)


async def run_on(jobs: int, latency: float, keys: int, processes: int, database_url: str | None) -> None:
    sizes = [jobs - jobs // 4 - jobs // 8 - 1, jobs // 4, jobs // 8, 1]  # e.g. 40 -> 25, 10, 5, 1
    async with FakeDiscord(token="bench-token") as discord_fake, FakeQwen(latency=latency) as qwen:
        discord_fake.is_progress = lambda message: message.content.startswith(("⏳", "🎨"))
        api_keys = [qwen.api_key] + [qwen.add_key(f"bench-key-{n}") for n in range(1, keys)]
        guilds = [discord_fake.add_guild(name=f"guild{g}") for g in range(len(sizes))]
        channels = [guild.add_channel(name="art") for guild in guilds]
        senders = []
        for g, count in enumerate(sizes):
            # Three jobs per member, the default cap.
            members = [guilds[g].add_member(name=f"g{g}m{i}", permissions=MEMBER_PERMISSIONS) for i in range(count)]
            senders += [(members[i // 3], channels[g], f"guild{g} job{i}") for i in range(count)]
        if processes > 1:
            discord_fake.interaction_routing = "spread"
        with tempfile.TemporaryDirectory() as folder:
            settings = load_settings(
                {
                    "DISCORD_TOKEN": discord_fake.token,
                    "DASHSCOPE_API_KEY": ",".join(api_keys),
                    "DASHSCOPE_BASE_URL": qwen.base_url,
                    "DASHSCOPE_RESULT_HOSTS": "127.0.0.1",
                    "DATABASE_PATH": str(Path(folder) / "bench.sqlite3"),
                    "DATABASE_URL": database_url or "",
                    "DISCORD_API_BASE_URL": discord_fake.api_base_url,
                    "DISCORD_GATEWAY_URL": discord_fake.gateway_url,
                    "DEFAULT_LIMITS": "none",
                    "MAX_JOBS_PER_GUILD": str(jobs),
                    "LOG_LEVEL": "WARNING",
                }
            )
            async with contextlib.AsyncExitStack() as stack:
                bots, tasks = [], []
                for _ in range(processes):
                    bot = await stack.enter_async_context(create_bot(settings))
                    bots.append(bot)
                    tasks.append(asyncio.create_task(bot.start(settings.discord_token.reveal())))
                    await discord_fake.wait_for(functools.partial(has_guilds, bot, guilds), timeout=30)
                try:
                    started = time.monotonic()
                    interactions: list[FakeInteraction] = await asyncio.gather(
                        *(discord_fake.invoke_command(m, c, "imagine", {"prompt": p}) for m, c, p in senders)
                    )
                    await asyncio.gather(*(ix.wait_answer(timeout=30 + jobs * latency) for ix in interactions))
                    makespan = time.monotonic() - started
                    loner_asked = interactions[-1].dispatched_at or started
                finally:
                    for bot, task in zip(bots, tasks, strict=True):
                        await bot.close()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
    print(f"processes: {processes} ({'PostgreSQL' if database_url else 'SQLite'})")
    report(jobs, latency, makespan, loner_asked, qwen, senders[-1][2], api_keys)


def report(
    jobs: int, latency: float, makespan: float, loner_asked: float, qwen: FakeQwen, loner: str, keys: list[str]
) -> None:
    requests = qwen.generation_requests
    generated = [r for r in requests if r.answered == 200]
    busy = sum((r.finished or r.at) - r.at for r in generated)
    slots = 2 * len(keys)
    ideal = jobs * latency / slots
    loner_start = next(r.at for r in requests if prompt_of(r.body) == loner)
    loner_wait = loner_start - loner_asked
    print(f"jobs: {jobs} from 4 guilds, fake latency {latency:.2f} s, {len(keys)} key(s), {slots} slots")
    print(f"makespan:                {makespan:8.2f} s")
    print(f"ideal (N x latency / {slots}): {ideal:8.2f} s")
    print(f"makespan / ideal:        {makespan / ideal:8.3f}   (target <= 1.05)")
    print(f"slot idle fraction:      {1 - busy / (slots * makespan):8.3f}")
    print(f"single-job guild waited: {loner_wait:8.2f} s = {loner_wait / (latency / slots):.2f} slot turns")
    position = [prompt_of(r.body) for r in requests].index(loner) + 1
    print(f"  its job started {position}th of {len(requests)} (see the start order below)")
    print(f"429s from the fake API:  {qwen.throttled:8d}   (target 0)")
    print(f"most in flight at once:  {qwen.max_in_flight:8d}")
    for n, key in enumerate(keys, 1):
        print(f"  key {n}: most in flight {qwen.max_in_flight_by_key[key]}, 429s {qwen.throttled_by_key[key]}")
    print(f"images generated:        {len(generated):8d}")
    order = [prompt_of(r.body).split()[0] for r in requests]
    print("start order by guild:   ", " ".join(name[-1] for name in order))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=40, help="requests, spread over 4 guilds")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds the fake API takes per image")
    parser.add_argument("--keys", type=int, default=1, help="API keys (accounts) the bot gets, 2 slots each")
    parser.add_argument("--processes", type=int, default=1, help="bots sharing one PostgreSQL database")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.jobs, arguments.latency, arguments.keys, arguments.processes))


if __name__ == "__main__":
    main()
