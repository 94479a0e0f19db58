"""A trained run is never lost because one of its files could not be written."""

from __future__ import annotations

import errno
from pathlib import Path

from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.store import Store


def test_a_chart_that_cannot_be_written_leaves_a_completed_run_with_a_warning(tmp_path, monkeypatch, tiny_args):
    from matplotlib.figure import Figure

    savefig = Figure.savefig

    def disk_full_for_the_per_layer_chart(figure, path, *args, **kwargs):
        if "per_layer" in str(path):
            Path(path).write_bytes(b"half a chart")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return savefig(figure, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", disk_full_for_the_per_layer_chart)
    store, out = tmp_path / "store.json", tmp_path / "out"
    result = CliRunner().invoke(app, ["--store", str(store), "train", *tiny_args, "--stop-after-pruning",
                                      "--save-model", "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    (run,) = Store(store).runs()
    assert run["status"] == "completed" and run["error"] is None
    (warning,) = run["warnings"]
    assert f"{out / run['id'] / 'per_layer.png'} was not written (No space left on device" in warning
    assert "warning:" in result.stderr and "per_layer.png" in result.stderr
    folder = out / run["id"]
    # The other files are whole; the failed one left neither a part nor a temporary file.
    assert sorted(p.name for p in folder.iterdir()) == ["learning_curve.png", "model.keras"]
    assert run["results"]["final"]["accuracy"] > 0


def test_a_store_that_refuses_the_last_write_loses_no_run(tmp_path, monkeypatch, tiny_args):
    from psykedelic_cli.errors import PsykError
    from psykedelic_cli.training.recorder import RunRecorder

    store, out = tmp_path / "store.json", tmp_path / "out"

    def store_gone(self, status, error=None, **fields):
        raise PsykError(f"cannot write store {store} (No space left on device); it was left as it was")

    monkeypatch.setattr(RunRecorder, "finish", store_gone)
    result = CliRunner().invoke(app, ["--store", str(store), "train", *tiny_args, "--stop-after-pruning",
                                      "--out-dir", str(out)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    error = result.stderr.strip().splitlines()[-1]  # after the run's status lines
    (kept,) = out.glob("psyk-run-*.json")
    assert error.startswith("psyk: error: cannot write store") and f"the completed run is kept in {kept}" in error
    (left,) = Store(store).runs()
    assert left["status"] == "running"  # what the refused store still holds
    merged = CliRunner().invoke(app, ["--store", str(store), "merge", str(kept)])
    assert merged.exit_code == 0, merged.output
    (run,) = Store(store).runs()
    assert run["id"] == left["id"] and run["status"] == "completed" and run["results"]["final"]["accuracy"] > 0
