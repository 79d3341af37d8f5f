"""How long the limits admission check takes as the usage log grows.

What it measures
    `SqlLimitsRepository.admit` (the bot's atomic "check the block list, queue caps and every
    limit, then write the row" call), opened through `bot.db.SqliteDatabase.open` exactly as the bot opens
    its database (WAL, its own migrations), against a `generations` table already holding N usage
    rows (default: 10 thousand and 1 million). The rows are spread like a real installation: 500
    guilds of ~40 members, `requested_at` uniform over the last 90 days, mostly succeeded with some
    failed/denied, and a few (a fixed number, not a share) queued/running in the last minutes.

    Each admission is timed alone with `time.perf_counter_ns()` around `await repo.admit(...)`
    (the `NewGeneration` is built before the clock starts). Cases, per database size:
      * `default limits`: random existing (guild, member) pairs under
        `member/hour=5,member/day=20,server/day=200` (the bot's DEFAULT_LIMITS),
      * `no limits`: the same with no limits: the fixed cost (the write transaction, the block-list
        and queue-cap lookups, the INSERT) that every admission pays whatever the limits,
      * `busy guild`: after adding one guild with 100k rows of its own in the last 30 days, admissions
        in that guild under `server/month=100000`: the worst case, where the admission query walks
        nearly every counted row of the guild's window. Reported separately.
    Queue caps (`--caps`, default the bot's MAX_JOBS_PER_MEMBER=3 / MAX_JOBS_PER_GUILD=30) are passed
    when this version of `admit` takes them. An admitted row is moved to `succeeded` after the clock
    stops (the bot finishes its jobs within seconds), so timed rows do not pile up as queued.

    SQLite's planner picks indexes differently with and without `sqlite_stat1` statistics (which
    only exist once ANALYZE ran; the bot never runs it explicitly, but its `PRAGMA optimize` on a
    clean shutdown may). Each case is therefore run in a stated condition: `stats=none` (a database
    never analysed) and `stats=analyzed` (ANALYZE run after filling).

    The SQL statements `admit` really runs are captured once per case with SQLite's trace callback;
    each one's `EXPLAIN QUERY PLAN` is printed with the index it uses, and each SELECT's median time
    when run on its own with the stdlib `sqlite3` module (no aiosqlite thread hop), to show where
    the time goes.

How to read it
    Times are microseconds (µs). The machine is shared and noisy: compare the figures of one run side
    by side, not against another run. Targets: an admission under 1 ms (p99) at 1 million rows, and
    1M/10k ratios under 2 (the check should grow with the rows inside a limit's window, never with
    the size of the log). `no limits` is the floor: the part of an admission no query plan can fix.
    The `direct` column shows what the SQL itself costs. `>5 ms` counts the outliers (the bot
    checkpoints the write-ahead log from a second connection, so no admission should pay for one).
    `close s` is how long `SqliteDatabase.close()` took after the case (its final full checkpoint, and
    `PRAGMA optimize`, which may run ANALYZE). Nothing here asserts on time.

Run (from the repository root)
    python -m bench.admission                      # 10k and 1M rows, 2000 admissions per case
    python -m bench.admission --sizes 10000,100000 --admissions 500
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from bot.db import NewGeneration, SqliteDatabase, SqlLimitsRepository, records
from bot.limits import Limit, parse_limits

DAY = 86_400.0
#: Finished rows: most succeed, some fail or are denied.
FINISHED = ("succeeded", "failed", "denied")
FINISHED_WEIGHTS = (0.88, 0.07, 0.05)
SIZES = ("1328*1328", "1664*928", "928*1664", "1472*1140", "1140*1472")
MODELS = ("qwen-image-plus", "qwen-image")
PROMPTS = (
    "a red fox in a snowy forest at dawn, soft light",
    "an isometric pixel-art castle on a floating island",
    "a bowl of ramen, studio photography, steam rising",
    "watercolour portrait of an old sailor with a pipe",
    "cyberpunk street market in the rain, neon reflections",
    "a cat astronaut floating above the earth, cinematic",
    "minimalist poster of a mountain range at sunset",
    "a cosy reading nook with plants and warm lamps",
)
FAILURE_CODES = ("DataInspectionFailed", "Throttling.RateQuota", "Timeout", "InternalError")
DENIAL_CODES = ("limit:member/hour", "limit:member/day", "limit:server/day", "blocked")
INSERT_ROW = (
    "INSERT INTO generations (guild_id, channel_id, member_id, requested_at, started_at, finished_at, status, "
    "error_code, model, size, seed, prompt_extend, prompt, negative_prompt, request_id, image_bytes, parent_id, "
    "message_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: One row of INSERT_ROW's parameters.
Row = tuple[object, ...]
Pair = tuple[int, int, int]  # guild, channel, member


@dataclass(frozen=True)
class Community:
    """A guild, its channels and its members (ids are snowflake-sized, as on Discord)."""

    guild_id: int
    channel_ids: tuple[int, ...]
    member_ids: tuple[int, ...]


@dataclass(frozen=True)
class Statement:
    """A statement `admit` ran, as SQLite expanded it, with its plan and direct cost."""

    sql: str
    plan: tuple[str, ...]
    direct_us: float | None


@dataclass
class Case:
    """One timed case on one database."""

    name: str
    stats: str
    size: int  # the background rows of the database
    table_rows: int
    samples: list[int] = field(default_factory=list)
    denied: int = 0
    statements: list[Statement] = field(default_factory=list)
    close_seconds: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.stats)

    def median_us(self) -> float:
        return statistics.median(self.samples) / 1000

    def p99_us(self) -> float:
        return percentile(self.samples, 99) / 1000

    def max_us(self) -> float:
        return max(self.samples) / 1000

    def over(self, ms: float) -> int:
        return sum(sample > ms * 1_000_000 for sample in self.samples)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of fewer than 100 samples is the maximum)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return float(ordered[int(rank) - 1])


# -- building the usage log ---------------------------------------------------------------------


def snowflake(rng: random.Random) -> int:
    """A random id in Discord's snowflake range."""
    return rng.randrange(10**17, 2 * 10**18)


def make_communities(rng: random.Random, guilds: int, members: int) -> list[Community]:
    """`guilds` guilds with ~`members` members each (±25%) and 1-4 channels."""
    result = []
    for _ in range(guilds):
        count = max(1, round(members * rng.uniform(0.75, 1.25)))
        result.append(
            Community(
                guild_id=snowflake(rng),
                channel_ids=tuple(snowflake(rng) for _ in range(rng.randint(1, 4))),
                member_ids=tuple(snowflake(rng) for _ in range(count)),
            )
        )
    return result


def usage_rows(
    rng: random.Random, communities: Sequence[Community], count: int, *, now: float, days: float, unfinished: int
) -> Iterator[Row]:
    """`count` rows in time order (ids grow with time, as in a real log) over the last `days`;
    `unfinished` of them are queued/running jobs of the last ten minutes."""
    unfinished = min(unfinished, count)
    finished = count - unfinished
    timeline = [(now - rng.random() * days * DAY, s) for s in rng.choices(FINISHED, FINISHED_WEIGHTS, k=finished)]
    timeline += [(now - rng.random() * 600, rng.choice(("queued", "running"))) for _ in range(unfinished)]
    timeline.sort()
    for requested_at, status in timeline:
        community = rng.choice(communities)
        started = finished_at = error = request_id = image_bytes = message_id = None
        if status in ("succeeded", "failed", "running"):
            started = requested_at + rng.uniform(0.01, 2.0)
            request_id = f"req-{rng.getrandbits(64):016x}"
        if status == "succeeded":
            finished_at = requested_at + rng.uniform(5.0, 40.0)
            image_bytes = rng.randint(900_000, 2_500_000)
            message_id = snowflake(rng)
        elif status == "failed":
            finished_at = requested_at + rng.uniform(1.0, 40.0)
            error = rng.choice(FAILURE_CODES)
        elif status == "denied":
            finished_at = requested_at
            error = rng.choice(DENIAL_CODES)
        yield (
            community.guild_id,
            rng.choice(community.channel_ids),
            rng.choice(community.member_ids),
            requested_at,
            started,
            finished_at,
            status,
            error,
            rng.choice(MODELS),
            rng.choice(SIZES),
            rng.randrange(2**31),
            rng.random() < 0.8,
            rng.choice(PROMPTS),
            None,
            request_id,
            image_bytes,
            None,
            message_id,
        )


def fill(path: Path, rows: Iterator[Row]) -> float:
    """Insert `rows` in one transaction with the stdlib driver; return the seconds it took."""
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -524288")  # 512 MiB: the random-order index inserts stay in memory
        conn.execute("BEGIN")
        conn.executemany(INSERT_ROW, rows)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def set_statistics(path: Path, analyzed: bool) -> None:
    """Run ANALYZE, or remove the statistics any earlier `PRAGMA optimize` left (database closed)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if analyzed:
            conn.execute("ANALYZE")
        else:
            conn.execute("DROP TABLE IF EXISTS sqlite_stat1")
            conn.execute("DROP TABLE IF EXISTS sqlite_stat4")
    finally:
        conn.close()


def existing_pairs(path: Path, guild_id: int | None = None) -> list[Pair]:
    """(guild, channel, member) triples that have usage rows (optionally in one guild only)."""
    conn = sqlite3.connect(path)
    try:
        sql = "SELECT guild_id, MIN(channel_id), member_id FROM generations"
        if guild_id is not None:
            sql += f" WHERE guild_id = {int(guild_id)}"
        return [(g, c, m) for g, c, m in conn.execute(sql + " GROUP BY guild_id, member_id")]
    finally:
        conn.close()


def remove_database(path: Path) -> None:
    """Delete a database and its WAL files (the temporary folder goes at the end anyway)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- admitting -------------------------------------------------------------------------------------


def new_generation(rng: random.Random, guild_id: int, channel_id: int, member_id: int) -> NewGeneration:
    return NewGeneration(
        guild_id=guild_id,
        channel_id=channel_id,
        member_id=member_id,
        model="qwen-image-plus",
        size="1328*1328",
        seed=rng.randrange(2**31),
        prompt_extend=True,
        prompt=rng.choice(PROMPTS),
    )


class Admitter:
    """Calls `repo.admit` the way the bot does (with queue caps when this version takes them)."""

    def __init__(self, database: SqliteDatabase, caps: tuple[int, int] | None) -> None:
        self.database = database
        self.repo = SqlLimitsRepository(database)
        self.extra: dict[str, Any] = {}
        queue_caps = getattr(records, "QueueCaps", None)
        if caps is not None and queue_caps is not None and "caps" in inspect.signature(self.repo.admit).parameters:
            self.extra["caps"] = queue_caps(*caps)

    async def admit(self, new: NewGeneration, limits: tuple[Limit, ...], at: float) -> records.Admission:
        return await self.repo.admit(new, limits, at=at, **self.extra)

    async def settle(self, generation_id: int) -> None:
        """What the bot does next, in short: the job ran and succeeded."""
        await self.database.execute(
            "UPDATE generations SET status = 'succeeded', started_at = requested_at, finished_at = requested_at "
            "WHERE id = ? AND status IN ('queued', 'running')",
            (generation_id,),
        )

    async def capture(self, new: NewGeneration, limits: tuple[Limit, ...]) -> list[str]:
        """The statements one real admission runs, expanded by SQLite's trace callback."""
        seen: list[str] = []
        await self.database.connection.set_trace_callback(seen.append)
        try:
            admission = await self.admit(new, limits, time.time())
        finally:
            # sqlite3 takes None to remove the callback; aiosqlite's annotation does not say so.
            await self.database.connection.set_trace_callback(cast("Callable[..., Any]", None))
        if admission.denial is None:
            await self.settle(admission.generation_id)
        return seen

    async def run(
        self, case: Case, rng: random.Random, pairs: Sequence[Pair], limits: tuple[Limit, ...], count: int
    ) -> None:
        for _ in range(count):
            new = new_generation(rng, *rng.choice(pairs))
            at = time.time()
            started = time.perf_counter_ns()
            admission = await self.admit(new, limits, at)
            elapsed = time.perf_counter_ns() - started
            case.samples.append(elapsed)
            if admission.denial is None:
                await self.settle(admission.generation_id)
            else:
                case.denied += 1


def explain(path: Path, statements: Sequence[str], repeat: int) -> list[Statement]:
    """EXPLAIN QUERY PLAN of each captured data statement; SELECTs are also timed on their own."""
    conn = sqlite3.connect(path, isolation_level=None)
    result = []
    try:
        for sql in statements:
            verb = sql.lstrip().split(None, 1)[0].upper()
            if verb not in ("SELECT", "WITH", "UPDATE", "DELETE", "INSERT"):
                continue
            plan = tuple(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            direct: float | None = None
            if verb in ("SELECT", "WITH"):
                samples = []
                for _ in range(repeat):
                    started = time.perf_counter_ns()
                    conn.execute(sql).fetchall()
                    samples.append(time.perf_counter_ns() - started)
                direct = statistics.median(samples) / 1000
            result.append(Statement(sql, plan, direct))
    finally:
        conn.close()
    return result


async def run_case(
    args: argparse.Namespace,
    path: Path,
    rng: random.Random,
    case: Case,
    pairs: Sequence[Pair],
    limits: tuple[Limit, ...],
    count: int,
) -> Case:
    """Open the database as the bot does, capture and explain one admission, warm up, then time."""
    set_statistics(path, analyzed=case.stats == "analyzed")
    database = await SqliteDatabase.open(path)
    try:
        admitter = Admitter(database, args.caps)
        statements = await admitter.capture(new_generation(rng, *rng.choice(pairs)), limits)
        case.statements = explain(path, statements, args.explain_repeat)
        await admitter.run(
            Case("warm-up", case.stats, case.size, case.table_rows), rng, pairs, limits, min(args.warmup, count)
        )
        await admitter.run(case, rng, pairs, limits, count)
    finally:
        started = time.perf_counter()
        await database.close()  # PRAGMA optimize: may run ANALYZE when there are no statistics
        case.close_seconds = time.perf_counter() - started
    return case


async def measure_size(args: argparse.Namespace, directory: Path, size: int, rng: random.Random) -> list[Case]:
    path = directory / f"admission-{size}.sqlite3"
    database = await SqliteDatabase.open(path)  # the schema, made by the bot's own migrations
    await database.close()
    communities = make_communities(rng, args.guilds, args.members)
    rows = usage_rows(rng, communities, size, now=time.time(), days=args.days, unfinished=args.unfinished)
    fill_seconds = fill(path, rows)
    pairs = existing_pairs(path)
    limits, busy_limits = parse_limits(args.limits), parse_limits(args.busy_limits)
    started = time.perf_counter()
    cases = [
        await run_case(args, path, rng, Case("default limits", "none", size, size), pairs, limits, args.admissions),
        await run_case(args, path, rng, Case("no limits", "none", size, size), pairs, (), args.admissions),
        await run_case(args, path, rng, Case("default limits", "analyzed", size, size), pairs, limits, args.admissions),
    ]
    busy = make_communities(rng, 1, args.busy_members)
    busy_rows = usage_rows(rng, busy, args.busy_rows, now=time.time(), days=args.busy_days, unfinished=5)
    busy_fill = fill(path, busy_rows)
    busy_pairs = existing_pairs(path, busy[0].guild_id)
    total = size + args.busy_rows
    busy_counts = {"none": args.busy_admissions_unanalyzed, "analyzed": args.busy_admissions or args.admissions}
    for stats, count in busy_counts.items():
        case = Case("busy guild", stats, size, total)
        cases.append(await run_case(args, path, rng, case, busy_pairs, busy_limits, count))
    remove_database(path)
    print(
        f"{size:>9,} rows: filled in {fill_seconds:.1f} s (+{args.busy_rows:,} busy-guild rows in {busy_fill:.1f} s), "
        f"measured in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return cases


# -- reporting -----------------------------------------------------------------------------------


def index_of(plan: Sequence[str]) -> str:
    """The index (or scan) a plan uses, in a few words."""
    for line in plan:
        for marker, kind in (
            ("USING COVERING INDEX ", "covering index"),
            ("USING INDEX ", "index"),
            ("USING INTEGER PRIMARY KEY", "rowid"),
            ("USING PRIMARY KEY", "primary key"),
        ):
            if marker in line:
                name = line.split(marker, 1)[1].split(" ", 1)[0] if marker.endswith(" ") else ""
                return f"{kind} {name}".strip()
        if line.startswith("SCAN"):
            return f"FULL SCAN: {line}"
    return "; ".join(plan) or "-"


def shorten(sql: str, width: int = 104) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def report(cases: Sequence[Case], sizes: Sequence[int]) -> None:
    print()
    header = f"{'table rows':>10}  {'case':<15} {'stats':<9} {'n':>5} {'denied':>6}"
    print(f"{header} {'median µs':>10} {'p99 µs':>9} {'max µs':>9} {'>5 ms':>6} {'close s':>8}")
    for case in cases:
        print(
            f"{case.table_rows:>10,}  {case.name:<15} {case.stats:<9} {len(case.samples):>5} {case.denied:>6} "
            f"{case.median_us():>10.0f} {case.p99_us():>9.0f} {case.max_us():>9.0f} {case.over(5):>6} "
            f"{case.close_seconds:>8.2f}"
        )
    print("(>5 ms: admissions slower than 5 ms;")
    print(" close s: SqliteDatabase.close(): a full checkpoint, and PRAGMA optimize, which may ANALYZE the table)")
    by_size: dict[int, dict[tuple[str, str], Case]] = {}
    for case in cases:
        by_size.setdefault(case.size, {})[case.key] = case
    small, large = min(sizes), max(sizes)
    if small != large:
        print()
        print(f"ratios {large:,} rows / {small:,} rows (targets: under 2):")
        for key, a in by_size[small].items():
            b = by_size[large].get(key)
            if b is None:
                continue
            print(
                f"  {key[0]:<15} {key[1]:<9} p99 {b.p99_us() / a.p99_us():5.2f}   "
                f"median {b.median_us() / a.median_us():5.2f}"
            )
    print()
    print(f"at {large:,} background rows, p99 / the 1 ms target:")
    for (name, stats), case in by_size[large].items():
        print(f"  {name:<15} {stats:<9} {case.p99_us() / 1000:6.2f}")
    for case in cases:
        print()
        print(f"statements of one admission: {case.name}, stats={case.stats}, {case.table_rows:,} rows")
        print("  (direct = median of the SELECT run alone through the stdlib sqlite3 module)")
        for statement in case.statements:
            direct = f"{statement.direct_us:7.1f} µs" if statement.direct_us is not None else " " * 10
            print(f"  {direct}  {index_of(statement.plan)}")
            print(f"              {shorten(statement.sql)}")
            for line in statement.plan:
                print(f"              plan: {line}")


# -- command line --------------------------------------------------------------------------------


def parse_sizes(raw: str) -> list[int]:
    try:
        sizes = [int(part.strip().replace("_", "")) for part in raw.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError("give positive row counts, e.g. 10000,1000000")
    return sizes


def parse_caps(raw: str) -> tuple[int, int] | None:
    if raw.strip().lower() == "none":
        return None
    member, _, guild = raw.partition(",")
    try:
        return int(member), int(guild)
    except ValueError:
        raise argparse.ArgumentTypeError("give MEMBER,GUILD (e.g. 3,30) or none") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.admission",
        description="Time SqlLimitsRepository.admit against 10k and 1M usage rows (see the module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sizes", type=parse_sizes, default=[10_000, 1_000_000], help="usage rows per database")
    parser.add_argument("--admissions", type=int, default=2000, help="timed admissions per case")
    parser.add_argument("--warmup", type=int, default=100, help="untimed admissions before each case")
    parser.add_argument("--guilds", type=int, default=500)
    parser.add_argument("--members", type=int, default=40, help="members per guild (±25%%)")
    parser.add_argument("--days", type=float, default=90.0, help="the rows span this many days back")
    parser.add_argument("--unfinished", type=int, default=20, help="queued/running rows among them")
    parser.add_argument("--limits", default="member/hour=5,member/day=20,server/day=200")
    parser.add_argument("--caps", type=parse_caps, default=(3, 30), help="queue caps MEMBER,GUILD, or none")
    parser.add_argument("--busy-rows", type=int, default=100_000, help="rows of the busy guild")
    parser.add_argument("--busy-days", type=float, default=30.0, help="the busy guild's rows span this many days")
    parser.add_argument("--busy-members", type=int, default=1000)
    parser.add_argument("--busy-limits", default="server/month=100000")
    parser.add_argument("--busy-admissions", type=int, default=0, help="timed busy admissions (0: --admissions)")
    parser.add_argument(
        "--busy-admissions-unanalyzed", type=int, default=300, help="timed busy admissions without statistics"
    )
    parser.add_argument("--explain-repeat", type=int, default=30, help="direct runs of each captured SELECT")
    parser.add_argument("--seed", type=int, default=1)
    return parser


async def main_async(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    print(
        f"SQLite {sqlite3.sqlite_version}, Python {sys.version.split()[0]}; {args.admissions} admissions per case; "
        f"limits {args.limits}; busy guild {args.busy_limits}; queue caps {args.caps}"
    )
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="qi-admission-") as tmp:
        for size in args.sizes:
            cases += await measure_size(args, Path(tmp), size, rng)
    report(cases, args.sizes)


def main(argv: Sequence[str] | None = None) -> None:
    asyncio.run(main_async(build_parser().parse_args(argv)))


if __name__ == "__main__":
    main()
