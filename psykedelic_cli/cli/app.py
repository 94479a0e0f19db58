"""The root ``psyk`` app: global options and the single error boundary."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer._click.exceptions import NoArgsIsHelpError  # typer >= 0.29 vendors click
from typer.core import TyperGroup

from psykedelic_cli import __version__
from psykedelic_cli.cli.common import DEFAULT_STORE
from psykedelic_cli.errors import PsykError, Terminated
from psykedelic_cli.outputs import os_error_text

# TensorFlow's C++ start-up chatter (CPU feature notes, graph attribute warnings) is not
# for a command-line user; set TF_CPP_MIN_LOG_LEVEL yourself to see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _fail(message: str, code: int, where: str = "psyk") -> None:
    typer.echo(f"{where}: error: {message}", err=True)
    sys.exit(code)


def _debugging() -> bool:
    """``PSYK_DEBUG=1``: errors raise with their traceback instead of becoming one line."""
    return os.environ.get("PSYK_DEBUG", "") not in ("", "0")


STORE_HELP = "The experiment store (a TinyDB JSON file) every command shares."


def _store_after_command(ctx: typer.Context, value: Optional[Path]) -> None:
    if value is not None:
        ctx.find_root().obj["store"] = value


def _store_option():
    """``--store`` as every command and group repeats it: the same option as the global one,
    given after the command (typer builds it from a typed parameter, like every option here)."""
    probe = typer.Typer()

    @probe.command()
    def command(
        store: Annotated[
            Optional[Path],
            typer.Option(
                "--store",
                help=f"{STORE_HELP} Here, after the command, it overrides a --store before it and PSYK_STORE.",
                callback=_store_after_command, expose_value=False, show_default=False,
            ),
        ] = None,
    ) -> None:
        """Only builds the option."""

    return typer.main.get_command(probe).params[0]


def _accept_store_after_commands(group, option) -> None:
    # `psyk list-experiments --store runs.json` is how people type it; the root callback has
    # already stored the global value (or PSYK_STORE) when a subcommand's callback overrides it.
    for command in group.commands.values():
        if not any(param.name == "store" for param in command.params):
            command.params.append(option)
        if hasattr(command, "commands"):
            _accept_store_after_commands(command, option)


class PsykGroup(TyperGroup):
    """Runs every command inside one error boundary.

    Our own ``PsykError``, click's usage errors and any ``OSError`` (a file that cannot
    be read or written) become one line on stderr and a non-zero exit (2 for usage
    errors, 1 for an OSError); they show a traceback only with ``PSYK_DEBUG=1``. Every command
    also takes the global ``--store`` after its name.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _accept_store_after_commands(self, _store_option())

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(
                args=args, prog_name=prog_name, complete_var=complete_var, standalone_mode=False, **extra
            )
        except PsykError as exc:
            if _debugging():
                raise
            _fail(str(exc), exc.exit_code)
        except OSError as exc:  # a file that cannot be read or written, wherever it happened (typer itself
            # ends quietly, exit 1, when the reader of our output goes away: `psyk … | head`)
            if _debugging():
                raise
            _fail(os_error_text(exc), 1)
        except NoArgsIsHelpError as exc:
            # ``psyk report`` alone: show the help, not an error.
            typer.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
            sys.exit(0)
        except typer.TyperException as exc:  # click's usage errors (bad option value, missing argument)
            ctx = getattr(exc, "ctx", None)
            _fail(exc.format_message(), exc.exit_code, ctx.command_path if ctx is not None else "psyk")
        except typer.Abort:
            _fail("aborted", 130)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Terminated as exc:
            # Typer would turn this KeyboardInterrupt into a silent exit 130 (right for Ctrl-C);
            # SIGTERM/SIGHUP exit 128 + the signal number and say so.
            raise PsykError(str(exc), exit_code=128 + exc.signal_number) from exc


app = typer.Typer(
    cls=PsykGroup,
    name="psyk",
    help="Study convolutional networks by pruning individual convolution kernels.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"psyk {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    store: Annotated[
        Path,
        typer.Option(
            "--store",
            envvar="PSYK_STORE",
            help=STORE_HELP,
            show_default=True,
        ),
    ] = Path(DEFAULT_STORE),
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    """psyk: train ResNets while kernels die, compare pruning criteria, report the results."""
    ctx.obj = {"store": store}


def _register() -> None:
    # Each command module adds its commands to ``app``; none imports TensorFlow at import time.
    # The import order is the order ``psyk --help`` lists the commands in: not sorted.
    # isort: off
    from psykedelic_cli.cli import prune  # noqa: F401
    from psykedelic_cli.cli import thin  # noqa: F401
    from psykedelic_cli.cli import store_cmds  # noqa: F401
    from psykedelic_cli.cli import train  # noqa: F401
    from psykedelic_cli.cli import sweep  # noqa: F401
    from psykedelic_cli.cli import sensitivity  # noqa: F401
    from psykedelic_cli.cli import report  # noqa: F401
    from psykedelic_cli.cli import html  # noqa: F401
    # isort: on


_register()


def main() -> None:
    from psykedelic_cli.cli.streams import spell_what_the_encoding_lacks

    spell_what_the_encoding_lacks()
    app()
