"""The types of command-line values: each turns the text of one argument into its value, or refuses it.

Every option of every command that takes a value has one of these as its ``type``
(``tests/test_cli_errors.py`` walks the parser to hold that), so a bad value is refused while the
arguments are parsed, before any work, as one line naming the option (argparse adds
``argument --patch:``), quoting the value and saying what is valid. Empty text is never a value:
``--out ""`` or ``--checks ""`` would otherwise read as "not given" and fall back to a default.

The ranges that are the package's own (a seed, epochs, a model's width, the fill names, the output
names) come from ``occsens.constants``, which imports no torch. This module imports nothing heavy.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from occsens.constants import FILL_NAMES, MAX_SEED, OUTPUTS
from occsens.errors import INT64_MAX, shown

# Python refuses to turn a string of more digits than this into an int (sys.int_info's default
# str_digits_check_threshold is 640; the limit itself, 4300, is what int() enforces): such a value is
# far past any range here, so it is "too large" rather than "not a number".
_DIGITS = 4300


def _named(fn: Callable[[str], object], name: str) -> Callable[[str], object]:
    fn.__name__ = name  # argparse names the type in its own messages
    return fn


def whole_number(low: int, high: int = INT64_MAX, what: str = "") -> Callable[[str], int]:
    """A type for an int in ``low..high``; ``what`` says what the number is, in the message."""
    hint = f" ({what})" if what else ""
    limit = "2**63 - 1 (a 64-bit integer)" if high == INT64_MAX else str(high)

    def parse(text: str) -> int:
        digits = text.strip().lstrip("+-")
        try:
            value = int(text)
        except ValueError:
            huge = digits.isdecimal() and len(digits) >= _DIGITS
            wrong = f"must be at most {limit}" if huge else "is not a whole number"
            raise argparse.ArgumentTypeError(f"{shown(text)} {wrong}{hint}") from None
        if value < low:
            bound = "positive" if low == 1 else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{shown(text)} must be {bound}{hint}")
        if value > high:
            raise argparse.ArgumentTypeError(f"{shown(text)} must be at most {limit}{hint}")
        return value

    return _named(parse, "whole number")  # type: ignore[return-value]


positive_int = whole_number(1)
seed = whole_number(0, MAX_SEED, f"a seed: 0..{MAX_SEED}")


def seconds(value: str) -> float:
    """``--timeout``: a time limit in seconds, a number > 0 (``1e3`` and ``0.5`` too)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown(value)} is not a number of seconds, e.g. 600") from None
    if not 0 < number < math.inf:
        raise argparse.ArgumentTypeError(f"{shown(value)} must be a number of seconds > 0, e.g. 600")
    return number


def text(what: str) -> Callable[[str], str]:
    """A type for non-empty text (``what`` it should be, for the message)."""

    def parse(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError(f"{shown(value)} is empty; give {what}")
        if "\0" in value:
            raise argparse.ArgumentTypeError(f"{shown(value)} holds a NUL character; give {what}")
        return value

    return _named(parse, "text")  # type: ignore[return-value]


def code_spec(example: str) -> Callable[[str], str]:
    """A type for ``MODULE:NAME``, the user's code to import (``example`` shows one)."""

    def parse(value: str) -> str:
        module, colon, name = text(f"MODULE:NAME, e.g. {example}")(value).partition(":")
        if not colon or not module.strip() or not name.strip():
            raise argparse.ArgumentTypeError(f"{shown(value)} must look like MODULE:NAME, e.g. {example}")
        return value

    return _named(parse, "MODULE:NAME")  # type: ignore[return-value]


def output(value: str) -> str:
    """``--output``: a name of ``OUTPUTS`` or ``MODULE:FUNCTION``."""
    value = text("softmax, probs, sigmoid or MODULE:FUNCTION")(value)
    if ":" in value:
        return code_spec("myscores:region_mean")(value)
    if value not in OUTPUTS:
        raise argparse.ArgumentTypeError(
            f"{shown(value)} is unknown; use {', '.join(OUTPUTS)} or MODULE:FUNCTION, a function "
            "(model output) -> [B, K] scores"
        )
    return value


def pair(value: str) -> int | tuple[int, int]:
    """``--patch``/``--stride``: ``N`` or ``HxW`` (also ``H,W``), each a positive int."""
    side = whole_number(1)
    parts = value.lower().replace("x", ",").split(",")
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"{shown(value)} is not an int or HxW pair, e.g. 4 or 4x8")
    try:
        sides = [side(p) for p in parts]
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(
            f"{shown(value)} is not an int or HxW pair of positive ints, e.g. 4 or 4x8: {exc}"
        ) from None
    return sides[0] if len(sides) == 1 else (sides[0], sides[1])


_FILL = f"a pixel value in [0, 1], R,G,B (three of them) or one of {', '.join(FILL_NAMES)}"


def fill(value: str) -> float | list[float] | str:
    """``--fill``: a pixel value, R,G,B, or a fill name (pixel values are in [0, 1], before any
    normalisation the model does)."""
    parts = text(_FILL)(value).split(",")
    try:
        values = [float(v) for v in parts]
    except ValueError:
        name = value.strip()
        if len(parts) == 1 and name in FILL_NAMES:
            return name
        raise argparse.ArgumentTypeError(f"{shown(value)} is unknown; use {_FILL}") from None
    if len(values) not in (1, 3) or not all(math.isfinite(v) and 0 <= v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{shown(value)} is not a fill: use {_FILL}")
    return values[0] if len(values) == 1 else values


def channels(value: str) -> int:
    """``--channels``: 1 or 3."""
    if value.strip() not in ("1", "3"):
        raise argparse.ArgumentTypeError(f"{shown(value)} is not 1 (luminance) or 3 (RGB)")
    return int(value)


def int_list(what: str, low: int = 0) -> Callable[[str], list[int]]:
    """A type for comma-separated ints of ``low`` or more (at least one); ``what`` they are (message)."""
    index = whole_number(low)

    def parse(value: str) -> list[int]:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"{shown(value)} is not a list of {what}, e.g. 1,2,3")
        try:
            return [index(p) for p in parts]
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(
                f"{shown(value)} is not a list of {what}, e.g. 1,2,3: {exc}"
            ) from None

    return _named(parse, "list")  # type: ignore[return-value]


def name_list(
    what: str, noun: str = "name", choices: tuple[str, ...] | None = None
) -> Callable[[str], list[str]]:
    """A type for comma-separated names, each non-empty (and one of ``choices`` when given): ``what``
    they are and what ``noun`` each is, for the message."""

    def parse(value: str) -> list[str]:
        names = [n.strip() for n in value.split(",")]
        if not any(names) or not all(names):
            raise argparse.ArgumentTypeError(
                f"{shown(value)} has an empty name; give {what}, comma-separated"
            )
        unknown = [n for n in names if choices is not None and n not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {noun} {', '.join(map(repr, unknown))}; use {', '.join(choices or ())}"
            )
        return names

    return _named(parse, "list")  # type: ignore[return-value]
