"""The results as plain text: the values each condition tests, and a table of all checks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from occsens.checks.results import CheckResult


def _format_number(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"
    return str(v)


def headline(result: CheckResult) -> str:
    """The values the condition tests, e.g. ``z=3.1``; the error for a crashed check."""
    if not result.condition.clauses:
        return "error"
    value = result.value if isinstance(result.value, dict) else {}
    return ", ".join(
        f"{c.quantity}={_format_number(value.get(c.quantity))}" for c in result.condition.clauses
    )


def format_table(results: Sequence[CheckResult]) -> str:
    """A plain-text table: check, PASS/FAIL, measured value(s), condition."""
    rows = [("check", "result", "value", "condition")]
    rows += [(r.name, "PASS" if r.passed else "FAIL", headline(r), r.condition.text) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * max(len(r[3]) for r in rows))
    return "\n".join(lines)
