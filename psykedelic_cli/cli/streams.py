"""Standard streams that can write every character psyk prints, whatever their encoding.

A terminal or pipe set to ASCII or Latin-1 (``LANG=C`` on an old system,
``PYTHONIOENCODING=latin-1``) lacks "±", "–" or "∅". Instead of failing with
``UnicodeEncodeError`` in the middle of a table, such a character is written in plain
ASCII that says the same (``+/-``, ``-``, ``{}``) and any other as its escape
(``\\xe9``), so nothing is lost. UTF-8 streams and streams given another error
policy (``PYTHONIOENCODING=ascii:replace``) are left alone.
"""

from __future__ import annotations

import codecs
import sys

ERRORS = "psyk-spell"
SPELLINGS = {
    "±": "+/-", "–": "-", "—": "-", "…": "...", "∅": "{}", "≥": ">=", "≤": "<=", "×": "x", "→": "->",
    "ⁿ": "^n", "²": "^2", "ᵀ": "^T", "λ": "lambda", "‘": "'", "’": "'", "“": '"', "”": '"',
}


def _spell(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    lacking = error.object[error.start : error.end]
    spelled = "".join(SPELLINGS.get(c) or c.encode("ascii", "backslashreplace").decode("ascii") for c in lacking)
    return spelled, error.end


def spell_what_the_encoding_lacks() -> None:
    """Give stdout and stderr the ``ERRORS`` policy where their encoding is not UTF and they would fail."""
    codecs.register_error(ERRORS, _spell)
    for stream in (sys.stdout, sys.stderr):
        encoding = (getattr(stream, "encoding", None) or "utf-8").lower()
        if encoding.startswith("utf") or getattr(stream, "errors", None) != "strict":
            continue
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=ERRORS)
