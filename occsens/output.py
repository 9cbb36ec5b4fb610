"""Output folders: checked before any work, written all at once or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from occsens.errors import OcclusionError


def check_out_dir(out: str | os.PathLike, option: str = "--out") -> Path:
    """Fail early, before any work, when ``out`` cannot become a writable folder; nothing is created.

    ``option`` names the argument in the error (``--out``, ``--json``).
    """
    path = Path(out)
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


@contextlib.contextmanager
def _temp_in(folder: Path, suffix: str) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix=".occsens-", suffix=suffix, dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def write_files(
    out: str | os.PathLike, payload: Mapping[str, bytes], what: str, option: str = "--out"
) -> list[Path]:
    """Write every ``name: bytes`` into ``out``: each lands whole (temp file, then rename) or not at all.

    ``what`` names the output in the error (e.g. "the report").
    """
    folder = check_out_dir(out, option)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            temps = {}
            for name, content in payload.items():
                tmp = stack.enter_context(_temp_in(folder, ".tmp"))
                tmp.write_bytes(content)
                os.chmod(tmp, 0o644)
                temps[name] = tmp
            for name, tmp in temps.items():
                os.replace(tmp, folder / name)
    except OSError as exc:
        raise OcclusionError(f"{option} {str(out)!r}: cannot write {what} ({exc.strerror or exc})") from None
    return [folder / name for name in payload]
