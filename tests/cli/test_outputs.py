"""Every command that writes files: a path that cannot be written is one line and exit 2 before
any work, and an OSError anywhere is one line at the CLI boundary (a traceback only with PSYK_DEBUG)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from psykedelic_cli.cli.app import app
from psykedelic_cli.store import Store, new_run_document

PSYK = str(Path(sys.executable).with_name("psyk"))
ROW = {"accuracy": 0.9, "precision": 0.9, "recall": 0.9, "active_params": 50, "total_params": 100,
       "compression_ratio": 0.5, "score": 0.45, "alive_kernels": 5, "total_kernels": 10}


@pytest.fixture
def store(tmp_path, clock) -> Path:
    path = tmp_path / "store.json"
    doc = new_run_document({"model": "MicroResNet20", "dataset": "digits", "threshold": 1e-4}, now=clock())
    doc.update(status="completed")
    doc["results"]["performance"] = {"None": {**ROW, "compression_ratio": 0.0, "score": 0.0}, "det": ROW}
    Store(path).add_run(doc)
    return path


@pytest.fixture
def read_only():
    """``prefix(folder)``: a command prefix that runs a command with ``folder`` read-only.

    As root (CI) permission bits stop nothing, so the folder is bind-mounted read-only in a
    private mount namespace (``unshare -m``); otherwise its permission bits are cleared.
    """
    def prefix(folder: Path) -> list[str]:
        if os.geteuid() != 0:
            folder.chmod(0o555)
            return []
        probe = subprocess.run(["unshare", "-m", "true"], capture_output=True) if shutil.which("unshare") else None
        if probe is None or probe.returncode != 0:
            pytest.skip("needs a private mount namespace (unshare -m) to make a folder read-only as root")
        script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && cd "$0" && exec "$@"'
        return ["unshare", "-m", "sh", "-c", script, str(folder)]

    return prefix


def _one_line(result, *needles: str) -> str:
    stderr = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    for needle in needles:
        assert needle in stderr, stderr
    return stderr


def test_train_in_a_read_only_folder_stops_before_training(tmp_path, read_only):
    folder = tmp_path / "ro"
    folder.mkdir()
    store = tmp_path / "store.json"
    result = subprocess.run([*read_only(folder), PSYK, "--store", str(store), "train"], cwd=folder,
                            capture_output=True, text=True, timeout=120)
    _one_line(result, "--out-dir psyk-out: cannot create it")
    assert not store.exists()  # nothing trained, nothing stored


def test_train_out_dir_that_is_a_file_stops_before_training(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    for out_dir in (afile, afile / "runs"):
        result = CliRunner().invoke(app, ["--store", str(tmp_path / "s.json"), "train", "--out-dir", str(out_dir)])
        _one_line(result, f"--out-dir {out_dir}", "file")
    assert afile.read_text() == "mine" and not (tmp_path / "s.json").exists()


def test_report_out_dir_problems_are_one_line_before_any_table(store, tmp_path, read_only):
    afile = tmp_path / "afile"
    afile.write_text("x")
    holder = tmp_path / "holder"
    (holder / "performance.tex").mkdir(parents=True)
    cases = [(afile, "is a file"), (afile / "out", f"lies under the file {afile}"),
             (holder, f"{holder / 'performance.tex'} is a folder")]
    for out_dir, needle in cases:
        result = CliRunner().invoke(app, ["--store", str(store), "report", "performance", "-o", str(out_dir)])
        _one_line(result, needle)
        assert result.stdout == ""  # checked before the tables were printed
    folder = tmp_path / "ro"
    folder.mkdir()
    result = subprocess.run([*read_only(folder), PSYK, "--store", str(store), "report", "performance", "-o",
                             str(folder)], capture_output=True, text=True, timeout=120)
    _one_line(result, f"--out-dir {folder}: cannot write into it")
    assert result.stdout == ""
    written = CliRunner().invoke(app, ["--store", str(store), "report", "performance", "-o", str(tmp_path / "ok")])
    assert written.exit_code == 0 and (tmp_path / "ok" / "performance.tex").is_file()
    assert not [p for p in (tmp_path / "ok").iterdir() if p.name.startswith(".")]  # no temporary left


def test_prune_output_problems_are_one_line_before_tensorflow(tmp_path, read_only):
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read: the output is refused first")
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [(tmp_path, "is a folder"), (afile / "p.keras", f"lies under the file {afile}"),
             (model, "is the input model")]
    for output, needle in cases:
        result = CliRunner().invoke(app, ["prune", str(model), "--mode", "det", "-o", str(output)])
        _one_line(result, f"--output {output}", needle)
    folder = tmp_path / "ro"
    folder.mkdir()
    result = subprocess.run([*read_only(folder), PSYK, "prune", str(model), "--mode", "det", "-o",
                             str(folder / "p.keras")], capture_output=True, text=True, timeout=120)
    _one_line(result, f"--output {folder / 'p.keras'}: cannot write into {folder}")


def test_an_os_error_anywhere_is_one_line_and_a_traceback_only_when_debugging(store):
    command = [PSYK, "--store", str(store), "list-experiments", "-f", "json"]
    with open("/dev/full", "w") as full:
        quiet = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
        loud = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
                              env={**os.environ, "PSYK_DEBUG": "1"})
    assert quiet.returncode == 1 and quiet.stderr == "psyk: error: No space left on device\n"
    assert loud.returncode != 0 and "Traceback" in loud.stderr and "OSError" in loud.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly(store):
    process = subprocess.Popen([PSYK, "--store", str(store), "list-experiments", "-f", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # like `| head` exiting before psyk writes
    _, stderr = process.communicate(timeout=60)
    assert b"Traceback" not in stderr and b"Exception ignored" not in stderr
    assert process.returncode in (0, 1) and stderr == b""
