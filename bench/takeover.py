"""How long a killed process's jobs wait before a live process takes them over.

Two real bot processes (`python -m bot`, default heartbeat settings) share one PostgreSQL database
(the test suite's server) against the fake Discord and fake Qwen-Image API. The first receives three
requests: two are being generated (the fake API holds them) and one waits for a slot. The first
process is then killed (SIGKILL) and the API let go. Prints the seconds from the kill to the waiting
job's generation starting on the second process, and to its image being posted; the two whose calls
were in flight are failed, uncharged, with a Retry button (their images may exist, billed, unseen).

Run: `python -m bench.takeover` (about 20 s with the defaults: PROCESS_STALE_SECONDS=15).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import discord

from tests.conftest import FAST_MODELS
from tests.fakes.discord import FakeDiscord
from tests.fakes.qwen import FakeQwen
from tests.postgres import postgres_server

MEMBER_PERMISSIONS = discord.Permissions(send_messages=True, use_application_commands=True).value
REPO = Path(__file__).resolve().parent.parent


def asked(qwen: FakeQwen, count: int) -> bool:
    return len(qwen.generation_requests) == count


async def spawn(env: dict[str, str], folder: Path, name: str) -> asyncio.subprocess.Process:
    """`python -m bot` with `env`, its log in `folder/name.log`."""
    log = (folder / f"{name}.log").open("wb")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=folder, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log
    )


async def run(extra: dict[str, str]) -> None:
    with postgres_server() as server, tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        async with server.fresh_database() as url, FakeDiscord(token="bench-token") as fake, FakeQwen() as qwen:
            fake.is_progress = lambda message: message.content.startswith(("⏳", "🎨"))
            guild = fake.add_guild(name="guild")
            channel = guild.add_channel(name="art")
            members = [guild.add_member(name=f"m{n}", permissions=MEMBER_PERMISSIONS) for n in range(3)]
            catalogue = folder / "models.json"
            catalogue.write_text(json.dumps(FAST_MODELS))
            env = {
                "PATH": os.environ.get("PATH", ""),
                "PYTHONPATH": str(REPO),
                "MODEL_CATALOGUE_FILE": str(catalogue),
                "DATABASE_URL": url,
                "DISCORD_TOKEN": fake.token,
                "DASHSCOPE_API_KEY": qwen.api_key,
                "DASHSCOPE_BASE_URL": qwen.base_url,
                "DASHSCOPE_RESULT_HOSTS": "127.0.0.1",
                "DISCORD_API_BASE_URL": fake.api_base_url,
                "DISCORD_GATEWAY_URL": fake.gateway_url,
                "DISCORD_ATTACHMENT_HOSTS": "127.0.0.1",
                "DEFAULT_LIMITS": "none",
                **extra,
            }
            doomed = await spawn(env, folder, "doomed")
            survivor: asyncio.subprocess.Process | None = None
            try:
                await fake.wait_ready(timeout=30)
                qwen.hold()
                for n, member in enumerate(members):
                    waiting = await fake.invoke_command(member, channel, "imagine", {"prompt": f"job {n}"})
                    if n < 2:
                        await qwen.wait_for(functools.partial(asked, qwen, n + 1), timeout=30)
                # The third waits for a slot (in the first process's queue, not still being admitted).
                await fake.wait_for(
                    lambda: waiting.response_message is not None and "queue" in waiting.response_message.content, 30
                )
                await fake.wait_for(lambda: len(fake.gateway.sessions) == 1, 30)
                survivor = await spawn(env, folder, "survivor")
                await fake.wait_for(lambda: len(fake.gateway.sessions) == 2 and fake.gateway.ready.is_set(), 30)

                doomed.kill()
                killed = time.monotonic()
                await doomed.wait()
                qwen.release()
                await qwen.wait_for(lambda: len(qwen.generation_requests) == 3, timeout=120)
                started = time.monotonic() - killed
                await fake.wait_for(lambda: any(m.attachments for m in channel.messages), 120)
                posted = time.monotonic() - killed
                retries = sum("Press Retry" in m.content for m in channel.messages)
            finally:
                for process in (doomed, survivor):
                    if process is not None and process.returncode is None:
                        process.kill()
                        await process.wait()
    settings = ", ".join(f"{k}={v}" for k, v in extra.items()) or "default settings"
    print(f"takeover after SIGKILL ({settings}):")
    print(f"  kill -> waiting job generating on the live process: {started:6.2f} s   (target <= 30)")
    print(f"  kill -> its image posted:                            {posted:6.2f} s")
    print(f"  in-flight jobs failed with a Retry button:           {retries:6d}   (of 2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stale", type=float, help="PROCESS_STALE_SECONDS (default: the bot's)")
    parser.add_argument("--heartbeat", type=float, help="PROCESS_HEARTBEAT_SECONDS (default: the bot's)")
    arguments = parser.parse_args()
    extra = {}
    if arguments.stale is not None:
        extra["PROCESS_STALE_SECONDS"] = str(arguments.stale)
    if arguments.heartbeat is not None:
        extra["PROCESS_HEARTBEAT_SECONDS"] = str(arguments.heartbeat)
    asyncio.run(run(extra))


if __name__ == "__main__":
    main()
