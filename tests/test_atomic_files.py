"""Output files are written whole, all files of one command together or not at all (``occsens.files``).

A full disk is simulated by a write hook that fails with ENOSPC (mounting a small tmpfs needs
privileges CI does not have); a failing rename stands for a folder that turns read-only, or a file
replaced by a folder, between two renames.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from occsens.errors import OcclusionError
from occsens.files import write

OLD = {"index.html": b"old report", "data.json": b'{"old": true}', "figure.png": b"old png"}
NEW = {"index.html": b"new report", "data.json": b'{"new": true}', "figure.png": b"new png"}


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def old_set(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    for name, content in OLD.items():
        (folder / name).write_bytes(content)
    return folder


def test_a_new_set_replaces_the_old_one_and_leaves_no_temporary_files(old_set: Path) -> None:
    written = write.write_files(old_set, NEW, "the report")
    assert written == [old_set / name for name in NEW]
    assert _contents(old_set) == dict(sorted(NEW.items()))


def test_a_full_disk_on_the_second_file_leaves_the_old_set_untouched(
    old_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync, calls = os.fsync, []

    def full_disk(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:  # the second staged file: the disk fills while it is written
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(write.os, "fsync", full_disk)
    with pytest.raises(OcclusionError, match=r"cannot write the report \(No space left on device\)") as err:
        write.write_files(old_set, NEW, "the report")
    assert "\n" not in str(err.value)
    assert _contents(old_set) == dict(sorted(OLD.items()))  # every old file, and nothing else


def test_a_rename_that_fails_midway_puts_the_renamed_files_back(
    old_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case the issue names: the second of a report's files cannot be written after the first
    was already replaced. The first is restored, byte for byte."""
    real_replace, renamed = os.replace, []

    def failing_replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        if Path(src).name.endswith(".tmp"):
            renamed.append(Path(dst).name)
            if len(renamed) == 2:
                raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        real_replace(src, dst)

    monkeypatch.setattr(write.os, "replace", failing_replace)
    with pytest.raises(OcclusionError, match="Permission denied"):
        write.write_files(old_set, NEW, "the report")
    assert renamed[0] == "index.html"  # the first file had been replaced before the failure
    assert _contents(old_set) == dict(sorted(OLD.items()))


def test_a_failure_midway_removes_files_that_did_not_exist_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace, count = os.replace, []

    def failing_replace(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        count.append(dst)
        if len(count) == 2:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(src, dst)

    monkeypatch.setattr(write.os, "replace", failing_replace)
    with pytest.raises(OcclusionError):
        write.write_files(tmp_path / "fresh", NEW, "the report")
    assert list((tmp_path / "fresh").iterdir()) == []


def test_an_interrupt_while_staging_leaves_the_old_set(
    old_set: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C is not an OSError: it propagates as it is, and still leaves the old files and no temporaries."""

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(write.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write.write_files(old_set, NEW, "the report")
    assert _contents(old_set) == dict(sorted(OLD.items()))


def test_a_folder_where_a_file_goes_is_refused_before_anything_is_written(old_set: Path) -> None:
    (old_set / "data.json").unlink()
    (old_set / "data.json").mkdir()
    with pytest.raises(OcclusionError, match=r"'data\.json' there is a folder"):
        write.write_files(old_set, NEW, "the report")
    assert (old_set / "index.html").read_bytes() == OLD["index.html"]


@pytest.mark.parametrize("name", ["", "..", "sub/file.json", "/etc/passwd"])
def test_payload_names_are_plain_file_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(OcclusionError, match="is not a plain file name"):
        write.write_files(tmp_path, {name: b"x"}, "the report")
    assert list(tmp_path.iterdir()) == []


def test_an_output_path_is_checked_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OcclusionError, match=r"--out .* is a file, not a folder"):
        write.check_out_dir(tmp_path / "a_file" / "report", "--out")
    with pytest.raises(OcclusionError, match=r"--json .* is a folder; give the name of a file"):
        write.check_out_file(tmp_path, "--json")
    with pytest.raises(OcclusionError, match=r"--json must be a path"):
        write.check_out_file(None, "--json")  # type: ignore[arg-type]
    assert (
        write.check_out_file(tmp_path / "new" / "checks.json", "--json") == tmp_path / "new" / "checks.json"
    )
    assert not (tmp_path / "new").exists()  # checked, not created


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root writes anywhere")
def test_an_unwritable_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OcclusionError, match="is not writable"):
        write.check_out_dir(locked / "report")
