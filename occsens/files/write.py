"""Output files: their place checked before any work, all files of one command written together or not at all.

``write_files`` is the one way occsens writes a result (a report, JSON, figures, a checkpoint, weights,
a model card). It stages every file as a temporary file in the target folder, flushed to disk, keeps a
link to each file it will replace, then renames the new files into place; if anything fails on the
way (a full disk, a folder that turned read-only, an interrupt), the files already renamed are put
back as they were and the rest are never touched: the folder holds the old set or the new one, never a
mix, and no half-written file. A process killed between two renames (``kill -9``, a power cut) is
covered by a journal in the folder, finished by the next write there (``recover``); writers into one
folder take turns (``fcntl.flock`` on the folder). Reading files is ``occsens.files.read``'s job.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; writers into one folder are then not serialised
    fcntl = None  # type: ignore[assignment]

from occsens.errors import OcclusionError
from occsens.errors import path as as_path

_PREFIX = ".occsens-"  # temporary and backup files start with this (hidden, and easy to recognise)


def check_out_dir(out: str | os.PathLike, option: str = "--out") -> Path:
    """Fail early, before any work, when ``out`` cannot become a writable folder; nothing is created.

    ``option`` names the argument in the error (``--out``, ``--json``).
    """
    path = as_path(out, option)
    probe = path
    while not probe.exists():
        if probe.is_symlink():  # a link to nothing, or a loop of links: no folder can be made there
            raise OcclusionError(
                f"{option} {str(out)!r} is not usable: {str(probe)!r} is a link that leads nowhere (its "
                "target is missing, or links loop back to themselves)"
            )
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OcclusionError(f"{option} {str(out)!r} is not usable: {str(probe)!r} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OcclusionError(
            f"{option} {str(out)!r} is not writable: no permission to write in {str(probe)!r}"
        )
    return path


def check_out_file(out: str | os.PathLike, option: str) -> Path:
    """Fail early when ``out`` cannot be written as a file: its folder as for ``check_out_dir``, and
    ``out`` itself is not a folder. Nothing is created."""
    path = as_path(out, option)
    if path.is_dir():
        raise OcclusionError(f"{option} {str(out)!r} is a folder; give the name of a file to write")
    check_out_dir(path.parent, option)
    return path


def _staged(folder: Path, content: bytes) -> Path:
    """``content`` in a new temporary file in ``folder``, flushed to disk (so a rename publishes it whole)."""
    fd, name = tempfile.mkstemp(prefix=_PREFIX, suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(name, 0o644)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _kept(target: Path) -> Path:
    """A second name for the file at ``target`` (a hard link, or a copy where links are not allowed)."""
    backup = target.with_name(f"{_PREFIX}{uuid.uuid4().hex}.old")
    try:
        os.link(target, backup)
    except OSError:
        shutil.copy2(target, backup)
    return backup


# The journal of one replace, in the target folder: written (and flushed to disk) after every new file
# is staged and every old one kept, before the first rename. Each entry names a file, its staged new
# content and the backup of its old content (None: there was no file). A process killed between two
# renames leaves it behind; the next write into the folder (``recover``) then finishes the replace:
# every staged file still there is renamed into place. ``_BACK`` marks a replace that was being undone
# when it stopped: recovery then puts every old file back instead. Either way the set is all-old or
# all-new, and the temporaries go.
_JOURNAL = f"{_PREFIX}journal.json"
_BACK = f"{_PREFIX}journal.back"


def _write_journal(folder: Path, entries: list[dict[str, str | None]]) -> None:
    fd = os.open(folder / _JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(json.dumps({"renames": entries}).encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    _sync_folder(folder)


def _sync_folder(folder: Path) -> None:
    """Make the folder's renames durable where the OS allows (not on Windows)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def recover(folder: str | os.PathLike) -> None:
    """Finish (or, if it was being undone, undo) a replace a killed process left in ``folder``, and
    remove stale temporaries; a folder without a journal only loses its stale temporaries.

    Called by every write into the folder, under its lock, before anything else."""
    folder = Path(folder)
    journal, back = folder / _JOURNAL, folder / _BACK
    if journal.exists():
        try:
            entries = json.loads(journal.read_bytes())["renames"]
        except (ValueError, KeyError, TypeError, OSError, RecursionError):
            entries = []  # torn while it was written: no rename had started, nothing to finish
        for entry in entries:
            target, new, old = folder / entry["name"], entry["new"], entry["old"]
            if back.exists():  # undo: the old file back where there was one, else no file
                if old is not None and (folder / old).exists():
                    os.replace(folder / old, target)
                elif old is None and not (folder / new).exists():
                    target.unlink(missing_ok=True)
            elif (folder / new).exists():  # finish: a staged file not yet renamed goes into place
                os.replace(folder / new, target)
        _sync_folder(folder)
        journal.unlink()
    back.unlink(missing_ok=True)
    for stale in folder.glob(f"{_PREFIX}*"):
        if stale.name.endswith((".tmp", ".old")) and stale.is_file():
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(folders: list[Path]) -> Iterator[None]:
    """Each folder locked (``fcntl.flock`` on the folder itself: no lock file is left behind), in one
    order, so concurrent writers into one folder take turns instead of mixing their files."""
    fds: list[int] = []
    try:
        for folder in sorted(set(folders)):
            fd = os.open(folder, os.O_RDONLY)
            fds.append(fd)
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        for fd in fds:
            os.close(fd)  # closing releases the lock


def _replace_together(targets: Mapping[Path, Mapping[str, bytes]]) -> None:
    """Every ``name: bytes`` of each folder's payload in it, all of them or none (module docstring)."""
    with _locked(list(targets)):
        for folder in targets:
            recover(folder)
        entries: dict[Path, list[dict[str, str | None]]] = {folder: [] for folder in targets}
        placed: list[tuple[Path, dict[str, str | None]]] = []
        try:
            for folder, payload in targets.items():
                for name, content in payload.items():
                    entries[folder].append({"name": name, "new": _staged(folder, content).name, "old": None})
            for folder, listed in entries.items():
                for entry in listed:
                    if (folder / str(entry["name"])).exists():
                        entry["old"] = _kept(folder / str(entry["name"])).name
                _write_journal(folder, listed)
            for folder, listed in entries.items():
                for entry in listed:
                    os.replace(folder / str(entry["new"]), folder / str(entry["name"]))
                    placed.append((folder, entry))
        except BaseException as exc:
            if isinstance(exc, OSError) and exc.filename is None:  # say which folder it was
                exc.filename = str(folder)
            for folder in {f for f, _ in placed}:
                with contextlib.suppress(OSError):
                    (folder / _BACK).touch()
            for folder, entry in reversed(placed):  # the old set back, as it was
                with contextlib.suppress(OSError):
                    if entry["old"] is not None:
                        os.replace(folder / entry["old"], folder / str(entry["name"]))
                    else:
                        (folder / str(entry["name"])).unlink()
            raise
        finally:
            for folder, listed in entries.items():
                with contextlib.suppress(OSError):
                    (folder / _JOURNAL).unlink(missing_ok=True)
                    _sync_folder(folder)
                    (folder / _BACK).unlink(missing_ok=True)
                for entry in listed:
                    for leftover in (entry["new"], entry["old"]):
                        if leftover is not None:
                            with contextlib.suppress(OSError):
                                (folder / leftover).unlink(missing_ok=True)
        for folder in targets:
            _sync_folder(folder)


def write_files(
    out: str | os.PathLike, payload: Mapping[str, bytes], what: str, option: str = "--out"
) -> list[Path]:
    """Write every ``name: bytes`` into ``out``: all of them land whole, or none does and the files that
    were there stay as they were. ``what`` names the output in the error (e.g. "the report")."""
    return write_together([(out, payload, option)], what)


def write_together(
    sets: Sequence[tuple[str | os.PathLike, Mapping[str, bytes], str]], what: str
) -> list[Path]:
    """``write_files`` for several folders at once (``(out, payload, option)`` each): every file of
    every folder lands, or none does (``conform --json A/x --html B/y``: both or neither)."""
    targets: dict[Path, dict[str, bytes]] = {}
    options: dict[Path, tuple[str | os.PathLike, str]] = {}
    for out, payload, option in sets:
        folder = check_out_dir(out, option)
        for name in payload:
            if not name or Path(name).name != name or name in (".", ".."):
                raise OcclusionError(f"{what}: {name!r} is not a plain file name")
            if (folder / name).is_dir():
                raise OcclusionError(
                    f"{option} {str(out)!r}: {name!r} there is a folder, so {what} cannot be written over it"
                )
        targets.setdefault(folder, {}).update(payload)
        options.setdefault(folder, (out, option))
    try:
        for folder in targets:
            folder.mkdir(parents=True, exist_ok=True)
        _replace_together(targets)
    except OSError as exc:
        out, option = options[next(iter(targets))]
        if isinstance(exc.filename, str):
            for named in (Path(exc.filename), Path(exc.filename).parent):
                if named in options:
                    out, option = options[named]
                    break
        raise OcclusionError(
            f"{option} {str(out)!r}: cannot write {what} ({exc.strerror or exc}); the files there are as "
            "they were"
        ) from None
    return [folder / name for folder, payload in targets.items() for name in payload]
