"""Each model's own limits within an account: at most N submissions in a window (`qwen-image-max`:
2 a minute) and at most some calls in flight, on top of the account's. Turns are kept per lane (one
API key, one account) and model; the scheduler starts only jobs whose model has a turn."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable

#: A model's own limits: (submissions per window, window seconds, calls in flight; 0 = only the account's).
ModelPace = tuple[int, float, int]


class ModelPacer:
    """Submission turns of each (lane, model), by the limits `pace` gives a model."""

    def __init__(self, pace: Callable[[str | None], ModelPace], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._pace = pace
        self._clock = clock
        self._turns: dict[tuple[str, str], deque[float]] = {}

    def _window(self, lane: str, model: str | None) -> tuple[deque[float], float, int]:
        submissions, window, concurrency = self._pace(model)
        key = (lane, model or "")
        turns = self._turns.get(key)
        if turns is None or turns.maxlen != submissions:
            turns = self._turns[key] = deque(turns or (), maxlen=max(1, submissions))
        return turns, window, concurrency

    def ready(self, lane: str, model: str | None, in_flight: int) -> bool:
        """Whether `model` has a submission turn in `lane` now, with `in_flight` of its calls running there."""
        turns, window, concurrency = self._window(lane, model)
        if concurrency and in_flight >= concurrency:
            return False
        return len(turns) < (turns.maxlen or 1) or turns[0] + window <= self._clock()

    def next_turn_in(self, lane: str, models: Iterable[str | None]) -> float | None:
        """Seconds until one of `models` next has a turn in `lane` (None: none is waiting for a turn)."""
        now, soonest = self._clock(), None
        for model in models:
            turns, window, _ = self._window(lane, model)
            if len(turns) == turns.maxlen:
                at = turns[0] + window - now
                soonest = at if soonest is None else min(soonest, at)
        return None if soonest is None else max(0.01, soonest)

    async def take_turn(self, lane: str, model: str | None) -> None:
        """Reserve `model`'s next turn in `lane` (so concurrent callers queue behind it) and wait for it."""
        turns, window, _ = self._window(lane, model)
        now = self._clock()
        turn = max(now, turns[0] + window) if len(turns) == turns.maxlen else now
        turns.append(turn)
        if turn > now:
            await asyncio.sleep(turn - now)
