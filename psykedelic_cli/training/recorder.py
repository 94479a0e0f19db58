"""Bookkeeping of one run, free of TensorFlow: phase timings and the results written to the store."""

from __future__ import annotations

import contextlib
import time
from datetime import datetime, timezone
from typing import Callable

from psykedelic_cli.store import Store
from psykedelic_cli.store.runs import utc_now


class PhaseTimer:
    """Accumulates wall time per named phase (training, kernel_analysis, comparison, history)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - start)

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds


class RunRecorder:
    """Keeps the results of one run and writes them to the store as they arrive.

    Frequent small results (the learning curve, every epoch) are written lazily: only
    when the time since the last write is at least ``budget`` times what that write
    took, so a large shared store costs training at most ~1/budget of its time. The
    rest is written at once, and everything at ``finish``. ``clock`` (seconds, monotonic)
    measures the writes; tests pass their own. Each write also stamps the run's
    ``heartbeat_at`` with ``wall_clock()`` (an aware datetime; default: the system clock),
    the sign of life by which a run on another machine is told from one whose process died
    (:mod:`psykedelic_cli.store.liveness`).
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        budget: float = 10.0,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.store = store
        self.clock = clock
        self.wall_clock = wall_clock
        self.run_id = run_id
        self.budget = budget
        self.results: dict = {}
        self._pending: dict = {}
        self._last_write_end = 0.0
        self._last_write_cost = 0.0

    def put(self, *, lazy: bool = False, **results) -> None:
        self.results.update(results)
        self._pending.update(results)
        now = self.clock()
        if lazy and now - self._last_write_end < self.budget * self._last_write_cost:
            return
        moment = self.wall_clock()
        self.store.update_run(self.run_id, results=self._pending, heartbeat_at=utc_now(moment), now=moment)
        self._pending = {}
        self._last_write_end = self.clock()
        self._last_write_cost = self._last_write_end - now

    def finish(self, status: str, error: str | None = None, **fields) -> None:
        """The last write: every result, the final status, and further top-level ``fields`` (e.g. ``warnings``)."""
        self.store.update_run(self.run_id, status=status, error=error, results=self.results, **fields)
