"""Output files: their place checked before any work, all files of one command written together or not at all.

``write_files`` is the one way occsens writes a result (a report, JSON, figures, a checkpoint, weights,
a model card). It stages every file as a temporary file in the target folder, flushed to disk, keeps a
link to each file it will replace, then renames the new files into place; if anything fails on the
way (a full disk, a folder that turned read-only, an interrupt), the files already renamed are put
back as they were and the rest are never touched: the folder holds the old set or the new one, never a
mix, and no half-written file. Reading files is ``occsens.files.read``'s job.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

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


def _replace_together(folder: Path, payload: Mapping[str, bytes]) -> None:
    """Every ``name: bytes`` of ``payload`` in ``folder``, all of them or none (see the module docstring)."""
    staged: dict[str, Path] = {}
    kept: dict[str, Path] = {}
    placed: list[str] = []
    try:
        for name, content in payload.items():
            staged[name] = _staged(folder, content)
        for name in payload:
            if (folder / name).exists():
                kept[name] = _kept(folder / name)
        for name, tmp in staged.items():
            os.replace(tmp, folder / name)
            placed.append(name)
    except BaseException:
        for name in reversed(placed):  # the old set back, as it was
            with contextlib.suppress(OSError):
                if name in kept:
                    os.replace(kept.pop(name), folder / name)
                else:
                    (folder / name).unlink()
        raise
    finally:
        for leftover in [*staged.values(), *kept.values()]:
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)
    with contextlib.suppress(OSError, AttributeError):  # make the renames durable where the OS allows
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_files(
    out: str | os.PathLike, payload: Mapping[str, bytes], what: str, option: str = "--out"
) -> list[Path]:
    """Write every ``name: bytes`` into ``out``: all of them land whole, or none does and the files that
    were there stay as they were. ``what`` names the output in the error (e.g. "the report")."""
    folder = check_out_dir(out, option)
    for name in payload:
        if not name or Path(name).name != name or name in (".", ".."):
            raise OcclusionError(f"{what}: {name!r} is not a plain file name")
        if (folder / name).is_dir():
            raise OcclusionError(
                f"{option} {str(out)!r}: {name!r} there is a folder, so {what} cannot be written over it"
            )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _replace_together(folder, payload)
    except OSError as exc:
        raise OcclusionError(
            f"{option} {str(out)!r}: cannot write {what} ({exc.strerror or exc}); the files there are as "
            "they were"
        ) from None
    return [folder / name for name in payload]
