"""/imagine end to end: acknowledgement and delivery latency, and the bot's CPU per image, under bursts.

What it measures
    The real bot runs as its own process (`python -m bot`, the environment `tests/test_startup.py`
    gives it) against the in-process fake Discord and fake Qwen-Image (no generation latency), so
    everything it does per image is on the clock: gateway event, admission, acknowledgement, queue,
    the API call, the download, the upload. After a warm-up /imagine, for each burst size (default 1
    and 50) it runs several rounds (default 20 rounds of 1, 5 rounds of 50); a round dispatches that
    many /imagine interactions at once from distinct members and waits until every one is answered.
    Per interaction:
      * ack: `ix.ack.elapsed`, measured by the fake Discord from the moment the INTERACTION_CREATE
        frame was written to the bot's socket to the moment the interaction callback arrived
        (Discord refuses an ack after 3 s; the fake here allows `--ack-deadline` so that a slow ack is
        measured rather than refused),
      * delivery: from the same dispatch to the moment the interaction's response message (the
        original response, or a followup) first carries an attachment, however the bot gets there
        (progress edits, PATCH of the original, a followup),
      * bot CPU: utime+stime of the bot process (/proc/<pid>/stat) over all rounds of a burst size,
        divided by the images delivered; `harness CPU` is the same for this process (the fakes), as
        a check that the harness is not the bottleneck (both share this machine's cores).
    `images/s` is images delivered divided by the summed round durations (first dispatch to last
    delivery of each round). Whatever the bot reports as a failure (an ⚠️ message, a refused call)
    or what times out is counted in `failed`, not in the latencies.

How to read it
    Milliseconds. The machine is shared and noisy, so read the rows of one run side by side: the
    useful numbers are the ratios printed under the table: p99 ack of the largest burst against the
    150 ms target (under 1 is good), and p99 ack of the largest burst against the smallest (how much
    a burst slows every acknowledgement; ideally close to 1). With 20 samples "p99" is the maximum.
    Delivery time of a burst is dominated by the queue (DASHSCOPE_MAX_CONCURRENCY images at a time);
    CPU ms per image is the bot's own cost; if `harness` comes near it, the fakes (which share the
    machine and whose clock takes the times) are part of what is measured. Nothing here asserts on time.

Run (from the repository root)
    python -m bench.imagine_latency
    python -m bench.imagine_latency --bursts 1,10,50 --rounds 20,10,5 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import MEMBER_PERMISSIONS, imagine
from tests.fakes.discord import FakeChannel, FakeDiscord, FakeInteraction, FakeMember, FakeMessage
from tests.fakes.qwen import FakeQwen

REPO = Path(__file__).resolve().parent.parent
ACK_TARGET_MS = 150.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the bot process -----------------------------------------------------------------------------


def clean_env(**values: str) -> dict[str, str]:
    """A minimal environment, as tests/test_startup.py builds it: no inherited bot settings."""
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **values}


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class BotProcess:
    """`python -m bot` with its output collected (the pipe must be drained or the bot would block)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.output: list[str] = []
        assert process.stdout is not None
        self._reader = asyncio.create_task(self._drain(process.stdout))

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path) -> BotProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(process)

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.output.append(line.decode(errors="replace").rstrip())

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    async def stop(self, timeout: float) -> tuple[int | None, float]:
        """SIGTERM, then wait; returns the exit status (None if it had to be killed) and the seconds taken."""
        started = time.perf_counter()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code: int | None = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            code = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reader, 5)
        return code, time.perf_counter() - started


async def until_ready(fake: FakeDiscord, bot: BotProcess, timeout: float) -> None:
    """Wait for READY + GUILD_CREATE, or fail at once if the bot exits first."""
    ready = asyncio.create_task(fake.wait_ready(timeout=timeout))
    exited = asyncio.create_task(bot.process.wait())
    done, _ = await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
    if exited in done:
        ready.cancel()
        tail = "\n".join(bot.output[-20:])
        raise RuntimeError(f"the bot exited with {bot.process.returncode} before it was ready:\n{tail}")
    exited.cancel()
    ready.result()


# -- one interaction's outcome -------------------------------------------------------------------


def messages_of(ix: FakeInteraction) -> Iterator[FakeMessage]:
    """Every message that answers `ix`: its response, the original, and its followups."""
    seen: set[int] = set()
    for message in (ix.response_message, ix.original, *ix.followups):
        if message is not None and message.id not in seen:
            seen.add(message.id)
            yield message


def has_image(ix: FakeInteraction) -> bool:
    return any(message.attachments and not message.deleted for message in messages_of(ix))


def has_failed(ix: FakeInteraction) -> bool:
    """The bot answered without an image for good: an error from the fake, a warning, or an
    immediate (non-deferred) reply such as a denial."""
    if ix.errors:
        return True
    if ix.ack is not None and ix.ack.type == 4:
        return True
    return any("⚠️" in message.content for message in messages_of(ix))


@dataclass
class Outcome:
    """What happened to one interaction (times in seconds of the fake's clock)."""

    ix: FakeInteraction
    delivered_at: float | None = None
    failed: str | None = None

    @property
    def ack_ms(self) -> float | None:
        return None if self.ix.ack is None else self.ix.ack.elapsed * 1000

    @property
    def delivery_ms(self) -> float | None:
        if self.delivered_at is None or self.ix.dispatched_at is None:
            return None
        return (self.delivered_at - self.ix.dispatched_at) * 1000


async def track(fake: FakeDiscord, interactions: Sequence[FakeInteraction], timeout: float) -> list[Outcome]:
    """Wait until each interaction has an image (or has failed); note when each became so.

    One `fake.wait_for` re-checks every pending interaction whenever the fake's state changes, so each
    time is taken within one change of the moment it became true."""
    outcomes = [Outcome(ix) for ix in interactions]
    pending = list(outcomes)

    def check() -> bool:
        now = fake.clock()
        for outcome in list(pending):
            if has_image(outcome.ix):
                outcome.delivered_at = now
                pending.remove(outcome)
            elif has_failed(outcome.ix):
                text = next((m.content for m in messages_of(outcome.ix) if m.content), "")
                outcome.failed = f"errors={outcome.ix.errors} {text[:120]!r}"
                pending.remove(outcome)
        return not pending

    try:
        await fake.wait_for(check, timeout, what=f"{len(pending)} images", poll=0.01)
    except TimeoutError:
        for outcome in pending:
            outcome.failed = f"timed out after {timeout:.0f} s: {outcome.ix.describe()}"
    return outcomes


# -- bursts --------------------------------------------------------------------------------------


@dataclass
class BurstResult:
    """All rounds of one burst size."""

    size: int
    rounds: int
    outcomes: list[Outcome] = field(default_factory=list)
    round_seconds: list[float] = field(default_factory=list)
    bot_cpu: float = 0.0
    harness_cpu: float = 0.0

    @property
    def delivered(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.delivered_at is not None]

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.delivered_at is None]

    def acks(self) -> list[float]:
        return [ms for o in self.outcomes if (ms := o.ack_ms) is not None]

    def deliveries(self) -> list[float]:
        return [ms for o in self.delivered if (ms := o.delivery_ms) is not None]

    def per_image(self, seconds: float) -> float:
        return seconds * 1000 / len(self.delivered) if self.delivered else float("nan")

    def images_per_second(self) -> float:
        total = sum(self.round_seconds)
        return len(self.delivered) / total if total else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of fewer than 100 samples is the maximum)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


async def run_round(
    fake: FakeDiscord, channel: FakeChannel, members: Sequence[FakeMember], label: str, timeout: float
) -> tuple[list[Outcome], float]:
    """Dispatch one /imagine per member at once; wait for every answer. Returns the outcomes and the
    round's duration (first dispatch to last delivery)."""
    interactions = await asyncio.gather(
        *(imagine(fake, member, channel, f"{label}: a lighthouse at dusk, #{i}") for i, member in enumerate(members))
    )
    outcomes = await track(fake, interactions, timeout)
    dispatched = [o.ix.dispatched_at for o in outcomes if o.ix.dispatched_at is not None]
    delivered = [o.delivered_at for o in outcomes if o.delivered_at is not None]
    span = max(delivered) - min(dispatched) if dispatched and delivered else 0.0
    return outcomes, span


async def run_bursts(
    args: argparse.Namespace, fake: FakeDiscord, bot: BotProcess, channel: FakeChannel, members: list[FakeMember]
) -> list[BurstResult]:
    results = []
    for size, rounds in zip(args.bursts, args.rounds, strict=True):
        result = BurstResult(size, rounds)
        bot_before, harness_before = bot.cpu_seconds(), time.process_time()
        for round_number in range(rounds):
            timeout = args.round_timeout + size * args.round_timeout_per_image
            outcomes, span = await run_round(
                fake, channel, members[:size], f"burst {size} round {round_number}", timeout
            )
            result.outcomes += outcomes
            result.round_seconds.append(span)
            if args.pause:
                await asyncio.sleep(args.pause)
        result.bot_cpu = bot.cpu_seconds() - bot_before
        result.harness_cpu = time.process_time() - harness_before
        results.append(result)
        print(
            f"  burst {size:>3} x {rounds:>2} rounds: {len(result.delivered)} images, {len(result.failures)} failed",
            flush=True,
        )
    return results


# -- reporting -----------------------------------------------------------------------------------


def report(results: Sequence[BurstResult], exit_status: int | None, stop_seconds: float) -> None:
    print()
    print(
        f"{'burst':>5} {'rounds':>6} {'images':>6} {'failed':>6} {'ack med':>8} {'ack p99':>8} "
        f"{'deliv med':>9} {'deliv p99':>9} {'bot CPU':>8} {'harness':>8} {'images/s':>8}"
    )
    print(f"{'':>5} {'':>6} {'':>6} {'':>6} {'ms':>8} {'ms':>8} {'ms':>9} {'ms':>9} {'ms/img':>8} {'ms/img':>8}")
    for r in results:
        acks, deliveries = r.acks(), r.deliveries()
        print(
            f"{r.size:>5} {r.rounds:>6} {len(r.delivered):>6} {len(r.failures):>6} "
            f"{median(acks):>8.1f} {percentile(acks, 99):>8.1f} "
            f"{median(deliveries):>9.1f} {percentile(deliveries, 99):>9.1f} "
            f"{r.per_image(r.bot_cpu):>8.1f} {r.per_image(r.harness_cpu):>8.1f} {r.images_per_second():>8.1f}"
        )
    for r in results:
        for outcome in r.failures[:3]:
            print(f"  failure (burst {r.size}): {outcome.failed}")
    print()
    smallest, largest = min(results, key=lambda r: r.size), max(results, key=lambda r: r.size)
    big_p99 = percentile(largest.acks(), 99)
    print(
        f"ack p99 at burst {largest.size} / {ACK_TARGET_MS:.0f} ms target: {big_p99 / ACK_TARGET_MS:.2f}"
        f"  ({big_p99:.1f} ms)"
    )
    if largest is not smallest:
        small_p99 = percentile(smallest.acks(), 99)
        print(
            f"ack p99 burst {largest.size} / burst {smallest.size}: {big_p99 / small_p99:.2f}"
            f"  ({big_p99:.1f} ms vs {small_p99:.1f} ms)"
        )
        print(
            f"delivery median burst {largest.size} / burst {smallest.size}: "
            f"{median(largest.deliveries()) / median(smallest.deliveries()):.2f}"
        )
    print(f"throughput at burst {largest.size}: {largest.images_per_second():.1f} images/s")
    status = "killed after the timeout" if exit_status is None else str(exit_status)
    print(f"bot exit status after SIGTERM: {status} (in {stop_seconds:.2f} s)")


# -- main ----------------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="qi-latency-") as tmp:
        async with (
            FakeQwen(latency=args.qwen_latency, max_concurrency=args.concurrency) as qwen,
            FakeDiscord(token="bench-discord-token", ack_deadline=args.ack_deadline) as fake,
        ):
            guild = fake.add_guild(name="Bench")
            channel = guild.add_channel(name="gallery")
            members = [guild.add_member(f"member{i}", permissions=MEMBER_PERMISSIONS) for i in range(max(args.bursts))]
            env = clean_env(
                DISCORD_TOKEN=fake.token,
                DASHSCOPE_API_KEY=qwen.api_key,
                DASHSCOPE_BASE_URL=qwen.base_url,
                DASHSCOPE_RESULT_HOSTS="127.0.0.1",
                DATABASE_PATH=str(Path(tmp) / "data" / "bot.sqlite3"),
                DISCORD_API_BASE_URL=fake.api_base_url,
                DISCORD_GATEWAY_URL=fake.gateway_url,
                DEFAULT_LIMITS="none",
                LOG_LEVEL="WARNING",
                DASHSCOPE_MAX_CONCURRENCY=str(args.concurrency),
                DASHSCOPE_MAX_SUBMITS_PER_SECOND="1000",
                MAX_JOBS_PER_MEMBER="1000",
                MAX_JOBS_PER_GUILD="100000",
                **dict(item.split("=", 1) for item in args.env),
            )
            bot = await BotProcess.start(env, Path(tmp))
            exit_status: int | None = None
            stop_seconds = 0.0
            try:
                started = time.perf_counter()
                await until_ready(fake, bot, timeout=60)
                for i in range(args.warmup):
                    (outcome,) = await track(fake, [await imagine(fake, members[0], channel, f"warm-up {i}")], 60)
                    if outcome.delivered_at is None:
                        raise RuntimeError(f"the warm-up /imagine did not deliver: {outcome.failed}")
                print(
                    f"bot pid {bot.pid} ready and warmed up in {time.perf_counter() - started:.1f} s; "
                    f"concurrency {args.concurrency}, fake Qwen latency {args.qwen_latency * 1000:.0f} ms",
                    flush=True,
                )
                results = await run_bursts(args, fake, bot, channel, members)
            finally:
                exit_status, stop_seconds = await bot.stop(timeout=args.stop_timeout)
                if exit_status != 0 or args.show_log:
                    print("\n".join(["bot output (last 30 lines):", *bot.output[-30:]]))
            report(results, exit_status, stop_seconds)
            problems = [line for line in bot.output if " ERROR " in line or "Traceback" in line]
            print(f"bot log: {len(bot.output)} lines at WARNING and above, {len(problems)} errors")
            for line in problems[:5]:
                print(f"  {line[:200]}")


def int_list(raw: str) -> list[int]:
    try:
        values = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("give positive whole numbers separated by commas, e.g. 1,50")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.imagine_latency",
        description="/imagine ack and delivery latency and bot CPU per image under bursts (see the module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--bursts", type=int_list, default=[1, 50], help="interactions dispatched at once")
    parser.add_argument(
        "--rounds",
        type=int_list,
        default=None,
        help="rounds of each burst size; if not given, 20 for a burst of 1 and max(3, 250 // size) otherwise",
    )
    parser.add_argument("--warmup", type=int, default=2, help="/imagine calls before measuring")
    parser.add_argument("--concurrency", type=int, default=2, help="DASHSCOPE_MAX_CONCURRENCY and the fake's quota")
    parser.add_argument("--qwen-latency", type=float, default=0.0, help="seconds the fake Qwen takes per image")
    parser.add_argument("--ack-deadline", type=float, default=30.0, help="seconds the fake Discord accepts an ack")
    parser.add_argument("--round-timeout", type=float, default=30.0, help="seconds a round may take ...")
    parser.add_argument("--round-timeout-per-image", type=float, default=2.0, help="... plus this per interaction")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between rounds")
    parser.add_argument("--stop-timeout", type=float, default=40.0, help="seconds to wait for exit after SIGTERM")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra bot setting")
    parser.add_argument("--show-log", action="store_true", help="print the end of the bot's output")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.rounds is None:
        args.rounds = [20 if size == 1 else max(3, 250 // size) for size in args.bursts]
    if len(args.rounds) != len(args.bursts):
        raise SystemExit("--rounds needs one number per --bursts size")
    if any("=" not in item for item in args.env):
        raise SystemExit("--env takes NAME=VALUE")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
