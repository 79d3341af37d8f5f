"""Peak memory of the /usage CSV export for a large guild, against a ten times smaller one.

Fills a SQLite database (made by the bot's own migrations) with N usage rows of one guild, plus
some of another guild, and exports the guild's month through `UsageService.export_csv` with no
size cap, in a fresh process per size. Prints, for 20 000 and 200 000 rows: the CSV's size, the
tracemalloc peak during the export, the process's peak RSS (ru_maxrss) before the export and its
growth during it; then the ratio of the large export's figures to the small one's. Bounded memory
means a ratio near 1 while the CSV grows tenfold.

Run: `python -m bench.csv_export` (about a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

GUILD = 1
OTHER_GUILD = 2
WORDS = ("a", "red", "fox", "snow", "watercolour", "soft", "light", "misty", "forest", "koi", "pond", "heron", "dusk")


async def fill(path: Path, rows: int) -> None:
    """N rows of GUILD within the last month (prompts of 50-400 characters), and N/10 of another guild."""
    from bot.db import SqliteDatabase  # noqa: PLC0415 - only in the child processes, see main()

    database = await SqliteDatabase.open(path)
    await database.close()
    rng = random.Random(7)
    now = time.time()

    def row(guild: int, n: int) -> tuple[object, ...]:
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 60)))[:400]
        return (guild, 10, 100 + n % 500, now - 29 * 86400 * (1 - n / rows), "succeeded", 1, prompt, n)

    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO generations (guild_id, channel_id, member_id, requested_at, status, model, size, seed, "
            "prompt_extend, prompt, image_bytes) VALUES (?, ?, ?, ?, ?, 'qwen-image-plus', '1328*1328', 7, ?, ?, ?)",
            [row(GUILD, n) for n in range(rows)] + [row(OTHER_GUILD, n) for n in range(rows // 10)],
        )


async def measure(path: Path) -> dict[str, float]:
    """Export GUILD's month twice: once for the peak RSS, once under tracemalloc (which costs memory itself)."""
    from bot.db import SqliteDatabase, SqlUsageRepository  # noqa: PLC0415 - only in the child processes
    from bot.services.usage import Period, UsageService  # noqa: PLC0415

    database = await SqliteDatabase.open(path)
    try:
        service = UsageService(SqlUsageRepository(database), region="intl", retention_days=90)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        with await service.export_csv(GUILD, Period.MONTH, max_bytes=2**40) as export:
            seconds = time.perf_counter() - started
            rows, size = export.rows, export.size
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        with await service.export_csv(GUILD, Period.MONTH, max_bytes=2**40):
            _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {
            "rows": rows,
            "csv_bytes": size,
            "tracemalloc_peak": peak,
            "maxrss_before": rss_before * 1024,  # ru_maxrss is in KiB on Linux
            "maxrss_delta": (rss_after - rss_before) * 1024,
            "seconds": seconds,
        }
    finally:
        await database.close()


def mib(value: float) -> str:
    return f"{value / 2**20:8.2f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # The work happens in child processes: a process's peak RSS carries over into the children it
    # forks, so the parent stays small and the filling is kept apart from the measuring.
    parser.add_argument("--fill", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs=2, default=(20_000, 200_000), metavar=("SMALL", "LARGE"))
    args = parser.parse_args()
    if args.fill:
        asyncio.run(fill(args.database, args.fill))
        return
    if args.measure:
        print(json.dumps(asyncio.run(measure(args.database))))
        return
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for rows in args.sizes:
            path = Path(folder) / f"usage-{rows}.sqlite3"
            child = [sys.executable, "-m", "bench.csv_export", "--database", str(path)]
            subprocess.run([*child, "--fill", str(rows)], check=True)
            measured = subprocess.run([*child, "--measure"], check=True, capture_output=True, text=True)
            results.append(json.loads(measured.stdout))
    print(f"{'rows':>8} {'CSV size':>12} {'tracemalloc peak':>17} {'peak RSS before':>16} {'growth':>13} {'time':>7}")
    for result in results:
        print(
            f"{result['rows']:>8.0f} {mib(result['csv_bytes'])} {mib(result['tracemalloc_peak']):>17} "
            f"{mib(result['maxrss_before']):>16} {mib(result['maxrss_delta']):>13} {result['seconds']:6.1f}s"
        )
    small, large = results
    growth = large["maxrss_delta"] / small["maxrss_delta"] if small["maxrss_delta"] else None
    print(
        f"{'ratio':>8} {large['csv_bytes'] / small['csv_bytes']:11.1f}x "
        f"{large['tracemalloc_peak'] / small['tracemalloc_peak']:16.2f}x {'':>16} "
        f"{f'{growth:.2f}x' if growth is not None else 'both 0':>13}"
    )


if __name__ == "__main__":
    main()
