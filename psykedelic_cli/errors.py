"""The one error type for "the user asked for something invalid"."""

from __future__ import annotations


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
