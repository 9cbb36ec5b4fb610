"""One colour per class in a report, readable at any class count.

At most ``MAX_SHOWN_CLASSES`` classes get their own colour in a report (``shown_classes``: those that
appear most in its class maps and top-3 lists); every other class is drawn in one neutral grey and
counted as "other" in legends and bar charts. ``class_colours`` gives one colour per class index,
``OTHER_COLOUR`` for the grouped ones, so ``colours[k]`` works for every class and the figures find
the grouped classes by that colour.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import matplotlib

from occsens.report.analysis import MapStats, SampleAnalysis
from occsens.report.cards import TwinComparison

# Classes with their own colour in one report. Ten is the number of qualitative colours that stay
# distinguishable at a glance, also in the small cells of a class map: matplotlib's tab10 is ten hues
# designed to be told apart, while tab20's other ten are paler tints of the same hues (blue next to
# light blue reads as one class). Ten legend entries (plus "other") also still fit beside a map.
MAX_SHOWN_CLASSES = 10
OTHER = "other"
# A light neutral grey: no hue, and far lighter than every class colour below (tab10's own mid grey is
# swapped for black whenever some class is grouped, so grey means "other" and nothing else).
OTHER_COLOUR = "#cccccc"
_TAB10 = [matplotlib.colors.to_hex(c) for c in matplotlib.colormaps["tab10"].colors]  # type: ignore[attr-defined]
_TAB10_NO_GREY = [c if c != "#7f7f7f" else "#000000" for c in _TAB10]


def class_frequency(samples: Sequence[SampleAnalysis], twins: TwinComparison | None = None) -> list[int]:
    """How often each class appears in a report: window positions it wins in every class map drawn
    (occlude, reveal, each fill, the notebook geometry, the colour/greyscale twins) plus its places in
    the samples' top-3 lists. One entry per class; 0 for a class the report never shows."""
    if not samples:
        return []
    frequency = [0] * len(samples[0].clean_probs)
    maps: list[MapStats] = []
    for s in samples:
        maps += [s.main, s.reveal, *(f.stats for f in s.fills)]
        if s.notebook is not None:
            maps += [s.notebook.notebook, s.notebook.same_size]
        for k, _ in s.top3:
            frequency[k] += 1
    if twins is not None:
        maps += [m for t in twins.samples for m in (t.colour, t.grey)]
    for m in maps:
        for k, v in enumerate(m.class_counts):
            frequency[k] += v
    return frequency


def shown_classes(frequency: Sequence[int]) -> tuple[int, ...]:
    """The classes that get their own colour, in class order: every class when there are at most
    ``MAX_SHOWN_CLASSES``; otherwise the ``MAX_SHOWN_CLASSES`` most frequent among those that appear
    (``frequency`` > 0; ties to the lower class index). The rest are "other"."""
    if len(frequency) <= MAX_SHOWN_CLASSES:
        return tuple(range(len(frequency)))
    ranked = sorted((k for k, v in enumerate(frequency) if v > 0), key=lambda k: (-frequency[k], k))
    return tuple(sorted(ranked[:MAX_SHOWN_CLASSES]))


def class_colours(num_classes: int, shown: Iterable[int] | None = None) -> list[str]:
    """One fixed colour per class index, the same in every figure of a report.

    The ``shown`` classes (default: the first ``MAX_SHOWN_CLASSES``, i.e. all of up to that many) get
    tab10's colours in class order; every other class gets ``OTHER_COLOUR``.
    """
    picked = sorted(set(range(min(num_classes, MAX_SHOWN_CLASSES)) if shown is None else shown))
    if len(picked) > MAX_SHOWN_CLASSES or any(not 0 <= k < num_classes for k in picked):
        raise ValueError(f"at most {MAX_SHOWN_CLASSES} shown classes of 0..{num_classes - 1}, got {picked}")
    palette = _TAB10 if len(picked) == num_classes else _TAB10_NO_GREY
    colours = [OTHER_COLOUR] * num_classes
    for k, colour in zip(picked, palette, strict=False):
        colours[k] = colour
    return colours


def is_other(colours: Sequence[str], k: int) -> bool:
    """Whether class ``k`` is grouped as "other" under ``colours`` (from ``class_colours``)."""
    return colours[k] == OTHER_COLOUR


def other_label(colours: Sequence[str]) -> str:
    """The name "other" stands for, with how many classes it groups: "other (990 classes)"."""
    n = sum(1 for c in colours if c == OTHER_COLOUR)
    return f"{OTHER} ({n} class{'' if n == 1 else 'es'})"


def legend_entries(names: Sequence[str], colours: Sequence[str]) -> list[tuple[str, str]]:
    """(name, colour) of the report's legend: each shown class in class order, then "other" when some
    class is grouped, with how many."""
    entries = [(n, c) for n, c in zip(names, colours, strict=True) if c != OTHER_COLOUR]
    if len(entries) < len(names):
        entries.append((other_label(colours), OTHER_COLOUR))
    return entries


def grouped(
    values: Sequence[int], names: Sequence[str], colours: Sequence[str]
) -> list[tuple[str, int, str]]:
    """(name, value, colour) per bar: each shown class, then one "other" bar summing the grouped classes
    (when there are any)."""
    bars = [(names[k], v, colours[k]) for k, v in enumerate(values) if not is_other(colours, k)]
    if len(bars) < len(values):
        rest = sum(v for k, v in enumerate(values) if is_other(colours, k))
        bars.append((other_label(colours), rest, OTHER_COLOUR))
    return bars
