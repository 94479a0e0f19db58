"""Output paths are checked before work and files are written whole or not at all."""

from __future__ import annotations

import errno

import pytest

from psykedelic_cli.errors import PsykError
from psykedelic_cli.outputs import (
    check_distinct,
    check_output_dir,
    check_output_file,
    check_output_files,
    os_error_text,
    replacing,
    write_text,
)


def test_an_output_folder_is_checked_without_creating_it_or_refused_in_one_line(tmp_path):
    assert check_output_dir(tmp_path / "new" / "deeper", "--out-dir") == tmp_path / "new" / "deeper"
    assert check_output_dir(tmp_path, "--out-dir") == tmp_path
    assert list(tmp_path.iterdir()) == []  # nothing created (the writer creates it), no probe left
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(PsykError, match=f"--out-dir {afile} is a file; give a folder"):
        check_output_dir(afile, "--out-dir")
    with pytest.raises(PsykError, match=f"--out-dir {afile}/sub lies under the file {afile}"):
        check_output_dir(afile / "sub", "--out-dir")
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]


def test_an_output_file_is_checked(tmp_path):
    assert check_output_file(tmp_path / "sub" / "model.keras", "--output") == tmp_path / "sub" / "model.keras"
    assert not (tmp_path / "sub").exists()
    with pytest.raises(PsykError, match=f"--output {tmp_path} is a folder; give a file path"):
        check_output_file(tmp_path, "--output")
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(PsykError, match=f"--output {afile}/m.keras lies under the file {afile}"):
        check_output_file(afile / "m.keras", "--output")


def test_outputs_of_one_command_never_overwrite_each_other(tmp_path):
    check_distinct([tmp_path / "a.png", tmp_path / "b.png"], "psyk report")
    with pytest.raises(PsykError, match="would write .*a.png more than once"):
        check_distinct([tmp_path / "a.png", tmp_path / "x" / ".." / "a.png", tmp_path / "a.png"], "psyk report")
    (tmp_path / "t.tex").mkdir()
    with pytest.raises(PsykError, match="t.tex is a folder; it stands where a file must be written"):
        check_output_files([tmp_path / "t.tex"], "psyk report")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "table.tex"
    write_text(target, "old")
    with pytest.raises(RuntimeError), replacing(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("disk gone")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["table.tex"]
    with replacing(target) as temporary:
        assert temporary.suffix == ".tex" and temporary.parent == tmp_path
        temporary.write_text("new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["table.tex"]


def test_os_errors_read_as_reason_and_path():
    assert os_error_text(OSError(errno.EROFS, "Read-only file system", "/mnt/x")) == "Read-only file system: /mnt/x"
    assert os_error_text(OSError(errno.ENOSPC, "No space left on device")) == "No space left on device"
