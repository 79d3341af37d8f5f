"""The process registry's contract on both backends: owners, claims of orphaned generations, hand-over."""

from __future__ import annotations

import asyncio

from bot.db import Database, SqlGenerationRepository, Status
from bot.db.processes import SqlProcessRegistry
from tests.test_repositories import database, request

__all__ = ["database"]


async def test_a_process_claims_what_no_live_process_owns_and_only_once(database: Database) -> None:
    earlier = SqlGenerationRepository(database, owner="earlier-run")
    left = await earlier.create(request(), status=Status.QUEUED, at=1.0)
    unowned = await SqlGenerationRepository(database).create(request(), status=Status.QUEUED, at=2.0)
    done = await earlier.create(request(), status=Status.QUEUED, at=3.0)
    await earlier.mark_failed(done, at=4.0, error_code="Boom")
    me = SqlProcessRegistry(database, token="me")
    await me.register()
    mine = await SqlGenerationRepository(database, owner="me").create(request(), status=Status.QUEUED, at=5.0)

    assert [r.id for r in await me.claim_orphans()] == [left, unowned]
    assert await me.claim_orphans() == []
    assert mine not in [r.id for r in await me.claim_orphans()]


async def test_a_live_processs_generations_are_not_claimed_a_dead_ones_are_claimed_once(database: Database) -> None:
    if database.dialect.name != "postgres":
        return  # one process per SQLite file
    live = SqlProcessRegistry(database, token="live")
    await live.register()
    kept = await SqlGenerationRepository(database, owner="live").create(request(), status=Status.QUEUED, at=1.0)
    dead = SqlProcessRegistry(database, token="dead")
    await dead.register()
    orphans = [
        await SqlGenerationRepository(database, owner="dead").create(request(), status=Status.QUEUED, at=float(n))
        for n in range(2, 12)
    ]
    await database.execute("UPDATE processes SET heartbeat = heartbeat - 60 WHERE id = 'dead'")
    claimers = [SqlProcessRegistry(database, token=f"claimer-{n}") for n in range(4)]
    for claimer in claimers:
        await claimer.register()

    claimed = await asyncio.gather(*(claimer.claim_orphans() for claimer in claimers))

    ids = sorted(record.id for records in claimed for record in records)
    assert ids == orphans  # each taken by exactly one process
    assert kept not in ids


async def test_hand_over_frees_waiting_generations_for_a_live_process(database: Database) -> None:
    old = SqlProcessRegistry(database, token="old")
    await old.register()
    generations = SqlGenerationRepository(database, owner="old")
    waiting = [await generations.create(request(), status=Status.QUEUED, at=float(n)) for n in range(2)]
    assert await old.hand_over(waiting) == (waiting, False)  # nobody else is there
    if database.dialect.name != "postgres":
        return
    new = SqlProcessRegistry(database, token="new")
    await new.register()
    await old.set_draining()
    assert await new.claim_orphans() != []
    assert await new.hand_over([]) == ([], False)
    others = SqlProcessRegistry(database, token="old")
    assert await others.others_alive()  # "new" is alive and not draining
