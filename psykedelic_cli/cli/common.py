"""Pieces every command shares: the store path, output options, the console."""

from __future__ import annotations

import contextlib
import enum
import signal
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from psykedelic_cli.errors import PsykError, Terminated

console = Console()
err_console = Console(stderr=True)

DEFAULT_STORE = "psyk-store.json"


def store_path(ctx: typer.Context) -> Path:
    """The store chosen by the global ``--store`` option (or ``PSYK_STORE``)."""
    root = ctx.find_root()
    obj = root.obj or {}
    return Path(obj.get("store", DEFAULT_STORE))


class TableFormat(str, enum.Enum):
    table = "table"
    latex = "latex"
    markdown = "markdown"
    csv = "csv"
    json = "json"


class ImageFormat(str, enum.Enum):
    png = "png"
    pdf = "pdf"
    svg = "svg"


FormatOption = Annotated[
    TableFormat,
    typer.Option("--format", "-f", help="Table output: rich table, LaTeX (booktabs), Markdown, CSV or JSON."),
]
OutDirOption = Annotated[
    Optional[Path],
    typer.Option("--out-dir", "-o", help="Write tables and charts into this folder and print their paths."),
]
ImageFormatOption = Annotated[
    ImageFormat, typer.Option("--image-format", help="Chart file format.")
]

# The pruning parameters of psyk prune, with the help psyk train and psyk record declare for them.
def _help(name: str) -> str:
    from dataclasses import fields

    from psykedelic_cli.training.config import TrainConfig

    return next(item for item in fields(TrainConfig) if item.name == name).metadata["spec"].help


ThresholdOption = Annotated[float, typer.Option("--threshold", help=_help("threshold"))]
ContributionThresholdOption = Annotated[
    float, typer.Option("--contribution-threshold", help=_help("contribution_threshold"))
]
RateOption = Annotated[float, typer.Option("--rate", help=_help("rate"))]


def start_backend(backend: str | None = None) -> str:
    """Make ``backend`` (default: ``KERAS_BACKEND``, else TensorFlow) the Keras backend of this process and
    load it; returns its name. PsykError (exit 2) for an unknown or missing backend.

    TensorFlow's C++ side writes notes such as "Could not find cuda drivers" straight to
    file descriptor 2 before any log level applies, so the descriptor itself is pointed
    at /dev/null while it loads (Python errors still raise normally afterwards).
    Commands that train or load models call this first; store-only commands never do.
    """
    import os
    import sys

    from psykedelic_cli.backends import install_hint, select_backend

    name = select_backend(backend)
    if "keras" in sys.modules:
        return name
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            if name == "tensorflow":
                import tensorflow  # noqa: F401
            import keras  # noqa: F401
    except ImportError as exc:
        raise PsykError(f"the {name} backend cannot be loaded: {exc}".splitlines()[0]
                        + f"; install it (`pip install '{install_hint(name)}'`) or choose another --backend") from exc
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return name


BackendOption = Annotated[
    Optional[str],
    typer.Option(
        "--backend", help="Keras backend: tensorflow | jax | torch (default: KERAS_BACKEND, else tensorflow)."
    ),
]


@contextlib.contextmanager
def stop_gracefully_on_termination():
    """Turn SIGTERM and SIGHUP into ``Terminated`` while a long command runs.

    Without this, ``kill``, a batch scheduler's time limit or a closed terminal ends
    the process on the spot and its run stays ``running`` in the store forever; with
    it, the run is marked ``interrupted`` with its partial results, like Ctrl-C.
    A signal the parent chose to ignore stays ignored (as ``nohup`` expects), and a
    second signal while the first is being handled is ignored so the store write
    finishes.
    """

    def handler(number, frame):
        for each in watched:
            signal.signal(each, signal.SIG_IGN)
        raise Terminated(number)

    watched = [s for s in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {s: signal.signal(s, handler) for s in watched}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, signal.SIG_DFL if old is None else old)
