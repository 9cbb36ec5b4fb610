"""How numbers read in the report: one format per kind of number, shared by the findings and the view.

A finding's numbers are also shown in the report's tables, so both must format them alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from occsens.engine import NOTEBOOK_SCALE
from occsens.report.analysis import Cell, CellSpan, MapStats


def prob(x: float) -> str:
    """Probabilities and drops: four decimals, everywhere in the report."""
    return f"{x:.4f}"


def points(fraction: float) -> str:
    """An accuracy difference in percentage points, one decimal: 0.0189 -> "1.9"."""
    return f"{100 * fraction:.1f}"


def pct(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def region_text(r: Cell | CellSpan) -> str:
    """A window's rectangle, or the span of several, in inclusive pixel rows and columns."""
    return f"rows {r.top}-{r.bottom}, cols {r.left}-{r.right}"


def rep_name(m: MapStats, names: Sequence[str]) -> str:
    """The top replacement class and how many positions it wins, or "none"."""
    return "none" if m.replacement is None else f"{names[m.replacement]} ({m.replacement_count})"


def notebook_square(size: int) -> str:
    """The side of the square the notebook greys around a size x size cell, e.g. "20x20" for 4."""
    return f"{NOTEBOOK_SCALE * size}x{NOTEBOOK_SCALE * size}"
