"""Reading a file at most as large as its format allows: every file occsens reads goes through here.

A path can name something that never ends (``/dev/zero``, ``/dev/urandom``, a link to one) or that
blocks (a named pipe): reading it "whole" would fill memory or hang. So a file is opened without
blocking, checked to be a regular file (``fstat`` on the open descriptor, so it cannot be swapped
between the check and the read), checked against the size its format implies, and read at most
that size plus one byte (a file that grew past the limit meanwhile is caught too).

Writing is ``occsens.files.write``'s job.
"""

from __future__ import annotations

import io
import json
import os
import stat
from typing import Any, BinaryIO

from occsens.errors import OcclusionError, path

# Not every platform has these flags: Windows lacks O_NONBLOCK and O_CLOEXEC (a FIFO cannot be opened by
# path there, and descriptors are not inherited by default) and needs O_BINARY, which POSIX lacks.
_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)


def path_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words (for messages that refuse it)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(file: Any, limit: int, what: str, holds: str = "such a file") -> BinaryIO:
    """``file`` opened for reading, once it is known to be a regular file of at most ``limit`` bytes.

    ``what`` names the file in errors (``"image"``, ``"weights file"``), ``holds`` what its format is
    (``"a label file"``); the caller closes the file.
    """
    where = f"{what} {str(path(file, what))!r}"
    try:
        fd = os.open(file, _OPEN_FLAGS)
    except FileNotFoundError:
        raise OcclusionError(f"{where} does not exist") from None
    except OSError as exc:
        raise OcclusionError(f"{where} cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OcclusionError(f"{where} is {path_kind(info.st_mode)}, not a file occsens can read")
        if info.st_size > limit:
            raise OcclusionError(f"{where} is over {limit:,} bytes ({info.st_size:,}), too large for {holds}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a regular file: ordinary reads from here on
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(file: Any, limit: int, what: str, holds: str = "such a file") -> bytes:
    """The bytes of ``file``, a regular file of at most ``limit`` bytes (see ``open_regular``)."""
    with open_regular(file, limit, what, holds) as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise OcclusionError(
                f"{what} {str(file)!r} cannot be read ({exc.strerror or type(exc).__name__})"
            ) from None
    if len(data) > limit:  # it grew while being read
        raise OcclusionError(f"{what} {str(file)!r} is over {limit:,} bytes, too large for {holds}")
    return data


def bounded_stream(file: Any, limit: int, what: str, holds: str = "such a file") -> io.BytesIO:
    """``read_bounded`` as an in-memory stream, for readers that want a file object (``torch.load``)."""
    return io.BytesIO(read_bounded(file, limit, what, holds))


def read_json(file: Any, limit: int, what: str, holds: str = "such a file") -> Any:
    """The JSON value in ``file`` (UTF-8, at most ``limit`` bytes); ``OcclusionError`` naming ``what``
    when it cannot be read or is not JSON."""
    raw = read_bounded(file, limit, what, holds)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OcclusionError(f"{what} {str(file)!r} is not valid JSON ({exc})") from None
    except RecursionError:  # nesting deeper than Python's stack: none of the files occsens writes is
        raise OcclusionError(f"{what} {str(file)!r} is nested too deeply to be {holds}") from None
