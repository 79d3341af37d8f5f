"""The bot's CPU time and peak memory for an edit with three 8 MB inputs, beside a plain /imagine.

What it measures
    The real bot runs as its own process (`python -m bot`) against the in-process fake Discord and
    fake Qwen-Image (no generation latency), as in `bench.imagine_latency`. After a warm-up, it runs
    `--rounds` /imagine requests one after another, then `--rounds` /edit requests, each with three
    8 MB PNG inputs (noise, 1700×1600, so nothing compresses them and each is sent byte for byte as a
    data URI: about 33 MB of JSON per request). For each phase: the bot's CPU (utime+stime from
    /proc/<pid>/stat) per request, and its peak resident memory (VmHWM from /proc/<pid>/status, reset
    with /proc/<pid>/clear_refs before the phase where the kernel allows it) against its resident
    memory before the phase.

How to read it
    CPU ms per request and peak RSS in MB. An edit costs what reading three inputs from Discord,
    checking them with Pillow, base64-encoding and sending 33 MB, and downloading and posting the
    result cost; the /imagine row is the floor. The machine is shared: read the two rows side by side.
    Nothing here asserts.

Run (from the repository root)
    python -m bench.edit_cost
    python -m bench.edit_cost --rounds 10 --input-mb 8
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from PIL import Image

from bench.imagine_latency import BotProcess, Outcome, clean_env, track, until_ready
from tests.conftest import MEMBER_PERMISSIONS, imagine
from tests.fakes.discord import FakeAttachment, FakeDiscord
from tests.fakes.qwen import FakeQwen


def noise_png(megabytes: float) -> bytes:
    """A PNG of random pixels of about `megabytes` (it does not compress), sides within the edit limits."""
    pixels = int(megabytes * 1024 * 1024 / 3)
    width = 1700
    height = max(384, min(3072, pixels // width))
    image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def memory_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+); False where not allowed."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


async def phase(name: str, bot: BotProcess, run_one: Callable[[int], Awaitable[Outcome]], rounds: int) -> str:
    before_rss = memory_kb(bot.pid, "VmRSS")
    reset = reset_peak(bot.pid)
    cpu_before, started = bot.cpu_seconds(), time.perf_counter()
    failed = 0
    for n in range(rounds):
        outcome = await run_one(n)
        failed += outcome.delivered_at is None
    cpu = bot.cpu_seconds() - cpu_before
    wall = time.perf_counter() - started
    peak = memory_kb(bot.pid, "VmHWM")
    note = "" if reset else " (peak since start: clear_refs not allowed)"
    return (
        f"{name:<34} {rounds:>3} requests, {failed} failed: bot CPU {cpu / rounds * 1000:7.1f} ms/request, "
        f"wall {wall / rounds * 1000:7.1f} ms/request, RSS before {before_rss / 1024:6.1f} MB, "
        f"peak {peak / 1024:6.1f} MB{note}"
    )


async def main_async(args: argparse.Namespace) -> None:
    inputs = [noise_png(args.input_mb) for _ in range(3)]
    sizes = ", ".join(f"{len(data) / 1024 / 1024:.2f} MB" for data in inputs)
    with tempfile.TemporaryDirectory(prefix="qi-edit-") as tmp:
        async with (
            FakeQwen() as qwen,
            FakeDiscord(token="bench-discord-token", ack_deadline=30) as fake,
        ):
            qwen.model_limits.clear()
            guild = fake.add_guild(name="Bench")
            channel = guild.add_channel(name="gallery")
            member = guild.add_member("member", permissions=MEMBER_PERMISSIONS)
            env = clean_env(
                DISCORD_TOKEN=fake.token,
                DASHSCOPE_API_KEY=qwen.api_key,
                DASHSCOPE_BASE_URL=qwen.base_url,
                DASHSCOPE_RESULT_HOSTS="127.0.0.1",
                DISCORD_ATTACHMENT_HOSTS="127.0.0.1",
                DATABASE_PATH=str(Path(tmp) / "data" / "bot.sqlite3"),
                DISCORD_API_BASE_URL=fake.api_base_url,
                DISCORD_GATEWAY_URL=fake.gateway_url,
                DEFAULT_LIMITS="none",
                LOG_LEVEL="WARNING",
                MAX_JOBS_PER_MEMBER="1000",
            )
            bot = await BotProcess.start(env, Path(tmp))
            try:
                await until_ready(fake, bot, timeout=60)

                async def one_imagine(n: int) -> Outcome:
                    [outcome] = await track(fake, [await imagine(fake, member, channel, f"a fox {n}")], 120)
                    return outcome

                async def one_edit(n: int) -> Outcome:
                    options = {
                        "prompt": f"the three together {n}",
                        "image": FakeAttachment("a.png", inputs[0]),
                        "image2": FakeAttachment("b.png", inputs[1]),
                        "image3": FakeAttachment("c.png", inputs[2]),
                    }
                    ix = await fake.invoke_command(member, channel, "edit", options)
                    [outcome] = await track(fake, [ix], 120)
                    return outcome

                await one_imagine(-1)
                await one_edit(-1)
                print(f"bot pid {bot.pid}; edit inputs: {sizes}", flush=True)
                print(await phase("/imagine", bot, one_imagine, args.rounds))
                print(await phase("/edit, three inputs", bot, one_edit, args.rounds))
                body = len(str(qwen.edits[-1])) if qwen.edits else 0
                print(f"last edit request body: about {body / 1024 / 1024:.1f} MB of JSON")
            finally:
                code, _ = await bot.stop(timeout=30)
                problems = [line for line in bot.output if " ERROR " in line or "Traceback" in line]
                print(f"bot exit status {code}; {len(problems)} errors in its log")
                for line in problems[:5]:
                    print(f"  {line[:200]}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="requests per phase (default 5)")
    parser.add_argument("--input-mb", type=float, default=8.0, help="size of each edit input (default 8)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(main_async(build_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
