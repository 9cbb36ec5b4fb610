"""The one exception type occsens raises for bad input, and the checks of plain arguments that raise it.

Every public function checks its arguments at the door, before any work, with the checks here (plain
Python values: integers, flags, paths) and in ``occsens.engine.validate`` (tensors, devices, models
and the user's callables). Each raises one ``OcclusionError`` whose message names the argument,
quotes the value and says what would be valid. This module imports nothing heavy (no torch, no
numpy at import time), so the command line can use it before torch loads.
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

# Torch indexes, counts and seeds with 64-bit integers: an int past this is refused at the door
# instead of failing deep inside with an OverflowError.
INT64_MAX = 2**63 - 1

# The longest file or folder name (one component of a path) and the longest path the file systems
# occsens runs on allow: NAME_MAX and PATH_MAX of Linux (ext4, tmpfs, btrfs) and macOS (APFS: 255
# UTF-8 bytes, PATH_MAX 1024 there, which the system itself then reports in one line of its own).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096

# A value quoted in a message is cut at this many characters: a whole tensor or a long list in an
# error line hides the message (80 is one terminal line, less the message around it).
_SHOWN = 80


class OcclusionError(ValueError):
    """Bad input to occsens: the message names the argument, its value and what is valid."""


# Bidirectional embeddings, overrides and isolates: they reorder how the text after them is displayed
# (a name can then read as something else, "Trojan Source"), so they are shown escaped too.
_BIDI = frozenset([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def printable(text: str) -> str:
    """``text`` safe to print, encode and lay out: control characters (terminal escape sequences among
    them) escaped as ``\\x1b``, tabs and newlines as spaces, and the undecodable bytes of a file name
    (Python's surrogate escapes, ``\\udcff`` for byte 0xff) shown as the byte, ``\\xff``.

    File names and the text of the user's exceptions are data: they are shown, never obeyed, and
    they must not crash a report at its end (``UnicodeEncodeError`` on a name that is not UTF-8)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in "\t\n\r":
            out.append(" ")
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not valid UTF-8, as os.fsdecode keeps it
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000 or code in _BIDI:
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception in one line: ``Type: the first non-empty line of its message`` (that line cut at
    ``limit`` characters), or the type alone when it has no message. Users' exceptions can be pages
    long (torch's are); an error line quotes only this."""
    line = next((text.strip() for text in str(exc).splitlines() if text.strip()), "")
    return f"{type(exc).__name__}: {line[:limit]}" if line else type(exc).__name__


def shown(value: Any) -> str:
    """``value`` for a one-line message: an array or tensor by its shape and dtype, anything else by its
    ``repr`` on one line, cut to ``_SHOWN`` characters (a list's repr is as long as the list)."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is not None and dtype is not None and len(shape) > 0:
        return f"a {type(value).__name__} of shape {tuple(shape)} and dtype {dtype}"
    try:
        text = " ".join(repr(value).split())
    except Exception:  # noqa: BLE001 - a user's object whose __repr__ fails is still named
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


# torch's integer dtypes by name (not bool): this module does not import torch
_TORCH_INTEGERS = frozenset(f"torch.{kind}{bits}" for kind in ("int", "uint") for bits in (8, 16, 32, 64))


def integral(value: Any) -> int | None:
    """``value`` as an int if it is one (Python, numpy, or a 0-dimensional integer array or tensor),
    else None. Bools are not integers here: ``True`` for a size or a position is a mistake."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    # a 0-dimensional integer tensor or numpy array (``labels[i]``, ``t.argmax()``) is one number
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        dtype = getattr(value, "dtype", None)
        kind = getattr(dtype, "kind", None)  # numpy
        is_int = kind in ("i", "u") if kind is not None else str(dtype) in _TORCH_INTEGERS
        if is_int:
            return int(value.item())
    return None


def integer(value: Any, name: str, low: int | None = None, high: int = INT64_MAX, valid: str = "") -> int:
    """``value`` as an int in ``low..high``; else ``OcclusionError`` naming ``name``.

    Accepted: Python and numpy integers and 0-dimensional integer tensors or arrays. Refused: bools,
    floats (even 2.0: a size or a position is counted, not measured), strings and everything else.
    ``valid`` says what is valid in the message (default: "an int" and the range).
    """
    got = integral(value)
    if not valid:
        valid = _range_words(low, high)
    if got is None:
        raise OcclusionError(f"{name} must be {valid}, got {shown(value)} ({type(value).__name__})")
    if (low is not None and got < low) or got > high:
        if got > high == INT64_MAX:  # past what torch can index or count with
            raise OcclusionError(f"{name} must be at most 2**63 - 1 (a 64-bit integer), got {got}")
        raise OcclusionError(f"{name} must be {valid}, got {got}")
    return got


def _range_words(low: int | None, high: int) -> str:
    if low == 1 and high == INT64_MAX:
        return "a positive int"
    if low == 0 and high == INT64_MAX:
        return "an int >= 0"
    if low is None:
        return "an int" if high == INT64_MAX else f"an int up to {high}"
    return f"an int in {low}..{high}"


def flag(value: Any, name: str) -> bool:
    """``value`` if it is ``True`` or ``False`` (or a numpy bool); anything else is refused.

    ``"False"`` is a non-empty string, so it would read as true: a flag given as text is a mistake.
    """
    if isinstance(value, bool):
        return value
    if type(value).__name__ == "bool_":  # numpy's bool, e.g. from a comparison
        return bool(value)
    raise OcclusionError(f"{name} must be True or False, got {shown(value)} ({type(value).__name__})")


def real(value: Any, name: str, low: float, high: float, valid: str = "") -> float:
    """``value`` as a finite float in ``[low, high]`` (ints and 0-dimensional real tensors allowed)."""
    what = valid or f"a number in [{low:g}, {high:g}]"
    number: float | None = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value) if _fits_float(value) else None
    elif getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        item = value.item()
        if isinstance(item, numbers.Real) and not isinstance(item, bool):
            number = float(item)
    if number is None:
        raise OcclusionError(f"{name} must be {what}, got {shown(value)} ({type(value).__name__})")
    if not low <= number <= high:  # also refuses NaN
        raise OcclusionError(f"{name} must be {what}, got {shown(value)}")
    return number


def _fits_float(value: numbers.Real) -> bool:
    try:
        float(value)
    except OverflowError:  # an int past 1e308
        return False
    return True


def path(value: Any, name: str) -> Path:
    """``value`` as a ``Path`` if it is a str or ``os.PathLike`` naming something (not empty, no NUL)."""
    if not isinstance(value, (str, os.PathLike)):
        raise OcclusionError(
            f"{name} must be a path (str or pathlib.Path), got {shown(value)} ({type(value).__name__})"
        )
    text = os.fspath(value)
    if isinstance(text, bytes) or not text or "\0" in text:
        raise OcclusionError(f"{name} must be a path naming a file or folder, got {shown(value)}")
    raw = os.fsencode(text)
    long = next((part for part in raw.split(b"/") if len(part) > MAX_NAME_BYTES), None)
    if long is not None:  # the system would refuse it (ENAMETOOLONG) wherever it is used, after the work
        raise OcclusionError(
            f"{name} {shown(text)} has a name of {len(long):,} bytes; file systems allow at most "
            f"{MAX_NAME_BYTES} per file or folder name"
        )
    if len(raw) >= MAX_PATH_BYTES:
        raise OcclusionError(
            f"{name} {shown(text)} is {len(raw):,} bytes long; paths must be under {MAX_PATH_BYTES:,} bytes"
        )
    return Path(text)


def one_of(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of the strings ``choices``."""
    if isinstance(value, str) and value in choices:
        return value
    raise OcclusionError(f"{name} must be one of {', '.join(map(repr, choices))}, got {shown(value)}")
