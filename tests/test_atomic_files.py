"""Output files are written whole, all files of one command together or not at all (``occsens.files``).

A full disk is simulated by a write hook that fails with ENOSPC (mounting a small tmpfs needs
privileges CI does not have); a failing rename stands for a folder that turns read-only, or a file
replaced by a folder, between two renames.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
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


# ----------------------------------------------------------------------------- killed, raced (issue 26)


# A writer in its own process, so that it can be killed (SIGKILL: no handler, no cleanup runs) at an
# exact point: the rename of its staged file number KILL_AT, or the first restore of an old file
# once rename number FAIL_AT failed and the replace is being undone.
WRITER = textwrap.dedent(
    """
    import json, os, signal, sys, time
    from pathlib import Path
    from occsens.files import write as output

    folder, payload, plan = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
    real_replace, renames = os.replace, []

    def replace(src, dst):
        if str(src).endswith(".tmp"):  # a staged file's rename
            if len(renames) == plan.get("kill_at"):
                os.kill(os.getpid(), signal.SIGKILL)
            if len(renames) == plan.get("fail_at"):
                raise OSError(5, "Input/output error")
            renames.append(dst)
            real_replace(src, dst)
            if len(renames) == 1 and "signal" in plan:  # a slow writer: others may start meanwhile
                Path(plan["signal"]).touch()
                time.sleep(1.0)
            return
        if str(src).endswith(".old") and plan.get("kill_undoing"):
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)

    os.replace = replace
    if plan.get("no_lock"):
        import contextlib
        output._locked = lambda folders: contextlib.nullcontext()
        output.recover = lambda folder: None  # as before the journal: it would finish the other's set
    if "wait_for" in plan:
        while not Path(plan["wait_for"]).exists():
            time.sleep(0.01)
    try:
        output.write_files(folder, {k: v.encode() for k, v in payload.items()}, "the report")
    except Exception as exc:
        print(exc)
    """
)


def _writer(folder: Path, payload: dict[str, bytes], **plan: object) -> subprocess.Popen:
    text = {k: v.decode() for k, v in payload.items()}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), json.dumps(text), json.dumps(plan)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("kill_at", [0, 1, 2])
def test_a_writer_killed_between_renames_leaves_a_set_that_recovery_completes(
    old_set: Path, kill_at: int
) -> None:
    done = _writer(old_set, NEW, kill_at=kill_at)
    done.wait(timeout=120)
    assert done.returncode == -signal.SIGKILL
    before = _contents(old_set)
    assert sum(before.get(n) == NEW[n] for n in NEW) == kill_at  # killed with kill_at files renamed
    assert any(name.startswith(".occsens-") for name in before)  # its journal and temporaries are there
    write.recover(old_set)  # what the next write into the folder does first
    assert _contents(old_set) == dict(sorted(NEW.items()))  # all new, no temporaries


def test_a_writer_killed_while_undoing_a_failed_replace_is_undone_by_recovery(old_set: Path) -> None:
    done = _writer(old_set, NEW, fail_at=2, kill_undoing=True)
    done.wait(timeout=120)
    assert done.returncode == -signal.SIGKILL
    assert sum(_contents(old_set).get(n) == NEW[n] for n in NEW) == 2  # two had been renamed
    write.recover(old_set)
    assert _contents(old_set) == dict(sorted(OLD.items()))  # all old, no temporaries


def test_the_next_write_into_the_folder_recovers_first(old_set: Path) -> None:
    _writer(old_set, NEW, kill_at=1).wait(timeout=120)
    write.write_files(old_set, {"extra.txt": b"more"}, "the notes")
    assert _contents(old_set) == dict(sorted({**NEW, "extra.txt": b"more"}.items()))


@pytest.mark.parametrize("lock", [True, False], ids=["locked", "without the lock"])
def test_two_writers_into_one_folder_take_turns(old_set: Path, tmp_path: Path, lock: bool) -> None:
    """Writer A renames its first file, then pauses; writer B starts then. Without the lock B's files
    land between A's and the folder ends a mix (the race is real); with it, B waits its turn."""
    signal_file = tmp_path / "a-renamed-one"
    other = {name: b"B " + content for name, content in NEW.items()}
    a = _writer(old_set, NEW, signal=str(signal_file), no_lock=not lock)
    b = _writer(old_set, other, wait_for=str(signal_file), no_lock=not lock)
    assert a.wait(timeout=120) == 0 and b.wait(timeout=120) == 0, (a.stderr.read(), b.stderr.read())
    got = _contents(old_set)
    if lock:
        assert got in (dict(sorted(NEW.items())), dict(sorted(other.items())))
    else:
        assert got not in (dict(sorted(NEW.items())), dict(sorted(other.items())))  # a mix
