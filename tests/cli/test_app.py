"""The root ``psyk`` app: the global ``--store`` option, wherever it is typed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.store import Store, new_run_document


def _store(path, run_id: str):
    doc = new_run_document({"model": "MicroResNet20", "dataset": "digits", "mode": "det", "seed": 0},
                             now=datetime(2026, 11, 26, tzinfo=timezone.utc))
    doc.update(id=run_id, status="completed")
    Store(path).add_run(doc)
    return path


@pytest.fixture
def stores(tmp_path):
    """Three stores told apart by their one run id: the one after the command, before it, and PSYK_STORE's."""
    return {name: _store(tmp_path / f"{name}.json", f"20261126T00000{i}-{name}") for i, name in
            enumerate(("after", "before", "env"))}


def listed(*args, env=None) -> list[str]:
    result = CliRunner().invoke(app, [*args], env=env)
    assert result.exit_code == 0, result.stderr
    return [doc["id"] for doc in json.loads(result.stdout)]


def test_store_after_the_command(stores):
    assert listed("list-experiments", "--store", str(stores["after"]), "-f", "json") == ["20261126T000000-after"]
    assert listed("list-experiments", "-f", "json", f"--store={stores['after']}") == ["20261126T000000-after"]


def test_after_the_command_wins_over_before_it_and_over_the_environment(stores):
    after, before, env = (str(stores[name]) for name in ("after", "before", "env"))
    assert listed("--store", before, "list-experiments", "--store", after, "-f", "json") == ["20261126T000000-after"]
    assert listed("list-experiments", "--store", after, "-f", "json", env={"PSYK_STORE": env}) == [
        "20261126T000000-after"
    ]
    assert listed("--store", before, "list-experiments", "-f", "json", env={"PSYK_STORE": env}) == [
        "20261126T000001-before"
    ]
    assert listed("list-experiments", "-f", "json", env={"PSYK_STORE": env}) == ["20261126T000002-env"]


def test_report_commands_and_their_group_take_it_too(stores):
    after, before = str(stores["after"]), str(stores["before"])
    # the run has no results: the message names the store that was read
    for args in (["report", "performance", "--store", after], ["--store", before, "report", "--store", after,
                                                                "performance"]):
        result = CliRunner().invoke(app, args)
        assert (result.exit_code, result.stderr) == (1, "psyk: error: no matching run has performance results\n")
    result = CliRunner().invoke(app, ["report", "eig-stats", "--store", str(stores["after"]) + ".missing"])
    assert result.stderr == f"psyk: error: no completed run in {after}.missing\n"


def _commands(group, path=()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))


@pytest.mark.parametrize("path", [path for path, _ in _commands(typer.main.get_command(app))], ids=" ".join)
def test_every_command_lists_store_in_its_help(path):
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "overrides a --store before it and PSYK_STORE" in result.stdout


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_streams_of_any_encoding_get_every_character_written_never_an_error(stores, tmp_path, encoding):
    psyk = Path(sys.executable).with_name("psyk")
    env = {**os.environ, "PYTHONIOENCODING": encoding, "COLUMNS": "80"}
    for args in (["list-experiments"], ["show", "20261126T000000"], ["report", "eig-stats"]):
        result = subprocess.run([str(psyk), "--store", str(stores["after"]), *args], capture_output=True, env=env)
        assert b"Traceback" not in result.stderr and b"UnicodeEncodeError" not in result.stderr, args
        assert result.returncode == (1 if args[0] == "report" else 0), (args, result.stderr)
        result.stdout.decode(encoding)  # the tables are written in the stream's encoding
    show = subprocess.run([str(psyk), "--store", str(stores["after"]), "show", "20261126T000000"],
                          capture_output=True, env=env).stdout.decode(encoding)
    assert "(source train)" in show and "finished - UTC" in show  # the stream lacks "—": spelled "-"
    missing = tmp_path / "résultats∅.json"
    result = subprocess.run([str(psyk), "report", "eig-stats", "--store", str(missing)], capture_output=True, env=env)
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert b"sultats" in result.stderr and result.stderr.count(b"\n") == 1
