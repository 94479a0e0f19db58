"""Run every ``bench/bench_*.py`` (or the ones named on the command line).

Each module defines ``run() -> None`` that measures its figures against a baseline
taken in the same run and prints them as ratios (medians of repeats).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str]) -> None:
    import bench

    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in argv] or names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        sys.exit(f"bench: unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names)}")
    for name in wanted:
        importlib.import_module(f"bench.{name}").run()


if __name__ == "__main__":
    main(sys.argv[1:])
