"""What the CLI boundary renders: invalid requests (PsykError) and termination signals (Terminated)."""

from __future__ import annotations

import signal


class PsykError(Exception):
    """An invalid request: bad value, missing file, unknown mode, unreadable store.

    Raised deep in the library with a message that names the bad value and what is
    allowed; the CLI renders it once as a single stderr line and exits with
    ``exit_code`` (2 for usage errors, 1 for "nothing to do" outcomes such as a
    report with no matching runs).
    """

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class NothingFound(PsykError):
    """A well-formed request that matched nothing (no runs for a report)."""

    exit_code = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP during a long command (a scheduler's time limit, ``kill``, a closed terminal).

    A ``KeyboardInterrupt`` so that every place which keeps partial results on Ctrl-C
    does the same here; the CLI exits with 128 + the signal number.
    """

    def __init__(self, signal_number: int):
        self.signal_number = signal_number
        self.signal_name = signal.Signals(signal_number).name
        super().__init__(f"terminated by {self.signal_name}")


def run_outcome(exc: BaseException) -> tuple[str, str]:
    """The ``status`` and ``error`` a run gets when ``exc`` ends it early.

    Ctrl-C and termination signals leave an ``interrupted`` run (partial results
    kept); anything else a ``failed`` one, with the first line of the error.
    """
    if isinstance(exc, Terminated):
        return "interrupted", str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted by the user (Ctrl-C)"
    return "failed", f"{type(exc).__name__}: {exc}".splitlines()[0]
