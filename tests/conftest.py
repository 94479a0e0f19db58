"""Suite-wide settings and the two fixtures every folder may need: a pinned clock and a
bounded wait on a condition.

The suite runs on TensorFlow. Under ``KERAS_BACKEND=jax`` or ``torch`` only the tests marked
``backends`` run (``make test`` runs them on both): those that must hold on every backend.

No test reads today's date or orders two events with ``sleep``: time enters the library
as an argument (``now=``) and comes from ``clock``. Tests that wait on another process by
design carry the ``race`` marker (``pytest -m race`` runs them apart, ``-m "not race"``
skips them) and poll with ``wait_until``. Other fixtures belong in the conftest.py of the
folder that uses them.
"""

import os
import time
from datetime import datetime, timedelta, timezone

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


def pytest_collection_modifyitems(config, items):
    if BACKEND == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"KERAS_BACKEND={BACKEND} runs only the tests marked `backends`")
    for item in items:
        if "backends" not in item.keywords:
            item.add_marker(skip)


PINNED_TIME = datetime(2026, 1, 15, 12, 0, 0, tzinfo=timezone.utc)


class Clock:
    """A pinned clock: each call returns the next second after ``start``; ``now`` is the last one returned."""

    def __init__(self, start: datetime = PINNED_TIME):
        self.now = start - timedelta(seconds=1)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _wait_until(condition, *, timeout: float = 120.0, interval: float = 0.05, what: str = "the condition"):
    """Poll ``condition()`` every ``interval`` seconds until it is truthy (returned) or
    ``timeout`` seconds pass (the test fails). The bound is generous: on a loaded 2-core
    machine the other process may start slowly, and waiting longer never changes the outcome."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:g} s for {what}")
        time.sleep(interval)


@pytest.fixture
def wait_until():
    return _wait_until
